// Request-rate limits per account beside the credits (`rateLimit` on a
// route), with rate-limiter-flexible: RateLimiterRedis shared by replicas, a
// RateLimiterMemory insurance limiter when Redis fails, and an in-memory
// block for keys already over the limit so they cost no Redis round trip.
// A 429 is a rate answer, never a credit one: nothing is charged.

import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Cluster, Redis } from 'ioredis';

export type BurstResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number; readonly points: number; readonly durationMs: number };

export class BurstLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly redis: Redis | Cluster | undefined,
    private readonly keyPrefix: string,
  ) {}

  async consume(route: string, limit: { points: number; durationMs: number }, account: string): Promise<BurstResult> {
    const limiter = this.limiterFor(route, limit);
    try {
      await limiter.consume(account);
      return { ok: true };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        return { ok: false, retryAfterMs: rejection.msBeforeNext, points: limit.points, durationMs: limit.durationMs };
      }
      throw rejection;
    }
  }

  private limiterFor(route: string, limit: { points: number; durationMs: number }): RateLimiterAbstract {
    // Keyed by the limit too: a reload that changes it gets a fresh limiter.
    const id = `${route}\u0000${limit.points}\u0000${limit.durationMs}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      const duration = Math.max(1, Math.round(limit.durationMs / 1000));
      const keyPrefix = `${this.keyPrefix}:rl:${route}`;
      const insurance = new RateLimiterMemory({ points: limit.points, duration, keyPrefix });
      limiter = this.redis
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
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}
