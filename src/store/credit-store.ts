// The one storage contract behind the engine. RedisStore and MemoryStore both
// implement it and pass the same contract suite (test/store/).

export interface AccountRecord {
  readonly plan: string;
  /** ISO 8601 instant with offset: the billing anniversary. */
  readonly billingAnchor: string;
  readonly email?: string | undefined;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One pool of one charge. All pools of a charge belong to one account. */
export interface PoolCharge {
  readonly creditType: string;
  readonly amount: number;
  /** Most that may be used this cycle; null = unlimited (counted, never refused). */
  readonly limit: number | null;
  /** Epoch ms of the cycle start: part of the counter's identity. */
  readonly cycleStart: number;
  /** Epoch ms after which the counter may disappear. */
  readonly expireAt: number;
}

export interface PoolUsage {
  readonly creditType: string;
  /** Used this cycle: after the charge when it succeeded, as found when it did not. */
  readonly used: number;
}

export interface ChargeOutcome {
  /** true: every pool had room and all were charged; false: none was charged. */
  readonly ok: boolean;
  /** In the order of the request's pools. */
  readonly pools: readonly PoolUsage[];
}

export interface PoolKey {
  readonly creditType: string;
  readonly cycleStart: number;
}

export interface CreditStore {
  /** All-or-nothing check-and-charge of several pools of one account. */
  charge(account: string, pools: readonly PoolCharge[]): Promise<ChargeOutcome>;
  /** Used amount of each pool this cycle (0 when never charged), in order. */
  usage(account: string, pools: readonly PoolKey[]): Promise<number[]>;
  getAccount(account: string): Promise<AccountRecord | null>;
  putAccount(account: string, record: AccountRecord): Promise<void>;
  /** Resolves when the store answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The store could not be reached or failed: not a refusal (rate-limiter-flexible's "broken"). */
export class StoreError extends Error {
  readonly code = 'store_unavailable';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}
