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

it('MemoryStore is bounded: beyond maxAccounts the least recently used account is forgotten', async () => {
  const store = new MemoryStore({ maxAccounts: 3 });
  const ctx = { now: Date.now(), thresholds: [] };
  const line = { creditType: 't', op: 'charge' as const, amount: 1, limit: 5, cycleStart: 0, expireAt: 0, extras: true };
  for (const a of ['a', 'b', 'c']) await store.charge(a, [line], ctx);
  await store.charge('a', [line], ctx); // a is now the most recently used
  await store.charge('d', [line], ctx); // b goes
  expect(store.size).toBe(3);
  const used = async (a: string) => (await store.usage(a, [{ creditType: 't', cycleStart: 0 }], Date.now()))[0]!.planUsed;
  expect([await used('a'), await used('b'), await used('c'), await used('d')]).toEqual([2, 0, 1, 1]);
  await store.close();
});
