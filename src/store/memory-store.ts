// The embedded store: the same semantics as RedisStore inside one process.
// The zero-setup default, right for one replica and for trying creditgate out;
// counts are lost on restart and not shared between replicas.

import type { AccountRecord, ChargeOutcome, CreditStore, PoolCharge, PoolKey } from './credit-store.js';
import { StoreKeys } from './store-keys.js';

interface Counter {
  value: number;
  expireAt: number;
}

export interface MemoryStoreOptions {
  /** Clock for expiry; tests move it. */
  readonly now?: () => number;
  /** How often expired counters are swept (ms). */
  readonly sweepIntervalMs?: number;
}

export class MemoryStore implements CreditStore {
  private readonly counters = new Map<string, Counter>();
  private readonly accounts = new Map<string, AccountRecord>();
  private readonly keys = new StoreKeys('mem');
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  // Everything below is synchronous between awaits, which is what makes the
  // check-then-charge atomic here: no other request runs in between.
  async charge(account: string, pools: readonly PoolCharge[]): Promise<ChargeOutcome> {
    const now = this.now();
    const keys = pools.map((p) => this.keys.usage(account, p.creditType, p.cycleStart));
    const used = keys.map((k) => this.read(k, now));
    const fits = pools.every((p, i) => p.limit === null || used[i]! + p.amount <= p.limit);
    if (!fits) {
      return { ok: false, pools: pools.map((p, i) => ({ creditType: p.creditType, used: used[i]! })) };
    }
    return {
      ok: true,
      pools: pools.map((p, i) => {
        const value = used[i]! + p.amount;
        this.counters.set(keys[i]!, { value, expireAt: p.expireAt });
        return { creditType: p.creditType, used: value };
      }),
    };
  }

  async usage(account: string, pools: readonly PoolKey[]): Promise<number[]> {
    const now = this.now();
    return pools.map((p) => this.read(this.keys.usage(account, p.creditType, p.cycleStart), now));
  }

  async getAccount(account: string): Promise<AccountRecord | null> {
    return this.accounts.get(account) ?? null;
  }

  async putAccount(account: string, record: AccountRecord): Promise<void> {
    this.accounts.set(account, { ...record });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Live counters, for tests and diagnostics. */
  get size(): number {
    return this.counters.size;
  }

  private read(key: string, now: number): number {
    const c = this.counters.get(key);
    if (!c) return 0;
    if (c.expireAt !== 0 && c.expireAt <= now) {
      this.counters.delete(key);
      return 0;
    }
    return c.value;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, c] of this.counters) if (c.expireAt !== 0 && c.expireAt <= now) this.counters.delete(key);
  }
}
