// The contract every CreditStore must keep. Run against each implementation
// by memory-store.test.ts and redis-store.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CREDITS } from '../../src/domain/credit-amount.js';
import type { AccountRecord, ChargeContext, CreditStore, PoolCharge } from '../../src/store/credit-store.js';
import { sampleEvent } from '../helpers/sample-event.js';

export interface StoreFixture {
  /** Views of one shared backing store; several for Redis (separate connections). */
  readonly stores: readonly CreditStore[];
  close(): Promise<void>;
}

const HOUR = 3600_000;
let seq = 0;
const account = (label: string) => `${label}-${process.pid}-${++seq}`;

const CYCLE = 1_700_000_000_000;

function pool(creditType: string, amount: number, limit: number | null, over: Partial<PoolCharge> = {}): PoolCharge {
  return { creditType, op: 'charge', amount, limit, cycleStart: CYCLE, expireAt: Date.now() + HOUR, extras: true, ...over };
}

const ctx = (over: Partial<ChargeContext> = {}): ChargeContext => ({ now: Date.now(), thresholds: [], ...over });
const state = (creditType: string, planUsed: number, grantTotal = 0, grantUsed = 0) => ({ creditType, planUsed, grantTotal, grantUsed });
// charged and planDelta have tests of their own; elsewhere they are left out.
const plain = (creditType: string, planUsed: number, grantTotal = 0, grantUsed = 0, emptied = false) =>
  expect.objectContaining({
    ...state(creditType, planUsed, grantTotal, grantUsed),
    wouldRefuse: false,
    emptied,
    fired: [],
    draws: [],
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const key = (creditType: string, cycleStart = CYCLE) => ({ creditType, cycleStart });

export function storeContract(name: string, open: () => Promise<StoreFixture>): void {
  describe(`CreditStore contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: CreditStore;
    beforeAll(async () => {
      fx = await open();
      store = fx.stores[0]!;
    });
    afterAll(async () => fx.close());

    const used = async (a: string, creditType: string, cycleStart = CYCLE) => (await store.usage(a, [key(creditType, cycleStart)], Date.now()))[0]!.planUsed;

    describe('charging', () => {
      it('charges within the limit and reports the new count', async () => {
        const a = account('within');
        expect(await store.charge(a, [pool('ai_tasks', 25, 100)], ctx())).toEqual({ ok: true, pools: [plain('ai_tasks', 25)] });
        expect(await store.charge(a, [pool('ai_tasks', 75, 100)], ctx())).toEqual({ ok: true, pools: [plain('ai_tasks', 100, 0, 0, true)] });
        expect(await used(a, 'ai_tasks')).toBe(100);
      });

      it('a charge of no pools at all succeeds and writes nothing (a release-only request defers its release)', async () => {
        const a = account('nopools');
        expect(await store.charge(a, [], ctx())).toEqual({ ok: true, pools: [] });
        expect(await used(a, 'ai_tasks')).toBe(0);
      });

      it('refuses a charge above the limit and writes nothing', async () => {
        const a = account('above');
        await store.charge(a, [pool('ai_tasks', 90, 100)], ctx());
        expect(await store.charge(a, [pool('ai_tasks', 11, 100)], ctx())).toEqual({ ok: false, pools: [plain('ai_tasks', 90)] });
        expect(await used(a, 'ai_tasks')).toBe(90);
      });

      it('a multi-pool charge is all or nothing', async () => {
        const a = account('multi');
        await store.charge(a, [pool('email_verification', 10, 10)], ctx());
        const r = await store.charge(a, [pool('database', 1, 100), pool('email_verification', 1, 10)], ctx());
        expect(r).toEqual({ ok: false, pools: [plain('database', 0), plain('email_verification', 10)] });
        expect(await used(a, 'database')).toBe(0);
        const ok = await store.charge(a, [pool('database', 2, 100), pool('email_verification', 0, 10)], ctx());
        expect(ok.ok).toBe(true);
        expect(await used(a, 'database')).toBe(2);
        expect(await used(a, 'email_verification')).toBe(10);
      });

      it('an unlimited pool is counted and never refused', async () => {
        const a = account('unlimited');
        for (let i = 0; i < 3; i++) expect((await store.charge(a, [pool('ai_tasks', 1_000_000, null)], ctx())).ok).toBe(true);
        expect(await used(a, 'ai_tasks')).toBe(3_000_000);
      });

      it('each cycle has its own counter: a new cycle starts from zero', async () => {
        const a = account('cycles');
        await store.charge(a, [pool('ai_tasks', 100, 100, { cycleStart: 1000 })], ctx());
        expect((await store.charge(a, [pool('ai_tasks', 1, 100, { cycleStart: 1000 })], ctx())).ok).toBe(false);
        expect(await store.charge(a, [pool('ai_tasks', 1, 100, { cycleStart: 2_000_000 })], ctx())).toEqual({ ok: true, pools: [plain('ai_tasks', 1)] });
      });

      it('cycle starts within one second are one cycle: one counter, one set of alert marks (keys carry whole seconds)', async () => {
        const a = account('cycle-second');
        const th = ctx({ thresholds: [0.5] });
        expect((await store.charge(a, [pool('ai_tasks', 5, 10, { cycleStart: CYCLE + 250 })], th)).pools[0]!.fired).toEqual([0.5]);
        const r = await store.charge(a, [pool('ai_tasks', 5, 10, { cycleStart: CYCLE + 999 })], th);
        expect(r.pools[0]).toMatchObject({ planUsed: 10, fired: [], emptied: true });
        expect((await store.charge(a, [pool('ai_tasks', 1, 10)], th)).ok).toBe(false);
        expect(await used(a, 'ai_tasks', CYCLE + 500)).toBe(10);
        await store.clearExhausted(a, 'ai_tasks', CYCLE + 1);
        expect((await store.charge(a, [pool('ai_tasks', 0, 10, { cycleStart: CYCLE + 2 })], th)).pools[0]!.emptied).toBe(true);
        await store.refund(a, [{ creditType: 'ai_tasks', cycleStart: CYCLE + 750, planDelta: 4, draws: [] }]);
        expect(await used(a, 'ai_tasks')).toBe(6);
        // The next whole second is another cycle.
        expect(await store.charge(a, [pool('ai_tasks', 10, 10, { cycleStart: CYCLE + 1000 })], th)).toMatchObject({ ok: true, pools: [{ planUsed: 10 }] });
      });

      it('a plan change applies the new limit to what was already used', async () => {
        const a = account('plan-change');
        await store.charge(a, [pool('database', 1500, 2000)], ctx());
        // Upgrade: 1,500 of 10,000 used leaves 8,500.
        expect((await store.charge(a, [pool('database', 8500, 10_000)], ctx())).ok).toBe(true);
        expect((await store.charge(a, [pool('database', 1, 10_000)], ctx())).ok).toBe(false);
        // Downgrade below what is used: refused, nothing taken away.
        expect(await store.charge(a, [pool('database', 1, 2000)], ctx())).toEqual({ ok: false, pools: [plain('database', 10_000)] });
      });
    });

    describe('expiry', () => {
      it('counters vanish at their expiry', async () => {
        const a = account('expiry');
        await store.charge(a, [pool('ai_tasks', 5, 100, { expireAt: Date.now() + 150 })], ctx());
        expect(await used(a, 'ai_tasks')).toBe(5);
        await sleep(300);
        expect(await used(a, 'ai_tasks')).toBe(0);
      });

      it('a charge renews the expiry it is given', async () => {
        const a = account('renew');
        await store.charge(a, [pool('ai_tasks', 5, 100, { expireAt: Date.now() + 150 })], ctx());
        await store.charge(a, [pool('ai_tasks', 5, 100, { expireAt: Date.now() + HOUR })], ctx());
        await sleep(300);
        expect(await used(a, 'ai_tasks')).toBe(10);
      });

      it('expireAt 0 means the counter never expires (capacity pools)', async () => {
        const a = account('capacity');
        await store.charge(a, [pool('mailboxes', 1, 5, { cycleStart: 0, expireAt: 0, extras: false })], ctx());
        await sleep(50);
        expect(await used(a, 'mailboxes', 0)).toBe(1);
      });
    });

    describe('capacity release', () => {
      const cap = (op: 'charge' | 'release', amount: number, limit = 2) => pool('mailboxes', amount, limit, { op, cycleStart: 0, expireAt: 0, extras: false });

      it('acquire up to the limit, release gives back, never below zero', async () => {
        const a = account('cap');
        expect((await store.charge(a, [cap('charge', 1)], ctx())).ok).toBe(true);
        expect((await store.charge(a, [cap('charge', 1)], ctx())).ok).toBe(true);
        expect((await store.charge(a, [cap('charge', 1)], ctx())).ok).toBe(false);
        expect(await store.charge(a, [cap('release', 1)], ctx())).toEqual({ ok: true, pools: [plain('mailboxes', 1)] });
        expect(await store.charge(a, [cap('release', 5)], ctx())).toEqual({ ok: true, pools: [plain('mailboxes', 0)] });
        expect(await used(a, 'mailboxes', 0)).toBe(0);
      });

      it('releasing what was never held is a no-op, not an error', async () => {
        const a = account('cap-none');
        expect(await store.charge(a, [cap('release', 1)], ctx())).toEqual({ ok: true, pools: [plain('mailboxes', 0)] });
        expect(await used(a, 'mailboxes', 0)).toBe(0);
      });

      it('a downgrade below the current count refuses new acquisitions and keeps existing ones', async () => {
        const a = account('cap-down');
        for (let i = 0; i < 5; i++) await store.charge(a, [cap('charge', 1, 5)], ctx());
        expect(await store.charge(a, [cap('charge', 1, 1)], ctx())).toEqual({ ok: false, pools: [plain('mailboxes', 5)] });
        expect(await used(a, 'mailboxes', 0)).toBe(5);
      });
    });

    describe('top-up grants', () => {
      const grant = (id: string, amount: number, expiresAt: number, creditType = 'ai_tasks') => ({ id, creditType, amount, expiresAt, createdAt: Date.now() });
      const add = (a: string, g: ReturnType<typeof grant>, idempotencyKey?: string) =>
        store.addGrant(a, g, { now: Date.now(), idempotencyTtlMs: HOUR, ...(idempotencyKey ? { idempotencyKey } : {}) });

      it('spends the plan first, then grants, earliest expiry first, in one atomic step', async () => {
        const a = account('grants');
        const t = Date.now();
        await add(a, grant('g-late', 5, t + 2 * HOUR));
        await add(a, grant('g-soon', 5, t + HOUR));
        const r = await store.charge(a, [pool('ai_tasks', 12, 10)], ctx({ now: t }));
        expect(r).toEqual({
          ok: true,
          pools: [
            {
              ...state('ai_tasks', 10, 10, 2),
              wouldRefuse: false,
              emptied: false,
              charged: 12,
              planDelta: 10,
              fired: [],
              draws: [{ grantId: 'g-soon', amount: 2 }],
            },
          ],
        });
        const r2 = await store.charge(a, [pool('ai_tasks', 6, 10)], ctx({ now: t }));
        expect(r2.pools[0]!.draws).toEqual([
          { grantId: 'g-soon', amount: 3 },
          { grantId: 'g-late', amount: 3 },
        ]);
        const [u] = await store.usage(a, [key('ai_tasks')], t);
        expect(u!.grants.map((g) => [g.id, g.amount, g.used])).toEqual([
          ['g-soon', 5, 5],
          ['g-late', 5, 3],
        ]);
        expect(u).toMatchObject({ planUsed: 10, grantTotal: 10, grantUsed: 8 });
      });

      it('a charge larger than plan and grants together is refused and touches neither', async () => {
        const a = account('grants-short');
        const t = Date.now();
        await add(a, grant('g1', 5, t + HOUR));
        await store.charge(a, [pool('ai_tasks', 8, 10)], ctx({ now: t }));
        const r = await store.charge(a, [pool('ai_tasks', 8, 10), pool('database', 1, 10)], ctx({ now: t }));
        expect(r.ok).toBe(false);
        expect(r.pools[0]).toEqual(plain('ai_tasks', 8, 5, 0));
        const [u, d] = await store.usage(a, [key('ai_tasks'), key('database')], t);
        expect(u).toMatchObject({ planUsed: 8, grantUsed: 0 });
        expect(d!.planUsed).toBe(0);
      });

      it('a grant counts until its expiry, to the millisecond, and not after', async () => {
        const a = account('grant-expiry');
        const t = Date.now();
        await add(a, grant('g1', 5, t + 1000));
        expect((await store.usage(a, [key('ai_tasks')], t + 999))[0]!.grantTotal).toBe(5);
        expect((await store.usage(a, [key('ai_tasks')], t + 1000))[0]!.grantTotal).toBe(0);
        expect((await store.charge(a, [pool('ai_tasks', 3, 0)], ctx({ now: t + 999 }))).ok).toBe(true);
        expect((await store.charge(a, [pool('ai_tasks', 1, 0)], ctx({ now: t + 1000 }))).ok).toBe(false);
      });

      it('the same idempotency key never grants twice', async () => {
        const a = account('grant-idem');
        const first = await add(a, grant('g-first', 100, Date.now() + HOUR), 'order-1');
        const again = await add(a, grant('g-second', 999, Date.now() + HOUR), 'order-1');
        expect(first.created).toBe(true);
        expect(again).toEqual({ created: false, grant: first.grant });
        const other = await add(a, grant('g-third', 7, Date.now() + HOUR), 'order-2');
        expect(other.created).toBe(true);
        expect((await store.usage(a, [key('ai_tasks')], Date.now()))[0]!.grantTotal).toBe(107);
      });

      it('grants of one credit type do not serve another', async () => {
        const a = account('grant-type');
        await add(a, grant('g1', 50, Date.now() + HOUR, 'database'));
        expect((await store.charge(a, [pool('ai_tasks', 1, 0)], ctx())).ok).toBe(false);
        expect((await store.charge(a, [pool('database', 1, 0)], ctx())).ok).toBe(true);
      });

      it('a pool with limit 0 (not in the plan) is filled by grants only; without an active grant it refuses any charge, even of 0', async () => {
        const a = account('grant-only');
        const t = Date.now();
        const th = ctx({ now: t, thresholds: [0.5, 1] });
        // No grant: refused whatever the amount, the other pool untouched; shadow mode reports it.
        expect(await store.charge(a, [pool('voice_minutes', 0, 0), pool('database', 1, 10)], th)).toEqual({
          ok: false,
          pools: [plain('voice_minutes', 0), plain('database', 0)],
        });
        expect((await store.charge(a, [pool('voice_minutes', 0, 0, { minAmount: 0 })], th)).ok).toBe(false);
        expect((await store.charge(a, [pool('voice_minutes', 0, 0, { shadow: true })], th)).pools[0]).toMatchObject({
          wouldRefuse: true,
          charged: 0,
          planUsed: 0,
        });
        expect(await used(a, 'database')).toBe(0);

        await add(a, grant('g-voice', 10, t + HOUR, 'voice_minutes'));
        // Drawn from the grant; alerts are taken of the grant allowance.
        const r = await store.charge(a, [pool('voice_minutes', 6, 0), pool('database', 1, 10)], th);
        expect(r.ok).toBe(true);
        expect(r.pools[0]).toEqual({
          ...state('voice_minutes', 0, 10, 6),
          wouldRefuse: false,
          emptied: false,
          charged: 6,
          planDelta: 0,
          fired: [0.5],
          draws: [{ grantId: 'g-voice', amount: 6 }],
        });
        // All or nothing with the other pools: 5 do not fit, nothing is taken.
        expect((await store.charge(a, [pool('voice_minutes', 5, 0), pool('database', 1, 10)], th)).ok).toBe(false);
        expect(await used(a, 'database')).toBe(1);
        // A hold takes what is left of the grant.
        const held = await store.charge(a, [pool('voice_minutes', 15, 0, { minAmount: 1 })], th);
        expect(held.pools[0]).toMatchObject({ charged: 4, grantUsed: 10, fired: [1], emptied: true });
        // Spent out, the grant still counts: a charge of 0 passes (exhausted, not outside the plan), 1 does not.
        expect(await store.charge(a, [pool('voice_minutes', 0, 0)], th)).toMatchObject({ ok: true, pools: [{ grantTotal: 10, grantUsed: 10 }] });
        expect(await store.charge(a, [pool('voice_minutes', 1, 0)], th)).toMatchObject({ ok: false, pools: [{ grantTotal: 10, grantUsed: 10 }] });
        expect(await used(a, 'voice_minutes')).toBe(0);
        // Once the grant has expired the pool is outside the plan again.
        expect(await store.charge(a, [pool('voice_minutes', 0, 0)], ctx({ now: t + HOUR }))).toMatchObject({ ok: false, pools: [{ grantTotal: 0 }] });
      });
    });

    describe('amounts at the maximum', () => {
      const MAX = MAX_CREDITS;
      // 9999-12-31T23:59:59.999Z: 15 digits, beyond the 14 that Lua's cjson writes exactly.
      const FAR = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

      it('a grant of MAX_CREDITS expiring in the year 9999 is kept exactly through grant, charge, draw and refund', async () => {
        const a = account('max');
        const t = Date.now();
        const exact = (used: number) => ({ id: 'g-max', creditType: 'ai_tasks', amount: MAX, used, expiresAt: FAR, createdAt: t });
        const opts = { now: t, idempotencyTtlMs: HOUR, idempotencyKey: 'order-max' };
        const added = await store.addGrant(a, { id: 'g-max', creditType: 'ai_tasks', amount: MAX, expiresAt: FAR, createdAt: t }, opts);
        expect(added).toEqual({ created: true, grant: exact(0) });
        // The replay answers the first grant, just as exactly.
        expect(await store.addGrant(a, { id: 'g-other', creditType: 'ai_tasks', amount: 1, expiresAt: t + HOUR, createdAt: t }, opts)).toEqual({
          created: false,
          grant: exact(0),
        });
        // A plan of MAX spent by one charge of MAX, then the grant: all but one credit, then the last.
        const plan = await store.charge(a, [pool('ai_tasks', MAX, MAX)], ctx({ now: t }));
        expect(plan).toMatchObject({ ok: true, pools: [{ planUsed: MAX, grantTotal: MAX, grantUsed: 0, charged: MAX, planDelta: MAX, draws: [] }] });
        const most = await store.charge(a, [pool('ai_tasks', MAX - 1, MAX)], ctx({ now: t }));
        expect(most).toMatchObject({
          ok: true,
          pools: [{ planUsed: MAX, grantUsed: MAX - 1, charged: MAX - 1, draws: [{ grantId: 'g-max', amount: MAX - 1 }] }],
        });
        expect((await store.charge(a, [pool('ai_tasks', 2, MAX)], ctx({ now: t }))).ok).toBe(false);
        const last = await store.charge(a, [pool('ai_tasks', 1, MAX)], ctx({ now: t }));
        expect(last).toMatchObject({ ok: true, pools: [{ grantUsed: MAX, draws: [{ grantId: 'g-max', amount: 1 }] }] });
        expect(await store.usage(a, [key('ai_tasks')], t)).toEqual([
          { creditType: 'ai_tasks', planUsed: MAX, grantTotal: MAX, grantUsed: MAX, grants: [exact(MAX)] },
        ]);
        // A refund gives back exactly what the charge took.
        await store.refund(a, [{ creditType: 'ai_tasks', cycleStart: CYCLE, planDelta: MAX, draws: [{ grantId: 'g-max', amount: MAX - 1 }] }]);
        expect(await store.usage(a, [key('ai_tasks')], t)).toEqual([
          { creditType: 'ai_tasks', planUsed: 0, grantTotal: MAX, grantUsed: 1, grants: [exact(1)] },
        ]);
        // Still there a moment before the expiry, gone at it.
        expect((await store.usage(a, [key('ai_tasks')], FAR - 1))[0]!.grantTotal).toBe(MAX);
        expect((await store.usage(a, [key('ai_tasks')], FAR))[0]!.grantTotal).toBe(0);

        // Sums of maximum amounts stay exact: plan plus grants, an unlimited pool counting charge after charge.
        for (const id of ['g1', 'g2', 'g3']) {
          await store.addGrant(a, { id, creditType: 'database', amount: MAX, expiresAt: FAR, createdAt: t }, { now: t, idempotencyTtlMs: HOUR });
        }
        const sum = await store.charge(a, [pool('database', MAX, MAX - 1, { minAmount: 1 })], ctx({ now: t, thresholds: [0.25] }));
        expect(sum.pools[0]).toMatchObject({ planUsed: MAX - 1, grantTotal: 3 * MAX, grantUsed: 1, charged: MAX, fired: [0.25] });
        for (let i = 0; i < 5; i++) await store.charge(a, [pool('email_verification', MAX - i, null)], ctx({ now: t }));
        expect(await used(a, 'email_verification')).toBe(5 * MAX - 10);
      });
    });

    describe('threshold alerts', () => {
      it('each threshold fires once per cycle, at the charge that reaches it', async () => {
        const a = account('alerts');
        const th = ctx({ thresholds: [0.8, 1] });
        expect((await store.charge(a, [pool('ai_tasks', 79, 100)], th)).pools[0]!.fired).toEqual([]);
        expect((await store.charge(a, [pool('ai_tasks', 1, 100)], th)).pools[0]!.fired).toEqual([0.8]);
        expect((await store.charge(a, [pool('ai_tasks', 1, 100)], th)).pools[0]!.fired).toEqual([]);
        expect((await store.charge(a, [pool('ai_tasks', 19, 100)], th)).pools[0]!.fired).toEqual([1]);
        // A new cycle alerts again.
        expect((await store.charge(a, [pool('ai_tasks', 100, 100, { cycleStart: CYCLE + 1000 })], th)).pools[0]!.fired).toEqual([0.8, 1]);
      });

      it('a refused charge fires nothing; top-ups raise the allowance the fraction is taken of', async () => {
        const a = account('alerts-grants');
        const th = ctx({ thresholds: [0.8] });
        expect((await store.charge(a, [pool('ai_tasks', 101, 100)], th)).pools[0]!.fired).toEqual([]);
        await store.addGrant(
          a,
          { id: 'g', creditType: 'ai_tasks', amount: 100, expiresAt: Date.now() + HOUR, createdAt: Date.now() },
          { now: Date.now(), idempotencyTtlMs: HOUR },
        );
        expect((await store.charge(a, [pool('ai_tasks', 100, 100)], th)).pools[0]!.fired).toEqual([]);
        expect((await store.charge(a, [pool('ai_tasks', 60, 100)], th)).pools[0]!.fired).toEqual([0.8]);
      });

      it('300 concurrent charges crossing 80 % and 100 % fire exactly one of each', async () => {
        const a = account('alerts-race');
        const results = await Promise.all(
          Array.from({ length: 300 }, (_, i) => fx.stores[i % fx.stores.length]!.charge(a, [pool('ai_tasks', 1, 250)], ctx({ thresholds: [0.8, 1] }))),
        );
        const fired = results.flatMap((r) => r.pools[0]!.fired);
        expect(fired.sort()).toEqual([0.8, 1]);
        expect(results.filter((r) => r.ok)).toHaveLength(250);
      });
    });

    describe('alert marks (forecast)', () => {
      it('a mark is set once per pool and cycle, apart from the threshold marks, and forgotten by DELETE', async () => {
        const a = account('mark');
        const now = Date.now();
        const mark = (creditType: string, cycleStart = CYCLE) => store.markAlert(a, creditType, cycleStart, 'forecast', now + HOUR, now);
        expect(await mark('ai_tasks')).toBe(true);
        expect(await mark('ai_tasks')).toBe(false);
        // Another pool, another cycle: their own marks.
        expect(await mark('database')).toBe(true);
        expect(await mark('ai_tasks', CYCLE + 1000)).toBe(true);
        // The threshold marks of the same cycle still fire, and do not reset the mark.
        expect((await store.charge(a, [pool('ai_tasks', 90, 100)], ctx({ thresholds: [0.8] }))).pools[0]!.fired).toEqual([0.8]);
        expect(await mark('ai_tasks')).toBe(false);
        expect(await store.deleteAccount(a)).toBe(true);
        expect(await mark('ai_tasks')).toBe(true);
      });

      it('a mark made before threshold marks leaves them to fire; it expires with the cycle', async () => {
        const a = account('mark-first');
        const now = Date.now();
        expect(await store.markAlert(a, 'ai_tasks', CYCLE, 'forecast', now + HOUR, now)).toBe(true);
        expect((await store.charge(a, [pool('ai_tasks', 100, 100)], ctx({ thresholds: [0.8, 1] }))).pools[0]!.fired).toEqual([0.8, 1]);
        const b = account('mark-expiry');
        expect(await store.markAlert(b, 'ai_tasks', CYCLE, 'forecast', Date.now() + 300, Date.now())).toBe(true);
        await sleep(400);
        expect(await store.markAlert(b, 'ai_tasks', CYCLE, 'forecast', Date.now() + HOUR, Date.now())).toBe(true);
      });

      it('200 concurrent marks of one pool and cycle, over every connection: exactly one is set', async () => {
        const a = account('mark-race');
        const now = Date.now();
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => fx.stores[i % fx.stores.length]!.markAlert(a, 'ai_tasks', CYCLE, 'forecast', now + HOUR, now)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('holds, refunds and idempotency', () => {
      it('a hold takes what remains when that is at least the minimum, else refuses', async () => {
        const a = account('hold');
        await store.charge(a, [pool('voice_minutes', 50, 60)], ctx());
        const r = await store.charge(a, [pool('voice_minutes', 15, 60, { minAmount: 1 })], ctx());
        expect(r.ok).toBe(true);
        expect(r.pools[0]).toMatchObject({ charged: 10, planDelta: 10, planUsed: 60 });
        expect((await store.charge(a, [pool('voice_minutes', 15, 60, { minAmount: 1 })], ctx())).ok).toBe(false);
        const b = account('hold-min');
        await store.charge(b, [pool('voice_minutes', 58, 60)], ctx());
        expect((await store.charge(b, [pool('voice_minutes', 15, 60, { minAmount: 5 })], ctx())).ok).toBe(false);
      });

      it('a refund gives back plan and grant credits exactly as they were taken', async () => {
        const a = account('refund');
        const t = Date.now();
        await store.addGrant(a, { id: 'g1', creditType: 'ai_tasks', amount: 10, expiresAt: t + HOUR, createdAt: t }, { now: t, idempotencyTtlMs: HOUR });
        await store.charge(a, [pool('ai_tasks', 8, 10)], ctx({ now: t }));
        const r = await store.charge(a, [pool('ai_tasks', 5, 10)], ctx({ now: t }));
        expect(r.pools[0]).toMatchObject({ charged: 5, planDelta: 2, draws: [{ grantId: 'g1', amount: 3 }] });
        await store.refund(a, [{ creditType: 'ai_tasks', cycleStart: CYCLE, planDelta: 2, draws: [{ grantId: 'g1', amount: 3 }] }]);
        const [u] = await store.usage(a, [key('ai_tasks')], t);
        expect(u).toMatchObject({ planUsed: 8, grantUsed: 0 });
        // Never below zero, and a counter that does not exist stays absent.
        await store.refund(a, [{ creditType: 'ai_tasks', cycleStart: CYCLE, planDelta: 100, draws: [{ grantId: 'g1', amount: 100 }] }]);
        expect((await store.usage(a, [key('ai_tasks')], t))[0]).toMatchObject({ planUsed: 0, grantUsed: 0 });
        await store.refund(a, [{ creditType: 'database', cycleStart: CYCLE, planDelta: 5, draws: [] }]);
        expect(await used(a, 'database')).toBe(0);
      });

      it('refunding a release holds the capacity again', async () => {
        const a = account('refund-release');
        const cap = (op: 'charge' | 'release') => pool('mailboxes', 1, 5, { op, cycleStart: 0, expireAt: 0, extras: false });
        await store.charge(a, [cap('charge')], ctx());
        const r = await store.charge(a, [cap('release')], ctx());
        expect(r.pools[0]).toMatchObject({ charged: 1, planDelta: -1, planUsed: 0 });
        await store.refund(a, [{ creditType: 'mailboxes', cycleStart: 0, planDelta: -1, draws: [] }]);
        expect(await used(a, 'mailboxes', 0)).toBe(1);
      });

      it('an idempotency key charges once: pending while in flight, done after, free again after a refund', async () => {
        const a = account('idem');
        const idem = { key: 'k1', claim: 'c1', fingerprint: 'fp-1', pendingTtlMs: HOUR };
        expect((await store.charge(a, [pool('ai_tasks', 3, 100)], ctx({ idempotency: idem }))).ok).toBe(true);
        expect(await store.charge(a, [pool('ai_tasks', 3, 100)], ctx({ idempotency: { ...idem, claim: 'c2' } }))).toEqual({
          ok: false,
          duplicate: { state: 'pending', fingerprint: 'fp-1' },
          pools: [],
        });
        expect(await store.idempotencyRecord(a, idem.key)).toEqual({ state: 'pending', fingerprint: 'fp-1' });
        expect(await store.completeIdempotency(a, idem, HOUR)).toBe(true);
        expect((await store.charge(a, [pool('ai_tasks', 3, 100)], ctx({ idempotency: idem }))).duplicate).toEqual({ state: 'done', fingerprint: 'fp-1' });
        expect(await used(a, 'ai_tasks')).toBe(3);

        const failed = { key: 'k2', claim: 'c3', fingerprint: 'fp-2', pendingTtlMs: HOUR };
        const first = await store.charge(a, [pool('ai_tasks', 4, 100)], ctx({ idempotency: failed }));
        await store.refund(a, [{ creditType: 'ai_tasks', cycleStart: CYCLE, planDelta: first.pools[0]!.planDelta, draws: [] }], { idempotency: failed });
        expect(await used(a, 'ai_tasks')).toBe(3);
        expect(await store.idempotencyRecord(a, failed.key)).toBeNull();
        const retry = await store.charge(a, [pool('ai_tasks', 4, 100)], ctx({ idempotency: { ...failed, claim: 'c4' } }));
        expect(retry.ok).toBe(true);
        expect(await used(a, 'ai_tasks')).toBe(7);
      });

      it('a duplicate carries the first fingerprint, whatever the replay sent, and nothing is charged', async () => {
        const a = account('idem-fp');
        const first = { key: 'k', claim: 'c1', fingerprint: 'count=1', pendingTtlMs: HOUR };
        expect((await store.charge(a, [pool('ai_tasks', 1, 100)], ctx({ idempotency: first }))).ok).toBe(true);
        const reuse = await store.charge(a, [pool('ai_tasks', 50, 100)], ctx({ idempotency: { ...first, claim: 'c2', fingerprint: 'count=50' } }));
        expect(reuse).toEqual({ ok: false, duplicate: { state: 'pending', fingerprint: 'count=1' }, pools: [] });
        expect(await used(a, 'ai_tasks')).toBe(1);
      });

      it('a completed key keeps its response; completing a freed key brings nothing back', async () => {
        const a = account('idem-resp');
        const idem = { key: 'k', claim: 'c1', fingerprint: 'fp', pendingTtlMs: HOUR };
        await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: idem }));
        const response = JSON.stringify({ s: 200, h: { 'content-type': 'application/json' }, b: Buffer.from('{"ok":true}').toString('base64') });
        expect(await store.completeIdempotency(a, idem, HOUR, response)).toBe(true);
        expect(await store.idempotencyRecord(a, idem.key)).toEqual({ state: 'done', fingerprint: 'fp', response });
        expect((await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: { ...idem, claim: 'c9' } }))).duplicate).toEqual({
          state: 'done',
          fingerprint: 'fp',
          response,
        });
        // Done is final: neither a second completion nor a renewal changes it.
        expect(await store.completeIdempotency(a, idem, HOUR, 'other')).toBe(false);
        expect(await store.renewIdempotency(a, idem, HOUR)).toBe(false);
        expect((await store.idempotencyRecord(a, idem.key))?.response).toBe(response);

        const freed = { key: 'gone', claim: 'c2', fingerprint: 'fp', pendingTtlMs: HOUR };
        const c = await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: freed }));
        await store.refund(a, [{ creditType: 'ai_tasks', cycleStart: CYCLE, planDelta: c.pools[0]!.planDelta, draws: [] }], { idempotency: freed });
        expect(await store.completeIdempotency(a, freed, HOUR, response)).toBe(false);
        expect(await store.idempotencyRecord(a, freed.key)).toBeNull();
        expect(await store.idempotencyRecord(a, 'never-used')).toBeNull();
      });

      it('only the claim that holds a key renews, completes or frees it: a lapsed request cannot touch its retry', async () => {
        const a = account('idem-claim');
        const first = { key: 'k', claim: 'first', fingerprint: 'fp', pendingTtlMs: 150 };
        expect((await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: first }))).ok).toBe(true);
        expect(await store.renewIdempotency(a, first, 150)).toBe(true);
        await new Promise((r) => setTimeout(r, 250));
        // The first request's lease lapsed: its retry claims the key anew.
        const retry = { ...first, claim: 'retry', pendingTtlMs: HOUR };
        const second = await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: retry }));
        expect(second.ok).toBe(true);
        expect(await store.renewIdempotency(a, first, HOUR)).toBe(false);
        expect(await store.completeIdempotency(a, first, HOUR, 'first-response')).toBe(false);
        await store.refund(a, [], { idempotency: first });
        expect(await store.idempotencyRecord(a, 'k')).toEqual({ state: 'pending', fingerprint: 'fp' });
        expect(await store.completeIdempotency(a, retry, HOUR, 'retry-response')).toBe(true);
        expect(await store.idempotencyRecord(a, 'k')).toEqual({ state: 'done', fingerprint: 'fp', response: 'retry-response' });
      });

      it('DELETE of the account removes its request idempotency records', async () => {
        const a = account('idem-del');
        const idem = { key: 'k', claim: 'c1', fingerprint: 'fp', pendingTtlMs: HOUR };
        await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: idem }));
        await store.completeIdempotency(a, idem, HOUR, 'r');
        const pending = { key: 'p', claim: 'c2', fingerprint: 'fp', pendingTtlMs: HOUR };
        await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: pending }));
        await store.deleteAccount(a);
        expect(await store.idempotencyRecord(a, idem.key)).toBeNull();
        expect(await store.idempotencyRecord(a, pending.key)).toBeNull();
        expect((await store.charge(a, [pool('ai_tasks', 2, 100)], ctx({ idempotency: { ...idem, claim: 'c3' } }))).ok).toBe(true);
      });

      it('a refund with an id is applied once, however often it is replayed; another id is another refund', async () => {
        const a = account('refund-once');
        const c = await store.charge(a, [pool('ai_tasks', 9, 100)], ctx());
        const line = { creditType: 'ai_tasks', cycleStart: CYCLE, planDelta: 3, draws: [] };
        expect(await store.refund(a, [line], { refundId: 'rf_1' })).toBe(true);
        expect(await store.refund(a, [line], { refundId: 'rf_1' })).toBe(false);
        expect(await used(a, 'ai_tasks')).toBe(6);
        expect(await store.refund(a, [line], { refundId: 'rf_2' })).toBe(true);
        expect(await used(a, 'ai_tasks')).toBe(3);
        expect(c.ok).toBe(true);
        // Concurrent replays of one refund: exactly one applies.
        const replays = await Promise.all(
          Array.from({ length: 20 }, (_, i) => fx.stores[i % fx.stores.length]!.refund(a, [{ ...line, planDelta: 1 }], { refundId: 'rf_3' })),
        );
        expect(replays.filter(Boolean)).toHaveLength(1);
        expect(await used(a, 'ai_tasks')).toBe(2);
      });

      it('a refused charge does not claim its idempotency key', async () => {
        const a = account('idem-refused');
        const idem = { key: 'k', claim: 'c', fingerprint: 'fp', pendingTtlMs: HOUR };
        expect((await store.charge(a, [pool('ai_tasks', 5, 3)], ctx({ idempotency: idem }))).ok).toBe(false);
        expect((await store.charge(a, [pool('ai_tasks', 3, 3)], ctx({ idempotency: idem }))).ok).toBe(true);
      });

      it('50 concurrent requests with one idempotency key charge exactly once', async () => {
        const a = account('idem-race');
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            fx.stores[i % fx.stores.length]!.charge(
              a,
              [pool('ai_tasks', 2, 100)],
              ctx({ idempotency: { key: 'same', claim: `c${i}`, fingerprint: 'fp', pendingTtlMs: HOUR } }),
            ),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        expect(results.filter((r) => r.duplicate?.state === 'pending')).toHaveLength(49);
        expect(await used(a, 'ai_tasks')).toBe(2);
      });
    });

    describe('shadow mode and exhausted pools', () => {
      it('a shadow pool is never refused: what does not fit is counted and reported', async () => {
        const a = account('shadow');
        const t = Date.now();
        await store.addGrant(a, { id: 'g', creditType: 'ai_tasks', amount: 3, expiresAt: t + HOUR, createdAt: t }, { now: t, idempotencyTtlMs: HOUR });
        const r = await store.charge(a, [pool('ai_tasks', 15, 10, { shadow: true })], ctx({ now: t }));
        expect(r.ok).toBe(true);
        expect(r.pools[0]).toMatchObject({ planUsed: 12, grantUsed: 3, wouldRefuse: true, emptied: true });
        const fits = await store.charge(a, [pool('database', 1, 10, { shadow: true })], ctx({ now: t }));
        expect(fits.pools[0]!.wouldRefuse).toBe(false);
      });

      it('an enforced short pool still refuses the whole charge, shadow pools included', async () => {
        const a = account('shadow-mixed');
        const r = await store.charge(a, [pool('ai_tasks', 50, 10, { shadow: true }), pool('database', 5, 1)], ctx());
        expect(r.ok).toBe(false);
        expect(r.pools.map((p) => [p.planUsed, p.wouldRefuse])).toEqual([
          [0, false],
          [0, false],
        ]);
      });

      it('"emptied" fires once per cycle, and again after the mark is cleared (a top-up)', async () => {
        const a = account('emptied');
        expect((await store.charge(a, [pool('ai_tasks', 10, 10)], ctx())).pools[0]!.emptied).toBe(true);
        expect((await store.charge(a, [pool('ai_tasks', 0, 10)], ctx())).pools[0]!.emptied).toBe(false);
        await store.clearExhausted(a, 'ai_tasks', CYCLE);
        expect((await store.charge(a, [pool('ai_tasks', 0, 10)], ctx())).pools[0]!.emptied).toBe(true);
      });

      it('counts accounts marked exhausted until their reset, per credit type', async () => {
        const t = Date.now();
        const type = `t${seq}x${process.pid}`.replace(/[^a-z0-9]/g, '');
        const [a, b, c] = [account('ex-a'), account('ex-b'), account('ex-c')];
        // As in real use, the account emptied a pool of that type before it was marked.
        await store.charge(a, [pool(type, 1, 1)], ctx({ now: t }));
        await store.markExhausted(a, type, t + HOUR);
        await store.markExhausted(b, type, t + HOUR);
        await store.markExhausted(b, type, t + HOUR);
        await store.markExhausted(c, type, t + 100);
        expect((await store.countExhausted([type, 'never_used'], t)).get(type)).toBe(3);
        expect((await store.countExhausted([type], t + 100)).get(type)).toBe(2);
        expect((await store.countExhausted(['never_used'], t)).get('never_used')).toBe(0);
        await store.clearExhausted(b, type, CYCLE);
        expect((await store.countExhausted([type], t)).get(type)).toBe(1);
        await store.deleteAccount(a);
        expect((await store.countExhausted([type], t)).get(type)).toBe(0);
      });
    });

    describe('accounts and events', () => {
      const event = (id: string) => sampleEvent(id, { account: 'x' });

      it('accounts round-trip, and an absent account is null', async () => {
        const a = account('record');
        expect(await store.getAccount(a)).toBeNull();
        const rec: AccountRecord = {
          plan: 'scale',
          billingAnchor: '2025-01-31T00:00:00Z',
          email: 'ops@example.com',
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-02T00:00:00.000Z',
        };
        await store.putAccount(a, rec);
        expect(await store.getAccount(a)).toEqual(rec);
        await store.putAccount(a, { ...rec, plan: 'basic', email: undefined });
        expect((await store.getAccount(a))?.plan).toBe('basic');
      });

      it('events list newest first and keep only the newest N', async () => {
        const a = account('events');
        await store.appendEvents(a, [event('e1'), event('e2')], 3);
        await store.appendEvents(a, [event('e3'), event('e4')], 3);
        expect((await store.listEvents(a, 10)).map((e) => e.id)).toEqual(['e4', 'e3', 'e2']);
        expect((await store.listEvents(a, 1)).map((e) => e.id)).toEqual(['e4']);
        expect(await store.listEvents(account('no-events'), 10)).toEqual([]);
      });

      it('deleting an account removes its record, counters, grants and events', async () => {
        const a = account('delete');
        const t = Date.now();
        await store.putAccount(a, { plan: 'basic', billingAnchor: '2025-01-31T00:00:00Z', createdAt: 'x', updatedAt: 'x' });
        await store.charge(a, [pool('ai_tasks', 5, 100), pool('mailboxes', 1, 5, { cycleStart: 0, expireAt: 0, extras: false })], ctx({ thresholds: [0.01] }));
        await store.addGrant(
          a,
          { id: 'g', creditType: 'ai_tasks', amount: 10, expiresAt: t + HOUR, createdAt: t },
          { now: t, idempotencyKey: 'k', idempotencyTtlMs: HOUR },
        );
        await store.appendEvents(a, [event('e1')], 10);
        expect(await store.deleteAccount(a)).toBe(true);
        expect(await store.getAccount(a)).toBeNull();
        const [u, m] = await store.usage(a, [key('ai_tasks'), key('mailboxes', 0)], t);
        expect(u).toEqual({ creditType: 'ai_tasks', planUsed: 0, grantTotal: 0, grantUsed: 0, grants: [] });
        expect(m!.planUsed).toBe(0);
        expect(await store.listEvents(a, 10)).toEqual([]);
        // The alert marks went too: the same threshold fires again.
        expect((await store.charge(a, [pool('ai_tasks', 5, 100)], ctx({ thresholds: [0.01] }))).pools[0]!.fired).toEqual([0.01]);
        // And the idempotency key: the same key grants again.
        const again = await store.addGrant(
          a,
          { id: 'g2', creditType: 'ai_tasks', amount: 10, expiresAt: t + HOUR, createdAt: t },
          { now: t, idempotencyKey: 'k', idempotencyTtlMs: HOUR },
        );
        expect(again.created).toBe(true);
        expect(await store.deleteAccount(account('never-existed'))).toBe(false);
      });

      describe('billing events', () => {
        const rec = (plan: string): AccountRecord => ({ plan, billingAnchor: '2025-01-31T00:00:00Z', createdAt: 'x', updatedAt: 'x' });
        const mark = (id: string, created: number) => ({ id, created, now: Date.now(), ttlMs: HOUR });

        it('applies an event once: a redelivery changes nothing, even after another write', async () => {
          const a = account('billing-dup');
          expect(await store.applyBillingEvent(a, mark('evt_1', 100), rec('basic'))).toBe('applied');
          expect((await store.getAccount(a))?.plan).toBe('basic');
          await store.putAccount(a, rec('edited'));
          expect(await store.applyBillingEvent(a, mark('evt_1', 100), rec('basic'))).toBe('duplicate');
          expect((await store.getAccount(a))?.plan).toBe('edited');
        });

        it('an event older than the last applied one is stale; an equal or newer one applies; null removes the record', async () => {
          const a = account('billing-order');
          expect(await store.applyBillingEvent(a, mark('evt_new', 200), rec('scale'))).toBe('applied');
          expect(await store.applyBillingEvent(a, mark('evt_old', 100), rec('basic'))).toBe('stale');
          expect((await store.getAccount(a))?.plan).toBe('scale');
          expect(await store.applyBillingEvent(a, mark('evt_same', 200), rec('basic'))).toBe('applied');
          expect(await store.applyBillingEvent(a, mark('evt_del', 300), null)).toBe('applied');
          expect(await store.getAccount(a)).toBeNull();
          // The record went, the order stayed: an older event cannot bring it back.
          expect(await store.applyBillingEvent(a, mark('evt_late', 250), rec('basic'))).toBe('stale');
          expect(await store.getAccount(a)).toBeNull();
        });

        it('is applied once when sent concurrently over every connection', async () => {
          const a = account('billing-race');
          const outcomes = await Promise.all(
            Array.from({ length: 20 }, (_, i) => fx.stores[i % fx.stores.length]!.applyBillingEvent(a, mark('evt_race', 100), rec('basic'))),
          );
          expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
          expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(19);
        });

        it('ids and the order are forgotten after their TTL, and by DELETE', async () => {
          const a = account('billing-ttl');
          expect(await store.applyBillingEvent(a, { ...mark('evt_1', 200), ttlMs: 50 }, rec('basic'))).toBe('applied');
          await sleep(120);
          expect(await store.applyBillingEvent(a, mark('evt_1', 100), rec('scale'))).toBe('applied');
          expect(await store.deleteAccount(a)).toBe(true);
          expect(await store.applyBillingEvent(a, mark('evt_1', 50), rec('basic'))).toBe('applied');
        });
      });

      it('ids that look like the key layout keep separate counters', async () => {
        const base = account('tricky');
        const ids = [base, `${base}:u:ai_tasks`, `${base}}`, `{${base}}`, `${base}{x}`, `${base}%7D`, `${base}%`];
        for (const [i, id] of ids.entries()) await store.charge(id, [pool('ai_tasks', i + 1, null)], ctx());
        for (const [i, id] of ids.entries()) expect(await used(id, 'ai_tasks')).toBe(i + 1);
      });
    });

    describe('concurrency', () => {
      it('500 concurrent charges of 1 against a pool of 100: exactly 100 succeed', async () => {
        const a = account('race');
        const results = await Promise.all(Array.from({ length: 500 }, (_, i) => fx.stores[i % fx.stores.length]!.charge(a, [pool('ai_tasks', 1, 100)], ctx())));
        expect(results.filter((r) => r.ok)).toHaveLength(100);
        expect(await used(a, 'ai_tasks')).toBe(100);
        // Every success saw a distinct count: no two charges observed the same state.
        const seen = results.filter((r) => r.ok).map((r) => r.pools[0]!.planUsed);
        expect(new Set(seen).size).toBe(100);
      });

      it('concurrent multi-pool charges never overspend either pool', async () => {
        const a = account('race-multi');
        const results = await Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            fx.stores[i % fx.stores.length]!.charge(a, [pool('database', 1, 120), pool('email_verification', 2, 100)], ctx()),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(50);
        expect(await used(a, 'database')).toBe(50);
        expect(await used(a, 'email_verification')).toBe(100);
      });

      it('concurrent charges spanning plan and grants spend each credit once', async () => {
        const a = account('race-grants');
        const t = Date.now();
        await store.addGrant(a, { id: 'ga', creditType: 'ai_tasks', amount: 30, expiresAt: t + HOUR, createdAt: t }, { now: t, idempotencyTtlMs: HOUR });
        await store.addGrant(a, { id: 'gb', creditType: 'ai_tasks', amount: 20, expiresAt: t + 2 * HOUR, createdAt: t }, { now: t, idempotencyTtlMs: HOUR });
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => fx.stores[i % fx.stores.length]!.charge(a, [pool('ai_tasks', 1, 50)], ctx({ now: t }))),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(100);
        const [u] = await store.usage(a, [key('ai_tasks')], t);
        expect(u!.grants.map((g) => g.used)).toEqual([30, 20]);
        expect(u!.planUsed).toBe(50);
      });
    });
  });
}
