// The reset is a new key: when an account's (seconds-precision) cycle ends,
// the next request starts from zero, and counter keys expire after the cycle.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNTER_GRACE_MS } from '../../src/engine/credit-engine.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

describe('cycle reset on Redis', () => {
  let h: Harness;
  let redis: Redis;
  const prefix = uniquePrefix('reset');
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: prefix });
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await h.close();
  });

  const spend = (account: string, count: number) =>
    fetch(`${h.proxy}/v1/ai/followups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-account-id': account },
      body: JSON.stringify({ count }),
    });

  it('refuses until the cycle ends, then the pool is full again', async () => {
    const a = `reset-${randomUUID()}`;
    // An anchor 3 s ahead: the current cycle is the one that ends at the anchor.
    const anchorMs = Math.ceil((Date.now() + 3000) / 1000) * 1000;
    const anchor = new Date(anchorMs).toISOString().replace('.000Z', 'Z');
    const put = await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: anchor }) });
    expect(put.status).toBe(201);

    expect((await spend(a, 10)).status).toBe(200);
    const sentAt = Date.now();
    const refused = await spend(a, 1);
    expect(refused.status).toBe(402);
    const body = await refused.json();
    expect(body.resetsAt).toBe(new Date(anchorMs).toISOString());
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil((anchorMs - sentAt) / 1000));

    await new Promise((r) => setTimeout(r, anchorMs - Date.now() + 100));
    const after = await spend(a, 10);
    expect(after.status).toBe(200);
    expect(after.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=0;t=\d+$/);
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    expect(usage.cycle.start).toBe(new Date(anchorMs).toISOString());
    expect(usage.pools.ai_tasks.used).toBe(10);
  });

  it('counter keys carry the cycle start and expire a grace period after the cycle end', async () => {
    const a = `ttl-${randomUUID()}`;
    expect((await spend(a, 2)).status).toBe(200);
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    const start = Date.parse(usage.cycle.start);
    const end = Date.parse(usage.cycle.end);
    const key = `${prefix}:{${a}}:u:ai_tasks:${start / 1000}`;
    expect(await redis.get(key)).toBe('2');
    expect(await redis.pexpiretime(key)).toBe(end + COUNTER_GRACE_MS);
    expect(await redis.pttl(key)).toBeGreaterThan(0);
  });
});
