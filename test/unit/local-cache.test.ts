// The per-replica cache: bounded, time-limited, per plan, and never filled
// from a store answer older than a forget (a top-up's invalidation that
// overtook the refusal it invalidates).

import { describe, expect, it } from 'vitest';
import type { PoolStatus } from '../../src/engine/credit-engine.js';
import { AccountStateCache, LruCache } from '../../src/engine/local-cache.js';

const empty: PoolStatus = {
  creditType: 'ai_tasks',
  name: 'AI Task Credits',
  op: 'charge',
  required: 1,
  used: 10,
  allowance: 10,
  remaining: 0,
  resetsAt: 10_000,
  windowSeconds: 30,
  topUp: null,
};

function cache(now = { t: 0 }) {
  const c = new AccountStateCache({ now: () => now.t, accountTtlMs: 1000, maxAccounts: 2 });
  c.setEnabled(true);
  return c;
}

describe('AccountStateCache', () => {
  it('remembers an empty pool per plan: a refusal under one plan says nothing of another', () => {
    const c = cache();
    c.rememberEmpty('a', 'basic', 0, empty, c.epoch('a'));
    expect(c.emptyPool('a', 'basic', 'ai_tasks', 0)).toEqual(empty);
    expect(c.emptyPool('a', 'scale', 'ai_tasks', 0)).toBeUndefined();
  });

  it('an answer read before a forget is not remembered (the change it missed already happened)', () => {
    const c = cache();
    const before = c.epoch('a');
    c.forget('a');
    c.rememberEmpty('a', 'basic', 0, empty, before);
    c.rememberNoGrant('a', 'voice_minutes', before);
    c.rememberRecord('a', null, before);
    expect(c.emptyPool('a', 'basic', 'ai_tasks', 0)).toBeUndefined();
    expect(c.noGrant('a', 'voice_minutes')).toBe(false);
    expect(c.record('a')).toBeUndefined();
    c.rememberNoGrant('a', 'voice_minutes', c.epoch('a'));
    expect(c.noGrant('a', 'voice_minutes')).toBe(true);
  });

  it("another account's forget leaves this one's answer to be remembered; a clear forgets every answer in flight", () => {
    const c = cache();
    const before = c.epoch('a');
    c.forget('some-other-account');
    c.rememberEmpty('a', 'basic', 0, empty, before);
    expect(c.emptyPool('a', 'basic', 'ai_tasks', 0)).toEqual(empty);
    const inFlight = c.epoch('a');
    c.clear();
    c.rememberNoGrant('a', 'voice_minutes', inFlight);
    expect(c.noGrant('a', 'voice_minutes')).toBe(false);
  });

  it('forgets at the TTL, at the pool reset, least recently used first, and all at once when the feed is lost', () => {
    const now = { t: 0 };
    const c = cache(now);
    c.rememberEmpty('a', 'basic', 0, empty, c.epoch('a'));
    c.rememberEmpty('b', 'basic', 0, empty, c.epoch('b'));
    c.rememberEmpty('c', 'basic', 0, empty, c.epoch('c'));
    expect(c.emptyPool('a', 'basic', 'ai_tasks', 0)).toBeUndefined();
    expect(c.emptyPool('c', 'basic', 'ai_tasks', 0)).toEqual(empty);
    now.t = 1000;
    expect(c.emptyPool('c', 'basic', 'ai_tasks', 0)).toBeUndefined();
    const c2 = cache(now);
    c2.rememberEmpty('a', 'basic', 0, { ...empty, resetsAt: 1500 }, c2.epoch('a'));
    now.t = 1500;
    expect(c2.emptyPool('a', 'basic', 'ai_tasks', 0)).toBeUndefined();
    c2.rememberNoGrant('a', 't', c2.epoch('a'));
    c2.setEnabled(false);
    expect(c2.noGrant('a', 't')).toBe(false);
  });
});

describe('LruCache', () => {
  it('never evicts an entry used within the newest quarter, and evicts the least recently used of the rest', () => {
    const cache = new LruCache<number, number>(100, () => 0);
    for (let k = 0; k < 100; k++) cache.set(k, k, 1);
    // Keys 0..9 are the oldest inserted; using them keeps them while 300 newcomers pass through.
    for (let k = 100; k < 400; k++) {
      for (let hot = 0; hot < 10; hot++) expect(cache.get(hot)).toBe(hot);
      cache.set(k, k, 1);
      expect(cache.size).toBe(100);
    }
    for (let hot = 0; hot < 10; hot++) expect(cache.get(hot)).toBe(hot);
    // Of the rest, only the newest 90 newcomers remain: the older ones went first.
    expect(cache.get(309)).toBeUndefined();
    expect(cache.get(310)).toBe(310);
    expect(cache.get(399)).toBe(399);
  });

  it('is exact with fewer than four entries', () => {
    const cache = new LruCache<string, number>(3, () => 0);
    cache.set('a', 1, 1);
    cache.set('b', 2, 1);
    cache.set('c', 3, 1);
    expect(cache.get('a')).toBe(1);
    cache.set('d', 4, 1);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
  });
});
