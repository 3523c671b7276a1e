// The contract every CreditStore must keep. Run against each implementation
// by memory-store.test.ts and redis-store.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountRecord, CreditStore, PoolCharge } from '../../src/store/credit-store.js';

export interface StoreFixture {
  /** Views of one shared backing store; several for Redis (separate connections). */
  readonly stores: readonly CreditStore[];
  close(): Promise<void>;
}

const HOUR = 3600_000;
let seq = 0;
const account = (label: string) => `${label}-${process.pid}-${++seq}`;

function pool(creditType: string, amount: number, limit: number | null, over: Partial<PoolCharge> = {}): PoolCharge {
  return { creditType, amount, limit, cycleStart: 1_700_000_000_000, expireAt: Date.now() + HOUR, ...over };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storeContract(name: string, open: () => Promise<StoreFixture>): void {
  describe(`CreditStore contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: CreditStore;
    beforeAll(async () => {
      fx = await open();
      store = fx.stores[0]!;
    });
    afterAll(async () => fx.close());

    it('charges within the limit and reports the new count', async () => {
      const a = account('within');
      expect(await store.charge(a, [pool('ai_tasks', 25, 100)])).toEqual({ ok: true, pools: [{ creditType: 'ai_tasks', used: 25 }] });
      expect(await store.charge(a, [pool('ai_tasks', 75, 100)])).toEqual({ ok: true, pools: [{ creditType: 'ai_tasks', used: 100 }] });
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([100]);
    });

    it('refuses a charge above the limit and writes nothing', async () => {
      const a = account('above');
      await store.charge(a, [pool('ai_tasks', 90, 100)]);
      expect(await store.charge(a, [pool('ai_tasks', 11, 100)])).toEqual({ ok: false, pools: [{ creditType: 'ai_tasks', used: 90 }] });
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([90]);
    });

    it('a multi-pool charge is all or nothing', async () => {
      const a = account('multi');
      await store.charge(a, [pool('email_verification', 10, 10)]);
      const r = await store.charge(a, [pool('database', 1, 100), pool('email_verification', 1, 10)]);
      expect(r.ok).toBe(false);
      expect(r.pools).toEqual([
        { creditType: 'database', used: 0 },
        { creditType: 'email_verification', used: 10 },
      ]);
      const ks = [
        { creditType: 'database', cycleStart: 1_700_000_000_000 },
        { creditType: 'email_verification', cycleStart: 1_700_000_000_000 },
      ];
      expect(await store.usage(a, ks)).toEqual([0, 10]);
      const ok = await store.charge(a, [pool('database', 2, 100), pool('email_verification', 0, 10)]);
      expect(ok.ok).toBe(true);
      expect(await store.usage(a, ks)).toEqual([2, 10]);
    });

    it('an unlimited pool is counted and never refused', async () => {
      const a = account('unlimited');
      for (let i = 0; i < 3; i++) expect((await store.charge(a, [pool('ai_tasks', 1_000_000, null)])).ok).toBe(true);
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([3_000_000]);
    });

    it('each cycle has its own counter: a new cycle starts from zero', async () => {
      const a = account('cycles');
      await store.charge(a, [pool('ai_tasks', 100, 100, { cycleStart: 1000 })]);
      expect((await store.charge(a, [pool('ai_tasks', 1, 100, { cycleStart: 1000 })])).ok).toBe(false);
      expect(await store.charge(a, [pool('ai_tasks', 1, 100, { cycleStart: 2_000_000 })])).toEqual({
        ok: true,
        pools: [{ creditType: 'ai_tasks', used: 1 }],
      });
    });

    it('counters vanish at their expiry', async () => {
      const a = account('expiry');
      await store.charge(a, [pool('ai_tasks', 5, 100, { expireAt: Date.now() + 150 })]);
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([5]);
      await sleep(300);
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([0]);
    });

    it('a charge renews the expiry it is given', async () => {
      const a = account('renew');
      await store.charge(a, [pool('ai_tasks', 5, 100, { expireAt: Date.now() + 150 })]);
      await store.charge(a, [pool('ai_tasks', 5, 100, { expireAt: Date.now() + HOUR })]);
      await sleep(300);
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([10]);
    });

    it('expireAt 0 means the counter never expires (capacity pools)', async () => {
      const a = account('capacity');
      await store.charge(a, [pool('mailboxes', 1, 5, { cycleStart: 0, expireAt: 0 })]);
      await sleep(50);
      expect(await store.usage(a, [{ creditType: 'mailboxes', cycleStart: 0 }])).toEqual([1]);
    });

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

    it('ids that look like the key layout keep separate counters', async () => {
      const base = account('tricky');
      const ids = [base, `${base}:u:ai_tasks`, `${base}}`, `{${base}}`, `${base}{x}`, `${base}%7D`, `${base}%`];
      for (const [i, id] of ids.entries()) await store.charge(id, [pool('ai_tasks', i + 1, null)]);
      for (const [i, id] of ids.entries()) {
        expect(await store.usage(id, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([i + 1]);
      }
    });

    it('500 concurrent charges of 1 against a pool of 100: exactly 100 succeed', async () => {
      const a = account('race');
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) => fx.stores[i % fx.stores.length]!.charge(a, [pool('ai_tasks', 1, 100)])),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(100);
      expect(await store.usage(a, [{ creditType: 'ai_tasks', cycleStart: 1_700_000_000_000 }])).toEqual([100]);
      // Every success saw a distinct count: no two charges observed the same state.
      const seen = results.filter((r) => r.ok).map((r) => r.pools[0]!.used);
      expect(new Set(seen).size).toBe(100);
    });

    it('concurrent multi-pool charges never overspend either pool', async () => {
      const a = account('race-multi');
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          fx.stores[i % fx.stores.length]!.charge(a, [pool('database', 1, 120), pool('email_verification', 2, 100)]),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(50);
      expect(
        await store.usage(a, [
          { creditType: 'database', cycleStart: 1_700_000_000_000 },
          { creditType: 'email_verification', cycleStart: 1_700_000_000_000 },
        ]),
      ).toEqual([50, 100]);
    });
  });
}
