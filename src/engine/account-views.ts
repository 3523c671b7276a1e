// What the admin API, the CLI and the usage page read about an account: the
// billing tab (each pool's used / allowance / remaining / reset), its active
// top-ups, its record and its alert events.

import type { CompiledConfig } from '../config/compiled-config.js';
import { quotaOf } from '../config/compiled-config.js';
import { cycleContaining } from '../domain/billing-cycle.js';
import { forecast } from '../domain/forecast.js';
import type { AccountRecord, AlertEvent, CreditStore, Grant } from '../store/credit-store.js';
import type { AccountDirectory } from './account-directory.js';
import { isCapacity, poolStatus } from './pool-status.js';
import type { PoolUsageView, TopUpView, UsageView } from './types.js';

export class AccountViews {
  constructor(
    private readonly store: CreditStore,
    private readonly directory: AccountDirectory,
    private readonly now: () => number,
  ) {}

  async usage(accountId: string, config: CompiledConfig): Promise<UsageView | null> {
    const resolved = await this.directory.resolve(accountId, config);
    if ('unknown' in resolved) return null;
    const now = this.now();
    const cycle = cycleContaining(resolved.anchor, now);
    // The plan's pools, then consumables outside the plan, listed while a top-up of them is active.
    const types = [
      ...[...resolved.plan.quotas.entries()].filter(([, q]) => q !== 0).map(([t]) => t),
      ...[...config.creditTypes.values()].filter((d) => d.kind === 'consumable' && quotaOf(resolved.plan, d.id) === 0).map((d) => d.id),
    ];
    const states = await this.store.usage(
      accountId,
      types.map((t) => ({ creditType: t, cycleStart: isCapacity(config, t) ? 0 : cycle.start })),
      now,
    );
    const pools: Record<string, PoolUsageView> = {};
    types.forEach((t, i) => {
      const state = states[i]!;
      if (quotaOf(resolved.plan, t) === 0 && state.grantTotal === 0) return;
      const s = poolStatus(config, resolved.plan, cycle, { creditType: t, amount: 0, op: 'charge' }, state);
      const kind = config.creditTypes.get(t)?.kind ?? 'consumable';
      const f = kind === 'consumable' ? forecast({ used: s.used, remaining: s.remaining, cycleStart: cycle.start, resetsAt: cycle.end, now }) : null;
      pools[t] = {
        used: s.used,
        allowance: s.allowance,
        remaining: s.remaining,
        resetsAt: s.resetsAt === null ? null : new Date(s.resetsAt).toISOString(),
        name: s.name,
        kind,
        planAllowance: quotaOf(resolved.plan, t),
        topUpRemaining: state.grantTotal - state.grantUsed,
        topUp: s.topUp,
        ...(f && {
          forecast: {
            // Two decimals: a pace, not an accounting figure.
            ratePerDay: f.ratePerDay === null ? null : Math.round(f.ratePerDay * 100) / 100,
            exhaustsAt: f.exhaustsAt === null ? null : new Date(f.exhaustsAt).toISOString(),
          },
        }),
      };
    });
    return {
      account: accountId,
      plan: resolved.plan.id,
      known: resolved.record !== null,
      cycle: { start: new Date(cycle.start).toISOString(), end: new Date(cycle.end).toISOString() },
      pools,
    };
  }

  /** Active top-ups of every consumable type, earliest expiry first. */
  async topUps(accountId: string, config: CompiledConfig): Promise<TopUpView[]> {
    const types = [...config.creditTypes.values()].filter((t) => t.kind === 'consumable').map((t) => t.id);
    const states = await this.store.usage(
      accountId,
      types.map((t) => ({ creditType: t, cycleStart: 0 })),
      this.now(),
    );
    return states
      .flatMap((s) => s.grants)
      .sort((a, b) => a.expiresAt - b.expiresAt)
      .map(topUpView);
  }

  record(accountId: string): Promise<AccountRecord | null> {
    return this.store.getAccount(accountId);
  }

  /** Newest first. */
  events(accountId: string, limit: number): Promise<AlertEvent[]> {
    return this.store.listEvents(accountId, limit);
  }
}

export function topUpView(g: Grant): TopUpView {
  return {
    id: g.id,
    creditType: g.creditType,
    amount: g.amount,
    remaining: g.amount - g.used,
    expiresAt: new Date(g.expiresAt).toISOString(),
    createdAt: new Date(g.createdAt).toISOString(),
  };
}
