// The admin port's account API over real sockets, on real Redis.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

describe('admin API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('admin') });
  });
  afterAll(async () => h.close());

  const put = (id: string, body: unknown) => h.adminFetch(`/v1/accounts/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });

  it('health endpoints need no token', async () => {
    expect((await fetch(`${h.admin}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.admin}/readyz`);
    expect(ready.status).toBe(200);
    expect((await ready.json()).status).toBe('ready');
  });

  it('without the token: 401 problem+json; with a wrong or differently sized token: 401', async () => {
    for (const auth of [undefined, 'Bearer nope', `Bearer ${ADMIN_TOKEN}x`, `Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN]) {
      const r = await fetch(`${h.admin}/v1/accounts/x`, { headers: auth ? { authorization: auth } : {} });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  it('PUT creates (201) and updates (200) an account; GET returns it; usage shows every pool of the plan', async () => {
    const id = `acct-${randomUUID()}`;
    const created = await put(id, { plan: 'big', billingAnchor: '2025-01-31T09:00:00Z', email: 'ops@example.com' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id, plan: 'big', billingAnchor: '2025-01-31T09:00:00Z', email: 'ops@example.com' });

    const got = await h.adminFetch(`/v1/accounts/${id}`);
    expect(got.status).toBe(200);
    const rec = await got.json();
    expect(rec).toMatchObject({ id, plan: 'big', billingAnchor: '2025-01-31T09:00:00Z' });

    const updated = await put(id, { plan: 'tiny' });
    expect(updated.status).toBe(200);
    const u = await updated.json();
    expect(u).toMatchObject({ plan: 'tiny', billingAnchor: '2025-01-31T09:00:00Z', createdAt: rec.createdAt });

    const usage = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    expect(usage.account).toBe(id);
    expect(usage.plan).toBe('tiny');
    expect(Object.keys(usage.pools).sort()).toEqual(['ai_tasks', 'database', 'email_verification', 'mailboxes']);
    expect(usage.pools.ai_tasks).toMatchObject({ used: 0, allowance: 10, remaining: 10, resetsAt: usage.cycle.end, planAllowance: 10, topUpRemaining: 0 });
    expect(usage.pools.mailboxes.resetsAt).toBeNull();
    // Anchored on the 31st at 09:00 UTC: the cycle starts on a clamped anniversary.
    const start = new Date(usage.cycle.start);
    expect(start.getUTCHours()).toBe(9);
    expect([28, 29, 30, 31]).toContain(start.getUTCDate());
  });

  it('usage reflects spending through the proxy; unlimited pools show null allowance', async () => {
    const id = `acct-${randomUUID()}`;
    await put(id, { plan: 'big' });
    await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': id, 'x-task-count': '7' } });
    await fetch(`${h.proxy}/v1/contacts/1/enrich`, { method: 'POST', headers: { 'x-account-id': id } });
    const usage = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    expect(usage.pools.ai_tasks).toMatchObject({ used: 7, allowance: null, remaining: null });
    expect(usage.pools.database).toMatchObject({ used: 1, allowance: 1000, remaining: 999 });
    expect(usage.pools.voice_minutes).toMatchObject({ used: 0, allowance: 60 });
  });

  it('creating a record without an anchor keeps the cycle and what was used in it; the upgrade applies at once', async () => {
    const id = `upgrade-${randomUUID()}`;
    const spend = (n: number) => fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': id, 'x-task-count': String(n) } });
    expect((await spend(8)).status).toBe(200);
    expect((await spend(5)).status).toBe(402);
    const before = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    const saved = await put(id, { plan: 'big' });
    expect(saved.status).toBe(201);
    expect((await saved.json()).billingAnchor).toBe('2000-01-01T00:00:00Z');
    const after = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    expect(after.cycle).toEqual(before.cycle);
    expect(after.pools.ai_tasks.used).toBe(8);
    expect((await spend(5)).status).toBe(200);
    await put(id, { plan: 'tiny' });
    const down = await spend(1);
    expect(down.status).toBe(402);
    expect((await down.json()).remaining).toBe(0);
  });

  it('billing anchors are whole seconds: PUT drops the milliseconds, GET shows the anchor in force, a sub-second move keeps the cycle', async () => {
    const id = `anchor-${randomUUID()}`;
    const created = await put(id, { plan: 'tiny', billingAnchor: '2025-01-31T09:00:00.750+02:00' });
    expect(created.status).toBe(201);
    expect((await created.json()).billingAnchor).toBe('2025-01-31T09:00:00+02:00');
    expect((await (await h.adminFetch(`/v1/accounts/${id}`)).json()).billingAnchor).toBe('2025-01-31T09:00:00+02:00');
    const before = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    expect(before.cycle.start).toMatch(/T07:00:00\.000Z$/);
    const spent = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': id, 'x-task-count': '6' } });
    expect(spent.status).toBe(200);
    // Less than a second later is the same anchor: the same cycle, what was used in it kept.
    const moved = await put(id, { plan: 'tiny', billingAnchor: '2025-01-31T09:00:00.250+02:00' });
    expect(moved.status).toBe(200);
    expect((await moved.json()).billingAnchor).toBe('2025-01-31T09:00:00+02:00');
    const after = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    expect(after.cycle).toEqual(before.cycle);
    expect(after.pools.ai_tasks).toMatchObject({ used: 6, remaining: 4 });
  });

  it('top-ups: above MAX_CREDITS is a 400 naming the maximum; the maximum, expiring in 9999, is kept exactly', async () => {
    const id = `max-${randomUUID()}`;
    const topUp = (body: unknown) => h.adminFetch(`/v1/accounts/${id}/topups`, { method: 'POST', body: JSON.stringify(body) });
    for (const amount of [1_000_000_000_001, 123_456_789_012_345]) {
      const refused = await topUp({ creditType: 'ai_tasks', amount });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('content-type')).toBe('application/problem+json');
      const p = await refused.json();
      expect(p.type).toBe('https://creditgate.dev/problems/invalid-request');
      expect(p.detail).toBe('amount must be a whole number from 1 to 1,000,000,000,000');
    }
    expect((await (await h.adminFetch(`/v1/accounts/${id}/topups`)).json()).topUps).toEqual([]);

    const granted = await topUp({ creditType: 'ai_tasks', amount: 1_000_000_000_000, expiresAt: '9999-12-31T23:59:59.999Z' });
    expect(granted.status).toBe(201);
    const grant = await granted.json();
    expect(grant).toMatchObject({ amount: 1_000_000_000_000, remaining: 1_000_000_000_000, expiresAt: '9999-12-31T23:59:59.999Z' });
    expect((await (await h.adminFetch(`/v1/accounts/${id}/topups`)).json()).topUps).toEqual([grant]);
    const usage = await (await h.adminFetch(`/v1/accounts/${id}/usage`)).json();
    expect(usage.pools.ai_tasks).toMatchObject({ allowance: 1_000_000_000_010, remaining: 1_000_000_000_010, topUpRemaining: 1_000_000_000_000 });
  });

  it('an account with no record: GET is 404, usage is 200 on the default plan with calendar months', async () => {
    const id = `ghost-${randomUUID()}`;
    const r = await h.adminFetch(`/v1/accounts/${id}`);
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    const usage = await h.adminFetch(`/v1/accounts/${id}/usage`);
    expect(usage.status).toBe(200);
    const body = await usage.json();
    expect(body.plan).toBe('tiny');
    expect(body.known).toBe(false);
    expect(body.cycle.start).toMatch(/^\d{4}-\d{2}-01T00:00:00\.000Z$/);
  });

  it.each([
    [{ plan: 'gold' }, /unknown plan "gold"/],
    [{ plan: 'tiny', billingAnchor: '2025-02-30T00:00:00Z' }, /billingAnchor: not a calendar date/],
    [{ plan: 'tiny', billingAnchor: 'tomorrow' }, /billingAnchor: expected an ISO 8601 instant/],
    [{ plan: 'tiny', color: 'red' }, /Unrecognized key/],
    [{}, /plan/],
    [{ plan: 'tiny', email: 'not-an-email' }, /email/],
  ])('PUT %j → 400 problem+json, nothing written', async (body, message) => {
    const id = `bad-${randomUUID()}`;
    const r = await put(id, body);
    expect(r.status).toBe(400);
    const p = await r.json();
    expect(p.type).toBe('https://creditgate.dev/problems/invalid-request');
    expect(p.detail).toMatch(message);
    expect((await h.adminFetch(`/v1/accounts/${id}`)).status).toBe(404);
  });

  it('malformed JSON is a 400 problem, an invalid account id is 400', async () => {
    const r = await h.adminFetch('/v1/accounts/x', { method: 'PUT', body: '{"plan":' });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    const long = await h.adminFetch(`/v1/accounts/${'a'.repeat(129)}`);
    expect(long.status).toBe(400);
    expect((await long.json()).type).toBe('https://creditgate.dev/problems/invalid-account-id');
  });

  it('unknown admin paths are 404 problem+json', async () => {
    const r = await h.adminFetch('/v1/nothing');
    expect(r.status).toBe(404);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/not-found');
  });
});

describe('admin API without CREDITGATE_ADMIN_TOKEN', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, adminToken: null });
  });
  afterAll(async () => h.close());

  it('answers 403 admin-disabled, whatever token is sent; health still works', async () => {
    const r = await h.adminFetch('/v1/accounts/x');
    expect(r.status).toBe(403);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/admin-disabled');
    expect((await fetch(`${h.admin}/healthz`)).status).toBe(200);
  });
});
