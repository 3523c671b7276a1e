// Charging only for what was delivered, over real sockets: refunds on upstream
// failure and non-delivery, settle-after-response with no overage,
// idempotency keys under concurrency, and the middleware's settle.

import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import express from 'express';
import { parse } from 'yaml';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditGate } from '../../src/index.js';
import { silentLogger } from '../../src/logger.js';
import { startSidecar } from '../../src/sidecar.js';
import { editConfig } from '../helpers/edit-config.js';
import { freePort } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = editConfig(
  TEST_CONFIG,
  ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 2000 }\nupstream: { timeoutMs: 400 }'],
  ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 10, voice_minutes: 60,'],
  [
    `  - name: voice-call
    method: POST
    path: /v1/voice/calls
    charge: { voice_minutes: { body: minutes } }`,
    `  - name: voice-call
    method: POST
    path: /v1/voice/calls
    charge: { voice_minutes: { reserve: 15, minReserve: 2, settle: { responseHeader: x-call-seconds, divideBy: 60, round: up } } }
  - name: website-intel
    method: POST
    path: /v1/website-intel/resolve
    charge: { database: 1 }
    chargeWhen: { status: [200] }
  - name: only-5xx
    method: POST
    path: /v1/ai/strict
    refundOn: [503]
    charge: { ai_tasks: 1 }`,
  ],
);

