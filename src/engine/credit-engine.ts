// The decisions every adapter shares: which plan and cycle apply to an
// account, what a charge does to each pool, top-ups, alerts, usage.
// I/O goes through the CreditStore; the arithmetic is pure domain code.

import { randomBytes } from 'node:crypto';
import type { CompiledConfig, PlanDef, RouteDef, TopUpInfo } from '../config/compiled-config.js';
import { isShadow, quotaOf } from '../config/compiled-config.js';
import {
  CALENDAR_MONTH_ANCHOR_ISO,
  cycleContaining,
  parseAnchor,
  parseInstant,
  truncateAnchorIso,
  type BillingAnchor,
  type BillingCycle,
} from '../domain/billing-cycle.js';
import { isCreditAmount, MAX_CREDITS_TEXT } from '../domain/credit-amount.js';
import type { RefundReason } from '../domain/refund-policy.js';
import { settleAgainstHold, type SettleRule } from '../domain/settle-rule.js';
import {
  StoreError,
  StoreFullError,
  type AccountRecord,
  type AlertEvent,
  type ChargedPool,
  type CreditStore,
  type Grant,
  type IdempotencyRecord,
  type PoolCharge,
  type PoolState,
  type RefundLine,
  type RequestClaim,
} from '../store/credit-store.js';
import { IDEMPOTENCY_LEASE_MS, IdempotencyLeases } from './idempotency-leases.js';
import { AccountStateCache } from './local-cache.js';
import { Invalidations } from './invalidations.js';
import { takeJournalFile, writeJournalFile } from './journal-file.js';
import { OutageJournal, type KeptEntry } from './outage-journal.js';
import { StoreBreaker } from './store-breaker.js';
import { splitRefund, type ChargedLine } from './refund-split.js';

/**
 * How long a counter outlives its cycle. A request charged just before the
 * reset may still be refunded or settled just after it, and its key must
 * still be there to take that.
 */
export const COUNTER_GRACE_MS = 24 * 3600 * 1000;
/** How long a top-up idempotency key is remembered. */
export const TOPUP_IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

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
  /** Default "charge"; "release" gives capacity back. */
  readonly op?: 'charge' | 'release';
  /** A hold, settled after the response: take what remains down to `minAmount`. */
  readonly hold?: { readonly minAmount: number; readonly settle: SettleRule };
}

/** What a charge took, so that it can be refunded or settled after the response. */
export interface ReceiptLine extends ChargedLine {
  readonly op: 'charge' | 'release';
  /** Credits taken (for a hold: the amount held). */
  readonly charged: number;
  readonly settle?: SettleRule | undefined;
}

export interface ChargeReceipt {
  readonly account: string;
  readonly plan: string;
  /** The request's idempotency key and this charge's claim on it, when it had one. */
  readonly idempotency?: RequestClaim | undefined;
  readonly lines: readonly ReceiptLine[];
  /** Set when the charge was allowed during a store outage and lives in the journal. */
  readonly journalId?: number;
}

export interface PoolStatus {
  readonly creditType: string;
  readonly name: string;
  readonly op: 'charge' | 'release';
  /** What this request asked of the pool. */
  readonly required: number;
  readonly used: number;
  /** Plan allowance plus active top-ups; null = unlimited. */
  readonly allowance: number | null;
  readonly remaining: number | null;
  /** Epoch ms of the next reset; null for pools that never reset (capacity, not in plan). */
  readonly resetsAt: number | null;
  /** Cycle length in seconds, null for pools that never reset. */
  readonly windowSeconds: number | null;
  readonly topUp: TopUpInfo | null;
  /** Outside the plan (quota 0): only top-ups fill the pool, a reset never does. */
  readonly topUpsOnly?: boolean;
}

/** A pool that would have refused the request, had it not been in shadow mode. */
export interface ShadowDenial {
  readonly pool: PoolStatus;
  readonly reason: 'exhausted' | 'not-in-plan';
}

export type ChargeDecision =
  | {
      readonly allowed: true;
      /** null when allowed by the outage policy (the store, and so the account, unknown). */
      readonly account: ResolvedAccount | null;
      readonly pools: readonly PoolStatus[];
      /** Shadow-mode pools that an enforced charge would have refused. */
      readonly shadowDenied: readonly ShadowDenial[];
      readonly receipt: ChargeReceipt;
    }
  /** The idempotency key was used before, by this same request: nothing was charged. */
  | {
      readonly allowed: false;
      readonly reason: 'duplicate';
      readonly state: 'pending' | 'done';
      /** The first response, when the first request completed with one that was kept. */
      readonly response?: string | undefined;
    }
  /** The idempotency key was first used with another request: nothing was charged. */
  | { readonly allowed: false; readonly reason: 'idempotency-key-reused' }
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

export interface PoolUsageView {
  readonly used: number;
  readonly allowance: number | null;
  readonly remaining: number | null;
  readonly resetsAt: string | null;
  readonly name: string;
  readonly kind: 'consumable' | 'capacity';
  /** The plan's own allowance, without top-ups. */
  readonly planAllowance: number | null;
  /** Credits left on active top-ups. */
  readonly topUpRemaining: number;
  readonly topUp: TopUpInfo | null;
}

