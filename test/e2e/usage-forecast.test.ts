// The usage API's forecast: the cycle's pace and when each consumable pool
// runs out at it, over real sockets on real Redis.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const DAY = 86_400_000;
const MINUTE = 60_000;

describe('usage forecast', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('forecast') });
  });
  afterAll(async () => h.close());

  const put = (id: string, body: unknown) => h.adminFetch(`/v1/accounts/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
  const spend = async (id: string, n: number) => {
    const r = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': id, 'x-task-count': String(n) } });
    await r.arrayBuffer();
    expect(r.status).toBe(200);
  };
  // Whole seconds: anchors are stored that way.
  const anchorDaysAgo = (days: number) => new Date(Math.floor((Date.now() - days * DAY) / 1000) * 1000).toISOString();
  const usage = async (id: string) => (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();

  it('half the pool used 10 days into the cycle: 0.5 a day, out 10 days from now', async () => {
    const id = `fc-${randomUUID()}`;
    await put(id, { plan: 'tiny', billingAnchor: anchorDaysAgo(10) });
    await spend(id, 5);
    const u = await usage(id);
    expect(u.pools.ai_tasks.forecast.ratePerDay).toBe(0.5);
    expect(Math.abs(Date.parse(u.pools.ai_tasks.forecast.exhaustsAt) - (Date.now() + 10 * DAY))).toBeLessThan(MINUTE);
    // Unused: a pace of 0 and no date; capacity pools have no forecast.
    expect(u.pools.database.forecast).toEqual({ ratePerDay: 0, exhaustsAt: null });
    expect(u.pools.mailboxes.forecast).toBeUndefined();
  });

  it('no date when the pool lasts past the reset or is unlimited; no rate in the first hour', async () => {
    const lasting = `fc-${randomUUID()}`;
    await put(lasting, { plan: 'tiny', billingAnchor: anchorDaysAgo(20) });
    await spend(lasting, 1);
    expect((await usage(lasting)).pools.ai_tasks.forecast).toEqual({ ratePerDay: 0.05, exhaustsAt: null });

    const unlimited = `fc-${randomUUID()}`;
    await put(unlimited, { plan: 'big', billingAnchor: anchorDaysAgo(10) });
    await spend(unlimited, 50);
    expect((await usage(unlimited)).pools.ai_tasks.forecast).toEqual({ ratePerDay: 5, exhaustsAt: null });

    const fresh = `fc-${randomUUID()}`;
    await put(fresh, { plan: 'tiny', billingAnchor: anchorDaysAgo(0) });
    await spend(fresh, 9);
    expect((await usage(fresh)).pools.ai_tasks.forecast).toEqual({ ratePerDay: null, exhaustsAt: null });
  });
});
