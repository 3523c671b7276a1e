// A Redis Cluster client keeps a queue of its own while it reconnects: a
// charge waiting there past its deadline would be refused, then sent when the
// cluster is back. The store's cluster client has no such queue: with every
// node gone, a charge fails at once as "not ready", never held to be sent
// later. A real 3-primary cluster, stopped whole.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/credit-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startCluster, type TestCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };

describe('a cluster store whose nodes are all gone', () => {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('refuses a charge at once instead of queueing it for when the cluster is back', async () => {
    const store = new RedisStore({ url: cluster!.url, prefix: 'cgoff', timeoutMs: 2000 });
    try {
      await store.ready();
      await store.charge('before', [pool], { now: Date.now(), thresholds: [] });
      await cluster!.stop();
      cluster = undefined;
      // The client notices its nodes are gone and starts reconnecting.
      for (let i = 0; i < 100 && (store.client as unknown as { status: string }).status === 'ready'; i++) await sleep(20);
      const failed = await store.charge('during', [pool], { now: Date.now(), thresholds: [] }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failed).toBeInstanceOf(StoreError);
      // Not "no answer within 2000 ms": it was never queued.
      expect((failed as Error).message).toMatch(/isn't ready|not ready|closed|None of startup nodes/i);
    } finally {
      await store.close();
    }
  }, 30_000);
});
