// Hanging up does not make work free: a client that goes away after its
// request reached the upstream is charged (the upstream works anyway), and
// creditgate closes the upstream request at once. refundOn: [client_abort]
// opts a route back into refunds. Real sockets on the sidecar and behind the
// Express middleware.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditGate, type CreditGateMiddleware } from '../../src/index.js';
import type { CreditStore } from '../../src/store/credit-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = editConfig(
  TEST_CONFIG,
  ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 1000, voice_minutes: 60,'],
  [
    `  - name: voice-call
    method: POST
    path: /v1/voice/calls
    charge: { voice_minutes: { body: minutes } }`,
    `  - name: voice-call
    method: POST
    path: /v1/voice/calls
    charge: { voice_minutes: { reserve: 15, settle: { responseHeader: x-call-minutes } } }
  - name: refund-on-abort
    method: POST
    path: /v1/ai/cancellable
    refundOn: [5xx, connection_error, timeout, client_abort]
    charge: { ai_tasks: 100 }
  - name: big-job
    method: POST
    path: /v1/ai/job
    charge: { ai_tasks: 100 }`,
  ],
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends a request and hangs up once `reached()` says the upstream has it. */
async function hangUpAfter(url: string, init: RequestInit, reached: () => boolean): Promise<void> {
  const abort = new AbortController();
  const sent = fetch(url, { ...init, signal: abort.signal }).catch((err: Error) => err);
  for (let i = 0; i < 200 && !reached(); i++) await sleep(10);
  expect(reached()).toBe(true);
  abort.abort();
  const outcome = await sent;
  expect(outcome).toBeInstanceOf(Error);
}

describe('client hang-ups on the sidecar (Redis)', () => {
  let h: Harness;
  let closedEarly = 0;
  let finishedWork = 0;
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('hangup') });
    // An upstream that works 400 ms per request and notices when its caller goes away.
    h.upstream.respond = (_req, res) => {
      const timer = setTimeout(() => {
        finishedWork += 1;
        res.writeHead(200, { 'content-type': 'application/json', 'x-call-minutes': '3' });
        res.end('{"done":true}');
      }, 400);
      res.on('close', () => {
        if (!res.writableFinished) {
          clearTimeout(timer);
          closedEarly += 1;
        }
      });
    };
  });
  afterAll(async () => h.close());

  const usage = async (a: string) => (await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools;
  const reachedFor = (a: string, n: number) => () => h.upstream.requests.filter((r) => r.headers['x-account-id'] === a).length >= n;

  it('10 hang-ups after forwarding are 10 charges, and each upstream request is closed at once', async () => {
    const a = `hang-${randomUUID()}`;
    closedEarly = 0;
    finishedWork = 0;
    for (let i = 1; i <= 10; i++) {
      await hangUpAfter(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } }, reachedFor(a, i));
    }
    for (let i = 0; i < 100 && closedEarly < 10; i++) await sleep(10);
    expect(closedEarly).toBe(10);
    expect(finishedWork).toBe(0);
    expect((await usage(a)).ai_tasks.used).toBe(1000);
    // The pool is empty: the next request is refused, not forwarded.
    const next = await fetch(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(next.status).toBe(402);
    expect(h.upstream.requests.filter((r) => r.headers['x-account-id'] === a)).toHaveLength(10);
  });

  it('a hold stands when the client hangs up (nothing to settle from)', async () => {
    const a = `hang-${randomUUID()}`;
    await hangUpAfter(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } }, reachedFor(a, 1));
    await sleep(50);
    expect((await usage(a)).voice_minutes.used).toBe(15);
    // A call that completes settles to what it used.
    const done = await fetch(`${h.proxy}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(done.status).toBe(200);
    expect((await usage(a)).voice_minutes.used).toBe(18);
  });

  it('refundOn: [client_abort] gives the charge back on a hang-up', async () => {
    const a = `hang-${randomUUID()}`;
    await hangUpAfter(`${h.proxy}/v1/ai/cancellable`, { method: 'POST', headers: { 'x-account-id': a } }, reachedFor(a, 1));
    let used = -1;
    for (let i = 0; i < 100 && used !== 0; i++) {
      used = (await usage(a)).ai_tasks.used;
      if (used !== 0) await sleep(10);
    }
    expect(used).toBe(0);
  });

  it('an upstream that resets the connection before answering still refunds (an upstream failure, not a hang-up)', async () => {
    const a = `hang-${randomUUID()}`;
    const before = h.upstream.respond;
    h.upstream.respond = (_req, res) => res.socket?.destroy();
    try {
      const r = await fetch(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
      expect(r.status).toBe(502);
      expect((await usage(a)).ai_tasks.used).toBe(0);
    } finally {
      h.upstream.respond = before;
    }
  });
});

describe('client hang-ups behind the Express middleware (memory store)', () => {
  let gate: CreditGateMiddleware;
  let server: http.Server;
  let base: string;
  let started = 0;
  let finished = 0;
  beforeAll(async () => {
    gate = await creditGate({ config: parse(CONFIG) as Record<string, unknown> });
    const app = express();
    app.use(gate);
    const slow = (_req: express.Request, res: express.Response) => {
      started += 1;
      setTimeout(() => {
        finished += 1;
        if (!res.destroyed) res.json({ done: true });
      }, 300);
    };
    app.post('/v1/ai/job', slow);
    app.post('/v1/ai/cancellable', slow);
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await gate.close();
    server.close();
  });

  it('a hang-up while the handler works is charged; refundOn: [client_abort] refunds it', async () => {
    const a = `mw-hang-${randomUUID()}`;
    started = 0;
    await hangUpAfter(`${base}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } }, () => started >= 1);
    await hangUpAfter(`${base}/v1/ai/cancellable`, { method: 'POST', headers: { 'x-account-id': a } }, () => started >= 2);
    for (let i = 0; i < 100 && finished < 2; i++) await sleep(10);
    expect(finished).toBe(2);
    expect((await gate.engine.usage(a))?.pools.ai_tasks?.used).toBe(100);
  });
});

