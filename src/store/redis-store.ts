// The production store: counters in Redis, each charge one Lua round trip.

import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { AccountRecord, ChargeOutcome, CreditStore, PoolCharge, PoolKey } from './credit-store.js';
import { StoreError } from './credit-store.js';
import { LUA } from './lua-scripts.js';
import { StoreKeys } from './store-keys.js';

type RedisClient = Redis | Cluster;

interface CreditgateCommands {
  creditgateCharge(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
}

export interface RedisStoreOptions {
  /** A redis:// or rediss:// URL; the store then owns (and closes) the client. */
  readonly url?: string;
  /** A client the caller owns; the store never closes it. */
  readonly client?: RedisClient;
  /** Key prefix; tests use their own to share one server. Default "cg". */
  readonly prefix?: string;
  /** Per-command timeout for a client the store creates. */
  readonly timeoutMs?: number;
  readonly redisOptions?: RedisOptions;
}

export class RedisStore implements CreditStore {
  readonly client: RedisClient;
  private readonly commands: CreditgateCommands;
  private readonly keys: StoreKeys;
  private readonly ownsClient: boolean;

  constructor(options: RedisStoreOptions) {
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else if (options.url) {
      this.client = new Redis(options.url, {
        // One decision is one script call; batching the calls of one event-loop
        // tick into one write is what keeps Redis busy rather than the network.
        enableAutoPipelining: true,
        commandTimeout: options.timeoutMs ?? 50,
        maxRetriesPerRequest: 1,
        lazyConnect: false,
        ...options.redisOptions,
      });
      this.ownsClient = true;
    } else {
      throw new TypeError('RedisStore needs a url or a client');
    }
    this.keys = new StoreKeys(options.prefix ?? 'cg');
    const c = this.client as RedisClient & Partial<CreditgateCommands>;
    if (typeof c.creditgateCharge !== 'function') c.defineCommand('creditgateCharge', { lua: LUA.charge });
    this.commands = this.client as unknown as CreditgateCommands;
  }

  async charge(account: string, pools: readonly PoolCharge[]): Promise<ChargeOutcome> {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const p of pools) {
      keys.push(this.keys.usage(account, p.creditType, p.cycleStart));
      args.push(p.amount, p.limit === null ? -1 : p.limit, p.expireAt);
    }
    const reply = await this.call('charge', () => this.commands.creditgateCharge(keys.length, ...keys, ...args));
    return {
      ok: reply[0] === 1,
      pools: pools.map((p, i) => ({ creditType: p.creditType, used: Number(reply[i + 1]) })),
    };
  }

  async usage(account: string, pools: readonly PoolKey[]): Promise<number[]> {
    if (pools.length === 0) return [];
    const keys = pools.map((p) => this.keys.usage(account, p.creditType, p.cycleStart));
    const values = await this.call('usage', () => this.client.mget(...keys));
    return values.map((v) => (v === null ? 0 : Number(v)));
  }

  async getAccount(account: string): Promise<AccountRecord | null> {
    const raw = await this.call('get_account', () => this.client.get(this.keys.account(account)));
    return raw === null ? null : (JSON.parse(raw) as AccountRecord);
  }

  async putAccount(account: string, record: AccountRecord): Promise<void> {
    await this.call('put_account', () => this.client.set(this.keys.account(account), JSON.stringify(record)));
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.client.ping());
  }

  async close(): Promise<void> {
    if (this.ownsClient) {
      await this.client.quit().catch(() => this.client.disconnect());
    }
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreError(`redis ${operation} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}
