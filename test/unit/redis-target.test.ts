// What a log line may say about a Redis URL: where it points, never its credentials.

import { describe, expect, it } from 'vitest';
import { redisTarget } from '../../src/store/redis-connection.js';

describe('redisTarget', () => {
  it('names host:port for single servers, Cluster and Sentinel lists, without user or password', () => {
    expect(redisTarget('redis://user:pw@cache.internal:6380/2')).toBe('cache.internal:6380');
    expect(redisTarget('rediss://:pw@cache.internal')).toBe('cache.internal:6379');
    expect(redisTarget('redis+cluster://u:pw@10.0.0.1:7000,10.0.0.2:7001')).toBe('10.0.0.1:7000,10.0.0.2:7001');
    expect(redisTarget('redis+sentinel://:pw@s1:26379,s2?name=mymaster&sentinelPassword=pw2')).toBe('sentinels s1:26379,s2:6379');
    for (const url of ['redis://user:pw@h:1', 'redis+cluster://u:pw@h:1', 'not a url :pw@']) expect(redisTarget(url)).not.toContain('pw');
  });
});
