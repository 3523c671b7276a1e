// Request-rate limits beside credits: 429 (not 402), nothing charged, with
// Retry-After and RateLimit fields; on Redis, on memory, and with Redis down
// (the in-memory insurance limiter keeps limiting).

import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = editConfig(
  TEST_CONFIG,
  ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 1000,'],
  ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 200 }'],
  ['ai_tasks: { name: AI Task Credits,', 'ai_tasks: { name: AI Task Credits, onStoreError: allow,'],
  ['  - name: by-header\n    method: POST', '  - name: by-header\n    rateLimit: { points: 3, duration: 1s }\n    method: POST'],
);

let h: Harness | undefined;
let redis: TestRedis | undefined;
afterEach(async () => {
  await h?.close();
  await redis?.stop();
  h = undefined;
  redis = undefined;
});

const burst = async (harness: Harness, a: string, n: number) =>
  Promise.all(
    Array.from({ length: n }, () =>
      fetch(`${harness.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '2' } }).then(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        ratelimit: r.headers.get('ratelimit'),
        body: r.status === 429 ? await r.json() : await r.text(),
      })),
    ),
  );

describe.each([
  { name: 'Redis', redis: () => redisUrl() },
  { name: 'memory', redis: () => undefined },
])('burst limits on $name', ({ redis: url }) => {
  it('allows `points` requests per window per account, answers 429 beyond, and charges only what passed', async () => {
    h = await startHarness({ config: CONFIG, redis: url(), keyPrefix: uniquePrefix('burst') });
    const a = `b-${randomUUID()}`;
    const results = await burst(h, a, 6);
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    const limited = results.filter((r) => r.status === 429);
    expect(limited).toHaveLength(3);
    for (const r of limited) {
      expect(r.body.type).toBe('https://creditgate.dev/problems/rate-limited');
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.ratelimit).toMatch(/^"requests";r=0;t=\d+$/);
    }
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    expect(usage.pools.ai_tasks.used).toBe(6);
    // Another account has its own window.
    expect((await burst(h, `b-${randomUUID()}`, 1))[0]!.status).toBe(200);
    const metrics = await (await fetch(`${h.admin}/metrics`)).text();
    expect(metrics).toMatch(/^creditgate_decisions_total\{route="by-header",credit_type="none",outcome="rate_limited"\} 3$/m);
    expect(metrics).toMatch(/^creditgate_decisions_total\{route="by-header",credit_type="ai_tasks",outcome="exhausted"\} 0$/m);
    // The window passes.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await burst(h, a, 1))[0]!.status).toBe(200);
  });
});

describe('burst limits with Redis down', () => {
  it('the insurance limiter keeps limiting in memory', async () => {
    redis = await startRedis();
    h = await startHarness({ config: CONFIG, redis: redis.url });
    await redis.kill();
    const a = `d-${randomUUID()}`;
    const results = await burst(h, a, 6);
    expect(results.filter((r) => r.status === 429)).toHaveLength(3);
    // The 3 that passed the rate limit were allowed by onStoreError: allow.
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
  });
});
