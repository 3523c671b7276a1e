// The engine's vocabulary: what a charge decides, what it leaves to refund
// or settle, what the views show, and what the engine reports. Types only.

import type { PlanDef, TopUpInfo } from '../config/compiled-config.js';
import type { BillingAnchor } from '../domain/billing-cycle.js';
import type { RefundReason } from '../domain/refund-policy.js';
import type { SettleRule } from '../domain/settle-rule.js';
import type { AccountRecord, AlertEvent, RequestClaim } from '../store/credit-store.js';
import type { KeptEntry } from './outage-journal.js';
import type { ChargedLine } from './refund-split.js';

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
  /** Consumable pools: the cycle's pace and when the pool runs out at it (see domain/forecast.ts). */
  readonly forecast?: { readonly ratePerDay: number | null; readonly exhaustsAt: string | null };
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

/** A request's idempotency key and the fingerprint of the request it came with. */
export interface RequestIdempotency {
  readonly key: string;
  readonly fingerprint: string;
}