describe('refunds, settle and idempotency (Redis)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('refunds') });
  });
  afterAll(async () => h.close());

  const acct = () => `r-${randomUUID()}`;
  const used = async (a: string, type: string) => (await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools[type].used as number;
  const respondWith = (fn: (req: { url: string; headers: http.IncomingHttpHeaders; body: Buffer }, res: http.ServerResponse) => void) => {
    h.upstream.respond = fn;
  };
  const ok = () =>
    respondWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });

  it('an upstream 5xx is passed to the client and the charge is given back', async () => {
    const a = acct();
    respondWith((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('boom'));
    const r = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '4' } });
    expect(r.status).toBe(500);
    expect(await r.text()).toBe('boom');
    expect(r.headers.get('ratelimit')).toMatch(/^"ai_tasks";r=10;/);
    expect(await used(a, 'ai_tasks')).toBe(0);
    ok();
  });

  it('an upstream that refuses connections gives 502 and a refund; one that hangs gives 504 and a refund', async () => {
    const a = acct();
    const s = await startSidecar({
      configPath: h.configPath,
      upstream: `http://127.0.0.1:${await freePort()}`,
      port: 0,
      adminPort: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
      redis: redisUrl(),
      keyPrefix: uniquePrefix('refunds-502'),
    });
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '3' } });
      expect(r.status).toBe(502);
      expect((await s.engine.usage(a))!.pools.ai_tasks!.used).toBe(0);
    } finally {
      await s.close();
    }
    respondWith(() => {
      // never answers: the upstream timeout (400 ms here) fires
    });
    const t = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '3' } });
    expect(t.status).toBe(504);
    expect((await t.json()).type).toBe('https://creditgate.dev/problems/upstream-timeout');
    expect(await used(a, 'ai_tasks')).toBe(0);
    ok();
  });

  it('refundOn per route: only the listed answers refund', async () => {
    const a = acct();
    respondWith((_req, res) => res.writeHead(500).end());
    await fetch(`${h.proxy}/v1/ai/strict`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(await used(a, 'ai_tasks')).toBe(1);
    respondWith((_req, res) => res.writeHead(503).end());
    await fetch(`${h.proxy}/v1/ai/strict`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(await used(a, 'ai_tasks')).toBe(1);
    ok();
  });

  it('chargeWhen: a 404 "not identified" is refunded, a 200 keeps the charge', async () => {
    const a = acct();
    respondWith((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"identified":false}'));
    const miss = await fetch(`${h.proxy}/v1/website-intel/resolve`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(miss.status).toBe(404);
    expect(await used(a, 'database')).toBe(0);
    ok();
    expect((await fetch(`${h.proxy}/v1/website-intel/resolve`, { method: 'POST', headers: { 'x-account-id': a } })).status).toBe(200);
    expect(await used(a, 'database')).toBe(1);
    const metrics = await (await fetch(`${h.admin}/metrics`)).text();
    expect(Number(/^creditgate_credits_refunded_total\{credit_type="database",reason="not_delivered"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('settle: holds 15, tells the upstream, charges the actual minutes, never above the hold', async () => {
    const a = acct();
    let seconds = '600';
    respondWith((req, res) => {
      res.writeHead(200, { 'x-call-seconds': seconds, 'x-reserved-seen': String(req.headers['creditgate-reserved']) });
      res.end();
    });
    const r = await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(r.headers.get('x-reserved-seen')).toBe('voice_minutes=15');
    expect(r.headers.get('ratelimit')).toMatch(/^"voice_minutes";r=50;/);
    expect(await used(a, 'voice_minutes')).toBe(10);

    seconds = '1501'; // 26 minutes, above the hold of 15
    await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(await used(a, 'voice_minutes')).toBe(25);
    const metrics = await (await fetch(`${h.admin}/metrics`)).text();
    expect(Number(/^creditgate_unbilled_overage_total\{credit_type="voice_minutes"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(11);

    seconds = 'about ten minutes'; // malformed: the hold stays
    await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(await used(a, 'voice_minutes')).toBe(40);
    ok();
  });

  it('a hold takes what remains down to minReserve, and below it answers 402', async () => {
    const a = acct();
    respondWith((req, res) => res.writeHead(200, { 'x-call-seconds': '9999', 'x-reserved-seen': String(req.headers['creditgate-reserved']) }).end());
    for (let i = 0; i < 3; i++) await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(await used(a, 'voice_minutes')).toBe(45);
    const last = await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(last.status).toBe(200);
    expect(last.headers.get('x-reserved-seen')).toBe('voice_minutes=15');
    expect(await used(a, 'voice_minutes')).toBe(60);
    // 0 left: below minReserve 2.
    const none = await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(none.status).toBe(402);
    // 53 of 60 used: the next hold is the 7 that remain.
    const b = acct();
    for (let i = 0; i < 3; i++) await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': b } });
    respondWith((req, res) => res.writeHead(200, { 'x-call-seconds': '480', 'x-reserved-seen': String(req.headers['creditgate-reserved']) }).end());
    await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': b } });
    expect(await used(b, 'voice_minutes')).toBe(53);
    const rest = await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': b } });
    expect(rest.headers.get('x-reserved-seen')).toBe('voice_minutes=7');
    expect(await used(b, 'voice_minutes')).toBe(60);
    ok();
  });

  it('idempotency: retries are charged once; a concurrent retry gets 409; a failed first attempt leaves the retry chargeable', async () => {
    const a = acct();
    const send = (key: string) =>
      fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '2', 'idempotency-key': key } });
    expect((await send('evt-1')).status).toBe(200);
    const replay = await send('evt-1');
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual({ ok: true });
    expect(await used(a, 'ai_tasks')).toBe(2);
    // Answered from the first response: the upstream saw it once.
    expect(h.upstream.requests.filter((r) => r.headers['idempotency-key'] === 'evt-1')).toHaveLength(1);

    let release: () => void = () => {};
    respondWith((_req, res) => {
      release = () => res.writeHead(200).end();
    });
    const first = send('evt-2');
    for (let i = 0; i < 100 && !h.upstream.requests.some((r) => r.headers['idempotency-key'] === 'evt-2'); i++) await new Promise((r) => setTimeout(r, 10));
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => send('evt-2')));
    expect(concurrent.map((r) => r.status)).toEqual(Array(10).fill(409));
    release();
    expect((await first).status).toBe(200);
    expect(await used(a, 'ai_tasks')).toBe(4);

    respondWith((_req, res) => res.writeHead(503).end());
    expect((await send('evt-3')).status).toBe(503);
    expect(await used(a, 'ai_tasks')).toBe(4);
    ok();
    expect((await send('evt-3')).status).toBe(200);
    expect(await used(a, 'ai_tasks')).toBe(6);
  });

  it('many concurrent retries with one key: charged exactly once', async () => {
    const a = acct();
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '3', 'idempotency-key': 'burst' } }).then(
          (r) => r.status,
        ),
      ),
    );
    expect(results.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(results.every((s) => s === 200 || s === 409)).toBe(true);
    expect(await used(a, 'ai_tasks')).toBe(3);
  });
});

describe('middleware settle', () => {
  it('res.locals.credits.settle charges the actual amount before the response', async () => {
    const gate = await creditGate({ config: parse(CONFIG) as Record<string, unknown>, redis: redisUrl(), keyPrefix: uniquePrefix('mw-settle') });
    const app = express();
    app.use(gate);
    app.post('/v1/voice/calls', async (_req, res) => {
      expect(res.locals.credits.reserved).toEqual({ voice_minutes: 15 });
      await res.locals.credits.settle({ voice_minutes: 12 });
      res.json({ ok: true });
    });
    app.post('/v1/ai/custom', (_req, res) => {
      res.status(500).json({ error: 'failed' });
    });
    try {
      const a = `mw-${randomUUID()}`;
      expect((await request(app).post('/v1/voice/calls').set('x-account-id', a)).status).toBe(200);
      expect((await gate.engine.usage(a))!.pools.voice_minutes!.used).toBe(12);
      expect((await request(app).post('/v1/ai/custom').set('x-account-id', a).set('x-task-count', '5')).status).toBe(500);
      for (let i = 0; i < 50 && (await gate.engine.usage(a))!.pools.ai_tasks!.used !== 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await gate.engine.usage(a))!.pools.ai_tasks!.used).toBe(0);
    } finally {
      await gate.close();
    }
  });
});
