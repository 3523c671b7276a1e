// The embedded store: the same semantics as RedisStore inside one process.
// The zero-setup default, right for one replica and for trying creditgate out;
// counts are lost on restart and not shared between replicas.
//
// Every method runs synchronously between its awaits, which is what makes a
// check-then-charge atomic here: no other request runs in between.
//
// Accounts held, their bound and the sweep: memory-accounts.ts.

import type {
  AccountRecord,
  AlertEvent,
  BillingEventMark,
  BillingEventOutcome,
  ChargeContext,
  ChargedPool,
  ChargeOutcome,
  CreditStore,
  Grant,
  GrantResult,
  IdempotencyRecord,
  RefundOptions,
  RequestClaim,
  NewGrant,
  PoolCharge,
  PoolKey,
  PoolUsage,
  RefundLine,
} from './credit-store.js';
import { EVENTS_TTL_MS, REFUND_ID_TTL_MS } from './credit-store.js';
import { live, publicRecord, type Expiring, type GrantData, type HeldRecord } from './memory-account-state.js';
import { MemoryAccounts } from './memory-accounts.js';
import { planDraw } from './plan-draw.js';
import { cycleSecond } from './store-keys.js';

export type { MemoryStoreOptions } from './memory-accounts.js';

/** A cycle start as counters are keyed by it, here as in Redis: the whole second (store-keys.ts). */
const cycleKey = (cycleStart: number) => cycleSecond(cycleStart) * 1000;

export class MemoryStore extends MemoryAccounts implements CreditStore {
  async charge(account: string, pools: readonly PoolCharge[], context: ChargeContext): Promise<ChargeOutcome> {
    // A new account gets a slot only once something is written for it.
    let slot = this.accounts.slotOf(account);
    const held = () => (slot ??= this.claim(account));
    const state = slot === undefined ? undefined : this.accounts.extrasAt(slot);
    const clock = this.now();
    if (context.idempotency) {
      const seen = state?.requestKeys.get(context.idempotency.key);
      if (live(seen, clock)) return { ok: false, duplicate: publicRecord(seen.value), pools: [] };
    }
    const read = pools.map((p) => {
      const cycle = cycleKey(p.cycleStart);
      const planUsed = slot === undefined ? 0 : this.accounts.counter(slot, p.creditType, cycle, clock);
      const grants = p.extras && state ? state.activeGrants(p.creditType, context.now) : [];
      return { p, cycle, planUsed, grants, draw: planDraw(p, planUsed, grants) };
    });
    const fits = read.every((r) => r.draw.fits);
    const result: ChargedPool[] = read.map(({ p, cycle, planUsed, grants, draw }) => {
      const grantTotal = grants.reduce((s, g) => s + g.amount, 0);
      let grantUsed = grants.reduce((s, g) => s + g.used, 0);
      if (!fits)
        return {
          creditType: p.creditType,
          planUsed,
          grantTotal,
          grantUsed,
          wouldRefuse: false,
          emptied: false,
          charged: 0,
          planDelta: 0,
          fired: [],
          draws: [],
        };
      let newPlanUsed = planUsed;
      let charged = draw.charged;
      if (p.op === 'release') {
        newPlanUsed = Math.max(0, planUsed - p.amount);
        charged = planUsed - newPlanUsed;
        if (newPlanUsed !== planUsed) this.accounts.setCounter(held(), p.creditType, cycle, newPlanUsed, p.expireAt, clock);
      } else if (draw.fromPlan > 0) {
        newPlanUsed = planUsed + draw.fromPlan;
        this.accounts.setCounter(held(), p.creditType, cycle, newPlanUsed, p.expireAt, clock);
      }
      for (const d of draw.draws) {
        state!.grantsOf(p.creditType)!.get(d.grantId)!.used += d.amount;
        grantUsed += d.amount;
      }
      const fired: number[] = [];
      let emptied = false;
      if (p.op === 'charge' && p.extras && p.limit !== null) {
        const allowance = p.limit + grantTotal;
        const used = newPlanUsed + grantUsed;
        if (allowance > 0) {
          const markKey = `${p.creditType}:${cycle}`;
          let marks = state?.marks(markKey);
          if (!live(marks, clock)) marks = { value: new Set(), expireAt: p.expireAt };
          for (const t of context.thresholds) {
            if (used >= t * allowance && !marks.value.has(t)) {
              marks.value.add(t);
              fired.push(t);
            }
          }
          if (used >= allowance && !marks.value.has('empty')) {
            marks.value.add('empty');
            emptied = true;
          }
          if (fired.length > 0 || emptied) this.stateOf(held()).alerted.set(markKey, { value: marks.value, expireAt: p.expireAt });
        }
      }
      return {
        creditType: p.creditType,
        planUsed: newPlanUsed,
        grantTotal,
        grantUsed,
        wouldRefuse: draw.wouldRefuse,
        emptied,
        charged,
        planDelta: newPlanUsed - planUsed,
        fired,
        draws: draw.draws,
      };
    });
    if (fits && context.idempotency) {
      this.stateOf(held()).requestKeys.set(context.idempotency.key, {
        value: { state: 'pending', fingerprint: context.idempotency.fingerprint, claim: context.idempotency.claim },
        expireAt: clock + context.idempotency.pendingTtlMs,
      });
    }
    return { ok: fits, pools: result };
  }

