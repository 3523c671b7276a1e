// Spending, refusing and the 402 contract, over real sockets: sidecar in front
// of a real upstream, on real Redis and on the memory store.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const modes = [
  { name: 'Redis', redis: () => redisUrl() },
  { name: 'memory store', redis: () => undefined },
];

describe.each(modes)('sidecar on $name', ({ redis }) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redis(), keyPrefix: uniquePrefix('e2e') });
  });
  afterAll(async () => h.close());

  const acct = () => `acct-${randomUUID()}`;
  const post = (path: string, account: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${h.proxy}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(account ? { 'x-account-id': account } : {}), ...headers },
      body: JSON.stringify(body),
    });
  const usage = async (account: string) =>
    (await (await h.adminFetch(`/v1/accounts/${account}/usage`)).json()) as {
      pools: Record<string, { used: number; remaining: number | null; allowance: number | null; resetsAt: string | null }>;
      cycle: { start: string; end: string };
    };
  const reached = (account: string) => h.upstream.requests.filter((r) => r.headers['x-account-id'] === account);

  it('spends to exhaustion, then answers 402 exactly as the contract says', async () => {
    const a = acct();
    const r1 = await post('/v1/ai/followups', a, { count: 4 });
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({ ok: true });
    expect(r1.headers.get('ratelimit-policy')).toMatch(/^"ai_tasks";q=10;w=\d+$/);
    expect(r1.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=6;t=\d+$/);

    const r2 = await post('/v1/ai/followups', a, { count: 6 });
    expect(r2.status).toBe(200);
    expect(r2.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=0;t=\d+$/);

    const r3 = await post('/v1/ai/followups', a, { count: 1 });
    expect(r3.status).toBe(402);
    expect(r3.headers.get('content-type')).toBe('application/problem+json');
    expect(r3.headers.get('cache-control')).toBe('no-store');
    const { cycle } = await usage(a);
    const secondsToReset = Math.ceil((Date.parse(cycle.end) - Date.now()) / 1000);
    const retryAfter = Number(r3.headers.get('retry-after'));
    expect(Math.abs(retryAfter - secondsToReset)).toBeLessThanOrEqual(2);
    const body = await r3.json();
    expect(body).toMatchObject({
      type: 'https://creditgate.dev/problems/exhausted',
      title: 'Credit pool exhausted',
      status: 402,
      creditType: 'ai_tasks',
      creditTypeName: 'AI Task Credits',
      required: 1,
      remaining: 0,
      allowance: 10,
      resetsAt: cycle.end,
    });
    expect(body.detail).toContain('needs 1 AI Task Credits');
    // The refused request never reached the upstream.
    expect(reached(a)).toHaveLength(2);
    expect((await usage(a)).pools.ai_tasks!.used).toBe(10);
  });

  it('a request larger than what remains is refused whole and charges nothing', async () => {
    const a = acct();
    await post('/v1/ai/followups', a, { count: 7 });
    const r = await post('/v1/ai/followups', a, { count: 4 });
    expect(r.status).toBe(402);
    expect(await r.json()).toMatchObject({ required: 4, remaining: 3 });
    expect((await usage(a)).pools.ai_tasks!.used).toBe(7);
  });

  it('an empty pool pauses only the requests that need it', async () => {
    const a = acct();
    expect((await post('/v1/ai/followups', a, { count: 10 })).status).toBe(200);
    expect((await post('/v1/ai/followups', a, { count: 1 })).status).toBe(402);
    const other = await post('/v1/emails/verify', a, { emails: ['a@example.com', 'b@example.com'] });
    expect(other.status).toBe(200);
    expect(other.headers.get('ratelimit')).toMatch(/^"email_verification";r=3;t=\d+$/);
    expect((await post('/v1/ai/custom', a, {}, { 'x-task-count': '1' })).status).toBe(402);
  });

  it('a multi-pool charge is all or nothing: one short pool refuses and charges neither', async () => {
    const a = acct();
    expect((await post('/v1/emails/verify', a, { emails: ['1', '2', '3', '4', '5'] })).status).toBe(200);
    const r = await post('/v1/contacts/c-1/enrich', a, {});
    expect(r.status).toBe(402);
    const body = await r.json();
    expect(body.creditType).toBe('email_verification');
    expect(body.shortfalls.map((s: { creditType: string }) => s.creditType)).toEqual(['email_verification']);
    const u = await usage(a);
    expect(u.pools.database!.used).toBe(0);
    expect(u.pools.email_verification!.used).toBe(5);

    const b = acct();
    const ok = await post('/v1/contacts/c-2/enrich', b, {});
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit-policy')).toMatch(/^"database";q=5;w=\d+, "email_verification";q=5;w=\d+$/);
    expect(ok.headers.get('ratelimit')).toMatch(/^"database";r=4;t=\d+, "email_verification";r=4;t=\d+$/);
  });

  it('a credit type outside the plan is 402 not-in-plan, distinct from exhausted, with no Retry-After', async () => {
    const a = acct();
    const r = await post('/v1/voice/calls', a, { minutes: 15 });
    expect(r.status).toBe(402);
    expect(r.headers.get('retry-after')).toBeNull();
    const body = await r.json();
    expect(body.type).toBe('https://creditgate.dev/problems/not-in-plan');
    expect(body).toMatchObject({ creditType: 'voice_minutes', allowance: 0, required: 15, resetsAt: null, plan: 'tiny' });
    expect(reached(a)).toHaveLength(0);
  });

  it('an unlimited pool is never refused but is counted', async () => {
    const a = acct();
    expect((await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'big' }) })).status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const r = await post('/v1/ai/followups', a, { count: 1_000_000 });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit')).toBeNull();
    }
    expect((await usage(a)).pools.ai_tasks).toMatchObject({ used: 3_000_000, allowance: null, remaining: null });
  });

  it('missing identity is 401 problem+json and never reaches the upstream', async () => {
    const before = h.upstream.requests.length;
    const r = await post('/v1/ai/followups', undefined, { count: 1 });
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/unauthenticated');
    expect(h.upstream.requests.length).toBe(before);
  });

  it.each([
    [{ count: -1 }, 'at least 1'],
    [{ count: 'ten' }, 'whole number'],
    [{ count: 1.5 }, 'whole number'],
    [{}, 'missing body field "count"'],
  ])('bad cost input %j is 400 and charges nothing', async (payload, message) => {
    const a = acct();
    const r = await post('/v1/ai/followups', a, payload);
    expect(r.status).toBe(400);
    const body = await r.json();
    expect(body.type).toBe('https://creditgate.dev/problems/invalid-cost');
    expect(body.detail).toContain(message);
    expect((await usage(a)).pools.ai_tasks!.used).toBe(0);
    expect(reached(a)).toHaveLength(0);
  });

  it('malformed JSON is 400 invalid-body; a header or query cost that is not a number is 400', async () => {
    const a = acct();
    const r = await fetch(`${h.proxy}/v1/ai/followups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-account-id': a },
      body: '{"count": 3',
    });
    expect(r.status).toBe(400);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/invalid-body');
    expect((await post('/v1/ai/custom', a, {}, { 'x-task-count': '2e3' })).status).toBe(400);
    const q = await fetch(`${h.proxy}/v1/ai/report?n=abc`, { headers: { 'x-account-id': a } });
    expect(q.status).toBe(400);
    const okq = await fetch(`${h.proxy}/v1/ai/report?n=2`, { headers: { 'x-account-id': a } });
    expect(okq.status).toBe(200);
    expect((await usage(a)).pools.ai_tasks!.used).toBe(2);
  });

  it('concurrent requests never overspend: 200 requests of 1 against 10 credits → exactly 10 pass', async () => {
    const a = acct();
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        post('/v1/ai/custom', a, {}, { 'x-task-count': '1' }).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    expect(results.filter((s) => s === 200)).toHaveLength(10);
    expect(results.filter((s) => s === 402)).toHaveLength(190);
    expect((await usage(a)).pools.ai_tasks!.used).toBe(10);
    expect(reached(a)).toHaveLength(10);
  });

  it('forwards the body it read for charging to the upstream byte for byte', async () => {
    const a = acct();
    const payload = '{"count": 2, "prompt": "write follow-ups"}';
    const r = await fetch(`${h.proxy}/v1/ai/followups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-account-id': a },
      body: payload,
    });
    expect(r.status).toBe(200);
    const seen = reached(a);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body.toString()).toBe(payload);
    expect(seen[0]!.headers['content-length']).toBe(String(Buffer.byteLength(payload)));
  });
});
