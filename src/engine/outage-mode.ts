// While the store is unreachable: each credit type's onStoreError decides a
// charge (deny, or allow up to an outage allowance, journaled); refunds that
// cannot be written are journaled too. When the store answers again the
// journal is replayed; at shutdown it is kept in the journal file, or
// reported lost with everything needed to apply it by hand.

import type { CompiledConfig } from '../config/compiled-config.js';
import { cycleContaining } from '../domain/billing-cycle.js';
import { REFUND_ID_TTL_MS, StoreError, StoreFullError, type CreditStore, type RefundLine, type RequestClaim } from '../store/credit-store.js';
import type { AccountDirectory } from './account-directory.js';
import type { AfterCharge } from './after-charge.js';
import { takeJournalFile, writeJournalFile } from './journal-file.js';
import { newId } from './ids.js';
import { OutageJournal, type JournalEntry, type KeptEntry } from './outage-journal.js';
import { COUNTER_GRACE_MS, mergeCosts, pendingRelease, poolCharge, poolStatus, type MergedLine } from './pool-status.js';
import { splitRefund, type ChargedLine } from './refund-split.js';
import type { ChargeDecision, CostLine, EngineObserver } from './types.js';

export interface OutageModeOptions {
  readonly store: CreditStore;
  readonly config: () => CompiledConfig;
  readonly now: () => number;
  readonly observer: EngineObserver | undefined;
  readonly directory: AccountDirectory;
  readonly afterCharge: AfterCharge;
  /** The store failed during a replay: stop calling it until it answers. */
  readonly onStoreFailure: () => void;
}

/** What a replayed outage charge wrote, per pool: enough to give it back. */
export interface WrittenCharge {
  readonly account: string;
  /** When it was written (epoch ms). */
  readonly at: number;
  readonly lines: readonly (ChargedLine & { readonly charged: number })[];
}

/** How long what a replay wrote is kept for a refund or settle still to come: beyond any request's life. */
const WRITTEN_KEPT_MS = 3600_000;

export class OutageMode {
  private readonly journal: OutageJournal;
  private readonly written = new Map<number, WrittenCharge>();

  constructor(private readonly o: OutageModeOptions) {
    this.journal = new OutageJournal(o.config().journalSize);
  }

  /** Entries waiting for the store. */
  get size(): number {
    return this.journal.size;
  }

  /**
   * "deny" (the default) refuses (StoreError → 503); "allow" lets an account
   * spend up to its outage allowance per pool on this replica, recorded in
   * the journal.
   */
  charge(accountId: string, costs: readonly CostLine[], config: CompiledConfig): ChargeDecision {
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
      this.o.now(),
      lines.map((c) => ({ creditType: c.creditType, op: c.op, amount: c.amount })),
    );
    if (!entry) throw new StoreError('the credit store is unreachable and the outage journal is full');
    this.reportSize();
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
   * An outage charge whose request failed: it never happened. Still in the
   * journal, it is cancelled there; already written by a replay, what was
   * written is returned, to be given back in the store.
   */
  takeBack(journalId: number): WrittenCharge | null {
    if (this.journal.get(journalId)) {
      this.journal.cancel(journalId);
      this.reportSize();
      return null;
    }
    const written = this.written.get(journalId);
    this.written.delete(journalId);
    return written ?? null;
  }

  /**
   * An outage charge's hold settled to `keep`: adjusted in the journal, or —
   * already written — the refund of the rest, to be given back in the store.
   */
  settleBack(journalId: number, creditType: string, keep: number, release: number): RefundLine | null {
    if (this.journal.get(journalId)) {
      this.journal.adjust(journalId, creditType, keep);
      return null;
    }
    const line = this.written.get(journalId)?.lines.find((l) => l.creditType === creditType);
    return line ? splitRefund(line, Math.min(release, line.charged)) : null;
  }

  /** Keeps a refund the store could not take; throws (and reports it lost) when the journal is full. */
  keepRefund(account: string, lines: readonly RefundLine[], refundId: string, idempotency?: RequestClaim): void {
    this.journal.setCapacity(this.o.config().journalSize);
    const entry = this.journal.recordRefund(account, this.o.now(), lines, refundId, idempotency);
    this.reportSize();
    if (entry) return;
    this.o.observer?.journalLost(
      { kind: 'refund', account, at: this.o.now(), lines, refundId, ...(idempotency ? { idempotency } : {}) },
      'the outage journal is full',
    );
    throw new StoreError('the credit store is unreachable and the outage journal is full: a refund could not be kept');
  }