  async refund(account: string, lines: readonly RefundLine[], options: RefundOptions = {}): Promise<boolean> {
    const slot = this.accounts.slotOf(account);
    // Nothing held for the account: nothing to give back (and no account made to remember the id).
    if (slot === undefined) return true;
    const clock = this.now();
    if (options.refundId !== undefined) {
      const applied = this.stateOf(slot).refundIds;
      if (live(applied.get(options.refundId), clock)) return false;
      applied.set(options.refundId, { value: true, expireAt: clock + REFUND_ID_TTL_MS });
    }
    const state = this.accounts.extrasAt(slot);
    const claim = options.idempotency;
    if (claim && state?.requestKeys.get(claim.key)?.value.claim === claim.claim) state.requestKeys.delete(claim.key);
    for (const line of lines) {
      const cycle = cycleKey(line.cycleStart);
      const expireAt = this.accounts.counterExpiry(slot, line.creditType, cycle, clock);
      if (line.planDelta !== 0 && expireAt !== undefined) {
        const value = this.accounts.counter(slot, line.creditType, cycle, clock);
        const next = line.planDelta > 0 ? value - Math.min(line.planDelta, value) : value - line.planDelta;
        this.accounts.setCounter(slot, line.creditType, cycle, next, expireAt, clock);
      } else if (line.planDelta < 0 && cycle === 0) {
        // A release took capacity to 0, which is not kept: hold it again.
        this.accounts.setCounter(slot, line.creditType, 0, -line.planDelta, 0, clock);
      }
      const byType = state?.grantsOf(line.creditType);
      for (const d of line.draws) {
        const g = byType?.get(d.grantId);
        if (g) g.used = Math.max(0, g.used - d.amount);
      }
    }
    return true;
  }

  async completeIdempotency(account: string, claim: RequestClaim, ttlMs: number, response?: string): Promise<boolean> {
    const held = this.heldBy(account, claim);
    if (!held) return false;
    const keep = response !== undefined && response !== '' && this.keptResponseBytes + response.length <= this.maxKeptResponseBytes;
    if (keep) this.keptResponseBytes += response.length;
    const done: HeldRecord = { ...held.value, state: 'done', ...(keep ? { response } : {}) };
    this.existing(account)!.requestKeys.set(claim.key, { value: done, expireAt: this.now() + ttlMs });
    return true;
  }

  async renewIdempotency(account: string, claim: RequestClaim, leaseMs: number): Promise<boolean> {
    const held = this.heldBy(account, claim);
    if (held) held.expireAt = this.now() + leaseMs;
    return held !== null;
  }

  async idempotencyRecord(account: string, key: string): Promise<IdempotencyRecord | null> {
    const seen = this.existing(account)?.requestKeys.get(key);
    return live(seen, this.now()) ? publicRecord(seen.value) : null;
  }

  /** The record, while `claim` holds its key pending. */
  private heldBy(account: string, claim: RequestClaim): Expiring<HeldRecord> | null {
    const seen = this.existing(account)?.requestKeys.get(claim.key);
    return live(seen, this.now()) && seen.value.state === 'pending' && seen.value.claim === claim.claim ? seen : null;
  }

  async usage(account: string, pools: readonly PoolKey[], now: number): Promise<PoolUsage[]> {
    const slot = this.accounts.slotOf(account);
    const state = slot === undefined ? undefined : this.accounts.extrasAt(slot);
    const clock = this.now();
    return pools.map((p) => {
      const grants = state ? state.activeGrants(p.creditType, now) : [];
      return {
        creditType: p.creditType,
        planUsed: slot === undefined ? 0 : this.accounts.counter(slot, p.creditType, cycleKey(p.cycleStart), clock),
        grantTotal: grants.reduce((s, g) => s + g.amount, 0),
        grantUsed: grants.reduce((s, g) => s + g.used, 0),
        grants,
      };
    });
  }

