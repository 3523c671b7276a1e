// A request allowed during a store outage may fail or settle lower after
// the store is back and its journal entry was already written — or while it
// is being written. Either way the customer pays exactly what stands.

import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/index.js';
import { CreditEngine } from '../../src/engine/credit-engine.js';
import { StoreError, type CreditStore } from '../../src/store/credit-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const config = loadConfigText(
  `version: 1
defaultPlan: basic
creditTypes:
  ai_tasks: { name: AI Task Credits, onStoreError: { allow: 100 } }
  voice_minutes: { name: Voice Minutes, onStoreError: { allow: 100 } }
plans:
  basic: { ai_tasks: 1000, voice_minutes: 100 }
`,
  'outage.yaml',
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real memory store behind a switch that fails every call like an unreachable store, and can slow charges. */
function switchableStore() {
  const memory = new MemoryStore();
  const state = { down: false, chargeDelayMs: 0 };
  const store = new Proxy(memory, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (state.down) throw new StoreError('down');
        if (prop === 'charge' && state.chargeDelayMs > 0) await sleep(state.chargeDelayMs);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as CreditStore;
  return { store, state };
}

async function waitReplayed(engine: CreditEngine) {
  for (let i = 0; i < 400 && (engine.storeDown || engine.journalSize > 0); i++) await sleep(5);
  expect(engine.storeDown).toBe(false);
  expect(engine.journalSize).toBe(0);
}

describe('outage charges settled after the store is back', () => {
  it('a refund after the replay wrote the charge gives it back in the store', async () => {
    const { store, state } = switchableStore();
    const engine = new CreditEngine({ store, config: () => config, probeIntervalMs: 5 });
    state.down = true;
    const d = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 10 }]);
    expect(d).toMatchObject({ allowed: true, receipt: { journalId: expect.any(Number) } });
    state.down = false;
    await waitReplayed(engine);
    expect((await engine.usage('a'))!.pools.ai_tasks!.used).toBe(10);
    if (d.allowed) await engine.refund(d.receipt, 'upstream_error');
    expect((await engine.usage('a'))!.pools.ai_tasks!.used).toBe(0);
    await engine.close();
  });

  it('a hold settled lower after the replay gives the rest back', async () => {
    const { store, state } = switchableStore();
    const engine = new CreditEngine({ store, config: () => config, probeIntervalMs: 5 });
    state.down = true;
    const settle = { responseHeader: 'x-minutes', divideBy: 1, round: 'up' as const, onIncomplete: 'hold' as const };
    const d = await engine.charge('a', [{ creditType: 'voice_minutes', amount: 15, hold: { minAmount: 1, settle } }]);
    state.down = false;
    await waitReplayed(engine);
    if (d.allowed) await engine.settle(d.receipt, new Map([['voice_minutes', 4]]));
    expect((await engine.usage('a'))!.pools.voice_minutes!.used).toBe(4);
    await engine.close();
  });

  it('a refund that lands while the replay is writing its entry is given back once the write is done', async () => {
    const { store, state } = switchableStore();
    const engine = new CreditEngine({ store, config: () => config, probeIntervalMs: 5 });
    state.down = true;
    const first = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 10 }]);
    const second = await engine.charge('a', [{ creditType: 'ai_tasks', amount: 7 }]);
    state.chargeDelayMs = 100;
    state.down = false;
    // The replay is now writing the first entry, slowly; the second request fails meanwhile.
    await sleep(40);
    if (second.allowed) await engine.refund(second.receipt, 'upstream_error');
    await waitReplayed(engine);
    state.chargeDelayMs = 0;
    expect((await engine.usage('a'))!.pools.ai_tasks!.used).toBe(10);
    if (first.allowed) await engine.refund(first.receipt, 'upstream_error');
    expect((await engine.usage('a'))!.pools.ai_tasks!.used).toBe(0);
    await engine.close();
  });
});
