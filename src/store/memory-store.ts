// The embedded store: the same semantics as RedisStore inside one process.
// The zero-setup default, right for one replica and for trying creditgate out;
// counts are lost on restart and not shared between replicas.
//
// Every method runs synchronously between its awaits, which is what makes a
// check-then-charge atomic here: no other request runs in between.

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
  RequestClaim,
  NewGrant,
  PoolCharge,
  PoolKey,
  PoolUsage,
  RefundLine,
} from './credit-store.js';
import { planDraw } from './plan-draw.js';

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

/**
 * Everything one account has; deleting the account drops it whole. Most
 * accounts only ever have counters, so the other maps exist only once used:
 * a hundred thousand accounts must fit in a small process.
 */
class AccountState {
  record?: AccountRecord;
  /** "<type>:<cycleStart>" -> credits used from the plan. */
  readonly counters = new Map<string, Expiring<number>>();
  private grantsByType?: Map<string, Map<string, GrantData>>;
  private alertMarks?: Map<string, Expiring<Set<number | 'empty'>>>;
  private topUpAnswers?: Map<string, Expiring<Grant>>;
  private requestClaims?: Map<string, Expiring<HeldRecord>>;
  private feed?: AlertEvent[];

  /** type -> grant id -> grant. */
  get grants(): Map<string, Map<string, GrantData>> {
    return (this.grantsByType ??= new Map());
  }

  /** "<type>:<cycleStart>" -> thresholds alerted (and "empty"). */
  get alerted(): Map<string, Expiring<Set<number | 'empty'>>> {
    return (this.alertMarks ??= new Map());
  }

  /** Top-up idempotency key -> the grant as first answered. */
  get topUpKeys(): Map<string, Expiring<Grant>> {
    return (this.topUpAnswers ??= new Map());
  }

  get requestKeys(): Map<string, Expiring<HeldRecord>> {
    return (this.requestClaims ??= new Map());
  }

  get events(): AlertEvent[] {
    return (this.feed ??= []);
  }

  set events(events: AlertEvent[]) {
    this.feed = events;
  }

  /** Drops what has expired; true when nothing is left. */
  sweep(now: number): boolean {
    for (const [k, c] of this.counters) if (!live(c, now)) this.counters.delete(k);
    for (const [k, a] of this.alertMarks ?? []) if (!live(a, now)) this.alertMarks!.delete(k);
    for (const [k, t] of this.topUpAnswers ?? []) if (!live(t, now)) this.topUpAnswers!.delete(k);
    for (const [k, t] of this.requestClaims ?? []) if (!live(t, now)) this.requestClaims!.delete(k);
    for (const [type, byType] of this.grantsByType ?? []) {
      for (const [id, g] of byType) if (g.expiresAt <= now) byType.delete(id);
      if (byType.size === 0) this.grantsByType!.delete(type);
    }
    return (
      !this.record &&
      this.counters.size === 0 &&
      (this.grantsByType?.size ?? 0) === 0 &&
      (this.topUpAnswers?.size ?? 0) === 0 &&
      (this.requestClaims?.size ?? 0) === 0 &&
      (this.feed?.length ?? 0) === 0
    );
  }
}

export interface MemoryStoreOptions {
  /** Clock for key expiry; tests move it. */
  readonly now?: () => number;
  /** How often expired entries are swept (ms). */
  readonly sweepIntervalMs?: number;
  /**
   * Accounts held at most; beyond it the least recently used account is
   * forgotten (its counts start again from zero). Bounds memory: the memory
   * store is for one replica and for trying creditgate out. Default 100,000.
   */
  readonly maxAccounts?: number;
}


