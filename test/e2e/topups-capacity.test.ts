// Top-ups, capacity pools, plan changes and DELETE over real sockets, on
// real Redis: the account lifecycle a billing system drives.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

describe('top-ups, capacity and account changes (Redis)', () => {
  let h: Harness;
  let redis: Redis;
  const prefix = uniquePrefix('topups');
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: prefix });
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await h.close();
  });

  const acct = () => `acct-${randomUUID()}`;
  const spend = (a: string, n: number) => fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': String(n) } });
  const topUp = (a: string, body: unknown, key?: string) =>
    h.adminFetch(`/v1/accounts/${a}/topups`, { method: 'POST', body: JSON.stringify(body), headers: key ? { 'idempotency-key': key } : {} });
  const usage = async (a: string) => (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();

  describe('top-ups', () => {
    it('POST grants (201); without expiresAt the grant ends with the current cycle; GET lists it', async () => {
      const a = acct();
      const r = await topUp(a, { creditType: 'ai_tasks', amount: 500 });
      expect(r.status).toBe(201);
      const grant = await r.json();
      const u = await usage(a);
      expect(grant).toMatchObject({ creditType: 'ai_tasks', amount: 500, remaining: 500, expiresAt: u.cycle.end });
      expect(grant.id).toMatch(/^tu_/);
      const list = await (await h.adminFetch(`/v1/accounts/${a}/topups`)).json();
      expect(list.topUps).toEqual([grant]);
      expect(u.pools.ai_tasks).toMatchObject({ used: 0, allowance: 510, remaining: 510, planAllowance: 10, topUpRemaining: 500 });
    });

    it('spends the plan first, then top-ups earliest expiry first, one request spanning both', async () => {
      const a = acct();
      const later = new Date(Date.now() + 40 * 86400_000).toISOString();
      const sooner = new Date(Date.now() + 20 * 86400_000).toISOString();
      const g1 = await (await topUp(a, { creditType: 'ai_tasks', amount: 5, expiresAt: later })).json();
      const g2 = await (await topUp(a, { creditType: 'ai_tasks', amount: 5, expiresAt: sooner })).json();
      const r = await spend(a, 13);
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=7;/);
      expect(r.headers.get('ratelimit-policy')).toMatch(/^"ai_tasks";q=20;/);
      const list = (await (await h.adminFetch(`/v1/accounts/${a}/topups`)).json()).topUps;
      expect(list.map((g: { id: string; remaining: number }) => [g.id, g.remaining])).toEqual([
        [g2.id, 2],
        [g1.id, 5],
      ]);
      expect((await spend(a, 8)).status).toBe(402);
      expect((await spend(a, 7)).status).toBe(200);
      expect((await usage(a)).pools.ai_tasks).toMatchObject({ used: 20, allowance: 20, remaining: 0 });
    });

    it('the same Idempotency-Key never grants twice: the replay returns the first grant', async () => {
      const a = acct();
      const first = await topUp(a, { creditType: 'ai_tasks', amount: 100 }, 'invoice-42');
      const again = await topUp(a, { creditType: 'ai_tasks', amount: 100 }, 'invoice-42');
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await again.json()).toEqual(await first.json());
      expect((await usage(a)).pools.ai_tasks.allowance).toBe(110);
    });

    it('concurrent replays of one Idempotency-Key grant exactly once', async () => {
      const a = acct();
      const results = await Promise.all(Array.from({ length: 20 }, () => topUp(a, { creditType: 'database', amount: 10 }, 'same').then((r) => r.json())));
      expect(new Set(results.map((g) => g.id)).size).toBe(1);
      expect((await usage(a)).pools.database.allowance).toBe(15);
    });

    it('a grant stops counting at its expiry, to the second', async () => {
      const a = acct();
      const expiresAt = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000).toISOString();
      await topUp(a, { creditType: 'ai_tasks', amount: 50, expiresAt });
      expect((await usage(a)).pools.ai_tasks.allowance).toBe(60);
      await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 50));
      expect((await usage(a)).pools.ai_tasks.allowance).toBe(10);
      expect((await (await h.adminFetch(`/v1/accounts/${a}/topups`)).json()).topUps).toEqual([]);
    });

    it.each([
      [{ creditType: 'ai_tasks', amount: 0 }, /amount must be a whole number from 1 to 1,000,000,000,000/],
      [{ creditType: 'ai_tasks', amount: 1_000_000_000_001 }, /amount must be a whole number from 1 to 1,000,000,000,000/],
      [{ creditType: 'ai_tasks', amount: -5 }, /amount/],
      [{ creditType: 'ai_tasks', amount: 2.5 }, /amount/],
      [{ creditType: 'ai_tasks', amount: '10' }, /amount/],
      [{ creditType: 'sms', amount: 10 }, /unknown credit type "sms"/],
      [{ creditType: 'mailboxes', amount: 1 }, /capacity pool/],
      [{ creditType: 'ai_tasks', amount: 10, expiresAt: '2020-01-01T00:00:00Z' }, /not in the future/],
      [{ creditType: 'ai_tasks', amount: 10, expiresAt: 'next week' }, /ISO 8601/],
      [{ creditType: 'ai_tasks', amount: 10, note: 'x' }, /Unrecognized key/],
    ])('bad top-up %j → 400 problem+json, nothing written', async (body, message) => {
      const a = acct();
      const r = await topUp(a, body);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect((await r.json()).detail).toMatch(message);
      expect((await (await h.adminFetch(`/v1/accounts/${a}/topups`)).json()).topUps).toEqual([]);
      expect(await redis.keys(`${prefix}:{${a}}*`)).toEqual([]);
    });

    it('a 402 tells the client how to get more', async () => {
      const a = acct();
      await spend(a, 10);
      const r = await spend(a, 1);
      expect(r.status).toBe(402);
      expect((await r.json()).topUp).toEqual({ url: 'https://billing.example.com/add-ons' });
      const v = await fetch(`${h.proxy}/v1/emails/verify`, {
        method: 'POST',
        headers: { 'x-account-id': a, 'content-type': 'application/json' },
        body: JSON.stringify({ emails: ['1', '2', '3', '4', '5', '6'] }),
      });
      expect((await v.json()).topUp).toEqual({ contact: 'support@example.com' });
    });
  });

  describe('capacity pools', () => {
    const connect = (a: string) => fetch(`${h.proxy}/v1/mailboxes`, { method: 'POST', headers: { 'x-account-id': a } });
    const disconnect = (a: string) => fetch(`${h.proxy}/v1/mailboxes/m1`, { method: 'DELETE', headers: { 'x-account-id': a } });

    it('connect acquires, disconnect releases, never below zero; capacity never resets', async () => {
      const a = acct();
      expect((await connect(a)).status).toBe(200);
      const refused = await connect(a);
      expect(refused.status).toBe(402);
      const body = await refused.json();
      expect(body).toMatchObject({ creditType: 'mailboxes', allowance: 1, remaining: 0, resetsAt: null });
      expect(refused.headers.get('retry-after')).toBeNull();
      expect((await disconnect(a)).status).toBe(200);
      expect((await disconnect(a)).status).toBe(200);
      expect((await usage(a)).pools.mailboxes).toMatchObject({ used: 0, remaining: 1, resetsAt: null });
      expect((await connect(a)).status).toBe(200);
      // The counter has no TTL: it is not a monthly pool.
      expect(await redis.pttl(`${prefix}:{${a}}:u:mailboxes:0`)).toBe(-1);
    });

    it('a release of something that does not exist frees nothing: only a 2xx from the upstream gives capacity back', async () => {
      const a = acct();
      const before = h.upstream.respond;
      try {
        expect((await connect(a)).status).toBe(200);
        for (const status of [404, 409, 500]) {
          h.upstream.respond = (_req, res) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end('{"error":"no such mailbox"}');
          };
          const r = await fetch(`${h.proxy}/v1/mailboxes/does-not-exist`, { method: 'DELETE', headers: { 'x-account-id': a } });
          expect(r.status).toBe(status);
          expect((await usage(a)).pools.mailboxes).toMatchObject({ used: 1, remaining: 0 });
        }
        // Still full: three fake disconnects bought no slot.
        h.upstream.respond = before;
        expect((await connect(a)).status).toBe(402);
        expect((await disconnect(a)).status).toBe(200);
        expect((await usage(a)).pools.mailboxes).toMatchObject({ used: 0, remaining: 1 });
        expect((await connect(a)).status).toBe(200);
      } finally {
        h.upstream.respond = before;
      }
    });

    it('a downgrade below the current count refuses new connections and keeps existing ones', async () => {
      const a = acct();
      await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'big' }) });
      for (let i = 0; i < 3; i++) expect((await connect(a)).status).toBe(200);
      await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny' }) });
      expect((await connect(a)).status).toBe(402);
      expect((await usage(a)).pools.mailboxes).toMatchObject({ used: 3, allowance: 1, remaining: 0 });
      await disconnect(a);
      await disconnect(a);
      expect((await connect(a)).status).toBe(402);
      await disconnect(a);
      expect((await connect(a)).status).toBe(200);
    });
  });

  describe('plan and anchor changes, DELETE', () => {
    it('an upgrade keeps what was used this cycle and applies the new allowance at once', async () => {
      const a = acct();
      await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny' }) });
      const verify = (n: number) =>
        fetch(`${h.proxy}/v1/emails/verify`, {
          method: 'POST',
          headers: { 'x-account-id': a, 'content-type': 'application/json' },
          body: JSON.stringify({ emails: Array.from({ length: n }, (_, i) => `${i}@x`) }),
        });
      expect((await verify(4)).status).toBe(200);
      await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'big' }) });
      const u = await usage(a);
      expect(u.pools.email_verification).toMatchObject({ used: 4, allowance: 1000, remaining: 996 });
    });

    it('a new billing anchor starts a fresh cycle from that anchor', async () => {
      const a = acct();
      await spend(a, 6);
      // Anchors are whole seconds: one with milliseconds starts its cycle on the second.
      const anchorMs = Date.now() - 3 * 86400_000;
      await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: new Date(anchorMs).toISOString() }) });
      const u = await usage(a);
      expect(u.cycle.start).toBe(new Date(anchorMs - (anchorMs % 1000)).toISOString());
      expect(u.pools.ai_tasks.used).toBe(0);
    });

    it('DELETE removes the account, its counters, top-ups and events; then 404', async () => {
      const a = acct();
      await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', email: 'a@example.com' }) });
      await spend(a, 9);
      await topUp(a, { creditType: 'ai_tasks', amount: 5 }, 'k1');
      await fetch(`${h.proxy}/v1/mailboxes`, { method: 'POST', headers: { 'x-account-id': a } });
      expect((await redis.keys(`${prefix}:{${a}}*`)).length).toBeGreaterThan(3);
      const del = await h.adminFetch(`/v1/accounts/${a}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      expect(await redis.keys(`${prefix}:{${a}}*`)).toEqual([]);
      expect((await h.adminFetch(`/v1/accounts/${a}`)).status).toBe(404);
      expect((await h.adminFetch(`/v1/accounts/${a}`, { method: 'DELETE' })).status).toBe(404);
      expect((await usage(a)).pools.ai_tasks.used).toBe(0);
    });
  });
});
