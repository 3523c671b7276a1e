// The undici-driven exchange, edge by edge, over real sockets and a real Redis:
// uploads cut off by the client, trailers, bodies that break while the head
// waits for the store, backpressure, HEAD.

import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar.js';
import { appendRoutes, editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness, writeConfig } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = appendRoutes(
  editConfig(
    TEST_CONFIG,
    ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 1000,'],
    ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 2000 }\nidempotency: { maxResponseBytes: 4096 }'],
  ),
  `  - name: big-job
    method: POST
    path: /v1/ai/job
    charge: { ai_tasks: 100 }
  - name: head-job
    method: HEAD
    path: /v1/ai/head
    charge: { ai_tasks: 1 }`,
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** CONFIG with upstream.timeoutMs set. */
const withUpstreamTimeout = (timeoutMs: number) =>
  editConfig(CONFIG, ['store: { timeoutMs: 2000 }', `store: { timeoutMs: 2000 }\nupstream: { timeoutMs: ${timeoutMs} }`]);

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: NodeJS.Dict<string>;
  error?: Error;
}

function request(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string },
  onResponse?: (res: http.IncomingMessage) => void,
): Promise<Got> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: init.method, headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      onResponse?.(res);
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
      res.on('error', (error) => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, error }));
      res.on('aborted', () => {});
    });
    req.on('error', (error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), trailers: {}, error }));
    req.end(init.body);
  });
}

