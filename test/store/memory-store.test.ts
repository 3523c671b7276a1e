import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreError, StoreFullError, type ChargeContext, type PoolCharge } from '../../src/store/credit-store.js';
import { AccountIds } from '../../src/store/account-ids.js';
import { MemoryStore, type MemoryStoreOptions } from '../../src/store/memory-store.js';
import { sampleEvent } from '../helpers/sample-event.js';
import { storeContract } from './store-contract.js';

storeContract('MemoryStore', async () => {
  const store = new MemoryStore();
  return { stores: [store], close: () => store.close() };
});

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const T0 = 1_700_000_000_000;

const pool = (creditType: string, amount: number, over: Partial<PoolCharge> = {}): PoolCharge => ({
  creditType,
  op: 'charge',
  amount,
  limit: 1000,
  cycleStart: T0,
  expireAt: T0 + HOUR,
  extras: true,
  ...over,
});
const capacity = (op: 'charge' | 'release', amount: number): PoolCharge =>
  pool('mailboxes', amount, { op, limit: 5, cycleStart: 0, expireAt: 0, extras: false });
const record = { plan: 'scale', billingAnchor: '2025-01-31T09:00:00Z', createdAt: 'c', updatedAt: 'u' };
const grant = (id: string, amount: number, expiresAt: number) => ({ id, creditType: 'ai_tasks', amount, expiresAt, createdAt: T0 });

/** A store on a clock the test moves; sweep steps run when the test advances the fake timers. */
function storeAt(options: MemoryStoreOptions = {}) {
  const clock = { now: T0 };
  const store = new MemoryStore({ now: () => clock.now, sweepIntervalMs: 1000, ...options });
  const ctx = (over: Partial<ChargeContext> = {}): ChargeContext => ({ now: clock.now, thresholds: [], ...over });
  const used = async (account: string, creditType = 'ai_tasks', cycleStart = T0) =>
    (await store.usage(account, [{ creditType, cycleStart }], clock.now))[0]!.planUsed;
  const sweepSteps = (n = 1) => vi.advanceTimersByTime(1000 * n);
  return { store, clock, ctx, used, sweepSteps };
}

