// The Cluster client connects to a primary only when the first command for it
// is sent. Without a cluster-level offline queue, ioredis refuses the other
// commands sent to that primary while its connection is still being made
// ("Connection is closed."), then retries them after retryDelayOnFailover
// (100 ms): past the store's deadline, so the charge is refused (503, or
// counted by the outage journal) — and is still sent, and applied, later.
// A real 3-primary cluster; a fresh store whose first calls come in a burst.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis-store.js';
import { startCluster, type TestCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };

describe('a fresh cluster store whose first charges come together', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('charges them all within the deadline, none refused and applied later', async () => {
    const store = new RedisStore({ url: cluster.url, prefix: 'cgburst', timeoutMs: 50 });
    try {
      expect(await store.ready()).toBe(true);
      // Accounts spread over the three primaries: for two of them this is the first command.
      const accounts = Array.from({ length: 30 }, (_, i) => `burst-${i}`);
      const outcomes = await Promise.all(
        accounts.map((a) =>
          store.charge(a, [pool], { now: Date.now(), thresholds: [] }).then(
            () => 'ok',
            (err: unknown) => (err as Error).message,
          ),
        ),
      );
      await sleep(500);
      const used = await Promise.all(accounts.map(async (a) => (await store.usage(a, [{ creditType: 'ai', cycleStart: 0 }], Date.now()))[0]?.planUsed ?? 0));
      const refusedYetApplied = accounts.filter((_, i) => outcomes[i] !== 'ok' && used[i] === 1);
      expect({ refused: outcomes.filter((o) => o !== 'ok'), refusedYetApplied }).toEqual({ refused: [], refusedYetApplied: [] });
    } finally {
      await store.close();
    }
  }, 30_000);
});
