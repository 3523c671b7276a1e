import { expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory-store.js';
import { storeContract } from './store-contract.js';

storeContract('MemoryStore', async () => {
  const store = new MemoryStore();
  return { stores: [store], close: () => store.close() };
});

it('MemoryStore sweeps expired counters so memory does not grow with dead cycles', async () => {
  let now = 1_000;
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 10 });
  const ctx = { now: 1_000, thresholds: [] };
  await store.charge('a', [{ creditType: 't', op: 'charge', amount: 1, limit: 5, cycleStart: 0, expireAt: 2_000, extras: true }], ctx);
  await store.charge('b', [{ creditType: 't', op: 'charge', amount: 1, limit: 5, cycleStart: 0, expireAt: 0, extras: false }], ctx);
  expect(store.size).toBe(2);
  now = 2_000;
  await new Promise((r) => setTimeout(r, 40));
  expect(store.size).toBe(1);
  await store.close();
});
