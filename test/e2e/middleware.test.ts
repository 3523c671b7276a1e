// creditGate() inside an Express app: same engine, same answers as the
// sidecar, with bodies read whether or not express.json() ran first.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditGate, MemoryStore, type CreditGateMiddleware } from '../../src/index.js';
import { MEMORY_STORE_WARNING } from '../../src/store/open-store.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, writeConfig, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';
import { parse } from 'yaml';

const CONFIG_OBJECT = parse(TEST_CONFIG) as Record<string, unknown>;

function appWith(gate: CreditGateMiddleware, options: { jsonBefore?: boolean; jsonAfter?: boolean } = {}) {
  const app = express();
  if (options.jsonBefore) app.use(express.json());
  app.use(gate);
  if (options.jsonAfter) app.use(express.json());
  app.post('/v1/ai/followups', (req, res) => {
    res.json({ handled: true, body: req.body, credits: res.locals.credits });
  });
  app.post('/v1/contacts/:id/enrich', (_req, res) => {
    res.json({ handled: true });
  });
  app.post('/v1/ai/custom', (_req, res) => {
    res.json({ handled: true });
  });
  app.get('/free', (_req, res) => {
    res.json({ free: true, credits: res.locals.credits ?? null });
  });
  return app;
}

describe('creditGate middleware on Redis (ioredis client passed in)', () => {
  let client: Redis;
  let gate: CreditGateMiddleware;
  let server: http.Server;

  beforeAll(async () => {
    client = new Redis(redisUrl());
    gate = await creditGate({ config: CONFIG_OBJECT, redis: client, keyPrefix: uniquePrefix('mw') });
    server = http.createServer(appWith(gate));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await gate.close();
    server.close();
    client.disconnect();
  });

  it('charges, sets RateLimit headers and exposes res.locals.credits; reads the body itself', async () => {
    const a = `mw-${randomUUID()}`;
    const r = await request(server).post('/v1/ai/followups').set('x-account-id', a).send({ count: 4, note: 'hi' });
    expect(r.status).toBe(200);
    expect(r.headers.ratelimit).toMatch(/^"ai_tasks";r=6;t=\d+$/);
    expect(r.headers['ratelimit-policy']).toMatch(/^"ai_tasks";q=10;w=\d+$/);
    expect(r.body.body).toEqual({ count: 4, note: 'hi' });
    expect(r.body.credits).toMatchObject({ account: a, route: 'generate-followups', pools: [{ creditType: 'ai_tasks', required: 4, used: 4, remaining: 6 }] });
  });

  it('refuses with the same 402 problem+json when the pool is empty; the handler never runs', async () => {
    const a = `mw-${randomUUID()}`;
    await request(server).post('/v1/ai/followups').set('x-account-id', a).send({ count: 10 });
    const r = await request(server).post('/v1/ai/followups').set('x-account-id', a).send({ count: 1 });
    expect(r.status).toBe(402);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    const body = JSON.parse(r.text);
    expect(body).toMatchObject({ type: 'https://creditgate.dev/problems/exhausted', creditType: 'ai_tasks', required: 1, remaining: 0, allowance: 10 });
    expect(body.handled).toBeUndefined();
  });

  it('401 without identity, 400 on a bad cost, unmatched routes pass uncharged', async () => {
    expect((await request(server).post('/v1/ai/followups').send({ count: 1 })).status).toBe(401);
    const bad = await request(server).post('/v1/ai/followups').set('x-account-id', 'x').send({ count: 'lots' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).type).toBe('https://creditgate.dev/problems/invalid-cost');
    const free = await request(server).get('/free').set('x-account-id', 'x');
    expect(free.status).toBe(200);
    expect(free.body).toEqual({ free: true, credits: null });
  });

  it('concurrent requests never overspend: 100 requests of 1 against 10 credits → exactly 10 pass', async () => {
    const a = `mw-${randomUUID()}`;
    const statuses = await Promise.all(
      Array.from({ length: 100 }, () =>
        request(server)
          .post('/v1/ai/custom')
          .set('x-account-id', a)
          .set('x-task-count', '1')
          .then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 402)).toHaveLength(90);
  });
});

describe('creditGate middleware with body parsers around it (memory store, YAML path)', () => {
  let before: CreditGateMiddleware;
  let after: CreditGateMiddleware;
  beforeAll(async () => {
    const path = writeConfig(TEST_CONFIG);
    before = await creditGate({ config: path });
    after = await creditGate({ config: path });
  });
  afterAll(async () => {
    await before.close();
    await after.close();
  });

  it('uses req.body when express.json() ran first', async () => {
    const app = appWith(before, { jsonBefore: true });
    const r = await request(app).post('/v1/ai/followups').set('x-account-id', 'a').send({ count: 3 });
    expect(r.status).toBe(200);
    expect(r.body.body).toEqual({ count: 3 });
    expect(r.body.credits.pools[0].used).toBe(3);
  });

  it('leaves req.body for an express.json() that runs after it', async () => {
    const app = appWith(after, { jsonAfter: true });
    const r = await request(app).post('/v1/ai/followups').set('x-account-id', 'a').send({ count: 2 });
    expect(r.status).toBe(200);
    expect(r.body.body).toEqual({ count: 2 });
  });

  it('rejects an invalid config with file and line', async () => {
    const path = writeConfig(editConfig(TEST_CONFIG, ['charge: { ai_tasks: { body: count } }', 'charge: { ai_tasks: [] }']));
    await expect(creditGate({ config: path })).rejects.toThrow(/credits\.yaml:\d+ routes\[0\]\.charge\.ai_tasks: expected a number or a cost rule/);
  });
});