export interface UsageView {
  readonly account: string;
  readonly plan: string;
  /** false when served on the default plan without a record. */
  readonly known: boolean;
  readonly cycle: { readonly start: string; readonly end: string };
  readonly pools: Readonly<Record<string, PoolUsageView>>;
}

export interface TopUpView {
  readonly id: string;
  readonly creditType: string;
  readonly amount: number;
  readonly remaining: number;
  readonly expiresAt: string;
  readonly createdAt: string;
}

/** What the engine reports for metrics. */
export interface EngineObserver {
  creditsCharged(creditType: string, plan: string, amount: number): void;
  /** Outage journal: its size, and entries written to the store or dropped. */
  journal(size: number, replayed: number, dropped: number): void;
  /**
   * An entry that could not be written nor kept (the journal full, or a
   * shutdown with no journal file): everything needed to apply it by hand.
   */
  journalLost(entry: KeptEntry, why: string): void;
  /** Entries written to the journal file at shutdown, to be replayed at the next start. */
  journalKept(entries: readonly KeptEntry[], path: string): void;
  /** The journal file could not be read at start: it is left in place for a person. */
  journalFileUnreadable(path: string, message: string): void;
  breaker(open: boolean): void;
  creditsRefunded(creditType: string, reason: RefundReasonLabel, amount: number): void;
  unbilledOverage(creditType: string, amount: number): void;
  topUpGranted(creditType: string, amount: number): void;
}

export type RefundReasonLabel = RefundReason | 'settled_below_hold';

export interface AccountInput {
  readonly plan: string;
  readonly billingAnchor?: string | undefined;
  /** undefined keeps the address on record; null removes it. */
  readonly email?: string | null | undefined;
}

/** Receives alert events after they are stored; must not block (delivery is queued). */
export interface AlertSink {
  publish(account: ResolvedAccount, events: readonly AlertEvent[]): void;
}

export class TopUpError extends Error {
  readonly code = 'invalid_topup';
}

export class AccountInputError extends Error {
  readonly code = 'invalid_account';
}

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

/** The store failed inside a decision: the outage policy decides instead. */
class StoreDown extends Error {}

export class CreditEngine {
  readonly store: CreditStore;
  private readonly config: () => CompiledConfig;
  private readonly now: () => number;
  private readonly alerts: AlertSink | undefined;
  private readonly observer: EngineObserver | undefined;
  private readonly breaker: StoreBreaker;
  readonly journal: OutageJournal;
  readonly cache: AccountStateCache;
  private readonly leases: IdempotencyLeases;
  private readonly invalidations: Invalidations;
  /** The config the cache was filled under: a reload may change any plan, so it starts empty. */
  private cachedUnder: CompiledConfig;
  private closed = false;

  constructor(options: CreditEngineOptions) {
    this.store = options.store;
    this.config = options.config;
    this.now = options.now ?? Date.now;
    this.alerts = options.alerts;
    this.observer = options.observer;
    this.journal = new OutageJournal(this.config().journalSize);
    this.leases = new IdempotencyLeases(this.store);
    const cacheConfig = this.config().parsed.cache;
    this.cache = new AccountStateCache({ now: this.now, accountTtlMs: cacheConfig.accountTtlMs, maxAccounts: cacheConfig.maxAccounts });
    this.invalidations = new Invalidations(this.store, this.cache);
    this.cachedUnder = this.config();
    this.breaker = new StoreBreaker({
      probe: () => this.store.ping(),
      probeIntervalMs: options.probeIntervalMs ?? 1000,
      onOpen: () => this.observer?.breaker(true),
      onClose: async () => {
        this.observer?.breaker(false);
        await this.replayJournal();
      },
    });
  }

  /** Whether the store is considered down (requests follow the outage policy). */
  get storeDown(): boolean {
    return this.breaker.isOpen;
  }

  /**
   * Starts listening for invalidations from every replica; caching is on
   * only while they are heard. Resolves once the first attempt is done.
   */
  async start(): Promise<void> {
    this.restoreJournal();
    if (this.journal.size > 0) await this.replayJournal();
    if (this.config().parsed.cache.accountTtlMs === 0) return;
    await this.invalidations.listen();
  }

  /**
   * Stops the breaker's probes and the invalidation feed. What the journal
   * still holds is written to the journal file, or reported as lost.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.breaker.stop();
    this.leases.close();
    await this.invalidations.close();
    this.keepJournal();
  }

  /** Everything this replica remembers about the account is dropped, on every replica. */
  private async invalidate(account: string): Promise<void> {
    await this.invalidations.announce(account);
  }

