// The charge path on the memory store, through the engine's public face:
// plan first then top-ups, not-in-plan, all or nothing across pools, holds,
// shadow mode, releases noted for later, idempotent duplicates, and the
// per-replica refusal cache. Written before the engine was split into rooms,
// so the split is made under them.

import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/index.js';
import { CreditEngine } from '../../src/engine/credit-engine.js';
import type { CreditStore } from '../../src/store/credit-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const CONFIG = `version: 1
defaultPlan: basic
creditTypes:
  ai_tasks: { name: AI Task Credits }
  database: { name: Database Credits }
  voice_minutes: { name: Voice Minutes }
  mailboxes: { name: Mailboxes, kind: capacity }
plans:
  basic: { ai_tasks: 10, database: 5, mailboxes: 1 }
  big: { ai_tasks: unlimited, database: 100, voice_minutes: 60, mailboxes: 5 }
routes: []
`;

function engineOn(config = CONFIG) {
  const memory = new MemoryStore();
  let charges = 0;
  // The real memory store, counting the charge calls that reach it.
  const store: CreditStore = Object.assign(Object.create(memory) as CreditStore, {
    charge: (...args: Parameters<CreditStore['charge']>) => {
      charges += 1;
      return memory.charge(...args);
    },
  });
  const compiled = loadConfigText(config, 'test.yaml');
  const engine = new CreditEngine({ store, config: () => compiled });
  return { engine, store: memory, charges: () => charges };
}

describe('the charge path (memory store)', () => {
  it('spends the plan first, then top-ups; refuses what does not fit with the pool as it stands', async () => {
    const { engine } = engineOn();
    expect((await engine.charge('a', [{ creditType: 'ai_tasks', amount: 8 }])).allowed).toBe(true);
    await engine.topUp('a', { creditType: 'ai_tasks', amount: 5 });
    const d = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 6 }]);
    expect(d.allowed).toBe(true);
    if (!d.allowed) return;
    expect(d.pools[0]).toMatchObject({ creditType: 'ai_tasks', used: 14, allowance: 15, remaining: 1 });
    expect(d.receipt.lines[0]).toMatchObject({ planDelta: 2, charged: 6 });
    expect(d.receipt.lines[0]!.draws.reduce((s, x) => s + x.amount, 0)).toBe(4);
    const refused = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 2 }]);
    expect(refused).toMatchObject({ allowed: false, reason: 'exhausted', short: [{ creditType: 'ai_tasks', required: 2, remaining: 1 }] });
  });

  it('a pool outside the plan is not-in-plan, and nothing else of the request is charged', async () => {
    const { engine } = engineOn();
    const d = await engine.charge('a', [
      { creditType: 'ai_tasks', amount: 1 },
      { creditType: 'voice_minutes', amount: 1 },
    ]);
    expect(d).toMatchObject({ allowed: false, reason: 'not-in-plan', short: [{ creditType: 'voice_minutes' }] });
    expect((await engine.usage('a'))?.pools.ai_tasks?.used).toBe(0);
  });

  it('all or nothing across pools', async () => {
    const { engine } = engineOn();
    await engine.charge('a', [{ creditType: 'database', amount: 5 }]);
    const d = await engine.charge('a', [
      { creditType: 'ai_tasks', amount: 3 },
      { creditType: 'database', amount: 1 },
    ]);
    expect(d).toMatchObject({ allowed: false, reason: 'exhausted', short: [{ creditType: 'database' }] });
    expect((await engine.usage('a'))?.pools.ai_tasks?.used).toBe(0);
  });

  it('a hold takes what remains down to its minimum, and settles to less', async () => {
    const { engine } = engineOn();
    await engine.saveAccount('a', { plan: 'big' });
    await engine.charge('a', [{ creditType: 'voice_minutes', amount: 50 }]);
    const settle = { responseHeader: 'x-minutes', divideBy: 1, round: 'up' as const, onIncomplete: 'hold' as const };
    const d = await engine.charge('a', [{ creditType: 'voice_minutes', amount: 15, hold: { minAmount: 5, settle } }]);
    expect(d.allowed).toBe(true);
    if (!d.allowed) return;
    expect(d.receipt.lines[0]!.charged).toBe(10);
    await engine.settle(d.receipt, new Map([['voice_minutes', 4]]));
    expect((await engine.usage('a'))?.pools.voice_minutes?.used).toBe(54);
  });

  it('shadow mode never refuses, and says what would have been refused', async () => {
    const { engine } = engineOn(CONFIG.replace('defaultPlan: basic', 'defaultPlan: basic\nmode: shadow'));
    await engine.charge('a', [{ creditType: 'ai_tasks', amount: 10 }]);
    const d = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 3 }]);
    expect(d.allowed).toBe(true);
    if (!d.allowed) return;
    expect(d.shadowDenied).toMatchObject([{ reason: 'exhausted', pool: { creditType: 'ai_tasks' } }]);
  });

  it('a release is only noted on the receipt; release() gives the capacity back', async () => {
    const { engine } = engineOn();
    expect((await engine.charge('a', [{ creditType: 'mailboxes', amount: 1 }])).allowed).toBe(true);
    const d = await engine.charge('a', [{ creditType: 'mailboxes', amount: 1, op: 'release' }]);
    expect(d.allowed).toBe(true);
    if (!d.allowed) return;
    expect((await engine.usage('a'))?.pools.mailboxes?.used).toBe(1);
    await engine.release(d.receipt);
    expect((await engine.usage('a'))?.pools.mailboxes?.used).toBe(0);
  });

  it('the same idempotency key and request is a duplicate; another request with it is refused', async () => {
    const { engine } = engineOn();
    const first = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 2 }], { idempotency: { key: 'k', fingerprint: 'f1' } });
    expect(first.allowed).toBe(true);
    expect(await engine.charge('a', [{ creditType: 'ai_tasks', amount: 2 }], { idempotency: { key: 'k', fingerprint: 'f1' } })).toMatchObject({
      allowed: false,
      reason: 'duplicate',
      state: 'pending',
    });
    expect(await engine.charge('a', [{ creditType: 'ai_tasks', amount: 9 }], { idempotency: { key: 'k', fingerprint: 'f2' } })).toEqual({
      allowed: false,
      reason: 'idempotency-key-reused',
    });
    if (first.allowed) await engine.refund(first.receipt, 'upstream_error');
    expect((await engine.usage('a'))?.pools.ai_tasks?.used).toBe(0);
    await engine.close();
  });

  it('a pool found empty is refused from memory the next time, until a top-up', async () => {
    const { engine, charges } = engineOn();
    await engine.start();
    await engine.charge('a', [{ creditType: 'ai_tasks', amount: 10 }]);
    expect((await engine.charge('a', [{ creditType: 'ai_tasks', amount: 1 }])).allowed).toBe(false);
    const before = charges();
    expect((await engine.charge('a', [{ creditType: 'ai_tasks', amount: 1 }])).allowed).toBe(false);
    expect(charges()).toBe(before);
    await engine.topUp('a', { creditType: 'ai_tasks', amount: 1 });
    expect((await engine.charge('a', [{ creditType: 'ai_tasks', amount: 1 }])).allowed).toBe(true);
    await engine.close();
  });

  it('an unknown plan or account is its own refusal', async () => {
    const { engine } = engineOn(CONFIG.replace('defaultPlan: basic\n', ''));
    expect(await engine.charge('nobody', [{ creditType: 'ai_tasks', amount: 1 }])).toEqual({ allowed: false, reason: 'unknown-account', accountId: 'nobody' });
    expect(await engine.charge('a', [{ creditType: 'ai_tasks', amount: 1 }], { plan: 'gold' })).toEqual({
      allowed: false,
      reason: 'unknown-plan',
      accountId: 'a',
      plan: 'gold',
    });
  });
});
