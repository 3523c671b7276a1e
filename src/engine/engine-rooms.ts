// Builds the engine's rooms and connects them: one store guard whose
// recovery replays the outage journal, one account directory every room
// resolves through, one set of idempotency leases.

import type { CompiledConfig } from '../config/compiled-config.js';
import type { CreditStore } from '../store/credit-store.js';
import { AccountDirectory } from './account-directory.js';
import { AccountViews } from './account-views.js';
import { Accounts } from './accounts.js';
import { AfterCharge } from './after-charge.js';
import { Charger } from './charger.js';
import { IdempotencyLeases } from './idempotency-leases.js';
import { OutageMode } from './outage-mode.js';
import { Settlement } from './settlement.js';
import { StoreGuard } from './store-guard.js';
import type { AlertSink, EngineObserver } from './types.js';

export interface CreditEngineOptions {
  readonly store: CreditStore;
  /** Returns the config in force; read once per decision so a reload never splits one. */
  readonly config: () => CompiledConfig;
  readonly now?: () => number;
  readonly alerts?: AlertSink;
  readonly observer?: EngineObserver;
  /** How often an open store breaker probes the store (ms). */
  readonly probeIntervalMs?: number;
}

export interface EngineRooms {
  readonly guard: StoreGuard;
  readonly leases: IdempotencyLeases;
  readonly directory: AccountDirectory;
  readonly outage: OutageMode;
  readonly charger: Charger;
  readonly settlement: Settlement;
  readonly accounts: Accounts;
  readonly views: AccountViews;
}

export function buildRooms(options: CreditEngineOptions): EngineRooms {
  const { store, observer, config } = options;
  const now = options.now ?? Date.now;
  const leases = new IdempotencyLeases(store);
  const directory = new AccountDirectory(store, config, now);
  const afterCharge = new AfterCharge(store, options.alerts);
  let outage: OutageMode | undefined;
  const guard = new StoreGuard({
    probe: () => store.ping(),
    probeIntervalMs: options.probeIntervalMs ?? 1000,
    onOpen: () => observer?.breaker(true),
    onClose: async () => {
      observer?.breaker(false);
      await outage?.replay();
    },
  });
  outage = new OutageMode({ store, config, now, observer, directory, afterCharge, onStoreFailure: () => guard.failure() });
  const parts = { store, now, observer, directory, guard, leases };
  return {
    guard,
    leases,
    directory,
    outage,
    charger: new Charger({ ...parts, outage, afterCharge }),
    settlement: new Settlement({ ...parts, outage }),
    accounts: new Accounts(parts),
    views: new AccountViews(store, directory, now),
  };
}
