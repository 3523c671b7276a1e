import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { PoolCharge } from '../../src/store/credit-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';
import { storeContract } from './store-contract.js';

storeContract('RedisStore (5 connections)', async () => {
  const prefix = uniquePrefix('contract');
  const stores = Array.from({ length: 5 }, () => new RedisStore({ url: redisUrl(), prefix, timeoutMs: 5000 }));
  await Promise.all(stores.map((s) => s.ready()));
  return { stores, close: async () => void (await Promise.all(stores.map((s) => s.close()))) };
});

const NO_ALERTS = { now: Date.now(), thresholds: [] };
const line = (creditType: string, amount = 1): PoolCharge => ({
  creditType,
  op: 'charge',
  amount,
  limit: 10,
  cycleStart: 0,
  expireAt: Date.now() + 60_000,
  extras: true,
});

function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return key.slice(open + 1, close);
}

describe('RedisStore specifics (private redis-server)', () => {
  let redis: TestRedis;
  let admin: Redis;
  let store: RedisStore;

  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    store = new RedisStore({ url: redis.url, prefix: 'cg', timeoutMs: 5000 });
    await store.ready();
  });
  afterAll(async () => {
    await store.close();
    admin.disconnect();
    await redis.stop();
  });

  it('keys carry the cycle start, the account hash tag and a TTL ending at expireAt', async () => {
    const expireAt = Date.now() + 7 * 24 * 3600_000;
    await store.charge(
      'acme}x',
      [
        { creditType: 'ai_tasks', op: 'charge', amount: 3, limit: 100, cycleStart: 1_764_547_200_000, expireAt, extras: true },
        { creditType: 'database', op: 'charge', amount: 1, limit: 100, cycleStart: 1_764_547_200_000, expireAt, extras: true },
      ],
      { now: Date.now(), thresholds: [] },
    );
    const keys = (await admin.keys('cg:*')).sort();
    expect(keys).toEqual(['cg:{acme%7Dx}:keys', 'cg:{acme%7Dx}:u:ai_tasks:1764547200', 'cg:{acme%7Dx}:u:database:1764547200']);
    expect(new Set(keys.map(hashTag))).toEqual(new Set(['acme%7Dx']));
    for (const k of keys) {
      const expiresAt = await admin.pexpiretime(k);
      expect(expiresAt).toBe(expireAt);
    }
  });

  it('a capacity counter (expireAt 0) has no TTL', async () => {
    await store.charge('cap', [{ creditType: 'mailboxes', op: 'charge', amount: 1, limit: 5, cycleStart: 0, expireAt: 0, extras: false }], NO_ALERTS);
    expect(await admin.pttl('cg:{cap}:u:mailboxes:0')).toBe(-1);
    // The key index must outlive a counter that never expires.
    expect(await admin.pttl('cg:{cap}:keys')).toBe(-1);
  });

  it('one charge is exactly one EVALSHA round trip, however many pools', async () => {
    await store.charge('warm', [line('a')], NO_ALERTS);
    await admin.config('RESETSTAT');
    await store.charge('rt', [line('a'), line('b'), line('c')], NO_ALERTS);
    const stats = await admin.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('evalsha')).toBe(1);
    expect(calls('eval')).toBe(0);
    expect(calls('script')).toBe(0);
    // commandstats also counts the commands the script runs: one GET per pool.
    // A client-side read before the script would make it four.
    expect(calls('get')).toBe(3);
    expect(calls('zrangebyscore')).toBe(3);
    expect(calls('mget')).toBe(0);
  });

  it('request idempotency records are listed while live only: the list does not grow with traffic, and DELETE finds them all', async () => {
    const a = 'busy';
    const ttl = 200;
    for (let i = 0; i < 300; i++) {
      const claim = { key: `k${i}`, claim: `c${i}`, fingerprint: 'fp', pendingTtlMs: ttl };
      await store.charge(a, [line('a', 0)], { ...NO_ALERTS, now: Date.now(), idempotency: claim });
      if (i % 2 === 0) await store.completeIdempotency(a, claim, ttl, 'r');
      if (i === 149) await new Promise((r) => setTimeout(r, ttl + 50));
    }
    // The first 150 expired before the last 150 were claimed, and were pruned as they went.
    expect(await admin.zcard('cg:{busy}:iks')).toBe(150);
    expect(await admin.scard('cg:{busy}:keys')).toBe(0);
    expect(await admin.exists('cg:{busy}:ik:k299')).toBe(1);
    await store.refund(a, [], { refundId: 'rf_busy' });
    expect(await admin.exists('cg:{busy}:rf:rf_busy')).toBe(1);
    expect(await store.deleteAccount(a)).toBe(true);
    expect(await admin.keys('cg:{busy}*')).toEqual([]);
  });

  it('DELETE of an account with thousands of keys deletes them all, in slices', async () => {
    const a = 'wide';
    const members = Array.from({ length: 5000 }, (_, i) => `cg:{wide}:u:t${i}:0`);
    for (let i = 0; i < members.length; i += 1000) {
      const slice = members.slice(i, i + 1000);
      await admin.mset(...slice.flatMap((k) => [k, '1']));
      await admin.sadd('cg:{wide}:keys', ...slice);
    }
    expect(await store.deleteAccount(a)).toBe(true);
    expect(await admin.keys('cg:{wide}*')).toEqual([]);
  });

  it('reloads the script by itself after SCRIPT FLUSH (NOSCRIPT)', async () => {
    await admin.script('FLUSH');
    const r = await store.charge('noscript', [line('a', 2)], NO_ALERTS);
    expect(r.ok).toBe(true);
    expect(r.pools[0]!.planUsed).toBe(2);
  });

  it('a store error is a StoreError, not a refusal', async () => {
    const dead = new RedisStore({
      url: 'redis://127.0.0.1:1',
      timeoutMs: 100,
      redisOptions: { retryStrategy: () => null, maxRetriesPerRequest: 0 },
    });
    dead.client.on('error', () => {});
    await expect(dead.charge('x', [line('a')], NO_ALERTS)).rejects.toMatchObject({
      name: 'StoreError',
    });
    await dead.close();
  });
});
