// A sidecar harness on a redis-server of its own, with a second connection
// to that server for the test to act on Redis itself (CLIENT PAUSE, DEBUG
// SLEEP): for fault tests that must not slow the run's shared Redis.

import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from './redis-server.js';
import { startHarness, type Harness } from './sidecar-harness.js';

export interface OwnRedisHarness {
  readonly redis: TestRedis;
  /** The test's own connection to `redis`. */
  readonly admin: Redis;
  readonly h: Harness;
  close(): Promise<void>;
}

export async function startOwnRedisHarness(config: string, keyPrefix: string): Promise<OwnRedisHarness> {
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  const h = await startHarness({ config, redis: redis.url, keyPrefix });
  return {
    redis,
    admin,
    h,
    close: async () => {
      await h.close();
      admin.disconnect();
      await redis.stop();
    },
  };
}