  /**
   * Writes the journal to the store, oldest first: charges into the cycle
   * their request fell in, never refused (the credits were used), dropped
   * when that cycle ended more than the counter grace ago; refunds once, by
   * their id. Stops at the first store failure.
   */
  async replay(): Promise<void> {
    const config = this.o.config();
    let replayed = 0;
    let dropped = 0;
    for (const entry of this.journal.pending()) {
      // Cancelled (its request refunded) since the list was taken.
      if (!this.journal.get(entry.id)) continue;
      try {
        if (entry.kind === 'refund') {
          if (this.o.now() - entry.at > REFUND_ID_TTL_MS - 3600_000) {
            // The store may no longer know whether this refund id was applied: never guess with money.
            this.journal.remove(entry.id);
            this.o.observer?.journalLost({ ...entry }, 'a refund older than its once-only marker lives: check and apply it by hand');
            dropped += 1;
            continue;
          }
          await this.o.store.refund(entry.account, entry.lines, { refundId: entry.refundId, ...(entry.idempotency ? { idempotency: entry.idempotency } : {}) });
          this.journal.remove(entry.id);
          replayed += 1;
          await this.o.directory.announce(entry.account);
          continue;
        }
        const resolved = await this.o.directory.resolve(entry.account, config);
        const cycle = 'unknown' in resolved ? undefined : cycleContaining(resolved.anchor, entry.at);
        if ('unknown' in resolved || !cycle || cycle.end + COUNTER_GRACE_MS <= this.o.now()) {
          this.journal.remove(entry.id);
          dropped += 1;
          continue;
        }
        const lines = entry.lines.filter((l) => l.amount > 0).map((l) => ({ ...l }) as MergedLine);
        const pools = lines.map((l) => poolCharge(config, resolved.plan, cycle, l, true));
        const outcome = await this.o.store.charge(entry.account, pools, { now: entry.at, thresholds: config.alerts.thresholds });
        const now = this.journal.get(entry.id);
        this.journal.remove(entry.id);
        replayed += 1;
        const written: WrittenCharge = {
          account: entry.account,
          at: this.o.now(),
          lines: lines.map((l, i) => ({
            creditType: l.creditType,
            cycleStart: pools[i]!.cycleStart,
            planDelta: outcome.pools[i]!.planDelta,
            draws: outcome.pools[i]!.draws,
            charged: outcome.pools[i]!.charged,
          })),
        };
        await this.settleWhatChanged(written, lines, now);
        const statuses = lines.map((c, i) => poolStatus(config, resolved.plan, cycle, c, outcome.pools[i]!));
        lines.forEach((c, i) => {
          if (c.op === 'charge') this.o.observer?.creditsCharged(c.creditType, resolved.plan.id, outcome.pools[i]!.charged);
        });
        const recorded = this.o.afterCharge.record(config, resolved, outcome.pools, statuses, this.o.now());
        if (recorded) await recorded;
      } catch (err) {
        // No room for this account in the store: the entry cannot be written (counted as dropped).
        if (err instanceof StoreFullError) {
          this.journal.remove(entry.id);
          dropped += 1;
          continue;
        }
        if (!(err instanceof StoreError)) throw err;
        this.o.onStoreFailure();
        break;
      }
    }
    this.journal.resetSpent();
    this.o.observer?.journal(this.journal.size, replayed, dropped);
  }

  /** At start: takes back what a previous run kept in the journal file. */
  restore(): void {
    const path = this.o.config().parsed.store.journalFile;
    if (path === undefined) return;
    let kept: KeptEntry[];
    try {
      kept = takeJournalFile(path);
    } catch (err) {
      this.o.observer?.journalFileUnreadable(path, (err as Error).message);
      return;
    }
    this.journal.setCapacity(this.o.config().journalSize);
    for (const entry of this.journal.restore(kept)) this.o.observer?.journalLost(entry, 'the outage journal is full');
    this.reportSize();
  }

  /** At shutdown: the journal's entries go to the journal file, or are reported lost with all they hold. */
  keep(): void {
    if (this.journal.size === 0) return;
    const kept = this.journal.keep();
    const path = this.o.config().parsed.store.journalFile;
    if (path !== undefined) {
      try {
        writeJournalFile(path, kept, this.o.now());
        this.o.observer?.journalKept(kept, path);
        return;
      } catch (err) {
        for (const entry of kept) this.o.observer?.journalLost(entry, `shutdown: the journal file could not be written (${(err as Error).message})`);
        return;
      }
    }
    for (const entry of kept) this.o.observer?.journalLost(entry, 'shutdown with the store unreachable and no store.journalFile');
  }

  /**
   * Its request was refunded (the entry gone) or settled lower while the
   * entry was being written: give back the difference now. Otherwise keep
   * what was written a while, for a refund or settle still to come.
   */
  private async settleWhatChanged(written: WrittenCharge, asWritten: readonly MergedLine[], now: JournalEntry | undefined): Promise<void> {
    const back: RefundLine[] = [];
    written.lines.forEach((line, i) => {
      const kept = now?.kind === 'charge' ? (now.lines.find((l) => l.creditType === line.creditType && l.op === 'charge')?.amount ?? 0) : 0;
      const excess = asWritten[i]!.amount - kept;
      if (excess > 0) back.push(splitRefund(line, Math.min(excess, line.charged)));
    });
    if (now) {
      for (const [id, w] of this.written) if (w.at < this.o.now() - WRITTEN_KEPT_MS || this.written.size > this.journalCapacity()) this.written.delete(id);
      this.written.set(now.id, written);
    }
    if (back.length === 0) return;
    const refundId = newId('rf');
    try {
      await this.o.store.refund(written.account, back, { refundId });
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.keepRefund(written.account, back, refundId);
    }
  }

  private journalCapacity(): number {
    return this.o.config().journalSize;
  }

  private reportSize(): void {
    this.o.observer?.journal(this.journal.size, 0, 0);
  }
}