  async addGrant(account: string, grant: NewGrant, options: { now: number; idempotencyKey?: string; idempotencyTtlMs: number }): Promise<GrantResult> {
    const state = this.stateOf(this.claim(account));
    const clock = this.now();
    const byType = state.grants.get(grant.creditType) ?? new Map<string, GrantData>();
    if (options.idempotencyKey !== undefined) {
      const seen = state.topUpKeys.get(options.idempotencyKey);
      // The original answer, whatever the replay asked for.
      if (live(seen, clock)) return { created: false, grant: { ...seen.value } };
    }
    for (const [id, g] of byType) if (g.expiresAt <= options.now) byType.delete(id);
    byType.set(grant.id, { amount: grant.amount, used: 0, expiresAt: grant.expiresAt, createdAt: grant.createdAt });
    state.grants.set(grant.creditType, byType);
    const answer: Grant = { ...grant, used: 0 };
    if (options.idempotencyKey !== undefined) {
      state.topUpKeys.set(options.idempotencyKey, { value: answer, expireAt: clock + options.idempotencyTtlMs });
    }
    return { created: true, grant: { ...answer } };
  }

  async getAccount(account: string): Promise<AccountRecord | null> {
    return this.existing(account)?.record ?? null;
  }

  async putAccount(account: string, record: AccountRecord): Promise<void> {
    this.stateOf(this.claim(account)).record = { ...record };
  }

  async applyBillingEvent(account: string, event: BillingEventMark, record: AccountRecord | null): Promise<BillingEventOutcome> {
    return this.stateOf(this.claim(account)).applyBillingEvent(event, record);
  }

  async deleteAccount(account: string): Promise<boolean> {
    const slot = this.accounts.slotOf(account);
    if (slot === undefined) return false;
    this.drop(slot);
    return true;
  }

  async appendEvents(account: string, events: readonly AlertEvent[], keep: number): Promise<void> {
    if (events.length === 0) return;
    const state = this.stateOf(this.claim(account));
    const clock = this.now();
    state.setEvents([...[...events].reverse(), ...state.events(clock)].slice(0, keep), clock + EVENTS_TTL_MS);
  }

  async listEvents(account: string, limit: number): Promise<AlertEvent[]> {
    return (this.existing(account)?.events(this.now()) ?? []).slice(0, limit);
  }

  async markExhausted(account: string, creditType: string, until: number): Promise<void> {
    const slot = this.claim(account);
    const byType = this.exhausted.get(creditType) ?? new Map<number, number>();
    byType.set(slot, until);
    this.exhausted.set(creditType, byType);
  }

  async clearExhausted(account: string, creditType: string, cycleStart: number): Promise<void> {
    const slot = this.accounts.slotOf(account);
    if (slot === undefined) return;
    this.exhausted.get(creditType)?.delete(slot);
    this.accounts
      .extrasAt(slot)
      ?.marks(`${creditType}:${cycleKey(cycleStart)}`)
      ?.value.delete('empty');
  }

  async markAlert(account: string, creditType: string, cycleStart: number, mark: string, expireAt: number, now: number): Promise<boolean> {
    return this.stateOf(this.claim(account)).markOnce(`${creditType}:${cycleKey(cycleStart)}`, mark, expireAt, now);
  }

  async countExhausted(creditTypes: readonly string[], now: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const t of creditTypes) {
      const byType = this.exhausted.get(t);
      let n = 0;
      if (byType) {
        for (const [slot, until] of byType) {
          if (until > now) n += 1;
          else byType.delete(slot);
        }
      }
      counts.set(t, n);
    }
    return counts;
  }

  private readonly subscribers = new Set<(account: string) => void>();

  async publishInvalidation(account: string): Promise<void> {
    for (const fn of this.subscribers) fn(account);
  }

  async subscribeInvalidations(onAccount: (account: string) => void, onListening?: (listening: boolean) => void): Promise<() => Promise<void>> {
    onListening?.(true);
    this.subscribers.add(onAccount);
    return async () => void this.subscribers.delete(onAccount);
  }

  async ping(): Promise<void> {}
}
