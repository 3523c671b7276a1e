// The embedded store: the same semantics as RedisStore inside one process.
// The zero-setup default, right for one replica and for trying creditgate out;
// counts are lost on restart and not shared between replicas.
//
// Every method runs synchronously between its awaits, which is what makes a
// check-then-charge atomic here: no other request runs in between.
//
// Bounded without ever handing out credits: nothing live is dropped (an
// account record never is). A sweep, at most `sweepStep` accounts per timer
// tick and going on where the last tick stopped, drops what has ended:
// counters of cycles past their expiry, expired grants, idempotency keys and
// alert marks, an events feed 90 days after its last event; an account left
// with nothing goes. At `maxAccounts` a new account is refused
// (StoreFullError, a 503 store-full); accounts held keep working.

import type {
  AccountRecord,
  AlertEvent,
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
import { EVENTS_TTL_MS, REFUND_ID_TTL_MS, StoreFullError } from './credit-store.js';
import { AccountTable } from './account-table.js';
import { planDraw } from './plan-draw.js';
import { cycleSecond } from './store-keys.js';

interface Expiring<T> {
  value: T;
  /** Epoch ms; 0 = never. */
  expireAt: number;
}

interface GrantData {
  amount: number;
  used: number;
  expiresAt: number;
  createdAt: number;
}

/** A request idempotency record with the claim that holds it. */
interface HeldRecord extends IdempotencyRecord {
  readonly claim: string;
}

function publicRecord({ claim: _claim, ...record }: HeldRecord): IdempotencyRecord {
  return record;
}

const live = <T>(e: Expiring<T> | undefined, now: number): e is Expiring<T> => e !== undefined && (e.expireAt === 0 || e.expireAt > now);

/** A cycle start as counters are keyed by it, here as in Redis: the whole second (store-keys.ts). */
const cycleKey = (cycleStart: number) => cycleSecond(cycleStart) * 1000;

/**
 * What an account has besides its plan counters (those are packed in the
 * AccountTable). Made on first use; most accounts only ever have counters.
 */
class AccountState {
  record?: AccountRecord;
  private grantsByType?: Map<string, Map<string, GrantData>>;
  private alertMarks?: Map<string, Expiring<Set<number | 'empty'>>>;
  private topUpAnswers?: Map<string, Expiring<Grant>>;
  private appliedRefunds?: Map<string, Expiring<true>>;
  private requestClaims?: Map<string, Expiring<HeldRecord>>;
  private feed?: Expiring<AlertEvent[]>;

  /** type -> grant id -> grant. */
  get grants(): Map<string, Map<string, GrantData>> {
    return (this.grantsByType ??= new Map());
  }

  /** The grants of one type, if any (reading makes no map). */
  grantsOf(creditType: string): Map<string, GrantData> | undefined {
    return this.grantsByType?.get(creditType);
  }

  /** "<type>:<cycleStart>" -> thresholds alerted (and "empty"). */
  get alerted(): Map<string, Expiring<Set<number | 'empty'>>> {
    return (this.alertMarks ??= new Map());
  }

  /** The alert marks of one pool and cycle, if any (reading makes no map). */
  marks(key: string): Expiring<Set<number | 'empty'>> | undefined {
    return this.alertMarks?.get(key);
  }

  /** Top-up idempotency key -> the grant as first answered. */
  /** Refund ids applied (a replayed refund gives nothing back twice). */
  get refundIds(): Map<string, Expiring<true>> {
    return (this.appliedRefunds ??= new Map());
  }

  get topUpKeys(): Map<string, Expiring<Grant>> {
    return (this.topUpAnswers ??= new Map());
  }

  get requestKeys(): Map<string, Expiring<HeldRecord>> {
    return (this.requestClaims ??= new Map());
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
    this.requestClaims = prune(this.requestClaims, (r) => freed(r.response?.length ?? 0));
    for (const [type, byType] of this.grantsByType ?? []) {
      for (const [id, g] of byType) if (g.expiresAt <= now) byType.delete(id);
      if (byType.size === 0) this.grantsByType!.delete(type);
    }
    if (this.grantsByType?.size === 0) this.grantsByType = undefined;
    if (!live(this.feed, now)) this.feed = undefined;
    return !this.record && !this.grantsByType && !this.alertMarks && !this.topUpAnswers && !this.appliedRefunds && !this.requestClaims && !this.feed;
  }
}

export interface MemoryStoreOptions {
  /** Clock for key expiry; tests move it. */
  readonly now?: () => number;
  /** How often a sweep step runs (ms). Default 1,000. */
  readonly sweepIntervalMs?: number;
  /** Accounts one sweep step looks at, at most; the next step goes on from there. Default 10,000. */
  readonly sweepStep?: number;
  /**
   * Accounts held at most (config `store.maxAccounts`; default 1,000,000).
   * At the bound a new account is refused with StoreFullError; nothing held
   * is dropped to make room. A function is asked at each new account.
   */
  readonly maxAccounts?: number | (() => number);
  /**
   * Bytes of first responses kept for idempotent replays, at most, over all
   * accounts. Past it a completed request keeps no response (its replays get
   * 409): memory stays bounded however many keys one account sends. Default 256 MiB.
   */
  readonly maxKeptResponseBytes?: number;
}

export class MemoryStore implements CreditStore {
  private readonly accounts = new AccountTable<AccountState>();
  /** credit type -> slot of the account -> until (epoch ms); an account's marks go with its slot. */
  private readonly exhausted = new Map<string, Map<number, number>>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly sweepIntervalMs: number;
  private readonly sweepStep: number;
  /** The next slot a sweep step looks at. */
  private cursor = 0;
  private readonly maxAccounts: () => number;
  private readonly maxKeptResponseBytes: number;
  private keptResponseBytes = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxKeptResponseBytes = options.maxKeptResponseBytes ?? 256 * 1024 * 1024;
    const max = options.maxAccounts ?? 1_000_000;
    this.maxAccounts = typeof max === 'number' ? () => max : max;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 1000;
    this.sweepStep = Math.max(1, options.sweepStep ?? 10_000);
    this.sweeper = setInterval(() => this.sweep(), this.sweepIntervalMs);
    this.sweeper.unref();
  }

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
      const grants = p.extras && state ? this.activeGrants(state, p.creditType, context.now) : [];
      return { p, cycle, planUsed, grants, draw: planDraw(p, planUsed, grants) };
    });
    const fits = read.every((r) => r.draw.fits);
    const result: ChargedPool[] = read.map(({ p, cycle, planUsed, grants, draw }) => {
      const grantTotal = grants.reduce((s, g) => s + g.amount, 0);
      let grantUsed = grants.reduce((s, g) => s + g.used, 0);
      if (!fits) return { creditType: p.creditType, planUsed, grantTotal, grantUsed, wouldRefuse: false, emptied: false, charged: 0, planDelta: 0, fired: [], draws: [] };
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
      const grants = state ? this.activeGrants(state, p.creditType, now) : [];
      return {
        creditType: p.creditType,
        planUsed: slot === undefined ? 0 : this.accounts.counter(slot, p.creditType, cycleKey(p.cycleStart), clock),
        grantTotal: grants.reduce((s, g) => s + g.amount, 0),
        grantUsed: grants.reduce((s, g) => s + g.used, 0),
        grants,
      };
    });
  }

  async addGrant(
    account: string,
    grant: NewGrant,
    options: { now: number; idempotencyKey?: string; idempotencyTtlMs: number },
  ): Promise<GrantResult> {
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
    this.accounts.extrasAt(slot)?.marks(`${creditType}:${cycleKey(cycleStart)}`)?.value.delete('empty');
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

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Accounts held in memory, for tests and diagnostics. */
  get size(): number {
    return this.accounts.size;
  }

  /** The account's slot; a new one needs room. */
  private claim(account: string): number {
    const slot = this.accounts.slotOf(account) ?? this.accounts.add(account, this.maxAccounts());
    if (slot !== undefined) return slot;
    // Room comes back as the sweep finds accounts with nothing live: one round over all of them.
    const round = Math.ceil(this.accounts.end / this.sweepStep) * this.sweepIntervalMs;
    throw new StoreFullError(
      `the memory store holds its maximum of ${this.maxAccounts()} accounts (store.maxAccounts): a new account cannot be added`,
      Math.max(1, Math.ceil(round / 1000)),
    );
  }

  private stateOf(slot: number): AccountState {
    let state = this.accounts.extrasAt(slot);
    if (!state) {
      state = new AccountState();
      this.accounts.setExtras(slot, state);
    }
    return state;
  }

  /** What the account has besides counters, if it is held; never makes an entry. */
  private existing(account: string): AccountState | undefined {
    const slot = this.accounts.slotOf(account);
    return slot === undefined ? undefined : this.accounts.extrasAt(slot);
  }

  private activeGrants(state: AccountState, creditType: string, now: number): Grant[] {
    const byType = state.grantsOf(creditType);
    if (!byType) return [];
    return [...byType]
      .filter(([, g]) => g.expiresAt > now)
      .map(([id, g]) => toGrant(id, creditType, g))
      .sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : 1));
  }

  /**
   * One sweep step: looks at the next `sweepStep` slots, drops what has
   * ended there, and the accounts left with nothing. Never a pass over all
   * accounts at once; the next step goes on where this one stopped.
   */
  private sweep(): void {
    const now = this.now();
    const end = Math.min(this.cursor + this.sweepStep, this.accounts.end);
    for (let slot = this.cursor; slot < end; slot++) {
      if (!this.accounts.holds(slot)) continue;
      const noCounters = this.accounts.sweepCounters(slot, now);
      if (this.accounts.extrasAt(slot)?.sweep(now, (bytes) => (this.keptResponseBytes -= bytes))) this.accounts.setExtras(slot, undefined);
      let marked = false;
      for (const byType of this.exhausted.values()) {
        const until = byType.size === 0 ? undefined : byType.get(slot);
        if (until === undefined) continue;
        if (until <= now) byType.delete(slot);
        else marked = true;
      }
      if (noCounters && !marked && this.accounts.extrasAt(slot) === undefined) this.drop(slot);
    }
    this.cursor = end >= this.accounts.end ? 0 : end;
  }

  /** Removes an account and its exhausted marks (its slot may go to another account next). */
  private drop(slot: number): void {
    this.keptResponseBytes -= this.accounts.extrasAt(slot)?.keptBytes() ?? 0;
    for (const byType of this.exhausted.values()) byType.delete(slot);
    this.accounts.remove(slot);
  }
}

function toGrant(id: string, creditType: string, g: GrantData): Grant {
  return { id, creditType, amount: g.amount, used: g.used, expiresAt: g.expiresAt, createdAt: g.createdAt };
}
