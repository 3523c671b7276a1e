// The engine every adapter shares, as one face over its rooms: the charge
// path, settlement, outage mode, the account directory, admin operations
// and views. It wires them and holds nothing else.

import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import type { RefundReason } from '../domain/refund-policy.js';
import type { AccountRecord, AlertEvent, BillingEventMark, BillingEventOutcome } from '../store/credit-store.js';
import type { Resolution } from './account-directory.js';
import { buildRooms, type CreditEngineOptions, type EngineRooms } from './engine-rooms.js';
import type { AccountInput, ChargeDecision, ChargeReceipt, CostLine, RequestIdempotency, TopUpView, UsageView } from './types.js';

export { TOPUP_IDEMPOTENCY_TTL_MS } from './accounts.js';
export { AccountInputError, TopUpError } from './engine-errors.js';
export type { CreditEngineOptions } from './engine-rooms.js';
export { COUNTER_GRACE_MS } from './pool-status.js';
export type * from './types.js';

export class CreditEngine {
  private readonly config: () => CompiledConfig;
  private readonly r: EngineRooms;

  constructor(private readonly options: CreditEngineOptions) {
    this.config = options.config;
    this.r = buildRooms(options);
  }

  /** Whether the store is considered down (requests follow the outage policy). */
  get storeDown(): boolean {
    return this.r.guard.isOpen;
  }

  /** Outage charges and refunds waiting for the store. */
  get journalSize(): number {
    return this.r.outage.size;
  }

  /** Replays a journal a previous run kept, then listens for every replica's invalidations. */
  async start(): Promise<void> {
    this.r.outage.restore();
    if (this.r.outage.size > 0) await this.r.outage.replay();
    await this.r.directory.listen();
  }

  /** Stops probes, leases and the invalidation feed; what the journal still holds is kept or reported lost. */
  async close(): Promise<void> {
    this.r.guard.stop();
    this.r.leases.close();
    await this.r.directory.close();
    this.r.outage.keep();
  }

  currentConfig(): CompiledConfig {
    return this.config();
  }

  /** Resolves when the store answers (readiness). */
  ping(): Promise<void> {
    return this.options.store.ping();
  }

  resolveAccount(accountId: string, config: CompiledConfig = this.config(), planOverride?: string): Promise<Resolution> {
    return this.r.directory.resolve(accountId, config, planOverride);
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
    return this.r.charger.charge(accountId, costs, { ...options, config: options.config ?? this.config() });
  }

  refund(receipt: ChargeReceipt, reason: RefundReason): Promise<void> {
    return this.r.settlement.refund(receipt, reason);
  }

  release(receipt: ChargeReceipt): Promise<void> {
    return this.r.settlement.release(receipt);
  }

  settle(receipt: ChargeReceipt, actuals: ReadonlyMap<string, number>): Promise<Map<string, { charged: number; overage: number }>> {
    return this.r.settlement.settle(receipt, actuals);
  }

  /** Nothing will finish this request (finishing it failed): its idempotency key lapses with its lease. */
  abandon(receipt: ChargeReceipt): void {
    this.r.settlement.abandon(receipt);
  }

  complete(receipt: ChargeReceipt, config: CompiledConfig = this.config(), response?: string): Promise<void> {
    return this.r.settlement.complete(receipt, config, response);
  }

  saveAccount(accountId: string, input: AccountInput, config: CompiledConfig = this.config()): Promise<{ record: AccountRecord; created: boolean }> {
    return this.r.accounts.save(accountId, input, config);
  }

  /** A billing event's change to an account, applied at most once and in order (Accounts.applyBillingEvent). */
  applyBillingEvent(
    accountId: string,
    event: BillingEventMark,
    change: AccountInput | 'delete',
    config: CompiledConfig = this.config(),
  ): Promise<BillingEventOutcome> {
    return this.r.accounts.applyBillingEvent(accountId, event, change, config);
  }

  deleteAccount(accountId: string): Promise<boolean> {
    return this.r.accounts.delete(accountId);
  }

  topUp(
    accountId: string,
    request: { creditType: string; amount: number; expiresAt?: string },
    idempotencyKey?: string,
    config: CompiledConfig = this.config(),
  ): Promise<{ topUp: TopUpView; created: boolean }> {
    return this.r.accounts.topUp(accountId, request, idempotencyKey, config);
  }

  usage(accountId: string, config: CompiledConfig = this.config()): Promise<UsageView | null> {
    return this.r.views.usage(accountId, config);
  }

  listTopUps(accountId: string, config: CompiledConfig = this.config()): Promise<TopUpView[]> {
    return this.r.views.topUps(accountId, config);
  }

  getAccount(accountId: string): Promise<AccountRecord | null> {
    return this.r.views.record(accountId);
  }

  /** Alert events, newest first. */
  events(accountId: string, limit: number): Promise<AlertEvent[]> {
    return this.r.views.events(accountId, limit);
  }
}
