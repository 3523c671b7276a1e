// `creditgate serve|demo|sample-upstream|check-config|schema`.

import { parseArgs } from 'node:util';
import { ConfigError, formatIssue } from '../config/config-error.js';
import { configJsonSchema } from '../config/config-schema.js';
import { summarizeConfig } from '../config/config-summary.js';
import { compileConfig } from '../config/compiled-config.js';
import { configWarnings } from '../config/config-warnings.js';
import { readConfigFile } from '../config/load-config.js';
import { createLogger } from '../logger.js';
import { startSampleUpstream } from '../sample-upstream.js';
import { startSidecar, type RunningSidecar } from '../sidecar.js';
import { CliError, parsePort, usageError } from './cli-errors.js';

type Out = (text: string) => void;

function parsePositive(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw usageError(`${what} must be a whole number of milliseconds, got ${JSON.stringify(value)}`);
  return n;
}

function exampleConfigPath(): string {
  return new URL('../../config/credits.example.yaml', import.meta.url).pathname;
}

// Stop accepting on SIGTERM/SIGINT, let requests in flight finish, exit 0.
// SIGHUP re-reads the config (it covers changes no file watcher can see).
function exitOnSignals(close: () => Promise<void>, reload?: () => Promise<unknown>): void {
  if (reload) process.on('SIGHUP', () => void reload());
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

export async function serveCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
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
  const configPath = values.config ?? env.CREDITGATE_CONFIG;
  const upstream = values.upstream ?? env.CREDITGATE_UPSTREAM;
  if (!configPath) throw usageError('serve needs --config FILE (or CREDITGATE_CONFIG)');
  if (!upstream) throw usageError('serve needs --upstream URL (or CREDITGATE_UPSTREAM)');
  // A URL that was meant to be there (an empty Secret key, a typo in a template)
  // must not quietly become per-process counting.
  if (values.redis === undefined && env.REDIS_URL !== undefined && env.REDIS_URL.trim() === '') {
    throw usageError("REDIS_URL is set but empty: give the Redis URL, or unset REDIS_URL to count in this process's memory (one replica only)");
  }
  const sidecar = await startSidecar({
    configPath,
    upstream,
    port: parsePort(values.port ?? env.PORT, 8080, '--port'),
    adminPort: parsePort(values['admin-port'] ?? env.ADMIN_PORT, 9090, '--admin-port'),
    host: values.host ?? env.HOST,
    redis: values.redis ?? env.REDIS_URL,
    adminToken: env.CREDITGATE_ADMIN_TOKEN,
    logger: createLogger(),
    ...(env.CREDITGATE_CONFIG_POLL_MS ? { configPollMs: parsePositive(env.CREDITGATE_CONFIG_POLL_MS, 'CREDITGATE_CONFIG_POLL_MS') } : {}),
    ...(env.CREDITGATE_SHUTDOWN_GRACE_MS ? { shutdownGraceMs: parsePositive(env.CREDITGATE_SHUTDOWN_GRACE_MS, 'CREDITGATE_SHUTDOWN_GRACE_MS') } : {}),
  });
  exitOnSignals(
    () => sidecar.close(),
    () => sidecar.reload(),
  );
}

export const CHECK_CONFIG_HELP = `usage: creditgate check-config FILE [--strict]
  validate a config; print its summary (credit types, plans, routes with holds and settle rules)
  and warnings (routes an earlier route makes unreachable), or its errors (exit 1)
  --strict   warnings fail the check too (exit 1)`;

export async function checkConfigCommand(args: string[], out: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { strict: { type: 'boolean' } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw usageError(`check-config takes one FILE\n${CHECK_CONFIG_HELP}`);
  let warnings: string[];
  try {
    const { parsed, text } = await readConfigFile(file);
    const config = compileConfig(parsed);
    warnings = configWarnings(config, file, text);
    out(`${file}: OK (config hash ${config.hash})\n\n${summarizeConfig(config)}`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const lines = err.issues.map(formatIssue);
    lines.push(`${file}: ${err.issues.length} error${err.issues.length === 1 ? '' : 's'}`);
    throw new CliError(lines.join('\n'));
  }
  if (warnings.length === 0) return;
  out(`\nwarnings (${warnings.length}):\n${warnings.map((w) => `  ${w}`).join('\n')}`);
  if (values.strict) throw new CliError(`${file}: ${warnings.length} warning${warnings.length === 1 ? '' : 's'}, and --strict`);
}

export function schemaCommand(out: Out): void {
  out(JSON.stringify(configJsonSchema(), null, 2));
}

export async function demoCommand(env: NodeJS.ProcessEnv): Promise<void> {
  const logger = createLogger();
  const token = env.CREDITGATE_ADMIN_TOKEN || 'dev-admin-token';
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
      `(admin token: ${env.CREDITGATE_ADMIN_TOKEN ? 'from CREDITGATE_ADMIN_TOKEN' : token})\n` +
      `try: curl -i -X POST http://127.0.0.1:8080/v1/ai/followups -H 'x-account-id: acme' ` +
      `-H 'content-type: application/json' -d '{"count": 25}'\n` +
      `billing tab: curl -H 'authorization: Bearer <admin token>' http://127.0.0.1:9090/ui/accounts/acme\n\n`,
  );
  exitOnSignals(async () => {
    await sidecar.close();
    await upstream.close();
  });
}

export async function sampleUpstreamCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, host: { type: 'string' } } });
  const up = await startSampleUpstream(parsePort(values.port, 3000, '--port'), values.host ?? '127.0.0.1');
  process.stderr.write(`sample upstream listening on http://${values.host ?? '127.0.0.1'}:${up.port}\n`);
  exitOnSignals(() => up.close());
}
