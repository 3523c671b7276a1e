// Picks the store for a run: Redis when a URL or client is given, the
// embedded memory store otherwise (with a warning: it is for one replica).

import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { CreditStore } from './credit-store.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';

export interface OpenStoreOptions {
  readonly redis?: string | Redis | Cluster | undefined;
  readonly timeoutMs: number;
  readonly prefix?: string | undefined;
  readonly logger: Logger;
}

export function openStore(options: OpenStoreOptions): CreditStore {
  const { redis, logger } = options;
  if (redis === undefined || redis === '') {
    logger.warn(
      'no Redis configured: using the in-memory store. Counts live in this process only: ' +
        'right for one replica and for trying creditgate out, wrong for several replicas.',
    );
    return new MemoryStore();
  }
  if (typeof redis === 'string') return new RedisStore({ url: redis, timeoutMs: options.timeoutMs, prefix: options.prefix });
  return new RedisStore({ client: redis, prefix: options.prefix });
}
