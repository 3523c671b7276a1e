// The store's Cluster client under faults, on one real 3-primary cluster
// (started once: a cluster takes seconds to form). ioredis's Cluster has a
// queue and retries of its own, above its node connections; each could send
// a charge after its request was refused (503, or counted by the outage
// journal), or send it twice:
// - a fresh store's first burst: a primary not yet connected refused the
//   commands sent while its connection was made, and the cluster retried
//   them 100 ms later, past the deadline, where they were applied;
// - a node connection that broke under a charge: the cluster retried it on a
//   new connection (CLIENT PAUSE holds it unexecuted, CLIENT KILL breaks it);
// - every node gone (last: it stops the cluster): a charge waited in the
//   cluster's queue until its deadline, to be sent when the cluster was back.

import { Redis, type Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/credit-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startCluster, type TestCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };

describe('the store on a Redis Cluster, under faults', () => {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('charges them all within the deadline, none refused and applied later', async () => {
    const store = new RedisStore({ url: cluster!.url, prefix: 'cgburst', timeoutMs: 50 });
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

  it('fails, and is not applied by a retry on a new connection', async () => {
    const store = new RedisStore({ url: cluster!.url, prefix: 'cgrs', timeoutMs: 300 });
    const admin: Redis[] = [];
    try {
      await store.ready();
      await store.charge('warm', [pool], { now: Date.now(), thresholds: [] });
      // The primary of the account's slot, and the store's connection to it.
      const client = store.client as Cluster;
      const slot = Number(await client.cluster('KEYSLOT', 'cgrs:{cut-off}:x'));
      const slots = await client.cluster('SLOTS');
      const port = slots.find(([from, to]) => slot >= from && slot <= to)![2]![1];
      const node = client.nodes('master').find((n) => n.options.port === port)!;
      const id = String(await node.call('CLIENT', 'ID'));
      admin.push(new Redis(port, '127.0.0.1'));
      await admin[0]!.call('CLIENT', 'PAUSE', '800', 'WRITE');
      const outcome = store.charge('cut-off', [pool], { now: Date.now(), thresholds: [] }).then(
        (o) => o,
        (err: unknown) => err,
      );
      await sleep(50);
      await admin[0]!.call('CLIENT', 'KILL', 'ID', id);
      expect(await outcome).toBeInstanceOf(StoreError);
      await sleep(1500); // the pause is over
      const [usage] = await store.usage('cut-off', [{ creditType: 'ai', cycleStart: 0 }], Date.now());
      expect(usage?.planUsed ?? 0).toBe(0);
    } finally {
      for (const a of admin) a.disconnect();
      await store.close();
    }
  }, 30_000);

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
