// A charge whose connection broke before Redis answered is not sent again on
// the next connection: the request was already refused (503, or counted by the
// outage journal), and a script sent twice would charge twice. ioredis resends
// unanswered commands after a reconnect by default; the store's clients do
// not. Its own redis-server: CLIENT PAUSE holds the charge unexecuted while
// CLIENT KILL breaks its connection.

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/credit-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };

describe('a charge cut off by a broken connection', () => {
  let redis: TestRedis;
  let admin: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await redis.stop();
  });

  it('fails, and is not applied by a resend once the store has reconnected', async () => {
    const store = new RedisStore({ url: redis.url, timeoutMs: 300 });
    try {
      await store.ready();
      await store.charge('warm', [pool], { now: Date.now(), thresholds: [] });
      const id = String(await store.client.call('CLIENT', 'ID'));
      // Redis takes the charge but runs no write for 800 ms; meanwhile its
      // connection is killed, so the charge is never run from it.
      await admin.call('CLIENT', 'PAUSE', '800', 'WRITE');
      const outcome = store.charge('cut-off', [pool], { now: Date.now(), thresholds: [] }).then(
        (o) => o,
        (err: unknown) => err,
      );
      await sleep(50);
      await admin.call('CLIENT', 'KILL', 'ID', id);
      expect(await outcome).toBeInstanceOf(StoreError);
      await sleep(1500); // the pause is over; the store has reconnected
      const [usage] = await store.usage('cut-off', [{ creditType: 'ai', cycleStart: 0 }], Date.now());
      expect(usage?.planUsed ?? 0).toBe(0);
    } finally {
      await store.close();
    }
  });
});
