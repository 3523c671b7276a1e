// A Stripe delivery while Redis is down answers 503 (so Stripe retries) and
// is not remembered: the retry after Redis is back applies it.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { deliver, STRIPE_BILLING, stripeEvent, subscription } from '../helpers/stripe-events.js';

describe('Stripe webhook during a store outage', () => {
  let redis: TestRedis;
  let h: Harness;
  beforeAll(async () => {
    redis = await startRedis();
    h = await startHarness({
      config: editConfig(TEST_CONFIG, ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 200 }']) + STRIPE_BILLING('delete'),
      redis: redis.url,
    });
  });
  afterAll(async () => {
    await h.close();
    await redis.stop();
  });

  it('answers 503 store-unavailable, then applies the redelivery once Redis is back', async () => {
    const account = `outage-${randomUUID().slice(0, 8)}`;
    const body = stripeEvent(`evt_${randomUUID().slice(0, 12)}`, 'customer.subscription.created', Math.floor(Date.now() / 1000), subscription({ account }));
    const port = redis.port;
    await redis.stop();
    const down = await deliver(h.admin, body);
    expect(down.status).toBe(503);
    expect((await down.json()).type).toMatch(/store-unavailable$/);

    redis = await startRedis([], { port });
    let outcome: unknown;
    for (let i = 0; i < 100 && outcome !== 'applied'; i++) {
      const r = await deliver(h.admin, body);
      if (r.status === 200) outcome = ((await r.json()) as { outcome: string }).outcome;
      else await new Promise((res) => setTimeout(res, 100));
    }
    expect(outcome).toBe('applied');
    expect(((await (await h.adminFetch(`/v1/accounts/${account}`)).json()) as { plan: string }).plan).toBe('big');
  });
});
