// Stripe webhooks against running sidecars on the suite's Redis: real
// payloads signed by the official package, posted over real sockets.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { deliver, STRIPE_BILLING, stripeEvent, subscription } from '../helpers/stripe-events.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const JAN_31 = Date.UTC(2026, 0, 31) / 1000;
const FEB_10 = Date.UTC(2026, 1, 10) / 1000;
const now = () => Math.floor(Date.now() / 1000);
const acct = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
const evt = () => `evt_${randomUUID().replaceAll('-', '')}`;

async function send(h: Harness, body: string, options?: Parameters<typeof deliver>[2]) {
  const r = await deliver(h.admin, body, options);
  return { status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as Record<string, unknown> };
}
const account = async (h: Harness, id: string) => {
  const r = await h.adminFetch(`/v1/accounts/${id}`);
  return r.status === 200 ? ((await r.json()) as { plan: string; billingAnchor: string }) : null;
};
const created = (id: string, t: number, fields: Parameters<typeof subscription>[0]) =>
  stripeEvent(id, 'customer.subscription.created', t, subscription(fields));
const updated = (id: string, t: number, fields: Parameters<typeof subscription>[0]) =>
  stripeEvent(id, 'customer.subscription.updated', t, subscription(fields));

describe('Stripe webhook (onCanceled: delete)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG + STRIPE_BILLING('delete'), redis: redisUrl(), keyPrefix: uniquePrefix('stripe') });
  });
  afterAll(async () => h.close());

  it('subscription.created sets the mapped plan and the billing anchor; no admin token needed', async () => {
    const a = acct('created');
    const r = await send(h, created(evt(), now(), { account: a, prices: ['price_other', 'price_big_yearly'], anchor: JAN_31 }));
    expect(r).toMatchObject({ status: 200, body: { received: true, outcome: 'applied' } });
    expect(await account(h, a)).toMatchObject({ plan: 'big', billingAnchor: '2026-01-31T00:00:00Z' });
  });

  it('an upgrade keeps the usage of the cycle; a changed anchor starts a new cycle', async () => {
    const a = acct('upgrade');
    const t = now();
    await send(h, created(evt(), t, { account: a, prices: ['price_tiny_monthly'], anchor: JAN_31 }));
    const spend = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '3' } });
    expect(spend.status).toBe(200);
    expect((await send(h, updated(evt(), t + 1, { account: a, prices: ['price_big_monthly'], anchor: JAN_31 }))).body.outcome).toBe('applied');
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    expect(usage.plan).toBe('big');
    expect(usage.pools.ai_tasks.used).toBe(3);
    expect((await send(h, updated(evt(), t + 2, { account: a, prices: ['price_big_monthly'], anchor: FEB_10 }))).body.outcome).toBe('applied');
    const moved = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    expect(moved.cycle.start).not.toBe(usage.cycle.start);
    expect(moved.pools.ai_tasks.used).toBe(0);
  });

  it('a redelivered event changes nothing, even after an admin edit', async () => {
    const a = acct('dup');
    const body = created(evt(), now(), { account: a, prices: ['price_big_monthly'] });
    expect((await send(h, body)).body.outcome).toBe('applied');
    const put = await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny' }) });
    expect(put.status).toBe(200);
    expect((await send(h, body)).body.outcome).toBe('duplicate');
    expect((await account(h, a))?.plan).toBe('tiny');
  });

  it('an event older than the last applied one changes nothing', async () => {
    const a = acct('stale');
    const t = now();
    expect((await send(h, updated(evt(), t, { account: a, prices: ['price_big_monthly'] }))).body.outcome).toBe('applied');
    expect((await send(h, updated(evt(), t - 60, { account: a, prices: ['price_tiny_monthly'] }))).body.outcome).toBe('stale');
    expect((await account(h, a))?.plan).toBe('big');
  });

  it('bad, missing, stale and tampered signatures get 400 invalid-signature and change nothing', async () => {
    const a = acct('sig');
    const body = created(evt(), now(), { account: a });
    const refusals = [
      await send(h, body, { secret: 'whsec_wrong' }),
      await send(h, body, { header: null }),
      await send(h, body, { header: 't=1,v1=deadbeef' }),
      await send(h, body, { timestamp: now() - 3600 }),
      await send(h, body, { tamper: true }),
    ];
    for (const r of refusals) {
      expect(r.status).toBe(400);
      expect(r.type).toBe('application/problem+json');
      expect(String(r.body.type)).toMatch(/invalid-signature$/);
    }
    expect(await account(h, a)).toBeNull();
    const metrics = await (await fetch(`${h.admin}/metrics`)).text();
    expect(Number(/^creditgate_billing_events_total\{source="stripe",outcome="invalid"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(5);
  });

  it('a body over 1 MiB gets 413 and changes nothing', async () => {
    const a = acct('large');
    const body = stripeEvent(evt(), 'customer.subscription.created', now(), { ...subscription({ account: a }), padding: 'x'.repeat(1024 * 1024) });
    const r = await deliver(h.admin, body);
    expect(r.status).toBe(413);
    expect(await account(h, a)).toBeNull();
  });

  it('subscription.deleted, and an update to a canceled status, delete the record', async () => {
    const a = acct('deleted');
    const t = now();
    await send(h, created(evt(), t, { account: a }));
    const r = await send(h, stripeEvent(evt(), 'customer.subscription.deleted', t + 1, subscription({ account: a, status: 'canceled' })));
    expect(r.body.outcome).toBe('applied');
    expect(await account(h, a)).toBeNull();
    // An older update delivered late cannot bring it back.
    expect((await send(h, updated(evt(), t, { account: a }))).body.outcome).toBe('stale');
    expect(await account(h, a)).toBeNull();
    const b = acct('unpaid');
    await send(h, created(evt(), t, { account: b }));
    expect((await send(h, updated(evt(), t + 1, { account: b, status: 'unpaid' }))).body.outcome).toBe('applied');
    expect(await account(h, b)).toBeNull();
  });

  it('unmapped prices, incomplete subscriptions and other events answer 200 and change nothing', async () => {
    const a = acct('unmapped');
    const t = now();
    await send(h, created(evt(), t, { account: a, prices: ['price_tiny_monthly'] }));
    expect(await send(h, updated(evt(), t + 1, { account: a, prices: ['price_unknown'] }))).toMatchObject({ status: 200, body: { outcome: 'unmapped' } });
    expect(await send(h, updated(evt(), t + 2, { account: a, status: 'incomplete' }))).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
    expect(await send(h, stripeEvent(evt(), 'invoice.paid', t + 3, { id: 'in_1', object: 'invoice' }))).toMatchObject({
      status: 200,
      body: { outcome: 'ignored' },
    });
    expect((await account(h, a))?.plan).toBe('tiny');
    const metrics = await (await fetch(`${h.admin}/metrics`)).text();
    for (const outcome of ['applied', 'duplicate', 'stale', 'ignored', 'unmapped', 'invalid']) {
      expect(metrics).toMatch(new RegExp(`^creditgate_billing_events_total\\{source="stripe",outcome="${outcome}"\\} \\d+$`, 'm'));
    }
  });
});

describe('Stripe webhook on two sidecars sharing one Redis (onCanceled: a plan)', () => {
  let a: Harness;
  let b: Harness;
  beforeAll(async () => {
    const prefix = uniquePrefix('stripe2');
    const config = TEST_CONFIG + STRIPE_BILLING('{ plan: tiny }');
    a = await startHarness({ config, redis: redisUrl(), keyPrefix: prefix });
    b = await startHarness({ config, redis: redisUrl(), keyPrefix: prefix });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('an event delivered to both, concurrently and repeatedly, is applied once', async () => {
    const id = acct('both');
    const body = created(evt(), now(), { account: id, prices: ['price_big_monthly'] });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => send(i % 2 ? a : b, body)));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(answers.filter((r) => r.body.outcome === 'applied')).toHaveLength(1);
    expect(answers.filter((r) => r.body.outcome === 'duplicate')).toHaveLength(9);
    expect((await account(b, id))?.plan).toBe('big');
  });

  it('a cancellation moves the account to the onCanceled plan, seen by both', async () => {
    const id = acct('cancel-plan');
    const t = now();
    await send(a, created(evt(), t, { account: id, prices: ['price_big_monthly'], anchor: JAN_31 }));
    expect((await send(b, stripeEvent(evt(), 'customer.subscription.deleted', t + 1, subscription({ account: id, status: 'canceled' })))).body.outcome).toBe(
      'applied',
    );
    expect(await account(a, id)).toMatchObject({ plan: 'tiny', billingAnchor: '2026-01-31T00:00:00Z' });
    // The stale update that arrives at the other replica afterwards changes nothing.
    expect((await send(a, updated(evt(), t, { account: id, prices: ['price_big_monthly'] }))).body.outcome).toBe('stale');
    expect((await account(b, id))?.plan).toBe('tiny');
  });
});

describe('Stripe webhook without billing.stripe', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG });
  });
  afterAll(async () => h.close());

  it('does not exist (404), signed or not', async () => {
    const r = await deliver(h.admin, created(evt(), now(), { account: 'x' }));
    expect(r.status).toBe(404);
  });
});