export class MemoryStore implements CreditStore {
  private readonly accounts = new Map<string, AccountState>();
  /** credit type -> account -> until (epoch ms). */
  private readonly exhausted = new Map<string, Map<string, number>>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  private readonly maxAccounts: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxAccounts = options.maxAccounts ?? 100_000;
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  async charge(account: string, pools: readonly PoolCharge[], context: ChargeContext): Promise<ChargeOutcome> {
    const state = this.state(account);
    const clock = this.now();
    if (context.idempotency) {
      const seen = state.requestKeys.get(context.idempotency.key);
      if (live(seen, clock)) return { ok: false, duplicate: publicRecord(seen.value), pools: [] };
    }
    const read = pools.map((p) => {
      const counterKey = `${p.creditType}:${p.cycleStart}`;
      const counter = state.counters.get(counterKey);
      const planUsed = live(counter, clock) ? counter.value : 0;
      const grants = p.extras ? this.activeGrants(state, p.creditType, context.now) : [];
      return { p, counterKey, planUsed, grants, draw: planDraw(p, planUsed, grants) };
    });
    const fits = read.every((r) => r.draw.fits);
    const result: ChargedPool[] = read.map(({ p, counterKey, planUsed, grants, draw }) => {
      const grantTotal = grants.reduce((s, g) => s + g.amount, 0);
      let grantUsed = grants.reduce((s, g) => s + g.used, 0);
      if (!fits) return { creditType: p.creditType, planUsed, grantTotal, grantUsed, wouldRefuse: false, emptied: false, charged: 0, planDelta: 0, fired: [], draws: [] };
      let newPlanUsed = planUsed;
      let charged = draw.charged;
      if (p.op === 'release') {
        newPlanUsed = Math.max(0, planUsed - p.amount);
        charged = planUsed - newPlanUsed;
        if (newPlanUsed !== planUsed) state.counters.set(counterKey, { value: newPlanUsed, expireAt: p.expireAt });
      } else if (draw.fromPlan > 0) {
        newPlanUsed = planUsed + draw.fromPlan;
        state.counters.set(counterKey, { value: newPlanUsed, expireAt: p.expireAt });
      }
      for (const d of draw.draws) {
        state.grants.get(p.creditType)!.get(d.grantId)!.used += d.amount;
        grantUsed += d.amount;
      }
      const fired: number[] = [];
      let emptied = false;
      if (p.op === 'charge' && p.extras && p.limit !== null) {
        const allowance = p.limit + grantTotal;
        const used = newPlanUsed + grantUsed;
        if (allowance > 0) {
          const markKey = `${p.creditType}:${p.cycleStart}`;
          let marks = state.alerted.get(markKey);
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
          if (fired.length > 0 || emptied) state.alerted.set(markKey, { value: marks.value, expireAt: p.expireAt });
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
      state.requestKeys.set(context.idempotency.key, {
        value: { state: 'pending', fingerprint: context.idempotency.fingerprint, claim: context.idempotency.claim },
        expireAt: clock + context.idempotency.pendingTtlMs,
      });
    }
    return { ok: fits, pools: result };
  }

  async refund(account: string, lines: readonly RefundLine[], options: { idempotency?: RequestClaim } = {}): Promise<void> {
    const state = this.accounts.get(account);
    if (!state) return;
    const clock = this.now();
    const claim = options.idempotency;
    if (claim && state.requestKeys.get(claim.key)?.value.claim === claim.claim) state.requestKeys.delete(claim.key);
    for (const line of lines) {
      const key = `${line.creditType}:${line.cycleStart}`;
      const counter = state.counters.get(key);
      if (line.planDelta !== 0 && live(counter, clock)) {
        counter.value = line.planDelta > 0 ? counter.value - Math.min(line.planDelta, counter.value) : counter.value - line.planDelta;
      }
      const byType = state.grants.get(line.creditType);
      for (const d of line.draws) {
        const g = byType?.get(d.grantId);
        if (g) g.used = Math.max(0, g.used - d.amount);
      }
    }
  }

  async completeIdempotency(account: string, claim: RequestClaim, ttlMs: number, response?: string): Promise<boolean> {
    const held = this.heldBy(account, claim);
    if (!held) return false;
    const done: HeldRecord = { ...held.value, state: 'done', ...(response === undefined || response === '' ? {} : { response }) };
    this.accounts.get(account)!.requestKeys.set(claim.key, { value: done, expireAt: this.now() + ttlMs });
    return true;
  }

  async renewIdempotency(account: string, claim: RequestClaim, leaseMs: number): Promise<boolean> {
    const held = this.heldBy(account, claim);
    if (held) held.expireAt = this.now() + leaseMs;
    return held !== null;
  }

  async idempotencyRecord(account: string, key: string): Promise<IdempotencyRecord | null> {
    const seen = this.accounts.get(account)?.requestKeys.get(key);
    return live(seen, this.now()) ? publicRecord(seen.value) : null;
  }

  /** The record, while `claim` holds its key pending. */
  private heldBy(account: string, claim: RequestClaim): Expiring<HeldRecord> | null {
    const seen = this.accounts.get(account)?.requestKeys.get(claim.key);
    return live(seen, this.now()) && seen.value.state === 'pending' && seen.value.claim === claim.claim ? seen : null;
  }

  async usage(account: string, pools: readonly PoolKey[], now: number): Promise<PoolUsage[]> {
    const state = this.accounts.get(account);
    const clock = this.now();
    return pools.map((p) => {
      const counter = state?.counters.get(`${p.creditType}:${p.cycleStart}`);
      const grants = state ? this.activeGrants(state, p.creditType, now) : [];
      return {
        creditType: p.creditType,
        planUsed: live(counter, clock) ? counter.value : 0,
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
    const state = this.state(account);
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
    return this.accounts.get(account)?.record ?? null;
  }

  async putAccount(account: string, record: AccountRecord): Promise<void> {
    this.state(account).record = { ...record };
  }

  async deleteAccount(account: string): Promise<boolean> {
    for (const byType of this.exhausted.values()) byType.delete(account);
    return this.accounts.delete(account);
  }

  async appendEvents(account: string, events: readonly AlertEvent[], keep: number): Promise<void> {
    const state = this.state(account);
    state.events = [...[...events].reverse(), ...state.events].slice(0, keep);
  }

  async listEvents(account: string, limit: number): Promise<AlertEvent[]> {
    return (this.accounts.get(account)?.events ?? []).slice(0, limit);
  }

  async markExhausted(account: string, creditType: string, until: number): Promise<void> {
    const byType = this.exhausted.get(creditType) ?? new Map<string, number>();
    byType.set(account, until);
    this.exhausted.set(creditType, byType);
  }

  async clearExhausted(account: string, creditType: string, cycleStart: number): Promise<void> {
    this.exhausted.get(creditType)?.delete(account);
    this.accounts.get(account)?.alerted.get(`${creditType}:${cycleStart}`)?.value.delete('empty');
  }

  async countExhausted(creditTypes: readonly string[], now: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const t of creditTypes) {
      const byType = this.exhausted.get(t);
      let n = 0;
      if (byType) {
        for (const [account, until] of byType) {
          if (until > now) n += 1;
          else byType.delete(account);
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

  // The Map keeps insertion order: re-inserting on use makes it an LRU list.
  private state(account: string): AccountState {
    let s = this.accounts.get(account);
    if (s) {
      this.accounts.delete(account);
      this.accounts.set(account, s);
      return s;
    }
    s = new AccountState();
    this.accounts.set(account, s);
    while (this.accounts.size > this.maxAccounts) this.accounts.delete(this.accounts.keys().next().value as string);
    return s;
  }

  private activeGrants(state: AccountState, creditType: string, now: number): Grant[] {
    const byType = state.grants.get(creditType);
    if (!byType) return [];
    return [...byType]
      .filter(([, g]) => g.expiresAt > now)
      .map(([id, g]) => toGrant(id, creditType, g))
      .sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : 1));
  }

  private sweep(): void {
    const now = this.now();
    for (const [account, s] of this.accounts) if (s.sweep(now)) this.accounts.delete(account);
  }

}

function toGrant(id: string, creditType: string, g: GrantData): Grant {
  return { id, creditType, amount: g.amount, used: g.used, expiresAt: g.expiresAt, createdAt: g.createdAt };
}
