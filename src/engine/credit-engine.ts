// The decisions every adapter shares: which plan and cycle apply to an
// account, what a charge would do to each pool, and what usage looks like.
// I/O goes through the CreditStore; everything else is pure domain code.

import type { CompiledConfig, PlanDef } from '../config/compiled-config.js';
import { quotaOf } from '../config/compiled-config.js';
import {
  CALENDAR_MONTH_ANCHOR_ISO,
  cycleContaining,
  parseAnchor,
  type BillingAnchor,
  type BillingCycle,
} from '../domain/billing-cycle.js';
import type { AccountRecord, CreditStore, PoolCharge } from '../store/credit-store.js';

/**
 * How long a counter outlives its cycle. A request charged just before the
 * reset may still be refunded or settled just after it, and its key must
 * still be there to take that.
 */
export const COUNTER_GRACE_MS = 24 * 3600 * 1000;

const CALENDAR_MONTH = parseAnchor(CALENDAR_MONTH_ANCHOR_ISO);

export interface ResolvedAccount {
  readonly id: string;
  readonly plan: PlanDef;
  /** null: no record, served on the default plan with calendar-month cycles. */
  readonly record: AccountRecord | null;
  readonly anchor: BillingAnchor;
}

export interface CostLine {
  readonly creditType: string;
  readonly amount: number;
}

export interface PoolStatus {
  readonly creditType: string;
  readonly name: string;
  /** What this request asked of the pool. */
  readonly required: number;
  readonly used: number;
  /** null = unlimited. */
  readonly allowance: number | null;
  readonly remaining: number | null;
  /** Epoch ms of the next reset; null for pools that never reset. */
  readonly resetsAt: number | null;
  /** Cycle length in seconds, null for pools that never reset. */
  readonly windowSeconds: number | null;
}

export type ChargeDecision =
  | { readonly allowed: true; readonly account: ResolvedAccount; readonly pools: readonly PoolStatus[] }
  | {
      readonly allowed: false;
      readonly reason: 'exhausted' | 'not-in-plan';
      readonly account: ResolvedAccount;
      /** The pools that refused the charge, in route order. */
      readonly short: readonly PoolStatus[];
    }
  | { readonly allowed: false; readonly reason: 'unknown-account'; readonly accountId: string }
  | { readonly allowed: false; readonly reason: 'unknown-plan'; readonly accountId: string; readonly plan: string };

export type ChargeRefusal = Exclude<ChargeDecision, { allowed: true }>;

export interface UsageView {
  readonly account: string;
  readonly plan: string;
  /** false when served on the default plan without a record. */
  readonly known: boolean;
  readonly cycle: { readonly start: string; readonly end: string };
  readonly pools: Readonly<Record<string, { used: number; allowance: number | null; remaining: number | null; resetsAt: string | null }>>;
}

export interface CreditEngineOptions {
  readonly store: CreditStore;
  /** Returns the config in force; read once per decision so a reload never splits one. */
  readonly config: () => CompiledConfig;
  readonly now?: () => number;
}

export class CreditEngine {
  readonly store: CreditStore;
  private readonly config: () => CompiledConfig;
  private readonly now: () => number;

  constructor(options: CreditEngineOptions) {
    this.store = options.store;
    this.config = options.config;
    this.now = options.now ?? Date.now;
  }

  currentConfig(): CompiledConfig {
    return this.config();
  }

  async resolveAccount(
    accountId: string,
    config: CompiledConfig = this.config(),
  ): Promise<ResolvedAccount | { unknown: 'account' } | { unknown: 'plan'; plan: string }> {
    const record = await this.store.getAccount(accountId);
    if (record) {
      const plan = config.plans.get(record.plan);
      if (!plan) return { unknown: 'plan', plan: record.plan };
      return { id: accountId, plan, record, anchor: parseAnchor(record.billingAnchor) };
    }
    const fallback = config.defaultPlan === undefined ? undefined : config.plans.get(config.defaultPlan);
    if (!fallback) return { unknown: 'account' };
    return { id: accountId, plan: fallback, record: null, anchor: CALENDAR_MONTH };
  }

