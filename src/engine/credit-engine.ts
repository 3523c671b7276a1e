// The engine every adapter shares, as one face over its rooms: the charge
// path, settlement, outage mode, the account directory, admin operations
// and views. It wires them and holds nothing else.

import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import type { RefundReason } from '../domain/refund-policy.js';
import type { AccountRecord, AlertEvent, CreditStore } from '../store/credit-store.js';
import { AccountDirectory, type Resolution } from './account-directory.js';
import { AccountViews } from './account-views.js';
import { Accounts } from './accounts.js';
import { AfterCharge } from './after-charge.js';
import { Charger } from './charger.js';
import { IdempotencyLeases } from './idempotency-leases.js';
import { OutageMode } from './outage-mode.js';
import { Settlement } from './settlement.js';
import { StoreGuard } from './store-guard.js';
import type { AccountInput, AlertSink, ChargeDecision, ChargeReceipt, CostLine, EngineObserver, RequestIdempotency, TopUpView, UsageView } from './types.js';

export { COUNTER_GRACE_MS } from './pool-status.js';
export { TOPUP_IDEMPOTENCY_TTL_MS } from './accounts.js';
export { AccountInputError, TopUpError } from './engine-errors.js';
export type * from './types.js';

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

export class CreditEngine {
  private readonly config: () => CompiledConfig;
  private readonly store: CreditStore;
  private readonly guard: StoreGuard;
  private readonly leases: IdempotencyLeases;
  private readonly directory: AccountDirectory;
  private readonly outage: OutageMode;
  private readonly charger: Charger;
  private readonly settlement: Settlement;
  private readonly accounts: Accounts;
  private readonly views: AccountViews;

  constructor(options: CreditEngineOptions) {
    const { store, observer } = options;
    const now = options.now ?? Date.now;
    this.config = options.config;
    this.store = store;
    this.leases = new IdempotencyLeases(store);
    this.directory = new AccountDirectory(store, options.config, now);
    this.guard = new StoreGuard({
      probe: () => store.ping(),
      probeIntervalMs: options.probeIntervalMs ?? 1000,
      onOpen: () => observer?.breaker(true),
      onClose: async () => {
        observer?.breaker(false);
        await this.outage.replay();
      },
    });
    const afterCharge = new AfterCharge(store, options.alerts);
    const parts = { store, now, observer, directory: this.directory, guard: this.guard, leases: this.leases };
    this.outage = new OutageMode({
      store,
      config: options.config,
      now,
      observer,
      directory: this.directory,
      afterCharge,
      onStoreFailure: () => this.guard.failure(),
    });
    this.charger = new Charger({ ...parts, outage: this.outage, afterCharge });
    this.settlement = new Settlement({ ...parts, outage: this.outage });
    this.accounts = new Accounts(parts);
    this.views = new AccountViews(store, this.directory, now);
  }

  /** Whether the store is considered down (requests follow the outage policy). */
  get storeDown(): boolean {
    return this.guard.isOpen;
  }

  /** Outage charges and refunds waiting for the store. */
  get journalSize(): number {
    return this.outage.size;
  }

  /** Replays a journal a previous run kept, then listens for every replica's invalidations. */
  async start(): Promise<void> {
    this.outage.restore();
    if (this.outage.size > 0) await this.outage.replay();
    await this.directory.listen();
  }

  /** Stops probes, leases and the invalidation feed; what the journal still holds is kept or reported lost. */
  async close(): Promise<void> {
    this.guard.stop();
    this.leases.close();
    await this.directory.close();
    this.outage.keep();
  }

  currentConfig(): CompiledConfig {
    return this.config();
  }

  /** Resolves when the store answers (readiness). */
  ping(): Promise<void> {
    return this.store.ping();
  }

  resolveAccount(accountId: string, config: CompiledConfig = this.config(), planOverride?: string): Promise<Resolution> {
    return this.directory.resolve(accountId, config, planOverride);
  }

  /**
   * Charges a request's pools, all or nothing. Capacity the route releases is
   * only noted on the receipt: `release()` gives it back once the upstream
   * confirmed it. `route` decides shadow mode with the global mode and enforceFrom.
   */
  charge(
    accountId: string,
    costs: readonly CostLine[],
    options: { readonly config?: CompiledConfig; readonly route?: RouteDef; readonly idempotency?: RequestIdempotency; readonly plan?: string } = {},
  ): Promise<ChargeDecision> {
    return this.charger.charge(accountId, costs, { ...options, config: options.config ?? this.config() });
  }

  refund(receipt: ChargeReceipt, reason: RefundReason): Promise<void> {
    return this.settlement.refund(receipt, reason);
  }

  release(receipt: ChargeReceipt): Promise<void> {
    return this.settlement.release(receipt);
  }

  settle(receipt: ChargeReceipt, actuals: ReadonlyMap<string, number>): Promise<Map<string, { charged: number; overage: number }>> {
    return this.settlement.settle(receipt, actuals);
  }

  complete(receipt: ChargeReceipt, config: CompiledConfig = this.config(), response?: string): Promise<void> {
    return this.settlement.complete(receipt, config, response);
  }

  saveAccount(accountId: string, input: AccountInput, config: CompiledConfig = this.config()): Promise<{ record: AccountRecord; created: boolean }> {
    return this.accounts.save(accountId, input, config);
  }

  deleteAccount(accountId: string): Promise<boolean> {
    return this.accounts.delete(accountId);
  }

  topUp(
    accountId: string,
    request: { creditType: string; amount: number; expiresAt?: string },
    idempotencyKey?: string,
    config: CompiledConfig = this.config(),
  ): Promise<{ topUp: TopUpView; created: boolean }> {
    return this.accounts.topUp(accountId, request, idempotencyKey, config);
  }

  usage(accountId: string, config: CompiledConfig = this.config()): Promise<UsageView | null> {
    return this.views.usage(accountId, config);
  }

  listTopUps(accountId: string, config: CompiledConfig = this.config()): Promise<TopUpView[]> {
    return this.views.topUps(accountId, config);
  }

  getAccount(accountId: string): Promise<AccountRecord | null> {
    return this.views.record(accountId);
  }

  /** Alert events, newest first. */
  events(accountId: string, limit: number): Promise<AlertEvent[]> {
    return this.views.events(accountId, limit);
  }
}