describe('creditGate middleware on the memory store: the fallback warning, and store: "memory"', () => {
  const warnings = (lines: Record<string, unknown>[]) => lines.filter((l) => l.msg === MEMORY_STORE_WARNING);
  /** Process warnings emitted while `fn` runs (they are emitted on the next tick). */
  async function processWarnings(fn: () => Promise<void>): Promise<Error[]> {
    const seen: Error[] = [];
    const listener = (w: Error) => seen.push(w);
    process.on('warning', listener);
    try {
      await fn();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', listener);
    }
    return seen.filter((w) => (w as Error & { code?: string }).code === 'CREDITGATE_MEMORY_STORE');
  }

  it('falling back to the memory store logs the warning the sidecar logs, once', async () => {
    const log = captureLogger();
    const gate = await creditGate({ config: CONFIG_OBJECT, logger: log.logger });
    await gate.close();
    expect(warnings(log.lines)).toEqual([expect.objectContaining({ level: 40 })]);
    const sidecarLog = captureLogger();
    const h = await startHarness({ config: TEST_CONFIG, logger: sidecarLog.logger });
    await h.close();
    expect(warnings(sidecarLog.lines)).toHaveLength(1);
  });

  it('without a logger the warning is a process warning', async () => {
    const seen = await processWarnings(async () => {
      const gate = await creditGate({ config: CONFIG_OBJECT });
      await gate.close();
    });
    expect(seen.map((w) => w.message)).toEqual([MEMORY_STORE_WARNING]);
  });

  it('store: "memory" states the choice: no warning, and the memory store counts', async () => {
    const log = captureLogger();
    let gate: CreditGateMiddleware | undefined;
    const seen = await processWarnings(async () => {
      gate = await creditGate({ config: CONFIG_OBJECT, logger: log.logger, store: 'memory' });
      await (await creditGate({ config: CONFIG_OBJECT, store: 'memory' })).close();
    });
    expect(seen).toEqual([]);
    expect(warnings(log.lines)).toEqual([]);
    const app = appWith(gate!);
    expect((await request(app).post('/v1/ai/custom').set('x-account-id', 'm').set('x-task-count', '6')).status).toBe(200);
    const r = await request(app).post('/v1/ai/custom').set('x-account-id', 'm').set('x-task-count', '5');
    expect(r.status).toBe(402);
    expect(JSON.parse(r.text)).toMatchObject({ remaining: 4 });
    await gate!.close();
  });

  it('a store of your own is used as given, without a warning', async () => {
    const log = captureLogger();
    const store = new MemoryStore();
    const gate = await creditGate({ config: CONFIG_OBJECT, logger: log.logger, store });
    expect((await request(appWith(gate)).post('/v1/ai/custom').set('x-account-id', 'own').set('x-task-count', '3')).status).toBe(200);
    await gate.close();
    expect(warnings(log.lines)).toEqual([]);
    const cycle = (await gate.engine.usage('own'))!.cycle.start;
    expect((await store.usage('own', [{ creditType: 'ai_tasks', cycleStart: Date.parse(cycle) }], Date.now()))[0]!.planUsed).toBe(3);
    await store.close();
  });
});

describe('middleware and sidecar give identical refusals', () => {
  let h: Harness;
  let gate: CreditGateMiddleware;
  const prefix = uniquePrefix('same');
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG, redis: redisUrl(), keyPrefix: prefix });
    gate = await creditGate({ config: CONFIG_OBJECT, redis: redisUrl(), keyPrefix: prefix });
  });
  afterAll(async () => {
    await gate.close();
    await h.close();
  });

  it('the same account state yields the same 402 body and headers from both', async () => {
    const a = `same-${randomUUID()}`;
    await fetch(`${h.proxy}/v1/contacts/1/enrich`, { method: 'POST', headers: { 'x-account-id': a } });
    for (let i = 0; i < 4; i++) await fetch(`${h.proxy}/v1/contacts/1/enrich`, { method: 'POST', headers: { 'x-account-id': a } });
    const fromSidecar = await fetch(`${h.proxy}/v1/contacts/1/enrich`, { method: 'POST', headers: { 'x-account-id': a } });
    const fromMiddleware = await request(appWith(gate)).post('/v1/contacts/1/enrich').set('x-account-id', a);
    expect(fromSidecar.status).toBe(402);
    expect(fromMiddleware.status).toBe(402);
    expect(JSON.parse(fromMiddleware.text)).toEqual(await fromSidecar.json());
    expect(fromMiddleware.headers['ratelimit-policy']).toBe(fromSidecar.headers.get('ratelimit-policy'));
    expect(fromMiddleware.headers['content-type']).toBe(fromSidecar.headers.get('content-type'));
  });
});