describe('the middleware lets the handler finish what a departed client started', () => {
  const config = parse(
    editConfig(CONFIG, [
      `  - name: disconnect-mailbox
    method: DELETE
    path: /v1/mailboxes/:id
    release: { mailboxes: 1 }`,
      `  - name: disconnect-mailbox
    method: DELETE
    path: /v1/mailboxes/:id
    release: { mailboxes: 1 }
  - name: slow-charge
    method: POST
    path: /v1/ai/slow-admission
    charge: { ai_tasks: 4 }`,
    ]),
  ) as Record<string, unknown>;
  const store = new MemoryStore();
  // The real memory store, answering charges 300 ms late: time for a client to leave while creditgate decides.
  const slowStore: CreditStore = Object.assign(Object.create(store) as CreditStore, {
    charge: async (...args: Parameters<CreditStore['charge']>) => {
      await sleep(300);
      return store.charge(...args);
    },
  });
  let gate: CreditGateMiddleware;
  let slowGate: CreditGateMiddleware;
  let base: string;
  let slowBase: string;
  let server: http.Server;
  let slowServer: http.Server;
  const handled: string[] = [];
  beforeAll(async () => {
    gate = await creditGate({ config, store: 'memory' });
    slowGate = await creditGate({ config, store: slowStore });
    const app = (g: CreditGateMiddleware) => {
      const a = express();
      a.use(g);
      a.post('/v1/mailboxes', (_req, res) => void res.status(201).json({ id: 'm1' }));
      a.delete('/v1/mailboxes/:id', (_req, res) => {
        handled.push('delete');
        setTimeout(() => res.status(204).end(), 200);
      });
      a.post('/v1/voice/calls', (_req, res) => {
        handled.push('call');
        setTimeout(async () => {
          await res.locals.credits.settle({ voice_minutes: 3 });
          res.json({ minutes: 3 });
        }, 200);
      });
      a.post('/v1/ai/slow-admission', (_req, res) => {
        handled.push('slow');
        res.json({});
      });
      return a;
    };
    server = http.createServer(app(gate));
    slowServer = http.createServer(app(slowGate));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => slowServer.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    slowBase = `http://127.0.0.1:${(slowServer.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await gate.close();
    await slowGate.close();
    server.close();
    slowServer.close();
  });

  it('a DELETE whose client left still releases when the handler answers 204', async () => {
    const a = `mw-left-${randomUUID()}`;
    expect((await fetch(`${base}/v1/mailboxes`, { method: 'POST', headers: { 'x-account-id': a } })).status).toBe(201);
    const before = handled.length;
    await hangUpAfter(`${base}/v1/mailboxes/m1`, { method: 'DELETE', headers: { 'x-account-id': a } }, () => handled.length > before);
    let usedNow = 1;
    for (let i = 0; i < 100 && usedNow !== 0; i++) {
      await sleep(10);
      usedNow = (await gate.engine.usage(a))?.pools.mailboxes?.used ?? -1;
    }
    expect(usedNow).toBe(0);
  });

  it('a hold whose client left is settled by the handler to what it used', async () => {
    const a = `mw-left-${randomUUID()}`;
    const before = handled.length;
    await hangUpAfter(`${base}/v1/voice/calls`, { method: 'POST', headers: { 'x-account-id': a } }, () => handled.length > before);
    let usedNow = 15;
    for (let i = 0; i < 100 && usedNow !== 3; i++) {
      await sleep(10);
      usedNow = (await gate.engine.usage(a))?.pools.voice_minutes?.used ?? -1;
    }
    expect(usedNow).toBe(3);
  });

  it('a client gone before the handler runs costs nothing, and the handler does not run', async () => {
    const a = `mw-left-${randomUUID()}`;
    const before = handled.filter((x) => x === 'slow').length;
    const abort = new AbortController();
    const sent = fetch(`${slowBase}/v1/ai/slow-admission`, { method: 'POST', headers: { 'x-account-id': a }, signal: abort.signal }).catch((e: Error) => e);
    await sleep(80);
    abort.abort();
    expect(await sent).toBeInstanceOf(Error);
    await sleep(500);
    expect(handled.filter((x) => x === 'slow').length).toBe(before);
    expect((await slowGate.engine.usage(a))?.pools.ai_tasks?.used).toBe(0);
  });
});
