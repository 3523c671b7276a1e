// Pure pool math: how a request's costs become store charges, and how a
// pool's stored state reads as used / allowance / remaining / reset. No I/O.

import type { CompiledConfig, PlanDef } from '../config/compiled-config.js';
import { quotaOf } from '../config/compiled-config.js';
import type { BillingCycle } from '../domain/billing-cycle.js';
import { isCreditAmount, MAX_CREDITS_TEXT } from '../domain/credit-amount.js';
import type { PoolCharge, PoolState } from '../store/credit-store.js';
import type { CostLine, PoolStatus, ReceiptLine } from './types.js';

/**
 * How long a counter outlives its cycle. A request charged just before the
 * reset may still be refunded or settled just after it, and its key must
 * still be there to take that.
 */
export const COUNTER_GRACE_MS = 24 * 3600 * 1000;

export type MergedLine = CostLine & { readonly op: 'charge' | 'release' };

export function isCapacity(config: CompiledConfig, creditType: string): boolean {
  return config.creditTypes.get(creditType)?.kind === 'capacity';
}

/**
 * One line per credit type and op, in first-seen order: a pool is charged
 * once per request. Costs from the config never exceed MAX_CREDITS (the
 * schema bounds every rule); cost lines a library caller makes up are held to
 * it here, before anything reaches a store (RangeError: a caller's bug).
 */
export function mergeCosts(costs: readonly CostLine[]): MergedLine[] {
  const totals = new Map<string, MergedLine>();
  for (const c of costs) {
    const op = c.op ?? 'charge';
    const key = `${op}:${c.creditType}`;
    const prev = totals.get(key);
    const amount = (prev?.amount ?? 0) + c.amount;
    if (!isCreditAmount(amount)) throw new RangeError(`${c.creditType}: a cost must be a whole number from 0 to ${MAX_CREDITS_TEXT}, got ${amount}`);
    totals.set(key, { creditType: c.creditType, op, amount, ...((c.hold ?? prev?.hold) ? { hold: c.hold ?? prev!.hold! } : {}) });
  }
  return [...totals.values()];
}

/** One pool of a charge as the store takes it. */
export function poolCharge(config: CompiledConfig, plan: PlanDef, cycle: BillingCycle, c: MergedLine, shadow: boolean): PoolCharge {
  const capacity = isCapacity(config, c.creditType);
  return {
    creditType: c.creditType,
    op: c.op,
    amount: c.amount,
    limit: quotaOf(plan, c.creditType),
    // Capacity counts connected things: one counter for all time, no TTL.
    cycleStart: capacity ? 0 : cycle.start,
    expireAt: capacity ? 0 : cycle.end + COUNTER_GRACE_MS,
    extras: !capacity,
    shadow,
    ...(c.hold ? { minAmount: Math.min(c.hold.minAmount, c.amount) } : {}),
  };
}

/** A release noted at admission: `charged` is what a confirmed release will give back. */
export function pendingRelease(c: MergedLine): ReceiptLine {
  return { creditType: c.creditType, op: 'release', cycleStart: 0, planDelta: 0, draws: [], charged: c.amount };
}

/** A pool as a client sees it: what it used, what it may use, and when it resets. */
export function poolStatus(config: CompiledConfig, plan: PlanDef, cycle: BillingCycle, cost: MergedLine, state: PoolState): PoolStatus {
  const def = config.creditTypes.get(cost.creditType);
  const capacity = def?.kind === 'capacity';
  const quota = quotaOf(plan, cost.creditType);
  // Outside the plan with an active top-up: a consumable like any other, filled by the top-ups only.
  const topUpsOnly = !capacity && quota === 0;
  let used: number;
  let allowance: number | null;
  let remaining: number | null;
  if (quota === null) {
    used = state.planUsed + state.grantUsed;
    allowance = null;
    remaining = null;
  } else if (capacity) {
    // A capacity pool shows the real count, even above a downgraded plan.
    used = state.planUsed;
    allowance = quota;
    remaining = Math.max(0, quota - used);
  } else {
    // Plan usage above the plan (after a downgrade) shows as the plan used
    // up, so that remaining = allowance - used is exactly what can be spent.
    used = Math.min(state.planUsed, quota) + state.grantUsed;
    allowance = quota + state.grantTotal;
    remaining = allowance - used;
  }
  return {
    creditType: cost.creditType,
    name: def?.name ?? cost.creditType,
    op: cost.op,
    required: cost.amount,
    used,
    allowance,
    remaining,
    // A pool outside the plan without a top-up never resets into it: only a plan change or a top-up helps.
    resetsAt: capacity || (quota === 0 && state.grantTotal === 0) ? null : cycle.end,
    windowSeconds: capacity ? null : Math.round((cycle.end - cycle.start) / 1000),
    topUp: def?.topUp ?? null,
    ...(topUpsOnly ? { topUpsOnly } : {}),
  };
}
