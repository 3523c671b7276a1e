// The proxy path: what passes uncharged, streaming both ways, upstream
// failures, and the config's "unmatched: reject".

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { startSidecar } from '../../src/sidecar.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, writeConfig, type Harness } from '../helpers/sidecar-harness.js';
import { freePort } from '../helpers/redis-server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sidecar proxying (memory store)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: TEST_CONFIG });
  });
  afterAll(async () => h.close());

  it('an unmatched request passes through uncharged, with status, headers and body intact', async () => {
    h.upstream.respond = (_req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain', 'x-upstream': 'yes', 'set-cookie': ['a=1', 'b=2'] });
      res.end('created');
    };
    try {
      const r = await fetch(`${h.proxy}/v1/other/thing?x=1`, { method: 'PUT', headers: { 'x-account-id': 'free' }, body: 'hello' });
      expect(r.status).toBe(201);
      expect(r.headers.get('x-upstream')).toBe('yes');
      expect(r.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
      expect(r.headers.get('ratelimit')).toBeNull();
      expect(await r.text()).toBe('created');
      const seen = h.upstream.requests.at(-1)!;
      expect(seen.method).toBe('PUT');
      expect(seen.url).toBe('/v1/other/thing?x=1');
      expect(seen.body.toString()).toBe('hello');
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
      const usage = await (await h.adminFetch('/v1/accounts/free/usage')).json();
      expect(Object.values(usage.pools).every((p) => (p as { used: number }).used === 0)).toBe(true);
    } finally {
      h.upstream.respond = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      };
    }
  });

  it('streams large bodies both ways without altering them', async () => {
    const up = randomBytes(8 * 1024 * 1024);
    const down = randomBytes(6 * 1024 * 1024);
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(down);
    };
    try {
      const r = await fetch(`${h.proxy}/v1/files/upload`, { method: 'POST', body: up, headers: { 'content-type': 'application/octet-stream' } });
      const got = Buffer.from(await r.arrayBuffer());
      expect(r.status).toBe(200);
      expect(sha(got)).toBe(sha(down));
      expect(sha(h.upstream.requests.at(-1)!.body)).toBe(sha(up));
    } finally {
      h.upstream.respond = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      };
    }
  });

  it('a body sent after Expect: 100-continue, and a chunked body of unknown length, reach the upstream whole', async () => {
    const body = randomBytes(256 * 1024);
    const send = (headers: http.OutgoingHttpHeaders, chunked: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(`${h.proxy}/v1/files/upload`, { method: 'POST', headers });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        if (headers.expect) req.on('continue', () => req.end(body));
        else if (chunked) {
          req.write(body.subarray(0, 1000));
          setTimeout(() => req.end(body.subarray(1000)), 20);
        }
      });
    expect(await send({ expect: '100-continue', 'content-length': body.length, 'content-type': 'application/octet-stream' }, false)).toBe(200);
    let seen = h.upstream.requests.at(-1)!;
    expect(seen.headers.expect).toBeUndefined();
    expect(sha(seen.body)).toBe(sha(body));
    expect(await send({ 'content-type': 'application/octet-stream' }, true)).toBe(200);
    seen = h.upstream.requests.at(-1)!;
    expect(seen.headers['transfer-encoding']).toBe('chunked');
    expect(sha(seen.body)).toBe(sha(body));
  });

  it('drops hop-by-hop headers in both directions', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${h.proxy}/v1/plain`, {
        method: 'GET',
        headers: { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': 'drop-me', 'keep-alive': 'timeout=5', 'x-kept': 'kept' },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    const seen = h.upstream.requests.at(-1)!;
    expect(seen.headers['x-secret-hop']).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('kept');
  });

  it('an upstream that refuses connections gives 502 problem+json', async () => {
    const port = await freePort();
    const s = await startSidecar({
      configPath: writeConfig(TEST_CONFIG),
      upstream: `http://127.0.0.1:${port}`,
      port: 0,
      adminPort: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
    });
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/v1/anything`);
      expect(r.status).toBe(502);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect((await r.json()).type).toBe('https://creditgate.dev/problems/upstream-unavailable');
    } finally {
      await s.close();
    }
  });
});

describe('unmatched: reject', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: editConfig(TEST_CONFIG, ['defaultPlan: tiny', 'defaultPlan: tiny\nunmatched: reject']) });
  });
  afterAll(async () => h.close());

  it('answers 404 problem+json for requests no route matches and never forwards them', async () => {
    const r = await fetch(`${h.proxy}/v1/unknown`, { headers: { 'x-account-id': 'a' } });
    expect(r.status).toBe(404);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/route-not-found');
    expect(h.upstream.requests).toHaveLength(0);
    const ok = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': 'a', 'x-task-count': '1' } });
    expect(ok.status).toBe(200);
    expect(h.upstream.requests).toHaveLength(1);
  });
});

describe('no default plan', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: editConfig(TEST_CONFIG, ['defaultPlan: tiny\n', '']) });
  });
  afterAll(async () => h.close());

  it('an account with no record gets 403 unknown-account; once created it is served', async () => {
    const r = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': 'nobody', 'x-task-count': '1' } });
    expect(r.status).toBe(403);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/unknown-account');
    expect((await h.adminFetch('/v1/accounts/nobody/usage')).status).toBe(404);
    await h.adminFetch('/v1/accounts/nobody', { method: 'PUT', body: JSON.stringify({ plan: 'tiny' }) });
    const ok = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': 'nobody', 'x-task-count': '1' } });
    expect(ok.status).toBe(200);
  });
});