describe('letter case cannot dodge a charge behind the middleware', () => {
  let gate: CreditGateMiddleware;
  beforeAll(async () => {
    gate = await creditGate({ config: CONFIG_OBJECT });
  });
  afterAll(async () => gate.close());

  it('on a default Express app (case-insensitive routing) every case variant that reaches a handler is charged', async () => {
    const app = express();
    app.use(gate);
    let handled = 0;
    app.post('/v1/ai/custom', (_req, res) => {
      handled += 1;
      res.json({ handled: true });
    });
    const a = `mw-case-${randomUUID()}`;
    const variants = ['/v1/ai/custom', '/V1/AI/CUSTOM', '/v1/AI/custom', '/V1/ai/Custom', '/v1/ai/CUSTOM/'];
    const statuses: number[] = [];
    // 10 credits, 3 per request: three pass, whatever the spelling; the rest are refused.
    for (let i = 0; i < 8; i++) {
      const r = await request(app)
        .post(variants[i % variants.length]!)
        .set('x-account-id', a)
        .set('x-task-count', '3');
      statuses.push(r.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 402)).toHaveLength(5);
    expect(handled).toBe(3);
    const usage = await gate.engine.usage(a);
    expect(usage?.pools.ai_tasks?.used).toBe(9);
  });

  it('follows an app with "case sensitive routing": another case is another path there, and is neither routed nor charged', async () => {
    const app = express();
    app.set('case sensitive routing', true);
    app.use(gate);
    let handled = 0;
    app.post('/v1/ai/custom', (_req, res) => {
      handled += 1;
      res.json({ handled: true });
    });
    const a = `mw-case-${randomUUID()}`;
    const other = await request(app).post('/V1/AI/CUSTOM').set('x-account-id', a).set('x-task-count', '3');
    expect(other.status).toBe(404);
    const exact = await request(app).post('/v1/ai/custom').set('x-account-id', a).set('x-task-count', '3');
    expect(exact.status).toBe(200);
    expect(handled).toBe(1);
    expect((await gate.engine.usage(a))?.pools.ai_tasks?.used).toBe(3);
  });
});

describe('capacity release behind the middleware waits for the handler to confirm it', () => {
  const config = parse(
    editConfig(TEST_CONFIG, [
      `    path: /v1/mailboxes/:id
    release: { mailboxes: 1 }`,
      `    path: /v1/mailboxes/:id
    release: { mailboxes: 1 }
    releaseWhen: { status: [204] }`,
    ]),
  ) as Record<string, unknown>;
  let gate: CreditGateMiddleware;
  beforeAll(async () => {
    gate = await creditGate({ config });
  });
  afterAll(async () => gate.close());

  it('releases on the releaseWhen status only: a 404 (no such mailbox) and a 200 keep the slot', async () => {
    const mailboxes = new Set<string>();
    const app = express();
    app.use(gate);
    app.post('/v1/mailboxes', (_req, res) => {
      const id = randomUUID();
      mailboxes.add(id);
      res.status(201).json({ id });
    });
    app.delete('/v1/mailboxes/:id', (req, res) => {
      if (req.params.id === 'legacy') return void res.status(200).json({ archived: true });
      if (!mailboxes.delete(req.params.id)) return void res.status(404).json({ error: 'no such mailbox' });
      res.status(204).end();
    });
    const a = `mw-cap-${randomUUID()}`;
    const used = async () => (await gate.engine.usage(a))?.pools.mailboxes?.used;
    const first = await request(app).post('/v1/mailboxes').set('x-account-id', a);
    expect(first.status).toBe(201);
    for (let i = 0; i < 5; i++) expect((await request(app).delete('/v1/mailboxes/does-not-exist').set('x-account-id', a)).status).toBe(404);
    expect((await request(app).delete('/v1/mailboxes/legacy').set('x-account-id', a)).status).toBe(200);
    expect(await used()).toBe(1);
    expect((await request(app).post('/v1/mailboxes').set('x-account-id', a)).status).toBe(402);
    expect((await request(app).delete(`/v1/mailboxes/${first.body.id}`).set('x-account-id', a)).status).toBe(204);
    // The middleware settles when the response finishes: wait for it.
    for (let i = 0; i < 50 && (await used()) !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await used()).toBe(0);
    expect((await request(app).post('/v1/mailboxes').set('x-account-id', a)).status).toBe(201);
  });
});
