// After the upstream answered: a charge given back (refund), a hold settled
// to what was used, capacity released, or the request's idempotency key
// completed. Refunds are written once, by id, or kept in the outage journal
// when the store cannot take them; every replica forgets the account either way.

import type { CompiledConfig } from '../config/compiled-config.js';
import type { RefundReason } from '../domain/refund-policy.js';
import { settleAgainstHold } from '../domain/settle-rule.js';
import type { CreditStore, RefundLine, RequestClaim } from '../store/credit-store.js';
import type { AccountDirectory } from './account-directory.js';
import type { IdempotencyLeases } from './idempotency-leases.js';
import { newId } from './ids.js';
import type { OutageMode } from './outage-mode.js';
import { splitRefund } from './refund-split.js';
import { StoreDown, type StoreGuard } from './store-guard.js';
import type { ChargeReceipt, EngineObserver } from './types.js';

export interface SettlementParts {
  readonly store: CreditStore;
  readonly observer: EngineObserver | undefined;
  readonly directory: AccountDirectory;
  readonly guard: StoreGuard;
  readonly leases: IdempotencyLeases;
  readonly outage: OutageMode;
}

export class Settlement {
  constructor(private readonly p: SettlementParts) {}

  /** Gives a request's charge back in full (upstream failed, or did not deliver) and frees its idempotency key. */
  async refund(receipt: ChargeReceipt, reason: RefundReason): Promise<void> {
    if (receipt.journalId !== undefined) {
      // Cancelled in the journal, or — already written by a replay — given back in the store.
      const written = this.p.outage.takeBack(receipt.journalId);
      if (written) await this.giveBack(written.account, written.lines);
    } else {
      if (receipt.idempotency) this.p.leases.stop(receipt.idempotency);
      const lines = receipt.lines
        .filter((l) => l.op === 'charge')
        .map((l) => ({ creditType: l.creditType, cycleStart: l.cycleStart, planDelta: l.planDelta, draws: l.draws }));
      await this.giveBack(receipt.account, lines, receipt.idempotency);
    }
    for (const l of receipt.lines) if (l.op === 'charge' && l.charged > 0) this.p.observer?.creditsRefunded(l.creditType, reason, l.charged);
  }

  /**
   * Gives back the capacity a request released, once the upstream confirmed
   * it: taken off the capacity counter like a refund (never below zero), once.
   */
  async release(receipt: ChargeReceipt): Promise<void> {
    const lines = receipt.lines.filter((l) => l.op === 'release' && l.charged > 0);
    if (lines.length === 0) return;
    await this.giveBack(
      receipt.account,
      lines.map((l) => ({ creditType: l.creditType, cycleStart: l.cycleStart, planDelta: l.charged, draws: [] })),
    );
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
    for (const line of receipt.lines) {
      const actual = actuals.get(line.creditType);
      if (actual === undefined || line.op !== 'charge') continue;
      const { charge, release, overage } = settleAgainstHold(line.charged, actual);
      if (release > 0) {
        const back =
          receipt.journalId === undefined ? splitRefund(line, release) : this.p.outage.settleBack(receipt.journalId, line.creditType, charge, release);
        if (back) refunds.push(back);
        this.p.observer?.creditsRefunded(line.creditType, 'settled_below_hold', release);
      }
      if (overage > 0) this.p.observer?.unbilledOverage(line.creditType, overage);
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
  async complete(receipt: ChargeReceipt, config: CompiledConfig, response?: string): Promise<void> {
    if (!receipt.idempotency || receipt.journalId !== undefined) return;
    this.p.leases.stop(receipt.idempotency);
    await this.p.store.completeIdempotency(receipt.account, receipt.idempotency, config.idempotency.ttlMs, response);
  }

  /** Nothing will finish this request: its idempotency key is left to lapse with its lease. */
  abandon(receipt: ChargeReceipt): void {
    if (receipt.idempotency) this.p.leases.stop(receipt.idempotency);
  }

  /**
   * Writes a refund once, or — when the store cannot take it — keeps it in
   * the outage journal for when it can. Throws only when the journal is full
   * (the refund is then reported lost).
   */
  private async giveBack(account: string, lines: readonly RefundLine[], idempotency?: RequestClaim): Promise<void> {
    const refundId = newId('rf');
    try {
      await this.p.guard.run(() => this.p.store.refund(account, lines, { refundId, ...(idempotency ? { idempotency } : {}) }));
    } catch (err) {
      if (!(err instanceof StoreDown)) throw err;
      this.p.outage.keepRefund(account, lines, refundId, idempotency);
    } finally {
      // The outcome may be known only later: every replica forgets the account now.
      await this.p.directory.announce(account);
    }
  }
}