  /**
   * Runs a change to an account, then makes every replica forget the
   * account — also when the change failed, since a store that timed out
   * may still have applied it.
   */
  private async announcing<T>(account: string, change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } finally {
      await this.invalidate(account);
    }
  }

  /** A reload may change any plan or allowance: nothing cached under the old config is used. */
  private cacheFor(config: CompiledConfig): AccountStateCache {
    if (config !== this.cachedUnder) {
      this.cachedUnder = config;
      this.cache.clear();
    }
    return this.cache;
  }

  /** Takes back what a previous run kept in the journal file. */
  private restoreJournal(): void {
    const path = this.config().parsed.store.journalFile;
    if (path === undefined) return;
    let kept: KeptEntry[];
    try {
      kept = takeJournalFile(path);
    } catch (err) {
      this.observer?.journalFileUnreadable(path, (err as Error).message);
      return;
    }
    this.journal.setCapacity(this.config().journalSize);
    for (const entry of this.journal.restore(kept)) this.observer?.journalLost(entry, 'the outage journal is full');
    this.observer?.journal(this.journal.size, 0, 0);
  }

  /** At shutdown: the journal's entries go to the journal file, or are reported lost with all they hold. */
  private keepJournal(): void {
    if (this.journal.size === 0) return;
    const kept = this.journal.keep();
    const path = this.config().parsed.store.journalFile;
    if (path !== undefined) {
      try {
        writeJournalFile(path, kept, this.now());
        this.observer?.journalKept(kept, path);
        return;
      } catch (err) {
        for (const entry of kept) this.observer?.journalLost(entry, `shutdown: the journal file could not be written (${(err as Error).message})`);
        return;
      }
    }
    for (const entry of kept) this.observer?.journalLost(entry, 'shutdown with the store unreachable and no store.journalFile');
  }

  private async accountRecord(accountId: string): Promise<AccountRecord | null> {
    const cached = this.cache.record(accountId);
    if (cached !== undefined) return cached;
    const epoch = this.cache.epoch();
    const record = await this.store.getAccount(accountId);
    this.cache.rememberRecord(accountId, record, epoch);
    return record;
  }

  /** Runs a store call of a decision: a failure opens the breaker and hands over to the outage policy. */
  private async guarded<T>(fn: () => Promise<T>): Promise<T> {
    if (this.breaker.isOpen) throw new StoreDown();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreError) {
        this.breaker.failure();
        throw new StoreDown(err.message);
      }
      throw err;
    }
  }

  currentConfig(): CompiledConfig {
    return this.config();
  }

  /**
   * The plan and billing anchor that apply. `planOverride` (a verified
   * token's plan claim) replaces the record's plan; the anchor still comes
   * from the record, or calendar months without one.
   */
  async resolveAccount(
    accountId: string,
    config: CompiledConfig = this.config(),
    planOverride?: string,
  ): Promise<ResolvedAccount | { unknown: 'account' } | { unknown: 'plan'; plan: string }> {
    const record = await this.accountRecord(accountId);
    if (planOverride !== undefined) {
      const plan = config.plans.get(planOverride);
      if (!plan) return { unknown: 'plan', plan: planOverride };
      return { id: accountId, plan, record, anchor: record ? parseAnchor(record.billingAnchor) : CALENDAR_MONTH };
    }
    if (record) {
      const plan = config.plans.get(record.plan);
      if (!plan) return { unknown: 'plan', plan: record.plan };
      return { id: accountId, plan, record, anchor: parseAnchor(record.billingAnchor) };
    }
    const fallback = config.defaultPlan === undefined ? undefined : config.plans.get(config.defaultPlan);
    if (!fallback) return { unknown: 'account' };
    return { id: accountId, plan: fallback, record: null, anchor: CALENDAR_MONTH };
  }

  /**
   * Charges a request's pools, all or nothing. Capacity the route releases is
   * only noted on the receipt: `release()` gives it back once the upstream
   * confirmed the release. `route` decides shadow mode together with the
   * global mode and the enforceFrom instants.
   */
  async charge(
    accountId: string,
    costs: readonly CostLine[],
    options: { readonly config?: CompiledConfig; readonly route?: RouteDef; readonly idempotency?: RequestIdempotency; readonly plan?: string } = {},
  ): Promise<ChargeDecision> {
    const config = options.config ?? this.config();
    try {
      return await this.chargeInStore(accountId, costs, config, options);
    } catch (err) {
      if (!(err instanceof StoreDown)) throw err;
      // A key nobody can check could be a replay: refused rather than forwarded again.
      if (options.idempotency) throw new StoreError('the credit store is unreachable: an idempotency key cannot be checked');
      return this.chargeDuringOutage(accountId, costs, config);
    }
  }

  private async chargeInStore(
    accountId: string,
    costs: readonly CostLine[],
    config: CompiledConfig,
    options: { readonly route?: RouteDef; readonly idempotency?: RequestIdempotency; readonly plan?: string },
  ): Promise<ChargeDecision> {
    const resolved = await this.guarded(() => this.resolveAccount(accountId, config, options.plan));
    if ('unknown' in resolved) {
      return resolved.unknown === 'account'
        ? { allowed: false, reason: 'unknown-account', accountId }
        : { allowed: false, reason: 'unknown-plan', accountId, plan: resolved.plan };
    }
    const now = this.now();
    const cycle = cycleContaining(resolved.anchor, now);
    const merged = mergeCosts(costs);
    // Releases wait for the upstream's answer: a DELETE of something that does not exist frees nothing.
    const lines = merged.filter((c) => c.op === 'charge');
    const releases = merged.filter((c) => c.op === 'release');
    const shadow = lines.map((c) => c.op === 'charge' && isShadow(config, options.route, c.creditType, now));

    // Outside the plan (quota 0 or absent), a consumable pool is filled by
    // top-ups only (the store draws it with limit 0); with no active grant it
    // is not in the plan. Refused here, with no store round trip, when that
    // is known: capacity pools take no top-ups, and this replica remembers
    // accounts found without a grant of the type (a top-up makes every
    // replica forget). Otherwise the charge script decides (grantTotal says which).
    const outsidePlan = lines.map((c, i) => !shadow[i]! && quotaOf(resolved.plan, c.creditType) === 0);
    const notInPlan = lines.filter((c, i) => outsidePlan[i] && (isCapacity(config, c.creditType) || this.cacheFor(config).noGrant(accountId, c.creditType)));
    if (notInPlan.length > 0) {
      const empty = (t: string): PoolState => ({ creditType: t, planUsed: 0, grantTotal: 0, grantUsed: 0 });
      return (
        (await this.knownReplay(accountId, options.idempotency)) ?? {
          allowed: false,
          reason: 'not-in-plan',
          account: resolved,
          short: notInPlan.map((c) => this.status(config, resolved.plan, cycle, c, empty(c.creditType))),
        }
      );
    }

    const pools = lines.map((c, i) => poolCharge(config, resolved.plan, cycle, c, shadow[i]!));
    // A pool this replica knows to be empty refuses without a store round trip.
    const knownEmpty = lines
      .map((c, i) => (c.op === 'charge' && !shadow[i] && c.amount > 0 ? this.cacheFor(config).emptyPool(accountId, resolved.plan.id, c.creditType, pools[i]!.cycleStart) : undefined))
      .filter((s): s is PoolStatus => s !== undefined);
    // A pool outside the plan that may have no grant is decided by the store first: not-in-plan comes before exhausted.
    const undecided = lines.some((c, i) => outsidePlan[i] && !knownEmpty.some((s) => s.creditType === c.creditType));
    if (knownEmpty.length > 0 && !undecided) {
      const short = knownEmpty.map((s) => ({ ...s, required: lines.find((c) => c.creditType === s.creditType && c.op === 'charge')!.amount }));
      return (await this.knownReplay(accountId, options.idempotency)) ?? { allowed: false, reason: 'exhausted', account: resolved, short };
    }
    const request = options.idempotency;
    const epoch = this.cacheFor(config).epoch();
    const claim = request ? { key: request.key, claim: randomBytes(12).toString('base64url') } : undefined;
    const outcome = await this.guarded(() =>
      this.store.charge(accountId, pools, {
        now,
        thresholds: config.alerts.thresholds,
        // A lease, renewed while the request runs (IdempotencyLeases).
        ...(request && claim ? { idempotency: { ...claim, fingerprint: request.fingerprint, pendingTtlMs: IDEMPOTENCY_LEASE_MS } } : {}),
      }),
    );
    if (outcome.duplicate) return replayDecision(outcome.duplicate, request!.fingerprint);
    if (outcome.ok && claim) this.leases.start(accountId, claim, config.idempotency.ttlMs);
    // A hold that took what remained asked for less: report what was held.
    const statuses = lines.map((c, i) => this.status(config, resolved.plan, cycle, c.hold ? { ...c, amount: outcome.pools[i]!.charged || c.amount } : c, outcome.pools[i]!));
    // Outside the plan with no active grant: not in the plan, and remembered as such.
    const noGrant = lines.map((c, i) => outsidePlan[i]! && outcome.pools[i]!.grantTotal === 0);
    // Remember empty pools and missing grants: the next request for them is refused locally.
    statuses.forEach((s, i) => {
      if (noGrant[i]) this.cache.rememberNoGrant(accountId, s.creditType, epoch);
      else if (s.op === 'charge' && s.remaining === 0 && s.allowance !== null && !shadow[i]) this.cache.rememberEmpty(accountId, resolved.plan.id, pools[i]!.cycleStart, s, epoch);
    });
    if (!outcome.ok) {
      // The store refuses such a pool whatever the amount (limit 0, no grant).
      if (noGrant.some(Boolean)) return { allowed: false, reason: 'not-in-plan', account: resolved, short: statuses.filter((_, i) => noGrant[i]) };
      return {
        allowed: false,
        reason: 'exhausted',
        account: resolved,
        short: statuses.filter((s) => s.op === 'charge' && s.remaining !== null && s.remaining < s.required),
      };
    }
    const shadowDenied: ShadowDenial[] = [];
    outcome.pools.forEach((p, i) => {
      const status = statuses[i]!;
      if (p.wouldRefuse) shadowDenied.push({ pool: status, reason: quotaOf(resolved.plan, status.creditType) === 0 && p.grantTotal === 0 ? 'not-in-plan' : 'exhausted' });
      if (lines[i]!.op === 'charge') this.observer?.creditsCharged(status.creditType, resolved.plan.id, p.charged);
    });
    await this.afterCharge(config, resolved, outcome.pools, statuses, now);
    const receipt: ChargeReceipt = {
      account: accountId,
      plan: resolved.plan.id,
      idempotency: claim,
      lines: [
        ...lines.map((c, i) => ({
          creditType: c.creditType,
          op: c.op,
          cycleStart: pools[i]!.cycleStart,
          planDelta: outcome.pools[i]!.planDelta,
          draws: outcome.pools[i]!.draws,
          charged: outcome.pools[i]!.charged,
          settle: c.hold?.settle,
        })),
        ...releases.map(pendingRelease),
      ],
    };
    return { allowed: true, account: resolved, pools: statuses, shadowDenied, receipt };
  }

  /**
   * A refusal this replica could decide alone (a cached empty pool, a pool
   * outside the plan) must not hide a replay: a request whose key was used
   * before is answered as a replay whatever the pools say now.
   */
  private async knownReplay(accountId: string, idempotency: RequestIdempotency | undefined): Promise<ChargeRefusal | null> {
    if (!idempotency) return null;
    try {
      const record = await this.store.idempotencyRecord(accountId, idempotency.key);
      return record ? replayDecision(record, idempotency.fingerprint) : null;
    } catch (err) {
      // The store cannot say: the refusal this replica decided stands (never an outage pass).
      if (err instanceof StoreError) return null;
      throw err;
    }
  }

  /**
   * What follows a charge that went through: exhausted-pool marks for the
   * gauge, alert events stored and handed to delivery. Failures here are not
   * the request's: the charge stands, so they are swallowed.
   */
  private async afterCharge(
    config: CompiledConfig,
    account: ResolvedAccount,
    pools: readonly ChargedPool[],
    statuses: readonly PoolStatus[],
    now: number,
  ): Promise<void> {
    pools.forEach((p, i) => {
      const status = statuses[i]!;
      if (p.emptied && status.resetsAt !== null) void this.store.markExhausted(account.id, status.creditType, status.resetsAt).catch(() => {});
    });
    const events = pools.flatMap((p, i) => p.fired.map((threshold) => this.alertEvent(config, account.id, statuses[i]!, threshold, now)));
    if (events.length === 0) return;
    try {
      await this.store.appendEvents(account.id, events, config.alerts.keepEvents);
    } catch {
      // The feed misses these events; delivery below still happens.
    }
    this.alerts?.publish(account, events);
  }

  /**
   * The store is unreachable: each charged credit type's onStoreError
   * decides. "deny" (the default) refuses (503); "allow" lets an account
   * spend up to its outage allowance per pool on this replica, recorded in
   * the journal that is replayed when the store is back.
   */
  private chargeDuringOutage(accountId: string, costs: readonly CostLine[], config: CompiledConfig): ChargeDecision {
    const merged = mergeCosts(costs);
    const lines = merged.filter((c) => c.op === 'charge');
    for (const c of lines) {
      const policy = config.creditTypes.get(c.creditType)?.onStoreError ?? 'deny';
      if (policy === 'deny') throw new StoreError(`the credit store is unreachable and ${c.creditType} is deny-on-outage`);
      if (this.journal.spentBy(accountId, c.creditType) + c.amount > policy.allow) {
        throw new StoreError(`the credit store is unreachable and the outage allowance of ${c.creditType} is used up`);
      }
    }
    this.journal.setCapacity(config.journalSize);
    const entry = this.journal.record(
      accountId,
      this.now(),
      lines.map((c) => ({ creditType: c.creditType, op: c.op, amount: c.amount })),
    );
    if (!entry) throw new StoreError('the credit store is unreachable and the outage journal is full');
    this.observer?.journal(this.journal.size, 0, 0);
    return {
      allowed: true,
      account: null,
      shadowDenied: [],
      pools: lines.map((c) => ({
        creditType: c.creditType,
        name: config.creditTypes.get(c.creditType)?.name ?? c.creditType,
        op: c.op,
        required: c.amount,
        used: this.journal.spentBy(accountId, c.creditType),
        // Unknown until the store answers: no RateLimit fields are sent.
        allowance: null,
        remaining: null,
        resetsAt: null,
        windowSeconds: null,
        topUp: config.creditTypes.get(c.creditType)?.topUp ?? null,
      })),
      receipt: {
        account: accountId,
        plan: '(outage)',
        journalId: entry.id,
        lines: [
          ...lines.map((c) => ({ creditType: c.creditType, op: c.op, cycleStart: 0, planDelta: 0, draws: [], charged: c.amount, settle: c.hold?.settle })),
          ...merged.filter((c) => c.op === 'release').map(pendingRelease),
        ],
      },
    };
  }

  /**
   * Writes the outage journal to the store, oldest first, each entry into the
   * cycle its request fell in, never refused (the credits were used). Entries
   * whose cycle ended more than the counter grace ago are dropped: their
   * counters are gone. Stops at the first store failure.
   */
  async replayJournal(): Promise<void> {
    const config = this.config();
    let replayed = 0;
    let dropped = 0;
    for (const entry of this.journal.pending()) {
      try {
        if (entry.kind === 'refund') {
          // Applied once by its id, however often it is replayed.
          await this.store.refund(entry.account, entry.lines, { refundId: entry.refundId, ...(entry.idempotency ? { idempotency: entry.idempotency } : {}) });
          this.journal.remove(entry.id);
          replayed += 1;
          await this.invalidate(entry.account);
          continue;
        }
        const resolved = await this.resolveAccount(entry.account, config);
        if ('unknown' in resolved) {
          this.journal.remove(entry.id);
          dropped += 1;
          continue;
        }
        const cycle = cycleContaining(resolved.anchor, entry.at);
        if (cycle.end + COUNTER_GRACE_MS <= this.now()) {
          this.journal.remove(entry.id);
          dropped += 1;
          continue;
        }
        const lines = entry.lines.filter((l) => l.amount > 0).map((l) => ({ ...l }) as MergedLine);
        // Replayed credits were used: never refused now.
        const pools = lines.map((l) => poolCharge(config, resolved.plan, cycle, l, true));
        const outcome = await this.store.charge(entry.account, pools, { now: entry.at, thresholds: config.alerts.thresholds });
        this.journal.remove(entry.id);
        replayed += 1;
        const statuses = lines.map((c, i) => this.status(config, resolved.plan, cycle, c, outcome.pools[i]!));
        lines.forEach((c, i) => c.op === 'charge' && this.observer?.creditsCharged(c.creditType, resolved.plan.id, outcome.pools[i]!.charged));
        await this.afterCharge(config, resolved, outcome.pools, statuses, this.now());
      } catch (err) {
        // No room for this account in the store: the entry cannot be written (counted as dropped).
        if (err instanceof StoreFullError) {
          this.journal.remove(entry.id);
          dropped += 1;
          continue;
        }
        if (!(err instanceof StoreError)) throw err;
        this.breaker.failure();
        break;
      }
    }
    this.journal.resetSpent();
    this.observer?.journal(this.journal.size, replayed, dropped);
  }

  /** Gives a request's charge back in full (upstream failed, or did not deliver) and frees its idempotency key. */
  async refund(receipt: ChargeReceipt, reason: RefundReason): Promise<void> {
    if (receipt.journalId !== undefined) {
      this.journal.cancel(receipt.journalId);
      this.observer?.journal(this.journal.size, 0, 0);
      for (const l of receipt.lines) if (l.op === 'charge' && l.charged > 0) this.observer?.creditsRefunded(l.creditType, reason, l.charged);
      return;
    }
    if (receipt.idempotency) this.leases.stop(receipt.idempotency);
    const lines = receipt.lines.filter((l) => l.op === 'charge').map((l) => ({ creditType: l.creditType, cycleStart: l.cycleStart, planDelta: l.planDelta, draws: l.draws }));
    await this.giveBack(receipt.account, lines, receipt.idempotency);
    for (const l of receipt.lines) if (l.op === 'charge' && l.charged > 0) this.observer?.creditsRefunded(l.creditType, reason, l.charged);
  }

  /**
   * Writes a refund (settle, release) once, or — when the store cannot take
   * it — keeps it in the outage journal for when it can. Every replica
   * forgets the account either way: the outcome may be known only later.
   * Throws only when the journal is full (the refund is then reported lost).
   */
  private async giveBack(account: string, lines: readonly RefundLine[], idempotency?: RequestClaim): Promise<void> {
    const refundId = newId('rf');
    try {
      await this.guarded(() => this.store.refund(account, lines, { refundId, ...(idempotency ? { idempotency } : {}) }));
    } catch (err) {
      if (!(err instanceof StoreDown)) throw err;
      this.journal.setCapacity(this.config().journalSize);
      const entry = this.journal.recordRefund(account, this.now(), lines, refundId, idempotency);
      this.observer?.journal(this.journal.size, 0, 0);
      if (!entry) {
        const lost: KeptEntry = { kind: 'refund', account, at: this.now(), lines, refundId, ...(idempotency ? { idempotency } : {}) };
        this.observer?.journalLost(lost, 'the outage journal is full');
        throw new StoreError('the credit store is unreachable and the outage journal is full: a refund could not be kept');
      }
    } finally {
      await this.invalidate(account);
    }
  }

  /**
   * Gives back the capacity a request released, once the upstream confirmed
   * it (releaseWhen). Never refused. With the store down it is journaled and
   * written when the store is back; only a full journal loses it (thrown).
   */
  async release(receipt: ChargeReceipt): Promise<void> {
    const lines = receipt.lines.filter((l) => l.op === 'release' && l.charged > 0);
    if (lines.length === 0) return;
    // Taken off the capacity counter like a refund (never below zero), applied once; pools cached as full have room again.
    await this.giveBack(
      receipt.account,
      lines.map((l) => ({ creditType: l.creditType, cycleStart: l.cycleStart, planDelta: l.charged, draws: [] })),
    );
  }

  /** Removes the account and everything stored for it, and what every replica remembers of it. */
  async deleteAccount(accountId: string): Promise<boolean> {
    return this.announcing(accountId, () => this.store.deleteAccount(accountId));
  }

  /**
   * Settles held lines to their actual amounts, never above the hold: the
   * rest of each hold is given back; an actual above the hold is not charged
   * and is reported as unbilled overage. Lines without an actual keep the hold.
   * Returns what each settled line finally cost.
   */
  async settle(receipt: ChargeReceipt, actuals: ReadonlyMap<string, number>): Promise<Map<string, { charged: number; overage: number }>> {
    const result = new Map<string, { charged: number; overage: number }>();
    const refunds: RefundLine[] = [];
    const journalId = receipt.journalId;
    for (const line of receipt.lines) {
      const actual = actuals.get(line.creditType);
      if (actual === undefined || line.op !== 'charge') continue;
      const { charge, release, overage } = settleAgainstHold(line.charged, actual);
      if (release > 0) {
        if (journalId === undefined) refunds.push(splitRefund(line, release));
        else this.journal.adjust(journalId, line.creditType, charge);
        this.observer?.creditsRefunded(line.creditType, 'settled_below_hold', release);
      }
      if (overage > 0) this.observer?.unbilledOverage(line.creditType, overage);
      result.set(line.creditType, { charged: charge, overage });
    }
    if (refunds.length > 0) await this.giveBack(receipt.account, refunds);
    return result;
  }

  /**
   * The request completed and keeps its charge: its idempotency key is
   * remembered as done, with the first response when it could be kept
   * (replays are answered from it).
   */
  async complete(receipt: ChargeReceipt, config: CompiledConfig = this.config(), response?: string): Promise<void> {
    if (!receipt.idempotency || receipt.journalId !== undefined) return;
    this.leases.stop(receipt.idempotency);
    await this.store.completeIdempotency(receipt.account, receipt.idempotency, config.idempotency.ttlMs, response);
  }

  /**
   * Creates or updates an account record. Omitted fields keep their values;
   * a new record without an anchor keeps the calendar-month cycles it was
   * already served on, so saving it never moves or empties a cycle.
   */
  async saveAccount(accountId: string, input: AccountInput, config: CompiledConfig = this.config()): Promise<{ record: AccountRecord; created: boolean }> {
    if (!config.plans.has(input.plan)) {
      throw new AccountInputError(`unknown plan "${input.plan}" (configured: ${[...config.plans.keys()].join(', ')})`);
    }
    if (input.billingAnchor !== undefined) {
      try {
        parseAnchor(input.billingAnchor);
      } catch (err) {
        throw new AccountInputError(`billingAnchor: ${(err as Error).message}`);
      }
    }
    const existing = await this.store.getAccount(accountId);
    const stamp = new Date(this.now()).toISOString();
    const record: AccountRecord = {
      plan: input.plan,
      // Whole seconds, as the cycles use it: the record reads back as the anchor in force.
      billingAnchor: truncateAnchorIso(input.billingAnchor ?? existing?.billingAnchor ?? CALENDAR_MONTH_ANCHOR_ISO),
      email: input.email === null ? undefined : (input.email ?? existing?.email),
      createdAt: existing?.createdAt ?? stamp,
      updatedAt: stamp,
    };
    await this.announcing(accountId, () => this.store.putAccount(accountId, record));
    // A new plan or cycle may have room again: the pools are no longer "exhausted".
    if (existing && (existing.plan !== record.plan || truncateAnchorIso(existing.billingAnchor) !== record.billingAnchor)) {
      const cycle = cycleContaining(parseAnchor(existing.billingAnchor), this.now());
      await Promise.all([...config.creditTypes.keys()].map((t) => this.store.clearExhausted(accountId, t, cycle.start)));
    }
    return { record, created: existing === null };
  }

  async usage(accountId: string, config: CompiledConfig = this.config()): Promise<UsageView | null> {
    const resolved = await this.resolveAccount(accountId, config);
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
      const s = this.status(config, resolved.plan, cycle, { creditType: t, amount: 0, op: 'charge' }, state);
      pools[t] = {
        used: s.used,
        allowance: s.allowance,
        remaining: s.remaining,
        resetsAt: isoOrNull(s.resetsAt),
        name: s.name,
        kind: config.creditTypes.get(t)?.kind ?? 'consumable',
        planAllowance: quotaOf(resolved.plan, t),
        topUpRemaining: state.grantTotal - state.grantUsed,
        topUp: s.topUp,
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

  /**
   * Grants extra credits of one consumable type. Without `expiresAt` the grant
   * ends with the account's current cycle. Throws TopUpError for bad input.
   */
  async topUp(
    accountId: string,
    request: { creditType: string; amount: number; expiresAt?: string },
    idempotencyKey?: string,
    config: CompiledConfig = this.config(),
  ): Promise<{ topUp: TopUpView; created: boolean }> {
    const def = config.creditTypes.get(request.creditType);
    if (!def) throw new TopUpError(`unknown credit type "${request.creditType}" (configured: ${[...config.creditTypes.keys()].join(', ')})`);
    if (def.kind === 'capacity') throw new TopUpError(`${def.name} is a capacity pool: its size comes from the plan, not from top-ups`);
    if (!isCreditAmount(request.amount, 1)) throw new TopUpError(`amount must be a whole number from 1 to ${MAX_CREDITS_TEXT}`);
    const resolved = await this.resolveAccount(accountId, config);
    if ('unknown' in resolved) {
      throw new TopUpError(resolved.unknown === 'account' ? 'unknown account and no default plan' : `the account's plan "${resolved.plan}" is not configured`);
    }
    const now = this.now();
    let expiresAt: number;
    if (request.expiresAt === undefined) {
      expiresAt = cycleContaining(resolved.anchor, now).end;
    } else {
      try {
        expiresAt = parseInstant(request.expiresAt);
      } catch {
        throw new TopUpError(`expiresAt must be an ISO 8601 instant with a UTC offset, got ${JSON.stringify(request.expiresAt)}`);
      }
      if (expiresAt <= now) throw new TopUpError(`expiresAt ${request.expiresAt} is not in the future`);
    }
    const result = await this.announcing(accountId, () =>
      this.store.addGrant(
        accountId,
        { id: newId('tu'), creditType: def.id, amount: request.amount, expiresAt, createdAt: now },
        { now, idempotencyTtlMs: TOPUP_IDEMPOTENCY_TTL_MS, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) },
      ),
    );
    if (result.created) {
      this.observer?.topUpGranted(def.id, request.amount);
      await this.store.clearExhausted(accountId, def.id, cycleContaining(resolved.anchor, now).start);
    }
    return { topUp: topUpView(result.grant), created: result.created };
  }

  /** Active top-ups of every consumable type, earliest expiry first. */
  async listTopUps(accountId: string, config: CompiledConfig = this.config()): Promise<TopUpView[]> {
    const types = [...config.creditTypes.values()].filter((t) => t.kind === 'consumable').map((t) => t.id);
    const states = await this.store.usage(accountId, types.map((t) => ({ creditType: t, cycleStart: 0 })), this.now());
    return states
      .flatMap((s) => s.grants)
      .sort((a, b) => a.expiresAt - b.expiresAt)
      .map(topUpView);
  }

  private alertEvent(config: CompiledConfig, account: string, pool: PoolStatus, threshold: number, now: number): AlertEvent {
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

  private status(config: CompiledConfig, plan: PlanDef, cycle: BillingCycle, cost: MergedLine, state: PoolState): PoolStatus {
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
}

/** A request's idempotency key and the fingerprint of the request it came with. */
export interface RequestIdempotency {
  readonly key: string;
  readonly fingerprint: string;
}

/** A key seen before: the same request is a replay; another request reusing the key is refused. */
function replayDecision(record: IdempotencyRecord, fingerprint: string): ChargeRefusal {
  if (record.fingerprint !== fingerprint) return { allowed: false, reason: 'idempotency-key-reused' };
  return { allowed: false, reason: 'duplicate', state: record.state, response: record.response };
}

/** One pool of a charge as the store takes it. */
function poolCharge(config: CompiledConfig, plan: PlanDef, cycle: BillingCycle, c: MergedLine, shadow: boolean): PoolCharge {
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

/** A release noted at admission: `charged` is what `release()` will give back. */
function pendingRelease(c: MergedLine): ReceiptLine {
  return { creditType: c.creditType, op: 'release', cycleStart: 0, planDelta: 0, draws: [], charged: c.amount };
}

function isCapacity(config: CompiledConfig, creditType: string): boolean {
  return config.creditTypes.get(creditType)?.kind === 'capacity';
}

type MergedLine = CostLine & { readonly op: 'charge' | 'release' };

/**
 * One line per credit type and op, in first-seen order: a pool is charged
 * once per request. Costs from the config never exceed MAX_CREDITS (the
 * schema bounds every rule); cost lines a library caller makes up are held to
 * it here, before anything reaches a store (RangeError: a caller's bug).
 */
function mergeCosts(costs: readonly CostLine[]): MergedLine[] {
  const totals = new Map<string, MergedLine>();
  for (const c of costs) {
    const op = c.op ?? 'charge';
    const key = `${op}:${c.creditType}`;
    const prev = totals.get(key);
    const amount = (prev?.amount ?? 0) + c.amount;
    if (!isCreditAmount(amount)) throw new RangeError(`${c.creditType}: a cost must be a whole number from 0 to ${MAX_CREDITS_TEXT}, got ${amount}`);
    totals.set(key, { creditType: c.creditType, op, amount, ...(c.hold ?? prev?.hold ? { hold: c.hold ?? prev!.hold! } : {}) });
  }
  return [...totals.values()];
}

function topUpView(g: Grant): TopUpView {
  return {
    id: g.id,
    creditType: g.creditType,
    amount: g.amount,
    remaining: g.amount - g.used,
    expiresAt: new Date(g.expiresAt).toISOString(),
    createdAt: new Date(g.createdAt).toISOString(),
  };
}

/** Time-ordered, unguessable ids: "tu_<time><random>". */
function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
