// What could not be written to the store while it was unreachable, kept in
// this process until it can be: charges allowed by an outage policy (usage
// during an outage is not lost — rate-limiter-flexible's insurance limiter
// never copies its counts back; this does), and refunds, settles and
// capacity releases (a customer never pays for what failed because Redis was
// away). Bounded: when full, outage charges are refused (503) and a refund
// that cannot be kept is reported as lost. Also tracks each account's outage
// spend per pool, which the per-type outage allowance limits.

import type { RefundLine, RequestClaim } from '../store/credit-store.js';

export interface JournalLine {
  readonly creditType: string;
  readonly op: 'charge' | 'release';
  amount: number;
}

interface EntryBase {
  readonly id: number;
  readonly account: string;
  /** Epoch ms of the request: its cycle is the one charged on replay. */
  readonly at: number;
}

/** A charge allowed during an outage, to be counted when the store is back. */
export interface ChargeEntry extends EntryBase {
  readonly kind: 'charge';
  readonly lines: JournalLine[];
}

/** A refund (or settle, or capacity release) to be given back when the store is back. */
export interface RefundEntry extends EntryBase {
  readonly kind: 'refund';
  readonly lines: readonly RefundLine[];
  /** Applied once by the store, however often it is replayed. */
  readonly refundId: string;
  /** The request's claim on its idempotency key, freed in the same step. */
  readonly idempotency?: RequestClaim | undefined;
}

export type JournalEntry = ChargeEntry | RefundEntry;

/** An entry as written to a journal file or a log line: everything needed to apply it. */
export type KeptEntry = Omit<ChargeEntry, 'id'> | Omit<RefundEntry, 'id'>;

export class OutageJournal {
  private readonly entries = new Map<number, JournalEntry>();
  private readonly spent = new Map<string, number>();
  private nextId = 1;

  constructor(private capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  setCapacity(capacity: number): void {
    this.capacity = capacity;
  }

  /** Credits of this pool the account spent during the outage. */
  spentBy(account: string, creditType: string): number {
    return this.spent.get(`${account}\u0000${creditType}`) ?? 0;
  }

  /** Records an outage charge; null when the journal is full. */
  record(account: string, at: number, lines: readonly JournalLine[]): ChargeEntry | null {
    return this.add({ kind: 'charge', account, at, lines: lines.map((l) => ({ ...l })) }) as ChargeEntry | null;
  }

  /** Records a refund that could not be written; null when the journal is full. */
  recordRefund(account: string, at: number, lines: readonly RefundLine[], refundId: string, idempotency?: RequestClaim): RefundEntry | null {
    return this.add({ kind: 'refund', account, at, lines, refundId, ...(idempotency ? { idempotency } : {}) }) as RefundEntry | null;
  }

  /** Takes back entries kept across a restart; returns those that did not fit. */
  restore(kept: readonly KeptEntry[]): KeptEntry[] {
    return kept.filter((k) => this.add(k.kind === 'charge' ? { ...k, lines: k.lines.map((l) => ({ ...l })) } : k) === null);
  }

  /** The request failed: its outage charge never happened. */
  cancel(id: number): void {
    const entry = this.entries.get(id);
    if (entry?.kind !== 'charge') return;
    this.entries.delete(id);
    for (const l of entry.lines) if (l.op === 'charge') this.addSpent(entry.account, l.creditType, -l.amount);
  }

  /** A held line settled to less: record only what was used. */
  adjust(id: number, creditType: string, amount: number): void {
    const entry = this.entries.get(id);
    if (entry?.kind !== 'charge') return;
    const line = entry.lines.find((l) => l.creditType === creditType && l.op === 'charge');
    if (!line) return;
    this.addSpent(entry.account, creditType, amount - line.amount);
    line.amount = amount;
  }

  /** Oldest first. */
  pending(): JournalEntry[] {
    return [...this.entries.values()];
  }

  /** The entry as it stands now; undefined once written, dropped or cancelled. */
  get(id: number): JournalEntry | undefined {
    return this.entries.get(id);
  }

  /** Written to the store (or dropped): forget it. */
  remove(id: number): void {
    this.entries.delete(id);
  }

  /** Everything pending, in order, without ids: for a journal file or the log. */
  keep(): KeptEntry[] {
    return this.pending().map(({ id: _id, ...entry }) => entry);
  }

  /** The outage is over and the journal replayed: allowances start afresh next time. */
  resetSpent(): void {
    if (this.entries.size === 0) this.spent.clear();
  }

  private add(entry: KeptEntry): JournalEntry | null {
    if (this.entries.size >= this.capacity) return null;
    const added = { ...entry, id: this.nextId++ } as JournalEntry;
    this.entries.set(added.id, added);
    if (added.kind === 'charge') for (const l of added.lines) if (l.op === 'charge') this.addSpent(added.account, l.creditType, l.amount);
    return added;
  }

  private addSpent(account: string, creditType: string, delta: number): void {
    const key = `${account}\u0000${creditType}`;
    const next = (this.spent.get(key) ?? 0) + delta;
    if (next <= 0) this.spent.delete(key);
    else this.spent.set(key, next);
  }
}