describe('MemoryStore: bound and sweep', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a live account, its record and its top-ups survive any number of other accounts up to the bound', async () => {
    vi.useFakeTimers();
    const { store, clock, ctx, used, sweepSteps } = storeAt({ maxAccounts: 50, sweepStep: 10 });
    await store.putAccount('keep', record);
    await store.addGrant('keep', grant('g1', 40, T0 + 30 * DAY), { now: T0, idempotencyTtlMs: HOUR });
    await store.charge(
      'keep',
      [pool('ai_tasks', 7, { limit: 5, expireAt: T0 + 30 * DAY }), pool('mailboxes', 2, { cycleStart: 0, expireAt: 0, extras: false })],
      ctx(),
    );
    // Ten generations of 49 other accounts, each generation's cycle ended before the next comes.
    for (let gen = 0; gen < 10; gen++) {
      for (let i = 0; i < 49; i++) {
        expect((await store.charge(`other-${gen}-${i}`, [pool('database', 1, { expireAt: clock.now + HOUR })], ctx())).ok).toBe(true);
      }
      expect(store.size).toBe(50);
      await expect(store.charge(`newcomer-${gen}`, [pool('database', 1)], ctx())).rejects.toBeInstanceOf(StoreFullError);
      clock.now += HOUR;
      sweepSteps(5);
      expect(store.size).toBe(1);
    }
    expect(await store.getAccount('keep')).toEqual(record);
    expect(await used('keep')).toBe(5);
    expect(await used('keep', 'mailboxes', 0)).toBe(2);
    const [u] = await store.usage('keep', [{ creditType: 'ai_tasks', cycleStart: T0 }], clock.now);
    expect(u!.grants.map((g) => [g.id, g.amount, g.used])).toEqual([['g1', 40, 2]]);
    await store.close();
  });

  it('at the bound a new account is refused with store-full and nothing is written; accounts held keep working', async () => {
    const { store, clock, ctx, used } = storeAt({ maxAccounts: 3 });
    for (const a of ['a', 'b']) await store.charge(a, [pool('ai_tasks', 1)], ctx());
    await store.putAccount('c', record);
    const refusal = await store.charge('new', [pool('ai_tasks', 1)], ctx()).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(StoreFullError);
    expect(refusal).not.toBeInstanceOf(StoreError);
    expect(refusal).toMatchObject({ code: 'store_full' });
    expect((refusal as StoreFullError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    await expect(store.addGrant('new', grant('g', 5, T0 + HOUR), { now: T0, idempotencyTtlMs: HOUR })).rejects.toBeInstanceOf(StoreFullError);
    await expect(store.putAccount('new', record)).rejects.toBeInstanceOf(StoreFullError);
    await expect(store.appendEvents('new', [sampleEvent('e1', { account: 'new' })], 10)).rejects.toBeInstanceOf(StoreFullError);
    await expect(
      store.charge('new', [pool('ai_tasks', 1)], ctx({ idempotency: { key: 'k', claim: 'c', fingerprint: 'f', pendingTtlMs: HOUR } })),
    ).rejects.toBeInstanceOf(StoreFullError);
    expect(store.size).toBe(3);
    expect(await used('new')).toBe(0);
    expect(await store.getAccount('new')).toBeNull();
    // A charge that writes nothing needs no room: refused by its limit, or a release of nothing.
    expect((await store.charge('new', [pool('ai_tasks', 2, { limit: 1 })], ctx())).ok).toBe(false);
    expect(await store.charge('new', [capacity('release', 1)], ctx())).toMatchObject({ ok: true, pools: [{ charged: 0 }] });
    expect(store.size).toBe(3);

    // The accounts held: charges, refunds, usage, top-ups, records.
    const r = await store.charge('a', [pool('ai_tasks', 4)], ctx());
    expect(r.ok).toBe(true);
    expect(await used('a')).toBe(5);
    await store.refund('a', [{ creditType: 'ai_tasks', cycleStart: T0, planDelta: r.pools[0]!.planDelta, draws: [] }]);
    expect(await used('a')).toBe(1);
    expect((await store.addGrant('b', grant('gb', 10, T0 + HOUR), { now: clock.now, idempotencyTtlMs: HOUR })).created).toBe(true);
    expect((await store.charge('b', [pool('ai_tasks', 5, { limit: 0 })], ctx())).ok).toBe(true);
    await store.putAccount('b', record);
    expect((await store.charge('c', [pool('database', 3), pool('ai_tasks', 2), pool('email_verification', 1)], ctx())).ok).toBe(true);
    expect([await used('c', 'database'), await used('c'), await used('c', 'email_verification')]).toEqual([3, 2, 1]);
    expect(store.size).toBe(3);

    // Deleting an account makes room.
    expect(await store.deleteAccount('a')).toBe(true);
    expect((await store.charge('new', [pool('ai_tasks', 1)], ctx())).ok).toBe(true);
    await store.close();
  });

  it('reads never make an account entry', async () => {
    const { store, clock } = storeAt({ maxAccounts: 1 });
    await store.usage('x', [{ creditType: 'ai_tasks', cycleStart: T0 }], clock.now);
    await store.getAccount('x');
    await store.listEvents('x', 10);
    await store.completeIdempotency('x', { key: 'k', claim: 'c' }, HOUR);
    await store.refund('x', [{ creditType: 'ai_tasks', cycleStart: T0, planDelta: 1, draws: [] }]);
    await store.clearExhausted('x', 'ai_tasks', T0);
    expect(store.size).toBe(0);
    await store.putAccount('y', record);
    expect(store.size).toBe(1);
    await store.close();
  });

  it('the sweep drops ended cycles, expired grants, idempotency keys and alert marks, then the account; never what is live', async () => {
    vi.useFakeTimers();
    const { store, clock, ctx, used, sweepSteps } = storeAt();
    // Each account has one kind of thing, live for an hour.
    await store.charge('counter', [pool('ai_tasks', 1, { expireAt: T0 + HOUR })], ctx());
    await store.addGrant('grant', grant('g', 5, T0 + HOUR), { now: T0, idempotencyTtlMs: HOUR });
    await store.charge(
      'request-key',
      [pool('ai_tasks', 0, { expireAt: T0 + HOUR })],
      ctx({ idempotency: { key: 'r:k', claim: 'c', fingerprint: 'f', pendingTtlMs: HOUR } }),
    );
    // An alert mark alone: the charge that fired it was refunded.
    const fired = await store.charge('alert', [pool('ai_tasks', 10, { limit: 10, expireAt: T0 + HOUR })], ctx({ thresholds: [0.5] }));
    expect(fired.pools[0]!.fired).toEqual([0.5]);
    await store.refund('alert', [{ creditType: 'ai_tasks', cycleStart: T0, planDelta: 10, draws: [] }]);
    await store.putAccount('record', record);
    await store.charge('record', [pool('ai_tasks', 3, { expireAt: T0 + HOUR })], ctx());
    await store.markExhausted('exhausted', 'ai_tasks', T0 + HOUR);
    expect(store.size).toBe(6);

    clock.now = T0 + HOUR - 1;
    sweepSteps();
    expect(store.size).toBe(6);
    expect((await store.countExhausted(['ai_tasks'], clock.now)).get('ai_tasks')).toBe(1);
    expect(await used('counter')).toBe(1);
    // The key is still claimed, the mark still set.
    expect(
      (await store.charge('request-key', [pool('ai_tasks', 0)], ctx({ idempotency: { key: 'r:k', claim: 'c', fingerprint: 'f', pendingTtlMs: HOUR } })))
        .duplicate,
    ).toMatchObject({ state: 'pending' });
    expect((await store.charge('alert', [pool('ai_tasks', 10, { limit: 10 })], ctx({ thresholds: [0.5] }))).pools[0]!.fired).toEqual([]);
    await store.refund('alert', [{ creditType: 'ai_tasks', cycleStart: T0, planDelta: 10, draws: [] }]);

    clock.now = T0 + HOUR;
    sweepSteps();
    // Everything ended; the record stays, its ended counter does not.
    expect(store.size).toBe(1);
    expect(await store.getAccount('record')).toEqual(record);
    expect(await used('record')).toBe(0);
    // What went is gone for good: the key is free, the mark fires again.
    expect(
      (await store.charge('request-key', [pool('ai_tasks', 0)], ctx({ idempotency: { key: 'r:k', claim: 'c', fingerprint: 'f', pendingTtlMs: HOUR } }))).ok,
    ).toBe(true);
    expect((await store.charge('alert', [pool('ai_tasks', 10, { limit: 10, expireAt: T0 + 2 * HOUR })], ctx({ thresholds: [0.5] }))).pools[0]!.fired).toEqual([
      0.5,
    ]);
    await store.close();
  });

  it('kept first responses stay within maxKeptResponseBytes; room comes back as records expire or accounts are deleted', async () => {
    vi.useFakeTimers();
    const { store, clock, ctx } = storeAt({ maxKeptResponseBytes: 250 });
    const complete = async (account: string, key: string, bytes: number, ttl = HOUR) => {
      const claim = { key, claim: `${account}:${key}` };
      await store.charge(account, [pool('ai_tasks', 0)], ctx({ idempotency: { ...claim, fingerprint: 'f', pendingTtlMs: HOUR } }));
      await store.completeIdempotency(account, claim, ttl, 'x'.repeat(bytes));
      return (await store.idempotencyRecord(account, key))?.response?.length;
    };
    expect(await complete('a', 'k1', 100, 10)).toBe(100);
    expect(await complete('a', 'k2', 100)).toBe(100);
    // Over the budget: done, but with nothing to replay.
    expect(await complete('a', 'k3', 100)).toBeUndefined();
    expect((await store.idempotencyRecord('a', 'k3'))?.state).toBe('done');
    // k1 expires and is swept: its bytes are free again.
    clock.now = T0 + 20;
    vi.advanceTimersByTime(1000);
    expect(await complete('b', 'k1', 100)).toBe(100);
    expect(await complete('b', 'k2', 100)).toBeUndefined();
    await store.deleteAccount('a');
    expect(await complete('c', 'k1', 100)).toBe(100);
    await store.close();
  });

  it('an account whose capacity is all released goes; a refund of that release holds it again', async () => {
    vi.useFakeTimers();
    const { store, ctx, used, sweepSteps } = storeAt();
    await store.charge('cap', [capacity('charge', 2)], ctx());
    const released = await store.charge('cap', [capacity('release', 2)], ctx());
    expect(released.pools[0]).toMatchObject({ charged: 2, planDelta: -2, planUsed: 0 });
    await store.refund('cap', [{ creditType: 'mailboxes', cycleStart: 0, planDelta: -2, draws: [] }]);
    expect(await used('cap', 'mailboxes', 0)).toBe(2);
    sweepSteps();
    expect(store.size).toBe(1);
    await store.charge('cap', [capacity('release', 2)], ctx());
    sweepSteps();
    expect(store.size).toBe(0);
    await store.close();
  });

  it('top-up idempotency keys and the events feed go when they expire (the feed 90 days after its last event)', async () => {
    vi.useFakeTimers();
    const { store, clock, sweepSteps } = storeAt();
    await store.addGrant('topup', grant('g', 5, T0 + HOUR), { now: T0, idempotencyKey: 'order-1', idempotencyTtlMs: 2 * HOUR });
    await store.appendEvents('events', [sampleEvent('e1', { account: 'events' })], 10);
    clock.now = T0 + HOUR;
    sweepSteps();
    // The grant expired, its key did not: a replay still answers the first grant.
    expect(store.size).toBe(2);
    expect((await store.addGrant('topup', grant('g2', 9, T0 + 3 * HOUR), { now: clock.now, idempotencyKey: 'order-1', idempotencyTtlMs: HOUR })).created).toBe(
      false,
    );
    clock.now = T0 + 2 * HOUR;
    sweepSteps();
    expect(store.size).toBe(1);
    expect((await store.listEvents('events', 10)).map((e) => e.id)).toEqual(['e1']);
    clock.now = T0 + 90 * DAY;
    expect(await store.listEvents('events', 10)).toEqual([]);
    sweepSteps();
    expect(store.size).toBe(0);
    await store.close();
  });

  it('a sweep step looks at most at its step size of accounts, and the next one goes on from there', async () => {
    vi.useFakeTimers();
    const { store, clock, ctx, sweepSteps } = storeAt({ sweepStep: 3 });
    for (let i = 0; i < 10; i++) await store.charge(`a${i}`, [pool('ai_tasks', 1, { expireAt: T0 + HOUR })], ctx());
    clock.now = T0 + HOUR;
    const sizes: number[] = [];
    for (let i = 0; i < 5; i++) {
      sweepSteps();
      sizes.push(store.size);
    }
    expect(sizes).toEqual([7, 4, 1, 0, 0]);
    await store.close();
  });

  it('more than two counters per account, and two cycles side by side, stay exact through sweeps', async () => {
    vi.useFakeTimers();
    const { store, clock, ctx, used, sweepSteps } = storeAt();
    const types = ['t1', 't2', 't3', 't4', 't5'];
    for (const [i, t] of types.entries()) {
      await store.charge('many', [pool(t, i + 1, { expireAt: T0 + (i % 2 === 0 ? HOUR : 2 * HOUR) })], ctx());
    }
    await store.charge('many', [pool('t1', 10, { cycleStart: T0 + HOUR, expireAt: T0 + 3 * HOUR })], ctx());
    expect(await Promise.all(types.map((t) => used('many', t)))).toEqual([1, 2, 3, 4, 5]);
    clock.now = T0 + HOUR;
    sweepSteps();
    expect(await Promise.all(types.map((t) => used('many', t)))).toEqual([0, 2, 0, 4, 0]);
    expect(await used('many', 't1', T0 + HOUR)).toBe(10);
    await store.charge('many', [pool('t2', 1, { expireAt: T0 + 2 * HOUR }), pool('t6', 6, { expireAt: T0 + 2 * HOUR })], ctx());
    expect([await used('many', 't2'), await used('many', 't4'), await used('many', 't6'), await used('many', 't1', T0 + HOUR)]).toEqual([3, 4, 6, 10]);
    clock.now = T0 + 3 * HOUR;
    sweepSteps();
    expect(store.size).toBe(0);
    await store.close();
  });

  it('counters that do not fit a packed cell (2^32 credits and more, instants before 1970 or after 2106) stay exact', async () => {
    vi.useFakeTimers();
    const { store, ctx, used, sweepSteps } = storeAt();
    const unlimited = (amount: number, over: Partial<PoolCharge> = {}) => pool('ai_tasks', amount, { limit: null, ...over });
    await store.charge('big', [unlimited(4_000_000_000)], ctx());
    await store.charge('big', [unlimited(1_000_000_000)], ctx());
    expect(await used('big')).toBe(5_000_000_000);
    await store.refund('big', [{ creditType: 'ai_tasks', cycleStart: T0, planDelta: 4_999_999_999, draws: [] }]);
    expect(await used('big')).toBe(1);
    sweepSteps();
    expect(await used('big')).toBe(1);
    await store.charge('big', [unlimited(2 ** 40 + 3)], ctx());
    expect(await used('big')).toBe(2 ** 40 + 4);
    const far = 5_000_000_000_000; // 2128
    await store.charge('old', [unlimited(3, { cycleStart: -86_400_000, expireAt: far }), unlimited(4, { cycleStart: far, expireAt: far + 1.5 })], ctx());
    expect([await used('old', 'ai_tasks', -86_400_000), await used('old', 'ai_tasks', far)]).toEqual([3, 4]);
    sweepSteps();
    expect([await used('old', 'ai_tasks', -86_400_000), await used('old', 'ai_tasks', far), await used('old', 'ai_tasks', 0)]).toEqual([3, 4, 0]);
    await store.close();
  });

  it('maxAccounts given as a function is read at each new account (a config reload)', async () => {
    let max = 1;
    const { store, ctx } = storeAt({ maxAccounts: () => max });
    await store.charge('a', [pool('ai_tasks', 1)], ctx());
    await expect(store.charge('b', [pool('ai_tasks', 1)], ctx())).rejects.toBeInstanceOf(StoreFullError);
    max = 2;
    expect((await store.charge('b', [pool('ai_tasks', 1)], ctx())).ok).toBe(true);
    await store.close();
  });
});

