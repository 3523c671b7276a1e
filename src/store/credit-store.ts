// The one storage contract behind the engine. RedisStore and MemoryStore both
// implement it and pass the same contract suite (test/store/).

export interface AccountRecord {
  readonly plan: string;
  /** ISO 8601 instant with offset: the billing anniversary. */
  readonly billingAnchor: string;
  /** Where alert e-mails go. */
  readonly email?: string | undefined;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A top-up: extra credits of one type, spent after the plan allowance. */
export interface Grant {
  readonly id: string;
  readonly creditType: string;
  readonly amount: number;
  /** Credits of this grant already spent. */
  readonly used: number;
  /** Epoch ms; the grant counts until this instant (exclusive). */
  readonly expiresAt: number;
  readonly createdAt: number;
}

/** One pool of one charge. All pools of a charge belong to one account. */
export interface PoolCharge {
  readonly creditType: string;
  /** "release" gives capacity back (never below zero) and cannot fail. */
  readonly op: 'charge' | 'release';
  readonly amount: number;
  /**
   * Plan allowance this cycle; null = unlimited (counted, never refused).
   * 0 = not in the plan: only active grants fill the pool, and without one
   * any charge of it is refused, even of 0 (shadow: `wouldRefuse`).
   */
  readonly limit: number | null;
  /** Epoch ms of the cycle start: part of the counter's identity (0 for capacity). */
  readonly cycleStart: number;
  /** Epoch ms after which the cycle's keys may disappear; 0 = never. */
  readonly expireAt: number;
  /** Top-ups and threshold alerts apply (consumable pools). */
  readonly extras: boolean;
  /**
   * Shadow mode: never refuse. What does not fit is still counted (as plan
   * usage beyond the limit) and reported as `wouldRefuse`.
   */
  readonly shadow?: boolean;
  /**
   * A hold: when less than `amount` remains, take what remains if it is at
   * least this much. Default: `amount` (all or nothing).
   */
  readonly minAmount?: number;
}

export interface ChargeContext {
  /** Epoch ms: which grants are active. */
  readonly now: number;
  /** Alert thresholds as fractions of the allowance, ascending. */
  readonly thresholds: readonly number[];
  /**
   * Charge at most once per key: a key seen before charges nothing and the
   * outcome carries its record as `duplicate`. The key is claimed (with the
   * request's fingerprint, by `claim`) only when the charge succeeds, stays
   * "pending" for `pendingTtlMs` unless renewed, and a refund frees it.
   */
  readonly idempotency?: RequestClaim & { readonly fingerprint: string; readonly pendingTtlMs: number };
}

/**
 * One request's hold on an idempotency key. Only the claim that holds a key
 * may renew, complete or free it: a request whose claim lapsed cannot touch
 * the record of the retry that claimed the key after it.
 */
export interface RequestClaim {
  readonly key: string;
  /** Unique per charge. */
  readonly claim: string;
}

/** What the store keeps of a request sent with an idempotency key. */
export interface IdempotencyRecord {
  readonly state: 'pending' | 'done';
  /** What the first request looked like; a reuse of the key must match it. */
  readonly fingerprint: string;
  /** The first response (opaque to the store), when the request completed with one that could be kept. */
  readonly response?: string;
}

/** A pool as the store sees it: plan usage and the active grants' totals. */
export interface PoolState {
  readonly creditType: string;
  readonly planUsed: number;
  /** Sum of active grants' amounts. */
  readonly grantTotal: number;
  /** Sum of what was spent from active grants. */
  readonly grantUsed: number;
}

export interface ChargedPool extends PoolState {
  /** A shadow pool that an enforced charge would have refused. */
  readonly wouldRefuse: boolean;
  /** This charge emptied the pool, for the first time this cycle. */
  readonly emptied: boolean;
  /** Credits taken (a hold may take less than asked; a release: what was given back). */
  readonly charged: number;
  /** How the plan counter moved: + charged to the plan, − released capacity. */
  readonly planDelta: number;
  /** Thresholds this charge reached first in the cycle (each fires once). */
  readonly fired: readonly number[];
  /** What was drawn from which grant (empty when the plan covered it). */
  readonly draws: readonly { readonly grantId: string; readonly amount: number }[];
}

export interface ChargeOutcome {
  /** true: every pool had room and all were charged; false: none was charged. */
  readonly ok: boolean;
  /** The idempotency key was claimed before: nothing was charged (pools are empty). */
  readonly duplicate?: IdempotencyRecord;
  /** In the order of the request's pools: after the charge, or as found. */
  readonly pools: readonly ChargedPool[];
}

export interface RefundOptions {
  readonly idempotency?: RequestClaim | undefined;
  readonly refundId?: string | undefined;
}

/** How long a store remembers that a refund id was applied. */
export const REFUND_ID_TTL_MS = 72 * 3600 * 1000;

/** What to give back of one pool of an earlier charge. */
export interface RefundLine {
  readonly creditType: string;
  readonly cycleStart: number;
  /** Off the plan counter (negative: put released capacity back). */
  readonly planDelta: number;
  readonly draws: readonly { readonly grantId: string; readonly amount: number }[];
}

export interface PoolKey {
  readonly creditType: string;
  readonly cycleStart: number;
}

export interface PoolUsage extends PoolState {
  /** Active grants, earliest expiry first. */
  readonly grants: readonly Grant[];
}

export interface NewGrant {
  readonly id: string;
  readonly creditType: string;
  readonly amount: number;
  readonly expiresAt: number;
  readonly createdAt: number;
}

export interface GrantResult {
  readonly grant: Grant;
  /** false: the idempotency key was seen before and this is the first grant. */
  readonly created: boolean;
}

/** A threshold alert as stored for the events feed and sent to receivers. */
export interface AlertEvent {
  readonly id: string;
  readonly type: 'threshold_reached' | 'exhausted' | 'forecast';
  readonly account: string;
  readonly creditType: { readonly id: string; readonly name: string };
  readonly used: number;
  readonly allowance: number;
  readonly threshold: number;
  readonly resetsAt: string;
  readonly topUp: { readonly url?: string; readonly contact?: string } | null;
  readonly createdAt: string;
  /** `forecast` events: when the pool runs out at the cycle's pace (ISO). */
  readonly exhaustsAt?: string;
}

/** One billing event (a Stripe webhook) to apply to one account at most once, in order. */
export interface BillingEventMark {
  /** The biller's event id (Stripe's evt_…): applied once while remembered. */
  readonly id: string;
  /** When the biller created the event (epoch seconds): an older one than the last applied is stale. */
  readonly created: number;
  /** Epoch ms. */
  readonly now: number;
  /** How long the id and the account's last `created` are remembered. */
  readonly ttlMs: number;
}

export type BillingEventOutcome = 'applied' | 'duplicate' | 'stale';

/**
 * How long billing event ids are remembered: Stripe retries a delivery for
 * up to 3 days, so a day more covers any redelivery; no event older than the
 * last applied one can still arrive after that.
 */
export const BILLING_EVENT_TTL_MS = 96 * 3600 * 1000;

export interface CreditStore {
  /** All-or-nothing check-and-charge (and release) of several pools of one account. */
  charge(account: string, pools: readonly PoolCharge[], context: ChargeContext): Promise<ChargeOutcome>;
  /**
   * Gives back (part of) an earlier charge; frees its idempotency key when
   * its claim still holds it. A refund with a `refundId` is applied at most
   * once (within `REFUND_ID_TTL_MS`): replaying it after an unknown outcome
   * (a timeout, a journal replay) gives nothing back twice. Resolves false
   * when that id was applied before.
   */
  refund(account: string, lines: readonly RefundLine[], options?: RefundOptions): Promise<boolean>;
  /**
   * The request completed: remember its key as done for `ttlMs`, with its
   * response when one was kept. Only while `claim` holds the key pending;
   * false otherwise (refunded, lapsed, claimed by another request).
   */
  completeIdempotency(account: string, claim: RequestClaim, ttlMs: number, response?: string): Promise<boolean>;
  /** Keeps a pending claim for another `leaseMs`; false when the claim no longer holds the key. */
  renewIdempotency(account: string, claim: RequestClaim, leaseMs: number): Promise<boolean>;
  /** The record of a request idempotency key, or null when the key is free. */
  idempotencyRecord(account: string, key: string): Promise<IdempotencyRecord | null>;
  /** Each pool's state with its active grants, in order. */
  usage(account: string, pools: readonly PoolKey[], now: number): Promise<PoolUsage[]>;
  /** Adds a grant, or returns the one made earlier under the same idempotency key. */
  addGrant(
    account: string,
    grant: NewGrant,
    options: { readonly now: number; readonly idempotencyKey?: string; readonly idempotencyTtlMs: number },
  ): Promise<GrantResult>;
  getAccount(account: string): Promise<AccountRecord | null>;
  putAccount(account: string, record: AccountRecord): Promise<void>;
  /**
   * Applies a billing event atomically, on any number of replicas: an id
   * applied before → "duplicate"; a `created` older than the account's last
   * applied event → "stale"; both change nothing. Otherwise the record is
   * written (or removed, for null) and the id and `created` remembered.
   */
  applyBillingEvent(account: string, event: BillingEventMark, record: AccountRecord | null): Promise<BillingEventOutcome>;
  /** Removes the record and every counter, grant, event and billing mark of the account. */
  deleteAccount(account: string): Promise<boolean>;
  /** Stores events for the feed, keeping the newest `keep`. */
  appendEvents(account: string, events: readonly AlertEvent[], keep: number): Promise<void>;
  /** Newest first. */
  listEvents(account: string, limit: number): Promise<AlertEvent[]>;
  /** Records that the account's pool is empty until `until` (its reset), for the exhausted-accounts gauge. */
  markExhausted(account: string, creditType: string, until: number): Promise<void>;
  /** The pool has room again (top-up, plan change): forget the mark, and let a new "emptied" fire this cycle. */
  clearExhausted(account: string, creditType: string, cycleStart: number): Promise<void>;
  /**
   * Sets an alert mark (e.g. "forecast") of the pool's cycle, kept with the
   * threshold marks until `expireAt`. True only for the one call, across
   * every replica, that set it: that caller sends the alert.
   */
  markAlert(account: string, creditType: string, cycleStart: number, mark: string, expireAt: number, now: number): Promise<boolean>;
  /** Accounts marked exhausted whose mark is still current, per credit type. */
  countExhausted(creditTypes: readonly string[], now: number): Promise<Map<string, number>>;
  /** Tells every replica (itself included) to forget what it cached about this account. */
  publishInvalidation(account: string): Promise<void>;
  /**
   * Calls `onAccount` for every invalidation published by any replica, and
   * `onListening(false)` whenever the feed may miss some (a lost connection),
   * `onListening(true)` once it hears again. Returns an unsubscribe.
   */
  subscribeInvalidations(onAccount: (account: string) => void, onListening?: (listening: boolean) => void): Promise<() => Promise<void>>;
  /** Resolves when the store answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The events feed of an account lives this long after its last event (both stores). */
export const EVENTS_TTL_MS = 90 * 24 * 3600 * 1000;

/** The store could not be reached or failed: not a refusal (rate-limiter-flexible's "broken"). */
export class StoreError extends Error {
  readonly code = 'store_unavailable';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/**
 * The store has no room for another account (the memory store at
 * store.maxAccounts). Not a StoreError: the store is up, so neither the
 * breaker nor an outage allowance applies; the request is refused (503
 * store-full) and nothing is charged. Accounts already held keep working.
 */
export class StoreFullError extends Error {
  readonly code = 'store_full';

  constructor(
    message: string,
    /** When room may be back: the time the store takes to look at every account once. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'StoreFullError';
  }
}
