// MAX_CREDITS where amounts enter the engine without the config: a library
// caller's own cost lines, and top-ups. (The config and the admin API are
// tested at their own entry: config-load.test.ts, e2e/admin-api.test.ts.)

import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigObject } from '../../src/config/index.js';
import { isCreditAmount, MAX_CREDITS } from '../../src/domain/credit-amount.js';
import { CreditEngine, TopUpError } from '../../src/engine/credit-engine.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const config = loadConfigObject({
  version: 1,
  defaultPlan: 'open',
  creditTypes: { ai_tasks: { name: 'AI Task Credits' }, database: { name: 'Database Credits' } },
  plans: { open: { ai_tasks: 'unlimited', database: MAX_CREDITS } },
});

describe('MAX_CREDITS in the engine', () => {
  const store = new MemoryStore();
  const engine = new CreditEngine({ store, config: () => config });
  afterAll(async () => {
    await engine.close();
    await store.close();
  });
  const used = async (account: string, type: string) => (await engine.usage(account))!.pools[type]!.used;

  it('is 10^12, and a credit amount is a whole number from 0 (or a given minimum) up to it', () => {
    expect(MAX_CREDITS).toBe(1e12);
    expect([0, 1, MAX_CREDITS].map((n) => isCreditAmount(n))).toEqual([true, true, true]);
    expect([-1, 0.5, MAX_CREDITS + 1, Number.NaN, Infinity, '5'].map((n) => isCreditAmount(n))).toEqual([false, false, false, false, false, false]);
    expect(isCreditAmount(0, 1)).toBe(false);
  });

  it('charge refuses cost lines above the maximum, alone or added up per pool, before the store sees them', async () => {
    await expect(engine.charge('caller', [{ creditType: 'ai_tasks', amount: MAX_CREDITS + 1 }])).rejects.toThrow(RangeError);
    const halves = [
      { creditType: 'database', amount: MAX_CREDITS / 2 },
      { creditType: 'database', amount: MAX_CREDITS / 2 + 1 },
    ];
    await expect(engine.charge('caller', halves)).rejects.toThrow(/database: a cost must be a whole number from 0 to 1,000,000,000,000, got 1000000000001/);
    await expect(engine.charge('caller', [{ creditType: 'ai_tasks', amount: 2.5 }])).rejects.toThrow(RangeError);
    expect(await used('caller', 'ai_tasks')).toBe(0);
    expect(await used('caller', 'database')).toBe(0);
    // The maximum itself is charged, exactly.
    expect((await engine.charge('caller', [{ creditType: 'database', amount: MAX_CREDITS }])).allowed).toBe(true);
    expect((await engine.charge('caller', [{ creditType: 'ai_tasks', amount: MAX_CREDITS }])).allowed).toBe(true);
    expect(await used('caller', 'database')).toBe(MAX_CREDITS);
    expect(await used('caller', 'ai_tasks')).toBe(MAX_CREDITS);
  });

  it('topUp refuses an amount above the maximum, naming it', async () => {
    await expect(engine.topUp('buyer', { creditType: 'database', amount: MAX_CREDITS + 1 })).rejects.toThrow(TopUpError);
    await expect(engine.topUp('buyer', { creditType: 'database', amount: MAX_CREDITS + 1 })).rejects.toThrow(
      'amount must be a whole number from 1 to 1,000,000,000,000',
    );
    expect(await engine.listTopUps('buyer')).toEqual([]);
    const { topUp } = await engine.topUp('buyer', { creditType: 'database', amount: MAX_CREDITS });
    expect(topUp).toMatchObject({ amount: MAX_CREDITS, remaining: MAX_CREDITS });
  });
});
