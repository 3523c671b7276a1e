// Whether an explained request would pass for one account right now, judged
// from the account's usage as the admin API reports it: which pool would
// refuse it, and why (exhausted, or not in the plan). Shadow mode lets a
// would-be refusal through, as the engine does.

import { isShadow, type CompiledConfig } from '../config/compiled-config.js';
import type { UsageView } from '../engine/types.js';
import type { Explanation } from './explain.js';

export interface PoolVerdict {
  readonly creditType: string;
  readonly required: number;
  readonly remaining: number | null;
  /** Why this pool would refuse; absent when it would not. */
  readonly refuse?: 'exhausted' | 'not-in-plan';
  /** A refusal that shadow mode would only log. */
  readonly shadow?: true;
  /** A hold that would be cut to what remains (at least its minReserve). */
  readonly heldOnly?: number;
}

export interface Verdict {
  readonly account: string;
  readonly plan: string;
  readonly pass: boolean;
  readonly reason?: string;
  readonly pools: readonly PoolVerdict[];
}

export function judgeAgainstUsage(config: CompiledConfig, e: Explanation, usage: UsageView, now: number): Verdict {
  const route = e.route ? config.routeList[e.route.index] : undefined;
  const pools: PoolVerdict[] = [];
  // Releases give capacity back and are never refused.
  for (const c of (e.charges ?? []).filter((x) => x.op !== 'release')) {
    const pool = usage.pools[c.creditType];
    const remaining = pool?.remaining ?? 0;
    // A hold takes what remains down to its minimum, as the engine does.
    const needed = c.hold ? Math.min(c.amount, c.minReserve ?? 1) : c.amount;
    let refuse: PoolVerdict['refuse'];
    if (pool?.remaining === null) refuse = undefined;
    else if (!pool || pool.allowance === 0) refuse = 'not-in-plan';
    else if (remaining < needed) refuse = 'exhausted';
    const shadow = refuse !== undefined && isShadow(config, route, c.creditType, now);
    const cut = c.hold === true && refuse === undefined && pool !== undefined && pool.remaining !== null && pool.remaining < c.amount;
    pools.push({
      creditType: c.creditType,
      required: c.amount,
      remaining: pool?.remaining ?? 0,
      ...(refuse ? { refuse } : {}),
      ...(shadow ? { shadow: true as const } : {}),
      ...(cut ? { heldOnly: remaining } : {}),
    });
  }
  const refusing = pools.filter((p) => p.refuse && !p.shadow);
  const reason = refusing.map((p) => `${p.creditType} ${p.refuse} (needs ${p.required}, ${p.remaining} left)`).join('; ');
  return { account: usage.account, plan: usage.plan, pass: refusing.length === 0, ...(reason ? { reason } : {}), pools };
}
