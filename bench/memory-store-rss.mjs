// RSS of a process whose MemoryStore has seen N distinct accounts (default
// 1,000,000): the store is bounded, so memory stays flat past maxAccounts.
import { MemoryStore } from '../dist/index.js';

const n = Number(process.argv[2] ?? 1_000_000);
const store = new MemoryStore();
const ctx = { now: Date.now(), thresholds: [0.8, 1] };
const pool = [{ creditType: 'ai_tasks', op: 'charge', amount: 1, limit: 1000, cycleStart: 1_700_000_000_000, expireAt: Date.now() + 3_600_000, extras: true }];
for (let i = 0; i < n; i++) await store.charge(`acct-${i}`, pool, ctx);
// Let V8 collect and give memory back before reading RSS.
for (let i = 0; i < 3; i++) {
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write(JSON.stringify({ accounts: n, held: store.size, rssMB: Math.round(process.memoryUsage().rss / 1048576) }));
await store.close();
