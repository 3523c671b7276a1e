// A caller's own ioredis client (the middleware's `redis` option) has an
// offline queue unless the caller turned it off. store.timeoutMs bounds
// creditgate's calls on it: a charge refused at its deadline while Redis was
// away must not be sent later, when Redis is back (the client got 503, or,
// with onStoreError: allow, the outage journal counts it and replays it).
// Its own redis-server, killed and restarted on the same port.

import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { StoreError } from '../../src/store/credit-store.js';
import { openStore } from '../../src/store/open-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };

describe("a caller's client with an offline queue", () => {
  let redis: TestRedis | undefined;
  let client: Redis | undefined;
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it('a charge that failed at its deadline while Redis was down is not applied when Redis comes back', async () => {
    redis = await startRedis();
    const port = redis.port;
    client = new Redis(redis.url); // ioredis defaults: offline queue on
    client.on('error', () => {});
    const store = openStore({ redis: client, timeoutMs: 50, logger: silentLogger() });
    await client.ping();
    await redis.stop();
    await sleep(50);
    const outcome = await store.charge('gone', [pool], { now: Date.now(), thresholds: [] }).then(
      (o) => o,
      (err: unknown) => err,
    );
    redis = await startRedis([], { port });
    await sleep(1500); // ioredis reconnects and sends what it queued
    const [usage] = await store.usage('gone', [{ creditType: 'ai', cycleStart: 0 }], Date.now());
    if (outcome instanceof StoreError) expect(usage?.planUsed ?? 0).toBe(0);
    else expect(usage?.planUsed).toBe(1);
  });
});
