// The built `creditgate` command, run as a real process (dist/cli.js).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { freePort } from '../helpers/redis-server.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';
import { runCli, serveArgs } from '../helpers/run-cli.js';
import { TEST_CONFIG, writeConfig } from '../helpers/sidecar-harness.js';
import { redisUrl, withoutRedisUrl } from '../helpers/test-redis.js';

const CLI = 'dist/cli.js';
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 15_000 });

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`creditgate exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never became healthy`);
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });

describe('creditgate check-config', () => {
  it('exits 0 and prints credit types, plans and the route table for the example', () => {
    const r = run(['check-config', 'config/credits.example.yaml']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('config/credits.example.yaml: OK');
    expect(r.stdout).toMatch(/credit types \(8\)/);
    expect(r.stdout).toMatch(/voice_minutes\s+-\s+60\s+180/);
    expect(r.stdout).toMatch(/enrich-contact\s+POST\s+\/v1\/contacts\/:id\/enrich\s+database = 1; email_verification = 1/);
  });

  it('shows holds and how they settle in the route table', () => {
    const file = writeConfig(
      editConfig(TEST_CONFIG, [
        'charge: { ai_tasks: { header: x-task-count } }',
        'charge: { ai_tasks: { reserve: { body: max_tokens, default: 4096, max: 200000 }, settle: { responseJson: [message.usage.input_tokens, usage.output_tokens], onIncomplete: release } } }',
      ]),
    );
    const r = run(['check-config', file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /by-header\s+POST\s+\/v1\/ai\/custom\s+ai_tasks = hold body field "max_tokens" \(default 4096, max 200000\), settle from JSON message\.usage\.input_tokens \+ usage\.output_tokens, onIncomplete release/,
    );
  });

  it('warns about a route an earlier one makes unreachable, naming both with file:line; --strict exits 1', () => {
    const file = writeConfig(
      editConfig(TEST_CONFIG, [
        '  - name: disconnect-mailbox',
        '  - name: any-mailbox\n    method: "*"\n    path: /v1/MAILBOXES/:id\n    charge: { mailboxes: 1 }\n  - name: disconnect-mailbox',
      ]),
    );
    const r = run(['check-config', file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${file}: OK`);
    // An unlimited quota reads as such in the plan matrix (it used to read as "-", not in plan).
    expect(r.stdout).toMatch(/ai_tasks\s+10\s+unlimited\n/);
    const warning = `${file}:47 routes[8] "disconnect-mailbox" is never reached for DELETE /v1/mailboxes/sample: routes[7] "any-mailbox" (${file}:43) matches it first`;
    expect(r.stdout).toMatch(/\nwarnings \(1\):\n {2}/);
    expect(r.stdout).toContain(warning);
    const strict = run(['check-config', '--strict', file]);
    expect(strict.status).toBe(1);
    expect(strict.stdout).toContain(warning);
    expect(strict.stderr).toContain('1 warning, and --strict');
    // The example config has no shadowed route.
    expect(run(['check-config', '--strict', 'config/credits.example.yaml']).status).toBe(0);
  });

  it('exits 1 and prints each error as file:line field: message', () => {
    const file = writeConfig(editConfig(TEST_CONFIG, ['charge: { ai_tasks: { header: x-task-count } }', 'charge: { ai_tasks: "lots" }']));
    const r = run(['check-config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${file}:30 routes[3].charge.ai_tasks: expected a number or a cost rule`);
    expect(r.stderr).toContain('1 error');
  });
});

describe('creditgate COMMAND --help', () => {
  // Each subcommand and an option its help must name; none of them may start anything.
  const COMMANDS: Record<string, string> = {
    serve: '--upstream',
    demo: 'CREDITGATE_ADMIN_TOKEN',
    'sample-upstream': '--port',
    'check-config': '--strict',
    schema: 'JSON Schema',
    explain: '--body',
    accounts: '--plan',
    usage: '--admin-url',
    topup: '--amount',
    topups: '--admin-url',
    events: '--limit',
    stripe: '--dry-run',
    version: '--version',
  };
  it('prints its usage and options and exits 0, for every subcommand', async () => {
    const results = await Promise.all(Object.keys(COMMANDS).map((c) => runCli([c, '--help'], { CREDITGATE_CONFIG: '', CREDITGATE_UPSTREAM: '' })));
    Object.keys(COMMANDS).forEach((c, i) => {
      const r = results[i]!;
      expect({ c, status: r.status, stderr: r.stderr }).toEqual({ c, status: 0, stderr: '' });
      expect(r.stdout.startsWith(`usage: creditgate ${c === 'version' ? '--version' : c}`)).toBe(true);
      expect(r.stdout).toContain(COMMANDS[c]);
    });
    // Also after other arguments, and for a nested subcommand.
    expect((await runCli(['accounts', 'set', 'acme', '--help'])).status).toBe(0);
    expect((await runCli(['serve', '--config', 'x.yaml', '-h'])).stdout).toContain('--redis URL');
  });
});

describe('creditgate schema', () => {
  it('prints the JSON Schema that is published in config/, and the example validates against it', () => {
    const r = run(['schema']);
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toEqual(JSON.parse(readFileSync('config/creditgate.schema.json', 'utf8')));
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(printed);
    expect(validate(parse(readFileSync('config/credits.example.yaml', 'utf8')))).toBe(true);
    expect(validate({ version: 1, creditTypes: { a: { name: 'A' } }, plans: { p: { a: -1 } }, routes: [] })).toBe(false);
  });
});

describe('creditgate serve', () => {
  let upstream: RecordingUpstream;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
  });
  afterAll(async () => upstream.close());

  it('refuses to start without an upstream, naming the flag', () => {
    const r = run(['serve', '--config', 'config/credits.example.yaml'], { CREDITGATE_UPSTREAM: '' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--upstream');
  });

  it('exits 1 with file:line errors on an invalid config', () => {
    const file = writeConfig(editConfig(TEST_CONFIG, ['version: 1', 'version: 7']));
    const r = run(['serve', '--config', file, '--upstream', upstream.url, '--port', '0', '--admin-port', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${file}:1 version: expected version: 1`);
  });

  it('serves from flags against Redis: charges, refuses, then exits 0 on SIGTERM', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, serveArgs({ config: writeConfig(TEST_CONFIG), upstream: upstream.url, port, adminPort, redis: redisUrl() }), {
      env: { ...process.env, CREDITGATE_ADMIN_TOKEN: 't0ken', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await waitHealthy(`http://127.0.0.1:${adminPort}/healthz`, child);
      const a = `cli-${randomUUID()}`;
      const spend = () => fetch(`http://127.0.0.1:${port}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '6' } });
      expect((await spend()).status).toBe(200);
      expect((await spend()).status).toBe(402);
      const usage = await fetch(`http://127.0.0.1:${adminPort}/v1/accounts/${a}/usage`, { headers: { authorization: 'Bearer t0ken' } });
      expect((await usage.json()).pools.ai_tasks.used).toBe(6);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited(child)).toBe(0);
  });

  it('takes its settings from the environment (CREDITGATE_CONFIG, CREDITGATE_UPSTREAM, PORT, ADMIN_PORT, HOST)', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: {
        ...withoutRedisUrl(),
        CREDITGATE_CONFIG: writeConfig(TEST_CONFIG),
        CREDITGATE_UPSTREAM: upstream.url,
        PORT: String(port),
        ADMIN_PORT: String(adminPort),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      await waitHealthy(`http://127.0.0.1:${adminPort}/healthz`, child);
      const r = await fetch(`http://127.0.0.1:${port}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': 'env', 'x-task-count': '1' } });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=9;/);
      // No Redis given: the memory store, with a warning saying so.
      expect(stdout).toContain('in-memory store');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited(child)).toBe(0);
  });

  it('says where Redis was looked for and why it cannot be reached, never with its password', async () => {
    const deadPort = await freePort();
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--config', writeConfig(TEST_CONFIG), '--upstream', upstream.url, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'],
      { env: { ...process.env, REDIS_URL: `redis://default:s3cret-pw@127.0.0.1:${deadPort}/0`, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const look = () => {
          const found = output.split('\n').find((l) => l.includes('not reachable'));
          if (found) resolve(found);
          else if (child.exitCode !== null) reject(new Error(`creditgate exited: ${output}`));
          else setTimeout(look, 50);
        };
        look();
      });
      expect(JSON.parse(line)).toMatchObject({ level: 50, redis: `127.0.0.1:${deadPort}`, cause: expect.stringContaining('ECONNREFUSED') });
      expect(JSON.parse(line).msg).toContain(`Redis at 127.0.0.1:${deadPort} is not reachable`);
    } finally {
      child.kill('SIGTERM');
    }
    await exited(child);
    expect(output).not.toContain('s3cret-pw');
  });

  it('refuses to start when REDIS_URL is set but empty (a missing Secret value must not become per-process counting)', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--config', writeConfig(TEST_CONFIG), '--upstream', upstream.url, '--port', '0', '--admin-port', '0'],
      {
        env: { ...process.env, REDIS_URL: ' ' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await exited(child)).toBe(2);
    expect(stderr).toContain('REDIS_URL is set but empty');
  });
});