describe('AccountIds: account id -> slot without a string per account', () => {
  it('agrees with a Map over random adds and removes, with packed, wide, long and colliding ids', () => {
    const ids = new AccountIds();
    const reference = new Map<string, number>();
    let seed = 42;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const names = Array.from({ length: 3000 }, (_, i) => {
      if (i % 101 === 0) return `wide-é-€-${i}`;
      if (i % 211 === 0) return `long-${'x'.repeat(300)}-${i}`;
      if (i === 7) return '';
      return `acct-${i}`;
    });
    for (let step = 0; step < 40_000; step++) {
      const name = names[random(names.length)]!;
      const slot = ids.slotOf(name);
      expect(slot).toBe(reference.get(name));
      if (slot === undefined) {
        const added = ids.add(name);
        expect([...reference.values()]).not.toContain(added);
        reference.set(name, added);
      } else if (random(3) === 0) {
        ids.remove(slot);
        reference.delete(name);
        expect(ids.has(slot)).toBe(false);
      }
      expect(ids.size).toBe(reference.size);
    }
    for (const name of names) expect(ids.slotOf(name)).toBe(reference.get(name));
    for (const slot of reference.values()) expect(ids.has(slot)).toBe(true);
  });

  it('reuses freed slots and keeps finding every id after the arena is compacted', () => {
    const ids = new AccountIds();
    const slots = new Map<string, number>();
    // Fill, drop most, refill with other ids: the arena compacts, slots are reused.
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20_000; i++) slots.set(`r${round}-${i}`, ids.add(`r${round}-${i}`));
      for (const [name, slot] of slots) {
        if (!name.endsWith('7')) {
          ids.remove(slot);
          slots.delete(name);
        }
      }
      expect(ids.end).toBeLessThanOrEqual(20_000 + slots.size);
    }
    expect(ids.size).toBe(slots.size);
    for (const [name, slot] of slots) expect(ids.slotOf(name)).toBe(slot);
    expect(ids.slotOf('r0-1')).toBeUndefined();
  });
});
