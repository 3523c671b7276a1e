// redis+sentinel:// URLs: the store finds the primary through a real
// redis-sentinel on loopback and charges there.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis-store.js';
import { freePort, startRedis, type TestRedis } from '../helpers/redis-server.js';

describe('RedisStore through Sentinel', () => {
  let primary: TestRedis;
  let sentinel: ChildProcess;
  let sentinelPort: number;
  beforeAll(async () => {
    primary = await startRedis();
    sentinelPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cg-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor cgprimary 127.0.0.1 ${primary.port} 1\n`);
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const probe = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    for (let i = 0; ; i++) {
      try {
        await probe.connect().catch(() => undefined);
        const addr = (await probe.call('SENTINEL', 'get-master-addr-by-name', 'cgprimary')) as string[] | null;
        if (addr && Number(addr[1]) === primary.port) break;
      } catch {
        // sentinel starting
      }
      if (i > 100) throw new Error('sentinel never answered');
      await new Promise((r) => setTimeout(r, 100));
    }
    probe.disconnect();
  }, 30_000);
  afterAll(async () => {
    sentinel?.kill('SIGTERM');
    await primary?.stop();
  });

  it('charges on the primary the sentinel names', async () => {
    const store = new RedisStore({ url: `redis+sentinel://127.0.0.1:${sentinelPort}?name=cgprimary`, prefix: 'cgs', timeoutMs: 5000 });
    await store.ready();
    try {
      const pool = { creditType: 'ai_tasks', op: 'charge' as const, amount: 3, limit: 5, cycleStart: 0, expireAt: Date.now() + 60_000, extras: true };
      expect((await store.charge('acme', [pool], { now: Date.now(), thresholds: [] })).ok).toBe(true);
      expect((await store.charge('acme', [pool], { now: Date.now(), thresholds: [] })).ok).toBe(false);
      const direct = new Redis(primary.url);
      expect(await direct.get('cgs:{acme}:u:ai_tasks:0')).toBe('3');
      direct.disconnect();
    } finally {
      await store.close();
    }
  });
});
