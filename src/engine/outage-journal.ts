// Charges allowed while the store was unreachable, kept in this process
// until they can be written to the store: usage during an outage is not lost
// (rate-limiter-flexible's insurance limiter never copies its counts back;
// this does). Bounded: when full, further outage charges are refused (503)
// rather than allowed without a record. Also tracks each account's outage
// spend per pool, which the per-type outage allowance limits.

export interface JournalLine {
  readonly creditType: string;
  readonly op: 'charge' | 'release';
  amount: number;
}

export interface JournalEntry {
  readonly id: number;
  readonly account: string;
  /** Epoch ms of the request: its cycle is the one charged on replay. */
  readonly at: number;
  readonly lines: JournalLine[];
}

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
  record(account: string, at: number, lines: readonly JournalLine[]): JournalEntry | null {
    if (this.entries.size >= this.capacity) return null;
    const entry: JournalEntry = { id: this.nextId++, account, at, lines: lines.map((l) => ({ ...l })) };
    this.entries.set(entry.id, entry);
    for (const l of entry.lines) if (l.op === 'charge') this.addSpent(account, l.creditType, l.amount);
    return entry;
  }

  /** The request failed: it never happened. */
  cancel(id: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    for (const l of entry.lines) if (l.op === 'charge') this.addSpent(entry.account, l.creditType, -l.amount);
  }

  /** A held line settled to less: record only what was used. */
  adjust(id: number, creditType: string, amount: number): void {
    const line = this.entries.get(id)?.lines.find((l) => l.creditType === creditType && l.op === 'charge');
    if (!line) return;
    this.addSpent(this.entries.get(id)!.account, creditType, amount - line.amount);
    line.amount = amount;
  }

  /** Oldest first. */
  pending(): JournalEntry[] {
    return [...this.entries.values()];
  }

  /** Written to the store (or dropped): forget it. */
  remove(id: number): void {
    this.entries.delete(id);
  }

  /** The outage is over and the journal replayed: allowances start afresh next time. */
  resetSpent(): void {
    if (this.entries.size === 0) this.spent.clear();
  }

  private addSpent(account: string, creditType: string, delta: number): void {
    const key = `${account}\u0000${creditType}`;
    const next = (this.spent.get(key) ?? 0) + delta;
    if (next <= 0) this.spent.delete(key);
    else this.spent.set(key, next);
  }
}
