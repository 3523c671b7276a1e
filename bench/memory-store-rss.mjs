// The memory store with N distinct accounts (default 1,000,000, its default
// bound), each charged twice on two pools with amounts known from its
// number: prints RSS and heap after forced collections (and again after a
// memory-reducing one, which returns V8's young generation), then checks a
// random sample of 10,000 accounts' usage against what was charged, and that
// one more account is refused (store-full) while the others still charge.
// Exits non-zero on any mismatch.
//
//   npm run build && node --expose-gc bench/memory-store-rss.mjs [accounts]
//
// Prints one JSON line (bench/run.mjs reads it).
import { getHeapSpaceStatistics } from 'node:v8';
import { MemoryStore, StoreFullError } from '../dist/index.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const n = Number(process.argv[2] ?? 1_000_000);
const collect = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 100));
  }
};
await collect();
const baseline = process.memoryUsage();
const SAMPLE = Math.min(10_000, n);
const CYCLE = Date.UTC(2026, 0, 1);
const EXPIRE = Date.now() + 30 * 24 * 3600_000;
const store = new MemoryStore({ maxAccounts: n });
const ctx = { now: Date.now(), thresholds: [0.8, 1] };
const pool = (creditType, amount) => ({ creditType, op: 'charge', amount, limit: 10_000, cycleStart: CYCLE, expireAt: EXPIRE, extras: true });
// Known amounts: two charges per pool, each a function of the account's number.
const amounts = (i) => ({ ai: 1 + (i % 97), db: 1 + ((i * 7) % 89) });
const id = (i) => `acct-${i}`;

const started = Date.now();
for (let i = 0; i < n; i++) {
  const { ai, db } = amounts(i);
  await store.charge(id(i), [pool('ai_tasks', ai), pool('database', db)], ctx);
}
for (let i = 0; i < n; i++) {
  const { ai, db } = amounts(i);
  await store.charge(id(i), [pool('ai_tasks', ai), pool('database', db)], ctx);
}
const chargeSeconds = (Date.now() - started) / 1000;

// Let V8 collect and give memory back before reading RSS.
await collect();
const mem = process.memoryUsage();
const mb = (b) => Math.round((b / 1048576) * 10) / 10;
// V8's young generation, grown by the two million charges (a busy process's
// nursery, not the store's): what a memory-reducing collection gives back.
const youngMB = () => mb(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0);
const youngAfterLoad = youngMB();
globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
await new Promise((r) => setTimeout(r, 100));
const reduced = process.memoryUsage();

// A random sample, every account's two pools checked exactly.
let mismatches = 0;
const keys = [
  { creditType: 'ai_tasks', cycleStart: CYCLE },
  { creditType: 'database', cycleStart: CYCLE },
];
for (let s = 0; s < SAMPLE; s++) {
  const i = Math.floor(Math.random() * n);
  const { ai, db } = amounts(i);
  const [u, d] = await store.usage(id(i), keys, Date.now());
  if (u.planUsed !== 2 * ai || d.planUsed !== 2 * db) {
    mismatches += 1;
    if (mismatches <= 5) console.error(`mismatch at ${id(i)}: ai_tasks ${u.planUsed} (want ${2 * ai}), database ${d.planUsed} (want ${2 * db})`);
  }
}
// At the bound: one more account is refused; an account held still charges.
let storeFullAtBound = false;
try {
  await store.charge('one-more', [pool('ai_tasks', 1)], ctx);
} catch (err) {
  storeFullAtBound = err instanceof StoreFullError;
}
const heldStillCharges = (await store.charge(id(0), [pool('ai_tasks', 1)], ctx)).ok;

const result = {
  accounts: n,
  held: store.size,
  poolsPerAccount: 2,
  rssMB: mb(mem.rss),
  heapUsedMB: mb(mem.heapUsed),
  heapTotalMB: mb(mem.heapTotal),
  arrayBuffersMB: mb(mem.arrayBuffers),
  youngGenerationMB: youngAfterLoad,
  rssAfterMemoryReducingGcMB: mb(reduced.rss),
  youngGenerationAfterMemoryReducingGcMB: youngMB(),
  // What the store added to the heap and to typed arrays, per account.
  bytesPerAccount: Math.round((mem.heapUsed + mem.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers) / n),
  chargeSeconds,
  sampled: SAMPLE,
  mismatches,
  storeFullAtBound,
  heldStillCharges,
  node: process.version,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
await store.close();
if (mismatches > 0 || store.size !== n || !storeFullAtBound || !heldStillCharges) process.exitCode = 1;
