// Hot reload the ways files really change: in-place writes, editors renaming
// over the file, Kubernetes' ..data symlink swap, SIGHUP; invalid files keep
// the old config; and a reload under steady load fails no request.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { startSidecar } from '../../src/sidecar.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { freePort } from '../helpers/redis-server.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { withoutRedisUrl } from '../helpers/test-redis.js';
import { serveArgs } from '../helpers/run-cli.js';

const WITH_QUOTA = (n: number) => editConfig(TEST_CONFIG, ['tiny: { ai_tasks: 10,', `tiny: { ai_tasks: ${n},`]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function quotaSeen(proxy: string): Promise<number> {
  const r = await fetch(`${proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': `q-${randomUUID()}`, 'x-task-count': '1' } });
  await r.arrayBuffer();
  return Number(/q=(\d+)/.exec(r.headers.get('ratelimit-policy') ?? '')?.[1]);
}

async function eventually(proxy: string, quota: number, withinMs = 3000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if ((await quotaSeen(proxy)) === quota) return;
    if (Date.now() > deadline) throw new Error(`quota ${quota} not in force after ${withinMs} ms`);
    await sleep(50);
  }
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('hot reload (watcher only: polling set to a minute)', () => {
  it('picks up an in-place write', async () => {
    h = await startHarness({ config: WITH_QUOTA(10), configPollMs: 60_000 });
    expect(await quotaSeen(h.proxy)).toBe(10);
    writeFileSync(h.configPath, WITH_QUOTA(20));
    await eventually(h.proxy, 20);
  });

  it('survives an editor renaming a new file over the old one, twice', async () => {
    h = await startHarness({ config: WITH_QUOTA(10), configPollMs: 60_000 });
    for (const q of [30, 40]) {
      const tmp = `${h.configPath}.swp`;
      writeFileSync(tmp, WITH_QUOTA(q));
      renameSync(tmp, h.configPath);
      await eventually(h.proxy, q);
    }
  });

  it("survives Kubernetes' atomic ..data symlink swap of a mounted ConfigMap, twice", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-configmap-'));
    const version = (name: string, quota: number) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'credits.yaml'), WITH_QUOTA(quota));
    };
    version('..2026_11_25_v1', 10);
    symlinkSync('..2026_11_25_v1', join(dir, '..data'));
    symlinkSync('..data/credits.yaml', join(dir, 'credits.yaml'));
    const upstream = await startRecordingUpstream();
    const s = await startSidecar({
      configPath: join(dir, 'credits.yaml'),
      upstream: upstream.url,
      port: 0,
      adminPort: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
      configPollMs: 60_000,
    });
    try {
      const proxy = `http://127.0.0.1:${s.port}`;
      expect(await quotaSeen(proxy)).toBe(10);
      for (const [name, quota, old] of [
        ['..2026_11_25_v2', 25, '..2026_11_25_v1'],
        ['..2026_11_25_v3', 35, '..2026_11_25_v2'],
      ] as const) {
        // What the kubelet does: new timestamped dir, new link, atomic rename over ..data, old dir removed.
        version(name, quota);
        symlinkSync(name, join(dir, '..data_tmp'));
        renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
        rmSync(join(dir, old), { recursive: true });
        await eventually(proxy, quota);
      }
    } finally {
      await s.close();
      await upstream.close();
    }
  });

  it('an invalid file keeps the old config serving, logs file:line errors and counts one error', async () => {
    const log = captureLogger();
    h = await startHarness({ config: WITH_QUOTA(10), configPollMs: 200, logger: log.logger });
    writeFileSync(h.configPath, editConfig(WITH_QUOTA(10), ['charge: { ai_tasks: { header: x-task-count } }', 'charge: { ai_tasks: -4 }']));
    const deadline = Date.now() + 3000;
    while (!log.lines.some((l) => l.msg === 'config reload failed; keeping the config in force')) {
      if (Date.now() > deadline) throw new Error('no reload error logged');
      await sleep(50);
    }
    const line = log.lines.find((l) => l.msg === 'config reload failed; keeping the config in force')!;
    expect((line.errors as string[])[0]).toMatch(new RegExp(`^${h.configPath.replaceAll('.', '\\.')}:\\d+ routes\\[3\\]\\.charge\\.ai_tasks: `));
    // Several polls later: still one error counted, still the old config.
    await sleep(700);
    expect(await quotaSeen(h.proxy)).toBe(10);
    const text = await (await fetch(`${h.admin}/metrics`)).text();
    expect(text).toMatch(/^creditgate_config_reloads_total\{result="error"\} 1$/m);
    expect(text).toMatch(/^creditgate_config_reloads_total\{result="success"\} 0$/m);
    // Fixing the file brings the new one in.
    writeFileSync(h.configPath, WITH_QUOTA(15));
    await eventually(h.proxy, 15);
    const after = await (await fetch(`${h.admin}/metrics`)).text();
    expect(after).toMatch(/^creditgate_config_reloads_total\{result="success"\} 1$/m);
  });

  it('reloads under steady load without failing a request', async () => {
    h = await startHarness({ config: WITH_QUOTA(1_000_000) });
    const statuses: number[] = [];
    const errors: string[] = [];
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const r = await fetch(`${h!.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': `load-${randomUUID()}`, 'x-task-count': '1' } });
          await r.arrayBuffer();
          statuses.push(r.status);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    for (const q of [2_000_000, 3_000_000, 4_000_000, 5_000_000]) {
      await sleep(300);
      const tmp = `${h.configPath}.tmp`;
      writeFileSync(tmp, WITH_QUOTA(q));
      renameSync(tmp, h.configPath);
    }
    await eventually(h.proxy, 5_000_000);
    stop = true;
    await Promise.all(workers);
    expect(errors).toEqual([]);
    expect(statuses.length).toBeGreaterThan(100);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const text = await (await fetch(`${h.admin}/metrics`)).text();
    expect(Number(/^creditgate_config_reloads_total\{result="success"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
  });
});

describe('SIGHUP', () => {
  it('reloads at once, also a change no watcher can see (the file behind a symlink in another directory)', async () => {
    const real = mkdtempSync(join(tmpdir(), 'cg-real-'));
    const mount = mkdtempSync(join(tmpdir(), 'cg-mount-'));
    writeFileSync(join(real, 'credits.yaml'), WITH_QUOTA(10));
    symlinkSync(join(real, 'credits.yaml'), join(mount, 'credits.yaml'));
    const upstream = await startRecordingUpstream();
    const [port, adminPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, serveArgs({ config: join(mount, 'credits.yaml'), upstream: upstream.url, port, adminPort }), {
      env: { ...withoutRedisUrl(), CREDITGATE_CONFIG_POLL_MS: '600000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const proxy = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 100 && !out.includes('listening'); i++) await sleep(50);
      expect(await quotaSeen(proxy)).toBe(10);
      writeFileSync(join(real, 'credits.yaml'), WITH_QUOTA(77));
      await sleep(500);
      expect(await quotaSeen(proxy)).toBe(10);
      child.kill('SIGHUP');
      await eventually(proxy, 77, 2000);
      expect(out).toMatch(/"reason":"SIGHUP".*"msg":"config reloaded"/);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await upstream.close();
    }
  });
});

describe('what a reload logs', () => {
  it('names exactly the changes, logs "config unchanged" for a no-op, and /metrics shows only the current hash', async () => {
    const log = captureLogger('debug');
    h = await startHarness({ config: WITH_QUOTA(10), configPollMs: 60_000, logger: log.logger });
    const hashOf = async () => {
      const text = await (await fetch(`${h!.admin}/metrics`)).text();
      return [...text.matchAll(/^creditgate_config_info\{config_hash="([0-9a-f]+)"\} (\d+)$/gm)].map((m) => [m[1], m[2]]);
    };
    const before = await hashOf();
    expect(before).toHaveLength(1);
    // Nothing changed: SIGHUP's reload says so, at debug.
    expect(await h.sidecar.reload()).toBe('unchanged');
    expect(log.lines.filter((l) => l.msg === 'config unchanged' && l.reason === 'SIGHUP')).toHaveLength(1);
    const route = '  - name: export-contacts\n    method: POST\n    path: /v1/contacts/export\n    charge: { database: 1 }\n';
    writeFileSync(h.configPath, `${WITH_QUOTA(20)}${route}`);
    expect(await h.sidecar.reload()).toBe('success');
    const reloaded = log.lines.filter((l) => l.msg === 'config reloaded');
    expect(reloaded).toHaveLength(1);
    expect(reloaded[0]!.changes).toEqual(['plans.tiny.ai_tasks: 10 → 20', 'routes + export-contacts']);
    const after = await hashOf();
    expect(after).toEqual([[reloaded[0]!.configHash, '1']]);
    expect(after[0]![0]).not.toBe(before[0]![0]);
    // A comment alone: the same config, not a reload.
    writeFileSync(h.configPath, `# edited\n${WITH_QUOTA(20)}${route}`);
    expect(await h.sidecar.reload()).toBe('unchanged');
    expect(log.lines.filter((l) => l.msg === 'config reloaded')).toHaveLength(1);
    expect(log.lines.filter((l) => l.msg === 'config unchanged' && l.reason === 'SIGHUP')).toHaveLength(2);
  });
});
