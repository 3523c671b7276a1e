// store.timeoutMs is judged by when Redis answered, not by when a busy event
// loop got round to reading the answer: a charge Redis applied in time is not
// refused (and paid for) because this process read it late. Against a
// redis-server of its own (one test makes it sleep); the loop is held busy
// with a synchronous wait.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/credit-store.js';
import { DeadlineExceeded, withDeadline } from '../../src/store/store-deadline.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

/** Holds the event loop for `ms`: timers expire and replies arrive unread meanwhile. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // A replica whose poll phase serves hundreds of requests is this busy.
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };

describe('the store deadline', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => redis.stop());
  it('a reply that arrived in time but was read late is the answer, not a timeout', async () => {
    const store = new RedisStore({ url: redis.url, timeoutMs: 50 });
    try {
      await store.ready();
      await store.charge('warm', [pool], { now: Date.now(), thresholds: [] });
      const charged = store.charge('late-reader', [pool], { now: Date.now(), thresholds: [] });
      // The charge leaves in this turn's check phase; then the loop is held
      // past the deadline while Redis answers.
      await nextTurn();
      busyFor(200);
      const outcome = await charged;
      expect(outcome.ok).toBe(true);
      const [usage] = await store.usage('late-reader', [{ creditType: 'ai', cycleStart: 0 }], Date.now());
      expect(usage?.planUsed).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('a Redis that does not answer still fails the call, as a StoreError', async () => {
    const store = new RedisStore({ url: redis.url, timeoutMs: 50 });
    const sleeper = new RedisStore({ url: redis.url, timeoutMs: 5000 });
    try {
      await Promise.all([store.ready(), sleeper.ready()]);
      // Redis itself is busy for 300 ms (its own connection, not the store's).
      const sleeping = sleeper.client.call('DEBUG', 'SLEEP', '0.3').catch(() => 'unsupported');
      const failed = await store.ping().then(
        () => undefined,
        (err: unknown) => err,
      );
      if ((await sleeping) === 'unsupported') throw new Error('DEBUG SLEEP is refused by this Redis (enable-debug-command)');
      expect(failed).toBeInstanceOf(StoreError);
      expect((failed as Error).message).toMatch(/no answer within 50 ms/);
    } finally {
      await store.close();
      await sleeper.close();
    }
  });

  it('work that never settles is refused at its deadline; its late answer changes nothing', async () => {
    let answer!: (v: string) => void;
    const timed = withDeadline(
      new Promise<string>((resolve) => {
        answer = resolve;
      }),
      20,
    );
    await expect(timed).rejects.toBeInstanceOf(DeadlineExceeded);
    answer('too late');
    await expect(timed).rejects.toBeInstanceOf(DeadlineExceeded);
  });
});
