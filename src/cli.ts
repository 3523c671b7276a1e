#!/usr/bin/env node
// The creditgate command: serve, check-config, schema, demo, sample-upstream.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, formatIssue } from './config/config-error.js';
import { configJsonSchema } from './config/config-schema.js';
import { summarizeConfig } from './config/config-summary.js';
import { loadConfigFile } from './config/index.js';
import { createLogger } from './logger.js';
import { startSampleUpstream } from './sample-upstream.js';
import { startSidecar, type RunningSidecar } from './sidecar.js';

const USAGE = `creditgate — credit pools for AI and data endpoints

Usage:
  creditgate serve --config FILE --upstream URL [--port 8080] [--admin-port 9090]
                   [--host ADDR] [--redis redis://…]
      env fallbacks: CREDITGATE_CONFIG, CREDITGATE_UPSTREAM, PORT, ADMIN_PORT,
                     HOST, REDIS_URL; admin token: CREDITGATE_ADMIN_TOKEN
  creditgate check-config FILE     validate a config; print its summary or its errors
  creditgate schema                print the config's JSON Schema
  creditgate demo                  sample upstream on :3000 + sidecar on :8080/:9090,
                                   example config, memory store
  creditgate sample-upstream [--port 3000]
  creditgate --version
`;

function fail(message: string): never {
  process.stderr.write(`creditgate: ${message}\n`);
  process.exit(2);
}

function port(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`${what} must be a port number, got ${JSON.stringify(value)}`);
  return n;
}

function exampleConfigPath(): string {
  return new URL('../config/credits.example.yaml', import.meta.url).pathname;
}

// Stop accepting on SIGTERM/SIGINT, let requests in flight finish, exit 0.
function exitOnSignals(close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`creditgate: ${signal} received, finishing requests in flight\n`);
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      upstream: { type: 'string' },
      port: { type: 'string' },
      'admin-port': { type: 'string' },
      host: { type: 'string' },
      redis: { type: 'string' },
    },
  });
  const env = process.env;
  const configPath = values.config ?? env.CREDITGATE_CONFIG;
  const upstream = values.upstream ?? env.CREDITGATE_UPSTREAM;
  if (!configPath) fail('serve needs --config FILE (or CREDITGATE_CONFIG)');
  if (!upstream) fail('serve needs --upstream URL (or CREDITGATE_UPSTREAM)');
  const sidecar = await startSidecar({
    configPath,
    upstream,
    port: port(values.port ?? env.PORT, 8080, '--port'),
    adminPort: port(values['admin-port'] ?? env.ADMIN_PORT, 9090, '--admin-port'),
    host: values.host ?? env.HOST,
    redis: values.redis ?? env.REDIS_URL,
    adminToken: env.CREDITGATE_ADMIN_TOKEN,
    logger: createLogger(),
  });
  exitOnSignals(() => sidecar.close());
}

async function checkConfig(args: string[]): Promise<void> {
  const file = args[0];
  if (!file) fail('check-config needs a FILE');
  try {
    const config = await loadConfigFile(file);
    process.stdout.write(`${file}: OK (config hash ${config.hash})\n\n${summarizeConfig(config)}\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    process.stderr.write(`${file}: ${err.issues.length} error${err.issues.length === 1 ? '' : 's'}\n`);
    process.exit(1);
  }
}

async function demo(): Promise<void> {
  const logger = createLogger();
  const token = process.env.CREDITGATE_ADMIN_TOKEN || 'dev-admin-token';
  const upstream = await startSampleUpstream(3000);
  let sidecar: RunningSidecar;
  try {
    sidecar = await startSidecar({
      configPath: exampleConfigPath(),
      upstream: `http://127.0.0.1:${upstream.port}`,
      port: 8080,
      adminPort: 9090,
      host: '127.0.0.1',
      adminToken: token,
      logger,
    });
  } catch (err) {
    await upstream.close();
    throw err;
  }
  process.stderr.write(
    `\ncreditgate demo: sample upstream on http://127.0.0.1:${upstream.port}, ` +
      `sidecar on http://127.0.0.1:${sidecar.port}, admin on http://127.0.0.1:${sidecar.adminPort} ` +
      `(admin token: ${process.env.CREDITGATE_ADMIN_TOKEN ? 'from CREDITGATE_ADMIN_TOKEN' : token})\n` +
      `try: curl -i -X POST http://127.0.0.1:8080/v1/ai/followups -H 'x-account-id: acme' ` +
      `-H 'content-type: application/json' -d '{"count": 25}'\n\n`,
  );
  exitOnSignals(async () => {
    await sidecar.close();
    await upstream.close();
  });
}

async function sampleUpstream(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, host: { type: 'string' } } });
  const up = await startSampleUpstream(port(values.port, 3000, '--port'), values.host ?? '127.0.0.1');
  process.stderr.write(`sample upstream listening on http://${values.host ?? '127.0.0.1'}:${up.port}\n`);
  exitOnSignals(() => up.close());
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'schema':
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    case 'demo':
      return demo();
    case 'sample-upstream':
      return sampleUpstream(rest);
    case '--version':
    case 'version': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(`${pkg.version}\n`);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(USAGE);
      fail(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    process.exit(1);
  }
  process.stderr.write(`creditgate: ${(err as Error).message}\n`);
  process.exit(1);
});
