// RedisStore ≡ MemoryStore: random sequences of charges (multi-pool, shadow,
// holds, idempotency keys), refunds (full and partial), top-ups, releases,
// completions and clock moves give the same outcomes and the same usage on
// both. The seed is fixed unless FC_SEED is set, and printed; a failure
// shows the shortest sequence that breaks the property.
//
// Amounts, limits and top-ups run from a few credits up to MAX_CREDITS, and
// top-ups may expire as late as the year 9999 (15-digit epoch ms). Each pool
// of a charge finds its cycle as the engine does: from a billing anchor with
// random milliseconds (an anchor moved by less than a second between
// charges), through parseAnchor and cycleContaining.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cycleContaining, parseAnchor } from '../../src/domain/billing-cycle.js';
import { MAX_CREDITS } from '../../src/domain/credit-amount.js';
import { splitRefund } from '../../src/engine/refund-split.js';
import type { ChargeOutcome, CreditStore, PoolCharge } from '../../src/store/credit-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { fcSeed } from '../helpers/fc-seed.js';
import { redisUrl } from '../helpers/test-redis.js';

const TYPES = ['a', 'b'] as const;
/** Two accounts' anchors, whole seconds; each use adds random milliseconds. */
const ANCHORS = ['2025-01-31T09:00:00', '2024-02-29T17:30:05'] as const;
/** The last millisecond of the year 9999. */
const FAR = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Mostly small (pools run out and spill into grants), sometimes at or near the maximum. */
const credits = (min: number, small: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min, max: small }) },
    { weight: 1, arbitrary: fc.integer({ min: MAX_CREDITS - small, max: MAX_CREDITS }) },
    { weight: 1, arbitrary: fc.integer({ min, max: MAX_CREDITS }) },
  );
const poolArb = fc.record({
  type: fc.constantFrom(...TYPES),
  amount: credits(0, 30),
  limit: fc.option(credits(0, 60), { nil: null, freq: 5 }),
  shadow: fc.boolean(),
  hold: fc.option(credits(1, 30), { nil: undefined }),
  anchor: fc.constantFrom(0, 1),
  anchorMs: fc.integer({ min: 0, max: 999 }),
});
const cycleStartOf = (anchor: number, ms: number, now: number) => cycleContaining(parseAnchor(`${ANCHORS[anchor]}.${String(ms).padStart(3, '0')}Z`), now).start;
const opArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('charge' as const),
      pools: fc.uniqueArray(poolArb, { minLength: 1, maxLength: 2, selector: (p) => p.type }),
      idem: fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refund' as const), which: fc.nat(), part: fc.option(credits(0, 30), { nil: undefined }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('topup' as const),
      type: fc.constantFrom(...TYPES),
      amount: credits(1, 20),
      expiresIn: fc.integer({ min: 1, max: 120 }),
      far: fc.boolean(),
      idem: fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('capacity' as const), release: fc.boolean(), amount: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('complete' as const), which: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 60 }) }) },
);

const seed = fcSeed('store equivalence', 20261125);

const stores: CreditStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

async function runOn(store: CreditStore, ops: Op[], t0: number) {
  const account = 'acct';
  let now = t0;
  const expireAt = Date.now() + 3_600_000;
  const charges: { outcome: ChargeOutcome; pools: PoolCharge[]; idem?: { key: string; claim: string } }[] = [];
  const trace: unknown[] = [];
  for (const [i, op] of ops.entries()) {
    if (op.kind === 'tick') {
      now += op.ms;
    } else if (op.kind === 'charge') {
      const pools: PoolCharge[] = op.pools.map((p) => ({
        creditType: p.type,
        op: 'charge',
        amount: p.amount,
        limit: p.limit,
        cycleStart: cycleStartOf(p.anchor, p.anchorMs, now),
        expireAt,
        extras: true,
        shadow: p.shadow,
        ...(p.hold !== undefined ? { minAmount: Math.min(p.hold, p.amount) } : {}),
      }));
      const outcome = await store.charge(account, pools, {
        now,
        thresholds: [0.5, 1],
        ...(op.idem ? { idempotency: { key: op.idem, claim: `claim-${i}`, fingerprint: `fp-${op.idem}`, pendingTtlMs: 3_600_000 } } : {}),
      });
      if (outcome.ok) charges.push({ outcome, pools, ...(op.idem ? { idem: { key: op.idem, claim: `claim-${i}` } } : {}) });
      trace.push(outcome);
    } else if (op.kind === 'refund') {
      const c = charges[op.which % Math.max(1, charges.length)];
      if (!c) continue;
      const lines = c.outcome.pools.map((p, j) => {
        const line = { creditType: p.creditType, cycleStart: c.pools[j]!.cycleStart, planDelta: p.planDelta, draws: p.draws };
        return op.part === undefined ? line : splitRefund(line, Math.min(op.part, p.charged));
      });
      await store.refund(account, lines, op.part === undefined && c.idem ? { idempotency: c.idem } : {});
    } else if (op.kind === 'topup') {
      const r = await store.addGrant(
        account,
        { id: `g${i}`, creditType: op.type, amount: op.amount, expiresAt: op.far ? FAR - op.expiresIn : now + op.expiresIn, createdAt: now },
        { now, idempotencyTtlMs: 3_600_000, ...(op.idem ? { idempotencyKey: op.idem } : {}) },
      );
      trace.push(r);
    } else if (op.kind === 'capacity') {
      trace.push(
        await store.charge(
          account,
          [{ creditType: 'cap', op: op.release ? 'release' : 'charge', amount: op.amount, limit: 4, cycleStart: 0, expireAt: 0, extras: false }],
          { now, thresholds: [] },
        ),
      );
    } else if (op.kind === 'complete') {
      const c = charges[op.which % Math.max(1, charges.length)];
      if (c?.idem) trace.push(await store.completeIdempotency(account, c.idem, 3_600_000));
    }
  }
  const usage = await store.usage(
    account,
    [...TYPES.flatMap((t) => [0, 1].map((a) => ({ creditType: t, cycleStart: cycleStartOf(a, 0, now) }))), { creditType: 'cap', cycleStart: 0 }],
    now,
  );
  return { trace, usage };
}

describe('RedisStore ≡ MemoryStore (property-based)', () => {
  it('the same operations give the same outcomes and the same final usage', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const memory = new MemoryStore();
        const redis = new RedisStore({ url: redisUrl(), prefix: `cgprop:${randomUUID().slice(0, 8)}`, timeoutMs: 5000 });
        stores.push(memory, redis);
        await redis.ready();
        const t0 = Date.now();
        const [m, r] = [await runOn(memory, ops, t0), await runOn(redis, ops, t0)];
        expect(r.trace).toEqual(m.trace);
        expect(r.usage).toEqual(m.usage);
      }),
      { numRuns: 60, seed },
    );
  });
});