describe('the upstream exchange (undici), edge by edge', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('exchange') });
  });
  afterAll(async () => h.close());
  const usage = async (a: string) => (await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools;
  /** ai_tasks used, once the refund of a cut-off request had up to 2 s to land (0 as soon as it is 0). */
  const usedOnceSettled = async (a: string): Promise<number> => {
    let used = -1;
    for (let i = 0; i < 100 && used !== 0; i++) {
      used = (await usage(a)).ai_tasks.used;
      if (used !== 0) await sleep(20);
    }
    return used;
  };

  it('a client that hangs up mid-upload is not charged (not_forwarded)', async () => {
    const a = `up-${randomUUID()}`;
    const before = h.upstream.respond;
    try {
      const req = http.request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a, 'transfer-encoding': 'chunked' }, agent: false });
      req.on('error', () => {});
      req.write('{"part":');
      await sleep(200);
      req.destroy();
      expect(await usedOnceSettled(a)).toBe(0);
    } finally {
      h.upstream.respond = before;
    }
  });

  it('a content-length upload cut off by the client is not charged', async () => {
    const a = `up-${randomUUID()}`;
    const req = http.request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a, 'content-length': '100' }, agent: false });
    req.on('error', () => {});
    req.write('0123456789');
    await sleep(200);
    req.destroy();
    expect(await usedOnceSettled(a)).toBe(0);
  });

  for (const tapped of [false, true]) {
    it(`trailers reach the client (${tapped ? 'idempotency record' : 'plain'})`, async () => {
      const a = `tr-${randomUUID()}`;
      h.upstream.respond = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-usage' });
        res.write('hello ');
        res.write('world');
        res.addTrailers({ 'x-usage': '7' });
        res.end();
      };
      const headers: Record<string, string> = { 'x-account-id': a };
      if (tapped) headers['idempotency-key'] = randomUUID();
      const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers });
      expect(got.status).toBe(200);
      expect(got.body.toString()).toBe('hello world');
      expect(got.trailers['x-usage']).toBe('7');
    });
  }

  it('an upstream body that breaks while the head waits for a refund is not a complete answer to the client', async () => {
    const a = `brk-${randomUUID()}`;
    h.upstream.respond = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 30);
    };
    const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(got.error ?? got.body.length < 1000).toBeTruthy();
  });

  it('a large body to a slow reader arrives whole (backpressure), with and without a record', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 'x');
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let i = 0;
      const step = () => {
        while (i < big.length) {
          const ok = res.write(big.subarray(i, i + 65536));
          i += 65536;
          if (!ok) return void res.once('drain', step);
        }
        res.end();
      };
      step();
    };
    for (const key of [undefined, randomUUID()]) {
      const headers: Record<string, string> = { 'x-account-id': `bp-${randomUUID()}` };
      if (key) headers['idempotency-key'] = key;
      const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers }, (res) => {
        res.pause();
        setTimeout(() => res.resume(), 300);
      });
      expect(got.error).toBeUndefined();
      expect(got.body.length).toBe(big.length);
    }
  });

  it('a refunded 5xx with a body of many chunks arrives whole', async () => {
    const a = `many-${randomUUID()}`;
    h.upstream.respond = (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`chunk${n}\n`);
        if (++n === 20) {
          clearInterval(t);
          res.end();
        }
      }, 2);
    };
    const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(got.status).toBe(503);
    expect(got.body.toString().split('\n').filter(Boolean)).toHaveLength(20);
    expect((await usage(a)).ai_tasks.used).toBe(0);
  });

  it('an informational response (103 Early Hints) before the final one: the client gets the final answer, charged once', async () => {
    const a = `eh-${randomUUID()}`;
    h.upstream.respond = (_req, res) => {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"done":true}');
      }, 20);
    };
    const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
    expect(got.error).toBeUndefined();
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe('{"done":true}');
    expect((await usage(a)).ai_tasks.used).toBe(100);
  });

  it('HEAD through a charged route', async () => {
    const a = `head-${randomUUID()}`;
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
      res.end();
    };
    for (let i = 0; i < 3; i++) {
      const got = await request(`${h.proxy}/v1/ai/head`, { method: 'HEAD', headers: { 'x-account-id': a } });
      expect(got.status).toBe(200);
      expect(got.headers['content-length']).toBe('5');
    }
  });

  it('expect: 100-continue with a body is forwarded', async () => {
    const a = `exp-${randomUUID()}`;
    h.upstream.respond = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${req.body.length} ${req.headers.expect ?? 'no-expect'}`);
    };
    const got = await new Promise<Got>((resolve) => {
      const req = http.request(
        `${h.proxy}/v1/ai/job`,
        { method: 'POST', headers: { 'x-account-id': a, expect: '100-continue', 'content-length': '5' }, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), trailers: {} }));
        },
      );
      req.on('continue', () => req.end('hello'));
    });
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe('got 5 no-expect');
  });
});

describe('the upstream timeout counts from the forward, connection included', () => {
  /** A sidecar whose upstream's connections never complete (a listener that never accepts, its backlog full). */
  async function sidecarBeforeAStuckUpstream(timeoutMs: number): Promise<{ s: RunningSidecar; close: () => Promise<void> }> {
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer();
         s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
           require('node:fs').writeSync(1, s.address().port + '\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const filler: net.Socket[] = [];
    const cleanUp = () => {
      for (const sock of filler) sock.destroy();
      child.kill('SIGKILL');
    };
    try {
      const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
      for (let i = 0; i < 3; i++) {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('error', () => {});
        filler.push(sock);
      }
      await sleep(100);
      const config = writeConfig(withUpstreamTimeout(timeoutMs));
      const s = await startSidecar({
        configPath: config,
        upstream: `http://127.0.0.1:${port}`,
        port: 0,
        adminPort: 0,
        host: '127.0.0.1',
        logger: silentLogger(),
        redis: redisUrl(),
        keyPrefix: uniquePrefix('exchange-connect'),
      });
      return {
        s,
        close: async () => {
          await s.close();
          cleanUp();
        },
      };
    } catch (err) {
      cleanUp();
      throw err;
    }
  }

  it('a client that leaves while the upstream connection is still being made is refunded at once, not at the timeout', async () => {
    const { s, close } = await sidecarBeforeAStuckUpstream(5000);
    try {
      const a = `gone-${randomUUID()}`;
      const req = http.request(`http://127.0.0.1:${s.port}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a }, agent: false });
      req.on('error', () => {});
      req.end();
      for (let i = 0; i < 100 && (await s.engine.usage(a))?.pools.ai_tasks?.used !== 100; i++) await sleep(10);
      expect((await s.engine.usage(a))!.pools.ai_tasks!.used).toBe(100);
      req.destroy();
      let used = -1;
      for (let i = 0; i < 50 && used !== 0; i++) {
        used = (await s.engine.usage(a))!.pools.ai_tasks!.used;
        if (used !== 0) await sleep(20);
      }
      expect(used).toBe(0);
    } finally {
      await close();
    }
  }, 20_000);

  it('an upstream whose connection never completes gives 504 within the timeout, and a refund', async () => {
    const { s, close } = await sidecarBeforeAStuckUpstream(400);
    try {
      const a = `conn-${randomUUID()}`;
      const started = Date.now();
      const got = await request(`http://127.0.0.1:${s.port}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
      const took = Date.now() - started;
      expect(got.status).toBe(504);
      expect(took).toBeLessThan(1500);
      expect((await s.engine.usage(a))!.pools.ai_tasks!.used).toBe(0);
    } finally {
      await close();
    }
  }, 20_000);

  /** A harness of its own whose config sets upstream.timeoutMs. */
  const harnessWithUpstreamTimeout = (timeoutMs: number) =>
    startHarness({ config: withUpstreamTimeout(timeoutMs), redis: redisUrl(), keyPrefix: uniquePrefix('exchange-timeout') });

  it('a head that arrived in time but waits behind a busy event loop is the answer, not a 504 and a refund', async () => {
    const h = await harnessWithUpstreamTimeout(100);
    try {
      const a = `busy-${randomUUID()}`;
      h.upstream.respond = (_req, res) => {
        // The answer leaves at 40 ms; this process (the sidecar's too) is then
        // held until 250 ms, past the 100 ms upstream timeout: both timers
        // fire in one timers phase, the answer's first, and the head waits in
        // the socket for the poll phase that follows.
        setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('done'), 40);
        const until = performance.now() + 250;
        while (performance.now() < until) {
          // busy, as a replica serving hundreds of requests in one poll phase
        }
      };
      const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': a } });
      expect(got.status).toBe(200);
      expect(got.body.toString()).toBe('done');
      expect((await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools.ai_tasks.used).toBe(100);
    } finally {
      await h.close();
    }
  });

  it('an upstream that never answers gives 504 at the timeout, not a second later', async () => {
    const h = await harnessWithUpstreamTimeout(300);
    try {
      h.upstream.respond = () => {};
      const started = Date.now();
      const got = await request(`${h.proxy}/v1/ai/job`, { method: 'POST', headers: { 'x-account-id': `to-${randomUUID()}` } });
      expect(got.status).toBe(504);
      expect(Date.now() - started).toBeLessThan(700);
    } finally {
      await h.close();
    }
  });
});
