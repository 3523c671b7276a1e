// What follows a charge that went through: exhausted-pool marks for the
// gauge, and alert events stored for the feed and handed to delivery.
// Failures here are not the request's: the charge stands, so they are swallowed.

import type { CompiledConfig } from '../config/compiled-config.js';
import type { AlertEvent, ChargedPool, CreditStore } from '../store/credit-store.js';
import { newId } from './ids.js';
import type { AlertSink, PoolStatus, ResolvedAccount } from './types.js';

export class AfterCharge {
  constructor(
    private readonly store: CreditStore,
    private readonly alerts: AlertSink | undefined,
  ) {}

  async record(config: CompiledConfig, account: ResolvedAccount, pools: readonly ChargedPool[], statuses: readonly PoolStatus[], now: number): Promise<void> {
    pools.forEach((p, i) => {
      const status = statuses[i]!;
      if (p.emptied && status.resetsAt !== null) void this.store.markExhausted(account.id, status.creditType, status.resetsAt).catch(() => {});
    });
    const events = pools.flatMap((p, i) => p.fired.map((threshold) => alertEvent(config, account.id, statuses[i]!, threshold, now)));
    if (events.length === 0) return;
    try {
      await this.store.appendEvents(account.id, events, config.alerts.keepEvents);
    } catch {
      // The feed misses these events; delivery below still happens.
    }
    this.alerts?.publish(account, events);
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
