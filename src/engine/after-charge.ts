// What follows a charge that went through: exhausted-pool marks for the
// gauge, and alert events stored for the feed and handed to delivery.
// Failures here are not the request's: the charge stands, so they are swallowed.

import type { CompiledConfig } from '../config/compiled-config.js';
import { cycleContaining } from '../domain/billing-cycle.js';
import { DAY_MS, forecast } from '../domain/forecast.js';
import type { AlertEvent, ChargedPool, CreditStore } from '../store/credit-store.js';
import { newId } from './ids.js';
import { COUNTER_GRACE_MS } from './pool-status.js';
import type { AlertSink, PoolStatus, ResolvedAccount } from './types.js';

export class AfterCharge {
  constructor(
    private readonly store: CreditStore,
    private readonly alerts: AlertSink | undefined,
  ) {}

  /** Undefined (no promise) when the charge fired nothing and no forecast rule applies: the usual case. */
  record(
    config: CompiledConfig,
    account: ResolvedAccount,
    pools: readonly ChargedPool[],
    statuses: readonly PoolStatus[],
    now: number,
  ): Promise<void> | undefined {
    pools.forEach((p, i) => {
      const status = statuses[i]!;
      if (p.emptied && status.resetsAt !== null) void this.store.markExhausted(account.id, status.creditType, status.resetsAt).catch(() => {});
    });
    if (!config.alerts.forecast && pools.every((p) => p.fired.length === 0)) return undefined;
    return this.recordEvents(config, account, pools, statuses, now);
  }

  private async recordEvents(
    config: CompiledConfig,
    account: ResolvedAccount,
    pools: readonly ChargedPool[],
    statuses: readonly PoolStatus[],
    now: number,
  ): Promise<void> {
    const events = pools.flatMap((p, i) => p.fired.map((threshold) => alertEvent(config, account.id, statuses[i]!, threshold, now)));
    events.push(...(await this.forecasts(config, account, pools, statuses, now)));
    if (events.length === 0) return;
    try {
      await this.store.appendEvents(account.id, events, config.alerts.keepEvents);
    } catch {
      // The feed misses these events; delivery below still happens.
    }
    this.alerts?.publish(account, events);
  }

  /**
   * Pools this charge put on pace to run out at least `daysBeforeReset`
   * days early: one event per pool and cycle, decided by a store mark so
   * that replicas charging at once send it once.
   */
  private async forecasts(
    config: CompiledConfig,
    account: ResolvedAccount,
    pools: readonly ChargedPool[],
    statuses: readonly PoolStatus[],
    now: number,
  ): Promise<AlertEvent[]> {
    const rule = config.alerts.forecast;
    if (!rule) return [];
    const cycle = cycleContaining(account.anchor, now);
    const events: AlertEvent[] = [];
    for (const [i, p] of pools.entries()) {
      const s = statuses[i]!;
      // Consumable plan pools only: capacity and top-up-only pools have no cycle to run out in.
      if (p.charged <= 0 || s.op !== 'charge' || s.resetsAt === null || s.allowance === null || s.topUpsOnly) continue;
      const f = forecast({ used: s.used, remaining: s.remaining, cycleStart: cycle.start, resetsAt: s.resetsAt, now });
      if (f.exhaustsAt === null || s.resetsAt - f.exhaustsAt < rule.daysBeforeReset * DAY_MS) continue;
      try {
        if (!(await this.store.markAlert(account.id, s.creditType, cycle.start, 'forecast', cycle.end + COUNTER_GRACE_MS, now))) continue;
      } catch {
        // Unsure whether another replica sent it: a missed early warning beats a duplicate.
        continue;
      }
      events.push({
        ...alertEvent(config, account.id, s, s.allowance > 0 ? s.used / s.allowance : 1, now),
        type: 'forecast',
        exhaustsAt: new Date(f.exhaustsAt).toISOString(),
      });
    }
    return events;
  }
}

function alertEvent(config: CompiledConfig, account: string, pool: PoolStatus, threshold: number, now: number): AlertEvent {
  return {
    id: newId('evt'),
    type: threshold >= 1 ? 'exhausted' : 'threshold_reached',
    account,
    creditType: { id: pool.creditType, name: pool.name },
    used: pool.used,
    allowance: pool.allowance ?? 0,
    threshold,
    resetsAt: new Date(pool.resetsAt ?? now).toISOString(),
    topUp: config.creditTypes.get(pool.creditType)?.topUp ?? null,
    createdAt: new Date(now).toISOString(),
  };
}
