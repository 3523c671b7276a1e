// The store contract suite, concurrency included, on a real 3-primary Redis
// Cluster: every script of one account runs on one slot because all of its
// keys share the account's hash tag.

import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis-store.js';
import { startCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { storeContract } from './store-contract.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(async () => cluster?.stop());

storeContract('RedisStore on Redis Cluster (3 primaries, 4 connections)', async () => {
  const stores = Array.from({ length: 4 }, () => new RedisStore({ url: cluster.url, prefix: 'cgc', timeoutMs: 5000 }));
  await Promise.all(stores.map((s) => s.ready()));
  return { stores, close: async () => void (await Promise.all(stores.map((s) => s.close()))) };
});

describe('cluster placement', () => {
  it('accounts spread over the primaries, and each account stays on one slot', async () => {
    const store = new RedisStore({ url: cluster.url, prefix: 'cgslot', timeoutMs: 5000 });
    await store.ready();
    try {
      const pool = { op: 'charge' as const, amount: 1, limit: 100, cycleStart: 1_700_000_000_000, expireAt: Date.now() + 60_000, extras: true };
      for (let i = 0; i < 30; i++) {
        await store.charge(
          `acct-${i}`,
          [
            { ...pool, creditType: 'ai_tasks' },
            { ...pool, creditType: 'database' },
          ],
          { now: Date.now(), thresholds: [0.5] },
        );
      }
      const client = store.client as Cluster;
      const perNode = await Promise.all(client.nodes('master').map((n) => n.keys('cgslot:*')));
      expect(perNode.filter((keys) => keys.length > 0).length).toBe(3);
      for (const keys of perNode) {
        const accounts = new Set(keys.map((k) => /\{([^}]*)\}/.exec(k)![1]));
        for (const a of accounts) {
          const slots = new Set(await Promise.all(keys.filter((k) => k.includes(`{${a}}`)).map((k) => client.cluster('KEYSLOT', k))));
          expect(slots.size).toBe(1);
        }
      }
    } finally {
      await store.close();
    }
  });
});
