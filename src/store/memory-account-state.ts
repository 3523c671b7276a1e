// One account's state in the memory store besides its plan counters: its
// record, top-up grants, alert marks, idempotency keys and events feed, each
// with its own expiry, and the sweep of that one account.

import type { AccountRecord, AlertEvent, BillingEventMark, BillingEventOutcome, Grant, IdempotencyRecord } from './credit-store.js';

export interface Expiring<T> {
  value: T;
  /** Epoch ms; 0 = never. */
  expireAt: number;
}

export interface GrantData {
  amount: number;
  used: number;
  expiresAt: number;
  createdAt: number;
}

/** A request idempotency record with the claim that holds it. */
export interface HeldRecord extends IdempotencyRecord {
  readonly claim: string;
}

export function publicRecord({ claim: _claim, ...record }: HeldRecord): IdempotencyRecord {
  return record;
}

export const live = <T>(e: Expiring<T> | undefined, now: number): e is Expiring<T> => e !== undefined && (e.expireAt === 0 || e.expireAt > now);

/**
 * What an account has besides its plan counters (those are packed in the
 * AccountTable). Made on first use; most accounts only ever have counters.
 */
export class AccountState {
  record?: AccountRecord;
  private grantsByType?: Map<string, Map<string, GrantData>>;
  private alertMarks?: Map<string, Expiring<Set<number | string>>>;
  private topUpAnswers?: Map<string, Expiring<Grant>>;
  private appliedRefunds?: Map<string, Expiring<true>>;
  private requestClaims?: Map<string, Expiring<HeldRecord>>;
  private feed?: Expiring<AlertEvent[]>;
  /** "id:<event id>" for each billing event applied, "last" for the `created` of the last one: as lua/billing.lua keeps them. */
  private billingMarks?: Map<string, Expiring<number>>;

  /** type -> grant id -> grant. */
  get grants(): Map<string, Map<string, GrantData>> {
    this.grantsByType ??= new Map();
    return this.grantsByType;
  }

  /** The grants of one type, if any (reading makes no map). */
  grantsOf(creditType: string): Map<string, GrantData> | undefined {
    return this.grantsByType?.get(creditType);
  }

  /** The grants of one type still live at `now`, earliest expiry first (the order planDraw takes them in). */
  activeGrants(creditType: string, now: number): Grant[] {
    const byType = this.grantsOf(creditType);
    if (!byType) return [];
    return [...byType]
      .filter(([, g]) => g.expiresAt > now)
      .map(([id, g]) => toGrant(id, creditType, g))
      .sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : 1));
  }

  /** "<type>:<cycleStart>" -> thresholds alerted (and "empty"). */
  get alerted(): Map<string, Expiring<Set<number | string>>> {
    this.alertMarks ??= new Map();
    return this.alertMarks;
  }

  /** The alert marks of one pool and cycle, if any (reading makes no map). */
  marks(key: string): Expiring<Set<number | string>> | undefined {
    return this.alertMarks?.get(key);
  }

  /** Sets one mark of a pool's cycle (as lua/mark.lua): true only when it was not set yet. */
  markOnce(key: string, mark: string, expireAt: number, now: number): boolean {
    const marks = this.marks(key);
    if (!live(marks, now)) {
      this.alerted.set(key, { value: new Set([mark]), expireAt });
      return true;
    }
    if (marks.value.has(mark)) return false;
    marks.value.add(mark);
    return true;
  }

  /** Refund ids applied (a replayed refund gives nothing back twice). */
  get refundIds(): Map<string, Expiring<true>> {
    this.appliedRefunds ??= new Map();
    return this.appliedRefunds;
  }

  /** Top-up idempotency key -> the grant as first answered. */
  get topUpKeys(): Map<string, Expiring<Grant>> {
    this.topUpAnswers ??= new Map();
    return this.topUpAnswers;
  }

  get requestKeys(): Map<string, Expiring<HeldRecord>> {
    this.requestClaims ??= new Map();
    return this.requestClaims;
  }

  /** lua/billing.lua's rules: dedupe on the id, refuse an older `created`, then write (null: remove) the record. */
  applyBillingEvent(event: BillingEventMark, record: AccountRecord | null): BillingEventOutcome {
    this.billingMarks ??= new Map();
    const marks = this.billingMarks;
    if (live(marks.get(`id:${event.id}`), event.now)) return 'duplicate';
    const last = marks.get('last');
    if (live(last, event.now) && event.created < last.value) return 'stale';
    if (record === null) this.record = undefined;
    else this.record = { ...record };
    const expireAt = event.now + event.ttlMs;
    marks.set('last', { value: event.created, expireAt });
    marks.set(`id:${event.id}`, { value: 1, expireAt });
    return 'applied';
  }

  /** Newest first; gone 90 days after the last append (as in Redis). */
  events(now: number): AlertEvent[] {
    return live(this.feed, now) ? this.feed.value : [];
  }

  setEvents(events: AlertEvent[], expireAt: number): void {
    this.feed = { value: events, expireAt };
  }

  /** Bytes of kept first responses held by this account's request keys. */
  keptBytes(): number {
    let bytes = 0;
    for (const e of this.requestClaims?.values() ?? []) bytes += e.value.response?.length ?? 0;
    return bytes;
  }

  /** Drops what has expired; true when nothing is left (no record either). `freed` hears of kept responses dropped. */
  sweep(now: number, freed: (bytes: number) => void): boolean {
    const prune = <T>(map: Map<string, Expiring<T>> | undefined, dropped?: (e: T) => void) => {
      if (map) {
        for (const [k, e] of map) {
          if (e.expireAt === 0 || e.expireAt > now) continue;
          map.delete(k);
          dropped?.(e.value);
        }
      }
      return map?.size ? map : undefined;
    };
    this.alertMarks = prune(this.alertMarks);
    this.topUpAnswers = prune(this.topUpAnswers);
    this.appliedRefunds = prune(this.appliedRefunds);
    this.billingMarks = prune(this.billingMarks);
    this.requestClaims = prune(this.requestClaims, (r) => freed(r.response?.length ?? 0));
    for (const [type, byType] of this.grantsByType ?? []) {
      for (const [id, g] of byType) if (g.expiresAt <= now) byType.delete(id);
      if (byType.size === 0) this.grantsByType!.delete(type);
    }
    if (this.grantsByType?.size === 0) this.grantsByType = undefined;
    if (!live(this.feed, now)) this.feed = undefined;
    return (
      !this.record &&
      !this.grantsByType &&
      !this.alertMarks &&
      !this.topUpAnswers &&
      !this.appliedRefunds &&
      !this.requestClaims &&
      !this.feed &&
      !this.billingMarks
    );
  }
}

function toGrant(id: string, creditType: string, g: GrantData): Grant {
  return { id, creditType, amount: g.amount, used: g.used, expiresAt: g.expiresAt, createdAt: g.createdAt };
}
