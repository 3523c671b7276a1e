// An Idempotency-Key is bound to the request it was first used with, and a
// completed request's replay is answered from its first response without
// reaching the upstream again. Each hole that let one key buy work for free
// is reproduced here: another count, another path, a replay after the pool
// is empty, after DELETE; and responses that cannot be kept. Real sockets,
// real Redis, and the Express middleware.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import request from 'supertest';
import { parse } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { creditGate, type CreditGateMiddleware } from '../../src/index.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = editConfig(TEST_CONFIG, ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 2000 }\nidempotency: { maxResponseBytes: 4096 }']);

describe('idempotency keys on the sidecar (Redis)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('idem') });
  });
  afterAll(async () => h.close());
  let served = 0;
  beforeEach(() => {
    served = 0;
    h.upstream.respond = (req, res) => {
      served += 1;
      res.writeHead(201, { 'content-type': 'application/json', 'x-job': `job-${served}` });
      res.end(JSON.stringify({ job: served, count: JSON.parse(req.body.toString() || '{}').count ?? null }));
    };
  });

  const acct = () => `idem-${randomUUID()}`;
  const used = async (a: string) => (await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools.ai_tasks.used as number;
  const followups = (a: string, key: string, count: number, path = '/v1/ai/followups') =>
    fetch(`${h.proxy}${path}`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ count }),
    });
  const reached = (key: string) => h.upstream.requests.filter((r) => r.headers['idempotency-key'] === key).length;

  it('a completed request is replayed from its first response (status, headers, body); the upstream sees it once', async () => {
    const a = acct();
    const key = randomUUID();
    const first = await followups(a, key, 3);
    expect(first.status).toBe(201);
    const firstBody = await first.text();
    for (let i = 0; i < 3; i++) {
      const replay = await followups(a, key, 3);
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.headers.get('x-job')).toBe(first.headers.get('x-job'));
      expect(replay.headers.get('content-type')).toBe('application/json');
      expect(await replay.text()).toBe(firstBody);
    }
    expect(reached(key)).toBe(1);
    expect(await used(a)).toBe(3);
  });

  it('the same key with another count is 422 idempotency-key-reused: nothing forwarded, nothing charged', async () => {
    const a = acct();
    const key = randomUUID();
    expect((await followups(a, key, 1)).status).toBe(201);
    const reuse = await followups(a, key, 1000);
    expect(reuse.status).toBe(422);
    expect(reuse.headers.get('content-type')).toBe('application/problem+json');
    expect((await reuse.json()).type).toBe('https://creditgate.dev/problems/idempotency-key-reused');
    expect(reached(key)).toBe(1);
    expect(await used(a)).toBe(1);
  });

  it('the same key on another path (another route) or another body is 422, never forwarded', async () => {
    const a = acct();
    const key = randomUUID();
    expect((await followups(a, key, 2)).status).toBe(201);
    const otherRoute = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '2', 'idempotency-key': key } });
    expect(otherRoute.status).toBe(422);
    const otherBody = await fetch(`${h.proxy}/v1/ai/followups`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ count: 2, prompt: 'something else' }),
    });
    expect(otherBody.status).toBe(422);
    // Same route, another path parameter: another request too.
    const k2 = randomUUID();
    const enrich = (id: string) => fetch(`${h.proxy}/v1/contacts/${id}/enrich`, { method: 'POST', headers: { 'x-account-id': a, 'idempotency-key': k2 } });
    expect((await enrich('1')).status).toBe(201);
    expect((await enrich('2')).status).toBe(422);
    expect(reached(key)).toBe(1);
    expect(reached(k2)).toBe(1);
    expect(await used(a)).toBe(2);
  });

  it('one key cannot buy more work than it paid for: 50 concurrent reuses with other counts are all 422', async () => {
    const a = acct();
    const key = randomUUID();
    expect((await followups(a, key, 1)).status).toBe(201);
    const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => followups(a, key, 2 + i).then((r) => r.status)));
    expect(new Set(statuses)).toEqual(new Set([422]));
    expect(reached(key)).toBe(1);
    expect(await used(a)).toBe(1);
  });

  it('a genuine replay after the pool is empty (and known empty on this replica) is still answered from its first response', async () => {
    const a = acct();
    const key = randomUUID();
    expect((await followups(a, key, 4)).status).toBe(201);
    expect((await followups(a, randomUUID(), 6)).status).toBe(201);
    // Empty now, and cached as empty by this replica.
    expect((await followups(a, randomUUID(), 1)).status).toBe(402);
    const replay = await followups(a, key, 4);
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    // A reuse with another count is still refused as a reuse, not as a 402 that invites a retry.
    expect((await followups(a, key, 5)).status).toBe(422);
    expect(reached(key)).toBe(1);
    expect(await used(a)).toBe(10);
  });

  it('after DELETE of the account its keys are gone: the same request is charged again', async () => {
    const a = acct();
    const key = randomUUID();
    expect((await followups(a, key, 3)).status).toBe(201);
    expect((await h.adminFetch(`/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny' }) })).status).toBe(201);
    expect((await h.adminFetch(`/v1/accounts/${a}`, { method: 'DELETE' })).status).toBe(204);
    const again = await followups(a, key, 3);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(reached(key)).toBe(2);
    expect(await used(a)).toBe(3);
  });

  it('a first response larger than idempotency.maxResponseBytes is not kept: its replays get 409 idempotency-replay-unavailable', async () => {
    const a = acct();
    const key = randomUUID();
    h.upstream.respond = (_req, res) => {
      served += 1;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(10_000));
    };
    const first = await followups(a, key, 1);
    expect((await first.text()).length).toBe(10_000);
    const replay = await followups(a, key, 1);
    expect(replay.status).toBe(409);
    expect((await replay.json()).type).toBe('https://creditgate.dev/problems/idempotency-replay-unavailable');
    expect(reached(key)).toBe(1);
    expect(await used(a)).toBe(1);
  });

  it('a streamed first response is not kept: 409, and never forwarded again', async () => {
    const a = acct();
    const key = randomUUID();
    h.upstream.respond = (_req, res) => {
      served += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      setTimeout(() => res.end('data: [DONE]\n\n'), 20);
    };
    const first = await followups(a, key, 1);
    expect(await first.text()).toContain('[DONE]');
    expect((await followups(a, key, 1)).status).toBe(409);
    expect(reached(key)).toBe(1);
  });

  it.each([
    ['text/event-stream', 'data: one\n\n', 'data: two\n\n'],
    ['application/x-ndjson', '{"n":1}\n', '{"n":2}\n'],
  ])('a %s stream with a key goes out event by event: the first event reaches the client before the upstream writes the next', async (type, one, two) => {
    const a = acct();
    let clientHasFirst: () => void = () => undefined;
    const firstArrived = new Promise<void>((resolve) => {
      clientHasFirst = resolve;
    });
    let secondWritten = false;
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': type });
      res.write(one);
      // The next event once the client has the first, or after a second: a held-back first event still ends the test.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise((resolve) => {
        timer = setTimeout(resolve, 1000);
      });
      void Promise.race([firstArrived, late]).then(() => {
        clearTimeout(timer);
        secondWritten = true;
        res.end(two);
      });
    };
    const res = await followups(a, randomUUID(), 1);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const secondWrittenBeforeFirstArrived = secondWritten;
    clientHasFirst();
    expect(first).toBe(one);
    expect(secondWrittenBeforeFirstArrived).toBe(false);
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
    expect(rest).toBe(two);
    expect(await used(a)).toBe(1);
  });

  it('a first request the client hung up on is charged; its replays get 409, not the upstream', async () => {
    const a = acct();
    const key = randomUUID();
    h.upstream.respond = (_req, res) => {
      served += 1;
      setTimeout(() => {
        if (!res.destroyed) res.end('{}');
      }, 300);
    };
    const abort = new AbortController();
    const hang = fetch(`${h.proxy}/v1/ai/followups`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'x-account-id': a, 'content-type': 'application/json', 'idempotency-key': key },
      body: '{"count":2}',
    }).catch((err: Error) => err);
    for (let i = 0; i < 100 && reached(key) < 1; i++) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    expect(await hang).toBeInstanceOf(Error);
    // The hang-up is handled as soon as the sidecar sees the socket close; until then a replay is "in progress".
    let replay: Response | undefined;
    for (let i = 0; i < 50; i++) {
      replay = await followups(a, key, 2);
      if (((await replay.clone().json()) as { type: string }).type !== 'https://creditgate.dev/problems/idempotency-in-progress') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(replay!.status).toBe(409);
    expect((await replay!.json()).type).toBe('https://creditgate.dev/problems/idempotency-replay-unavailable');
    expect(await used(a)).toBe(2);
    expect(reached(key)).toBe(1);
  });

  it('a HEAD replay keeps the first Content-Length (its body is empty, its length is not)', async () => {
    const a = acct();
    const key = randomUUID();
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
      res.end();
    };
    const head = () => fetch(`${h.proxy}/v1/ai/report?n=1`, { method: 'HEAD', headers: { 'x-account-id': a, 'idempotency-key': key } });
    const first = await head();
    expect(first.headers.get('content-length')).toBe('11');
    const replay = await head();
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('content-length')).toBe('11');
    expect(reached(key)).toBe(1);
  });

  it('a failed first attempt (refunded) frees the key: the retry is forwarded and charged', async () => {
    const a = acct();
    const key = randomUUID();
    h.upstream.respond = (_req, res) => res.writeHead(503).end();
    expect((await followups(a, key, 2)).status).toBe(503);
    expect(await used(a)).toBe(0);
    h.upstream.respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    expect((await followups(a, key, 2)).status).toBe(200);
    expect((await followups(a, key, 2)).headers.get('idempotent-replayed')).toBe('true');
    expect(reached(key)).toBe(2);
    expect(await used(a)).toBe(2);
  });
});

describe('idempotency keys behind the Express middleware (memory store)', () => {
  let gate: CreditGateMiddleware;
  let server: http.Server;
  let ran = 0;
  beforeAll(async () => {
    gate = await creditGate({ config: parse(CONFIG) as Record<string, unknown> });
    const app = express();
    app.use(express.json());
    app.use(gate);
    app.post('/v1/ai/followups', (req, res) => {
      ran += 1;
      res.status(201).set('x-run', String(ran)).json({ run: ran, count: req.body.count });
    });
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await gate.close();
    server.close();
  });

  it('a replay is answered from the first response without running the handler; another count is 422', async () => {
    const a = `mw-idem-${randomUUID()}`;
    ran = 0;
    const send = (count: number) => request(server).post('/v1/ai/followups').set('x-account-id', a).set('idempotency-key', 'k').send({ count });
    const first = await send(3);
    expect(first.status).toBe(201);
    const replay = await send(3);
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['x-run']).toBe('1');
    expect(replay.body).toEqual(first.body);
    expect((await send(7)).status).toBe(422);
    expect(ran).toBe(1);
    expect((await gate.engine.usage(a))?.pools.ai_tasks?.used).toBe(3);
  });
});
