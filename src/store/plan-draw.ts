// Where one pool's charge comes from: the plan allowance first, then active
// grants, earliest expiry first. The memory store runs this; lua/charge.lua
// does the same inside Redis, and the contract suite holds them to it.

import type { Grant, PoolCharge } from './credit-store.js';

export interface Draw {
  readonly fits: boolean;
  /** Credits taken: the amount, or less for a hold that took what remained. */
  readonly charged: number;
  /** Shadow pool over its allowance: charged anyway, reported. */
  readonly wouldRefuse: boolean;
  readonly fromPlan: number;
  readonly draws: readonly { readonly grantId: string; readonly amount: number }[];
}

/**
 * `grants` must be active and sorted earliest expiry first. A limit of 0 is a
 * pool outside the plan: only grants fill it, and without an active grant it
 * refuses any charge, even of 0 (shadow mode: reported as `wouldRefuse`).
 */
export function planDraw(pool: PoolCharge, planUsed: number, grants: readonly Grant[]): Draw {
  if (pool.op === 'release') return { fits: true, charged: 0, wouldRefuse: false, fromPlan: 0, draws: [] };
  if (pool.limit === null) return { fits: true, charged: pool.amount, wouldRefuse: false, fromPlan: pool.amount, draws: [] };
  const fromPlan = Math.min(pool.amount, Math.max(0, pool.limit - planUsed));
  let rest = pool.amount - fromPlan;
  const draws: { grantId: string; amount: number }[] = [];
  for (const g of grants) {
    if (rest === 0) break;
    const take = Math.min(rest, g.amount - g.used);
    if (take > 0) {
      draws.push({ grantId: g.id, amount: take });
      rest -= take;
    }
  }
  const notInPlan = pool.limit === 0 && grants.length === 0;
  if (rest === 0 && !notInPlan) return { fits: true, charged: pool.amount, wouldRefuse: false, fromPlan, draws };
  // Shadow mode counts what does not fit as plan usage beyond the limit.
  if (pool.shadow) return { fits: true, charged: pool.amount, wouldRefuse: true, fromPlan: fromPlan + rest, draws };
  // A hold takes what remains when that is enough.
  const min = pool.minAmount ?? pool.amount;
  if (!notInPlan && min < pool.amount && pool.amount - rest >= min) return { fits: true, charged: pool.amount - rest, wouldRefuse: false, fromPlan, draws };
  return { fits: false, charged: 0, wouldRefuse: false, fromPlan, draws: [] };
}