  async charge(accountId: string, costs: readonly CostLine[], config: CompiledConfig = this.config()): Promise<ChargeDecision> {
    const resolved = await this.resolveAccount(accountId, config);
    if ('unknown' in resolved) {
      return resolved.unknown === 'account'
        ? { allowed: false, reason: 'unknown-account', accountId }
        : { allowed: false, reason: 'unknown-plan', accountId, plan: resolved.plan };
    }
    const now = this.now();
    const cycle = cycleContaining(resolved.anchor, now);
    const merged = mergeCosts(costs);

    const notInPlan = merged.filter((c) => quotaOf(resolved.plan, c.creditType) === 0);
    if (notInPlan.length > 0) {
      return {
        allowed: false,
        reason: 'not-in-plan',
        account: resolved,
        short: notInPlan.map((c) => this.status(config, resolved.plan, cycle, c, 0)),
      };
    }

    const pools: PoolCharge[] = merged.map((c) => {
      const capacity = config.creditTypes.get(c.creditType)?.kind === 'capacity';
      return {
        creditType: c.creditType,
        amount: c.amount,
        limit: quotaOf(resolved.plan, c.creditType),
        // Capacity counts connected things: one counter for all time, no TTL.
        cycleStart: capacity ? 0 : cycle.start,
        expireAt: capacity ? 0 : cycle.end + COUNTER_GRACE_MS,
      };
    });
    const outcome = await this.store.charge(accountId, pools);
    const statuses = merged.map((c, i) => this.status(config, resolved.plan, cycle, c, outcome.pools[i]!.used));
    if (outcome.ok) return { allowed: true, account: resolved, pools: statuses };
    return {
      allowed: false,
      reason: 'exhausted',
      account: resolved,
      short: statuses.filter((s) => s.remaining !== null && s.remaining < s.required),
    };
  }

  async usage(accountId: string, config: CompiledConfig = this.config()): Promise<UsageView | null> {
    const resolved = await this.resolveAccount(accountId, config);
    if ('unknown' in resolved) return null;
    const now = this.now();
    const cycle = cycleContaining(resolved.anchor, now);
    const types = [...resolved.plan.quotas.entries()].filter(([, q]) => q !== 0).map(([t]) => t);
    const used = await this.store.usage(
      accountId,
      types.map((t) => ({ creditType: t, cycleStart: config.creditTypes.get(t)?.kind === 'capacity' ? 0 : cycle.start })),
    );
    const pools: UsageView['pools'] = Object.fromEntries(
      types.map((t, i) => {
        const s = this.status(config, resolved.plan, cycle, { creditType: t, amount: 0 }, used[i]!);
        return [t, { used: s.used, allowance: s.allowance, remaining: s.remaining, resetsAt: isoOrNull(s.resetsAt) }];
      }),
    );
    return {
      account: accountId,
      plan: resolved.plan.id,
      known: resolved.record !== null,
      cycle: { start: new Date(cycle.start).toISOString(), end: new Date(cycle.end).toISOString() },
      pools,
    };
  }

  private status(config: CompiledConfig, plan: PlanDef, cycle: BillingCycle, cost: CostLine, used: number): PoolStatus {
    const allowance = quotaOf(plan, cost.creditType);
    const capacity = config.creditTypes.get(cost.creditType)?.kind === 'capacity';
    return {
      creditType: cost.creditType,
      name: config.creditTypes.get(cost.creditType)?.name ?? cost.creditType,
      required: cost.amount,
      used,
      allowance,
      remaining: allowance === null ? null : Math.max(0, allowance - used),
      // A pool outside the plan never resets into it: only a plan change helps.
      resetsAt: capacity || allowance === 0 ? null : cycle.end,
      windowSeconds: capacity ? null : Math.round((cycle.end - cycle.start) / 1000),
    };
  }
}

/** One line per credit type, in first-seen order: a pool is charged once per request. */
function mergeCosts(costs: readonly CostLine[]): CostLine[] {
  const totals = new Map<string, number>();
  for (const c of costs) totals.set(c.creditType, (totals.get(c.creditType) ?? 0) + c.amount);
  return [...totals].map(([creditType, amount]) => ({ creditType, amount }));
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
