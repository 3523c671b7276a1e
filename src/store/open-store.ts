// Picks the store for a run: Redis when a URL or client is given, the
// embedded memory store otherwise (with a warning: it is for one replica,
// unless the caller chose it by name).

import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { CreditStore } from './credit-store.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';

/** What a run says, once, when it falls back to the memory store. */
export const MEMORY_STORE_WARNING =
  'no Redis configured: using the in-memory store. Counts live in this process only: ' +
  'right for one replica and for trying creditgate out, wrong for several replicas.';

export interface OpenStoreOptions {
  readonly redis?: string | Redis | Cluster | undefined;
  /** 'memory': the memory store was chosen, not fallen back to (no warning; `redis` is not used). */
  readonly store?: 'memory' | undefined;
  readonly timeoutMs: number;
  readonly prefix?: string | undefined;
  readonly logger: Logger;
  /** Memory store: accounts held at most (`store.maxAccounts`), asked at each new account. */
  readonly maxAccounts?: (() => number) | undefined;
  /** Where the fallback warning goes; default: the logger, at warn. */
  readonly warn?: ((message: string) => void) | undefined;
}

export function openStore(options: OpenStoreOptions): CreditStore {
  const { redis, logger } = options;
  if (options.store === 'memory' || redis === undefined || redis === '') {
    if (options.store !== 'memory') (options.warn ?? ((m: string) => logger.warn(m)))(MEMORY_STORE_WARNING);
    return new MemoryStore(options.maxAccounts ? { maxAccounts: options.maxAccounts } : {});
  }
  if (typeof redis === 'string') return new RedisStore({ url: redis, timeoutMs: options.timeoutMs, prefix: options.prefix });
  // The config's store.timeoutMs bounds creditgate's calls on a caller's client too.
  return new RedisStore({ client: redis, timeoutMs: options.timeoutMs, prefix: options.prefix });
}
