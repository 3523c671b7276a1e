// What a replica may remember between requests to skip a store round trip:
// account records, pools known to be empty, and credit types an account holds
// no top-up of (so that a refusal needs no Redis call). Bounded (least recently used out first) and time-limited;
// cleared per account by invalidations every replica hears (Redis pub/sub),
// and cleared whole when the invalidation feed may have missed something.

import type { AccountRecord } from '../store/credit-store.js';
import type { PoolStatus } from './types.js';

interface Entry<T> {
  value: T;
  expiresAt: number;
  /** When the entry last moved to the end of the Map (a count of moves). */
  moved: number;
}

/**
 * A Map in recency order: the oldest go first. get() moves an entry to the
 * end only when it has drifted out of the newest quarter (more than
 * maxEntries/4 moves ago): a hit on a recent entry is a Map lookup and no
 * more, and an entry used within the last quarter of moves is never the one
 * evicted (exact LRU below 4 entries).
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, Entry<V>>();
  private moves = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    if (this.moves - e.moved > this.maxEntries >> 2) {
      this.map.delete(key);
      this.map.set(key, e);
      e.moved = ++this.moves;
    }
    return e.value;
  }

  set(key: K, value: V, expiresAt: number): void {
    if (this.maxEntries <= 0) return;
    this.map.delete(key);
    this.map.set(key, { value, expiresAt, moved: ++this.moves });
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

export interface AccountStateCacheOptions {
  readonly now: () => number;
  /** How long an account record may be served from memory (ms). */
  readonly accountTtlMs: number;
  readonly maxAccounts: number;
}

/** What a replica knows of one account's pools. */
interface PoolMarks {
  /** "<plan>:<type>:<cycleStart>" -> the pool's status when it was found empty (a refusal under one plan says nothing of another). */
  readonly empty: Map<string, PoolStatus>;
  /** Credit types the account had no active grant of: outside the plan they are refused locally. */
  readonly noGrant: Set<string>;
}

export class AccountStateCache {
  private readonly records: LruCache<string, AccountRecord | null>;
  private readonly pools: LruCache<string, PoolMarks>;
  private enabled = false;
  /**
   * Counts forgets, per bucket of accounts (and all at once on clear). A
   * store answer read before a forget of its account may be older than the
   * change that caused it: what it says is not remembered. Buckets keep this
   * bounded and let other accounts' forgets leave this one's cache alone.
   */
  private readonly forgets = new Uint32Array(EPOCH_BUCKETS);
  private generation = 0;

  constructor(private readonly options: AccountStateCacheOptions) {
    this.records = new LruCache(options.maxAccounts, options.now);
    this.pools = new LruCache(options.maxAccounts, options.now);
  }

  /** Caching is only safe while invalidations are heard. */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    // Either way nothing read across the change is trusted: messages were missed meanwhile.
    this.clear();
  }

  record(account: string): AccountRecord | null | undefined {
    return this.enabled ? this.records.get(account) : undefined;
  }

  /** Taken before a store call about the account; the remember* calls that follow it pass it back. */
  epoch(account: string): number {
    return this.generation * 2 ** 32 + this.forgets[bucketOf(account)]!;
  }

  rememberRecord(account: string, record: AccountRecord | null, epoch: number): void {
    if (this.enabled && epoch === this.epoch(account)) this.records.set(account, record, this.options.now() + this.options.accountTtlMs);
  }

  emptyPool(account: string, plan: string, creditType: string, cycleStart: number): PoolStatus | undefined {
    if (!this.enabled) return undefined;
    const s = this.pools.get(account)?.empty.get(`${plan}:${creditType}:${cycleStart}`);
    if (!s) return undefined;
    if (s.resetsAt !== null && s.resetsAt <= this.options.now()) return undefined;
    return s;
  }

  rememberEmpty(account: string, plan: string, cycleStart: number, status: PoolStatus, epoch: number): void {
    this.marks(account, epoch)?.empty.set(`${plan}:${status.creditType}:${cycleStart}`, status);
  }

  /**
   * The account had no active grant of this credit type when last asked.
   * Only a top-up can change that, and every top-up makes every replica
   * forget the account (grants expiring only make it truer).
   */
  noGrant(account: string, creditType: string): boolean {
    return this.enabled && this.pools.get(account)?.noGrant.has(creditType) === true;
  }

  rememberNoGrant(account: string, creditType: string, epoch: number): void {
    this.marks(account, epoch)?.noGrant.add(creditType);
  }

  private marks(account: string, epoch: number): PoolMarks | undefined {
    if (!this.enabled || epoch !== this.epoch(account)) return undefined;
    let marks = this.pools.get(account);
    if (!marks) {
      marks = { empty: new Map(), noGrant: new Set() };
      this.pools.set(account, marks, this.options.now() + this.options.accountTtlMs);
    }
    return marks;
  }

  forget(account: string): void {
    const b = bucketOf(account);
    this.forgets[b] = this.forgets[b]! + 1;
    this.records.delete(account);
    this.pools.delete(account);
  }

  clear(): void {
    this.generation += 1;
    this.records.clear();
    this.pools.clear();
  }
}

const EPOCH_BUCKETS = 4096;

/** FNV-1a over the id's UTF-16 units: which epoch bucket an account falls in. */
function bucketOf(account: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < account.length; i++) h = Math.imul(h ^ account.charCodeAt(i), 0x01000193);
  return (h >>> 0) % EPOCH_BUCKETS;
}
