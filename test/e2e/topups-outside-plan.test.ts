// A top-up of a credit type the plan does not include (quota 0 or absent)
// unlocks that feature up to the grant: over real sockets, on real Redis.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const NOT_IN_PLAN = 'https://creditgate.dev/problems/not-in-plan';
const EXHAUSTED = 'https://creditgate.dev/problems/exhausted';
const VOICE_TOP_UP = { url: 'https://billing.example.com/voice' };

// The "tiny" plan has no voice_minutes.
const CONFIG =
  editConfig(
    TEST_CONFIG,
    ['voice_minutes: { name: AI Voice Agent Minutes }', `voice_minutes: { name: AI Voice Agent Minutes, topUp: { url: "${VOICE_TOP_UP.url}" } }`],
    ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 2000 }\nalerts: { thresholds: [0.5, 1.0] }'],
  ) +
  `  - name: voice-with-summary
    method: POST
    path: /v1/voice/summarised-calls
    charge: { voice_minutes: { body: minutes }, ai_tasks: 1 }
  - name: voice-trial
    mode: shadow
    method: POST
    path: /v1/voice/trial-calls
    charge: { voice_minutes: { body: minutes } }
`;

describe('top-ups of a credit type outside the plan (Redis)', () => {
  let h: Harness;
  const log = captureLogger();
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('outside-plan'), logger: log.logger });
  });
  afterAll(async () => h.close());

  const acct = () => `op-${randomUUID()}`;
  const call = (a: string, minutes: number, path = '/v1/voice/calls') =>
    fetch(`${h.proxy}${path}`, { method: 'POST', headers: { 'x-account-id': a, 'content-type': 'application/json' }, body: JSON.stringify({ minutes }) });
  const topUp = (a: string, body: unknown) => h.adminFetch(`/v1/accounts/${a}/topups`, { method: 'POST', body: JSON.stringify(body) });
  const usage = async (a: string) => (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
  const forwarded = (a: string) => h.upstream.requests.filter((r) => r.headers['x-account-id'] === a).length;

  it('unlocks the feature up to the grant: charged from it, in the usage view and page, alerts on the grant, then 402 exhausted with the top-up link', async () => {
    const a = acct();
    const before = await call(a, 1);
    expect(before.status).toBe(402);
    expect((await before.json()).type).toBe(NOT_IN_PLAN);
    expect((await usage(a)).pools.voice_minutes).toBeUndefined();

    expect((await topUp(a, { creditType: 'voice_minutes', amount: 10 })).status).toBe(201);
    const first = await call(a, 4);
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toMatch(/^"voice_minutes";q=10;w=\d+$/);
    expect(first.headers.get('ratelimit')).toMatch(/^"voice_minutes";r=6;t=\d+$/);
    const u = await usage(a);
    expect(u.pools.voice_minutes).toEqual({
      used: 4,
      allowance: 10,
      remaining: 6,
      resetsAt: u.cycle.end,
      name: 'AI Voice Agent Minutes',
      kind: 'consumable',
      planAllowance: 0,
      topUpRemaining: 6,
      topUp: VOICE_TOP_UP,
      // Its figures depend on the day of the cycle the test runs on (test/e2e/usage-forecast.test.ts pins them).
      forecast: expect.any(Object),
    });
    const page = await (await h.adminFetch(`/ui/accounts/${a}`)).text();
    expect(page).toContain('data-credit-type="voice_minutes"><h2>AI Voice Agent Minutes</h2>\n<p class="figures"><strong>4</strong> of 10 used</p>');
    expect(page).toContain('6 left · from top-ups, not included in the plan');

    expect((await call(a, 2)).status).toBe(200);
    const short = await call(a, 5);
    expect(short.status).toBe(402);
    expect(await short.json()).toMatchObject({
      type: EXHAUSTED,
      creditType: 'voice_minutes',
      required: 5,
      remaining: 4,
      allowance: 10,
      resetsAt: u.cycle.end,
      topUp: VOICE_TOP_UP,
    });
    expect((await call(a, 4)).status).toBe(200);

    // Spent out: exhausted (another top-up helps), with no Retry-After (a reset does not).
    for (let i = 0; i < 2; i++) {
      const spent = await call(a, 1);
      expect(spent.status).toBe(402);
      expect(spent.headers.get('retry-after')).toBeNull();
      expect(spent.headers.get('ratelimit')).toMatch(/^"voice_minutes";r=0;t=\d+$/);
      expect(await spent.json()).toMatchObject({ type: EXHAUSTED, remaining: 0, allowance: 10, topUp: VOICE_TOP_UP });
    }
    expect(forwarded(a)).toBe(3);
    expect((await usage(a)).pools.voice_minutes).toMatchObject({ used: 10, allowance: 10, remaining: 0, topUpRemaining: 0 });
    const events = (await (await h.adminFetch(`/v1/accounts/${a}/events`)).json()).events;
    expect(events.map((e: { type: string; threshold: number; allowance: number; used: number }) => [e.type, e.threshold, e.allowance, e.used])).toEqual([
      ['exhausted', 1, 10, 10],
      ['threshold_reached', 0.5, 10, 6],
    ]);

    // Another top-up opens it again at once.
    expect((await topUp(a, { creditType: 'voice_minutes', amount: 5 })).status).toBe(201);
    expect((await call(a, 5)).status).toBe(200);
    expect((await call(a, 1)).status).toBe(402);
  });

  it('concurrent requests never spend more than the grant', async () => {
    const a = acct();
    await topUp(a, { creditType: 'voice_minutes', amount: 25 });
    const statuses = await Promise.all(Array.from({ length: 40 }, () => call(a, 3).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(8);
    expect(statuses.filter((s) => s === 402)).toHaveLength(32);
    expect(forwarded(a)).toBe(8);
    expect((await usage(a)).pools.voice_minutes).toMatchObject({ used: 24, allowance: 25, remaining: 1 });
  });

  it('an expired grant returns the pool to not-in-plan', async () => {
    const a = acct();
    const expiresAt = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000).toISOString();
    await topUp(a, { creditType: 'voice_minutes', amount: 10, expiresAt });
    expect((await call(a, 3)).status).toBe(200);
    expect((await usage(a)).pools.voice_minutes).toMatchObject({ used: 3, allowance: 10 });
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 50));
    const r = await call(a, 1);
    expect(r.status).toBe(402);
    expect(r.headers.get('retry-after')).toBeNull();
    expect(await r.json()).toMatchObject({ type: NOT_IN_PLAN, creditType: 'voice_minutes', allowance: 0, resetsAt: null });
    expect((await usage(a)).pools.voice_minutes).toBeUndefined();
  });

  it('a route charging a pool outside the plan and a plan pool is all or nothing', async () => {
    const a = acct();
    const both = (minutes: number) => call(a, minutes, '/v1/voice/summarised-calls');
    const pools = async () => {
      const p = (await usage(a)).pools;
      return [p.voice_minutes?.used, p.ai_tasks.used];
    };
    const none = await both(1);
    expect(none.status).toBe(402);
    expect((await none.json()).type).toBe(NOT_IN_PLAN);
    expect(await pools()).toEqual([undefined, 0]);

    await topUp(a, { creditType: 'voice_minutes', amount: 5 });
    const over = await both(6);
    expect(over.status).toBe(402);
    expect((await over.json()).shortfalls.map((s: { creditType: string }) => s.creditType)).toEqual(['voice_minutes']);
    expect(await pools()).toEqual([0, 0]);
    const ok = await both(5);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit')).toMatch(/^"voice_minutes";r=0;t=\d+, "ai_tasks";r=9;t=\d+$/);
    expect(await pools()).toEqual([5, 1]);

    // The plan pool short: the grant is not touched.
    await topUp(a, { creditType: 'voice_minutes', amount: 5 });
    expect((await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '9' } })).status).toBe(200);
    const planShort = await both(1);
    expect(planShort.status).toBe(402);
    expect(await planShort.json()).toMatchObject({ type: EXHAUSTED, creditType: 'ai_tasks' });
    expect(await pools()).toEqual([5, 10]);
    expect(forwarded(a)).toBe(2);
  });

  it('shadow mode: beyond the grant would be "exhausted", with no grant "not-in-plan"; forwarded and counted', async () => {
    const a = acct();
    const trial = (minutes: number) => call(a, minutes, '/v1/voice/trial-calls');
    const wouldBe = () => log.lines.filter((l) => l.outcome === 'shadow_denied' && l.route === 'voice-trial').map((l) => l.wouldBe);
    const seen = wouldBe().length;
    expect((await trial(2)).status).toBe(200);
    expect(wouldBe().slice(seen)).toEqual(['not-in-plan']);
    await topUp(a, { creditType: 'voice_minutes', amount: 5 });
    expect((await trial(4)).status).toBe(200);
    expect(wouldBe().slice(seen)).toEqual(['not-in-plan']);
    expect((await trial(4)).status).toBe(200);
    expect(wouldBe().slice(seen)).toEqual(['not-in-plan', 'exhausted']);
    expect(forwarded(a)).toBe(3);
    expect((await usage(a)).pools.voice_minutes).toMatchObject({ used: 5, allowance: 5, remaining: 0, topUpRemaining: 0 });
  });
});
