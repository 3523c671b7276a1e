// Request-rate limits per account beside the credits (`rateLimit` on a
// route), with rate-limiter-flexible: RateLimiterRedis shared by replicas, a
// RateLimiterMemory insurance limiter when Redis fails, and an in-memory
// block for keys already over the limit so they cost no Redis round trip.
// A 429 is a rate answer, never a credit one: nothing is charged.

import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Cluster, Redis } from 'ioredis';
import { DeadlineExceeded, withDeadline } from '../store/store-deadline.js';

export type BurstResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number; readonly points: number; readonly durationMs: number };

/** A route's limiter, and the in-memory one it falls back to when Redis fails. */
interface Limiters {
  readonly limiter: RateLimiterAbstract;
  readonly insurance: RateLimiterMemory;
}

export class BurstLimiter {
  private readonly limiters = new Map<string, Limiters>();

  /**
   * `timeoutMs`: the store's deadline (store.timeoutMs), for the rate limit's
   * calls on `redis` too. The store's connections have no commandTimeout of
   * their own (store-deadline.ts): without this, a slow or black-holed Redis
   * would hold a rate-limited request before its charge for as long as Redis
   * takes, instead of falling back to the insurance limiter.
   */
  constructor(
    private readonly redis: Redis | Cluster | undefined,
    private readonly keyPrefix: string,
    private readonly timeoutMs?: number,
  ) {}

  async consume(route: string, limit: { points: number; durationMs: number }, account: string): Promise<BurstResult> {
    const { limiter, insurance } = this.limiterFor(route, limit);
    try {
      if (limiter === insurance || this.timeoutMs === undefined) await limiter.consume(account);
      else
        await withDeadline(limiter.consume(account), this.timeoutMs).catch((err: unknown) => {
          // As RateLimiterRedis does with a Redis error: the insurance limiter decides.
          if (err instanceof DeadlineExceeded) return insurance.consume(account);
          throw err;
        });
      return { ok: true };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        return { ok: false, retryAfterMs: rejection.msBeforeNext, points: limit.points, durationMs: limit.durationMs };
      }
      throw rejection;
    }
  }

  private limiterFor(route: string, limit: { points: number; durationMs: number }): Limiters {
    // Keyed by the limit too: a reload that changes it gets a fresh limiter.
    const id = `${route}\u0000${limit.points}\u0000${limit.durationMs}`;
    let limiters = this.limiters.get(id);
    if (!limiters) {
      const duration = Math.max(1, Math.round(limit.durationMs / 1000));
      const keyPrefix = `${this.keyPrefix}:rl:${route}`;
      const insurance = new RateLimiterMemory({ points: limit.points, duration, keyPrefix });
      const limiter = this.redis
        ? new RateLimiterRedis({
            storeClient: this.redis,
            points: limit.points,
            duration,
            keyPrefix,
            insuranceLimiter: insurance,
            inMemoryBlockOnConsumed: limit.points + 1,
            inMemoryBlockDuration: duration,
          })
        : insurance;
      limiters = { limiter, insurance };
      this.limiters.set(id, limiters);
    }
    return limiters;
  }
}
