// Admin operations on accounts: create or change a record (plan, anchor,
// e-mail), delete an account, grant a top-up. Each change makes every
// replica forget the account, also when its outcome is unknown.

import type { CompiledConfig } from '../config/compiled-config.js';
import { CALENDAR_MONTH_ANCHOR_ISO, cycleContaining, parseAnchor, parseInstant, truncateAnchorIso } from '../domain/billing-cycle.js';
import { isCreditAmount, MAX_CREDITS_TEXT } from '../domain/credit-amount.js';
import type { AccountRecord, BillingEventMark, BillingEventOutcome, CreditStore } from '../store/credit-store.js';
import type { AccountDirectory } from './account-directory.js';
import { topUpView } from './account-views.js';
import { AccountInputError, TopUpError } from './engine-errors.js';
import { newId } from './ids.js';
import type { AccountInput, EngineObserver, TopUpView } from './types.js';

/** How long a top-up idempotency key is remembered. */
export const TOPUP_IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

export interface AccountsParts {
  readonly store: CreditStore;
  readonly now: () => number;
  readonly observer: EngineObserver | undefined;
  readonly directory: AccountDirectory;
}

export class Accounts {
  constructor(private readonly p: AccountsParts) {}

  /**
   * Creates or updates an account record. Omitted fields keep their values;
   * a new record without an anchor keeps the calendar-month cycles it was
   * already served on, so saving it never moves or empties a cycle.
   */
  async save(accountId: string, input: AccountInput, config: CompiledConfig): Promise<{ record: AccountRecord; created: boolean }> {
    const { record, existing } = await this.recordFor(accountId, input, config);
    await this.p.directory.announcing(accountId, () => this.p.store.putAccount(accountId, record));
    await this.afterChange(accountId, existing, record, config);
    return { record, created: existing === null };
  }

  /**
   * Applies a billing event: the record is written as `save` writes it (or
   * removed, for "delete"), but only when the store has neither applied this
   * event before nor a newer one for the account (store.applyBillingEvent).
   */
  async applyBillingEvent(accountId: string, event: BillingEventMark, change: AccountInput | 'delete', config: CompiledConfig): Promise<BillingEventOutcome> {
    if (change === 'delete') return this.p.directory.announcing(accountId, () => this.p.store.applyBillingEvent(accountId, event, null));
    const { record, existing } = await this.recordFor(accountId, change, config);
    const outcome = await this.p.directory.announcing(accountId, () => this.p.store.applyBillingEvent(accountId, event, record));
    if (outcome === 'applied') await this.afterChange(accountId, existing, record, config);
    return outcome;
  }

  /** The record `input` makes of the account's current one (omitted fields keep their values). */
  private async recordFor(accountId: string, input: AccountInput, config: CompiledConfig): Promise<{ record: AccountRecord; existing: AccountRecord | null }> {
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
    const existing = await this.p.store.getAccount(accountId);
    const stamp = new Date(this.p.now()).toISOString();
    const record: AccountRecord = {
      plan: input.plan,
      // Whole seconds, as the cycles use it: the record reads back as the anchor in force.
      billingAnchor: truncateAnchorIso(input.billingAnchor ?? existing?.billingAnchor ?? CALENDAR_MONTH_ANCHOR_ISO),
      email: input.email === null ? undefined : (input.email ?? existing?.email),
      createdAt: existing?.createdAt ?? stamp,
      updatedAt: stamp,
    };
    return { record, existing };
  }

  private async afterChange(accountId: string, existing: AccountRecord | null, record: AccountRecord, config: CompiledConfig): Promise<void> {
    // A new plan or cycle may have room again: the pools are no longer "exhausted".
    if (existing && (existing.plan !== record.plan || truncateAnchorIso(existing.billingAnchor) !== record.billingAnchor)) {
      const cycle = cycleContaining(parseAnchor(existing.billingAnchor), this.p.now());
      await Promise.all([...config.creditTypes.keys()].map((t) => this.p.store.clearExhausted(accountId, t, cycle.start)));
    }
  }

  /** Removes the account and everything stored for it, and what every replica remembers of it. */
  async delete(accountId: string): Promise<boolean> {
    return this.p.directory.announcing(accountId, () => this.p.store.deleteAccount(accountId));
  }

  /**
   * Grants extra credits of one consumable type. Without `expiresAt` the grant
   * ends with the account's current cycle. Throws TopUpError for bad input.
   */
  async topUp(
    accountId: string,
    request: { creditType: string; amount: number; expiresAt?: string },
    idempotencyKey: string | undefined,
    config: CompiledConfig,
  ): Promise<{ topUp: TopUpView; created: boolean }> {
    const def = config.creditTypes.get(request.creditType);
    if (!def) throw new TopUpError(`unknown credit type "${request.creditType}" (configured: ${[...config.creditTypes.keys()].join(', ')})`);
    if (def.kind === 'capacity') throw new TopUpError(`${def.name} is a capacity pool: its size comes from the plan, not from top-ups`);
    if (!isCreditAmount(request.amount, 1)) throw new TopUpError(`amount must be a whole number from 1 to ${MAX_CREDITS_TEXT}`);
    const resolved = await this.p.directory.resolve(accountId, config);
    if ('unknown' in resolved) {
      throw new TopUpError(resolved.unknown === 'account' ? 'unknown account and no default plan' : `the account's plan "${resolved.plan}" is not configured`);
    }
    const now = this.p.now();
    const expiresAt = request.expiresAt === undefined ? cycleContaining(resolved.anchor, now).end : futureInstant(request.expiresAt, now);
    const result = await this.p.directory.announcing(accountId, () =>
      this.p.store.addGrant(
        accountId,
        { id: newId('tu'), creditType: def.id, amount: request.amount, expiresAt, createdAt: now },
        { now, idempotencyTtlMs: TOPUP_IDEMPOTENCY_TTL_MS, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) },
      ),
    );
    if (result.created) {
      this.p.observer?.topUpGranted(def.id, request.amount);
      await this.p.store.clearExhausted(accountId, def.id, cycleContaining(resolved.anchor, now).start);
    }
    return { topUp: topUpView(result.grant), created: result.created };
  }
}

function futureInstant(text: string, now: number): number {
  let at: number;
  try {
    at = parseInstant(text);
  } catch {
    throw new TopUpError(`expiresAt must be an ISO 8601 instant with a UTC offset, got ${JSON.stringify(text)}`);
  }
  if (at <= now) throw new TopUpError(`expiresAt ${text} is not in the future`);
  return at;
}
