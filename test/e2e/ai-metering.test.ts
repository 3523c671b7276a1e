// Metering AI calls through the sidecar, with the official openai client and
// Anthropic's exact SSE events against a local fake upstream: holds sized
// from max_tokens, settled from the usage the response reports (JSON body,
// the final stream chunk, a trailer), capped at the hold, and a response cut
// short settled by onIncomplete.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { anthropicEvents, chatChunk, chatCompletion, sleep, sse, usageChunk, writeStream } from '../helpers/ai-upstream.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { metricsText } from '../helpers/checked-setup.js';
import { startHarness, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const chatRoute = (name: string, path: string, settle: string, extra = '') => `  - name: ${name}
    method: POST
    path: ${path}${extra}
    charge:
      ai_tokens:
        reserve: { body: max_tokens, default: 4096, max: 200000 }
        settle: ${settle}
`;

const CONFIG = `version: 1
identity: { header: x-account-id }
limits: { maxBodyBytes: 8192 }
# A busy 2-core test machine: store calls may take longer than the 50 ms default.
store: { timeoutMs: 2000 }
defaultPlan: tiny
creditTypes:
  ai_tokens: { name: AI Tokens }
plans:
  tiny: { ai_tokens: 100000 }
routes:
${chatRoute('chat', '/v1/chat/completions', '{ responseJson: usage.total_tokens }')}
${chatRoute('chat-release', '/release/v1/chat/completions', '{ responseJson: usage.total_tokens, onIncomplete: release }')}
${chatRoute('messages', '/v1/messages', '{ responseJson: [message.usage.input_tokens, usage.output_tokens] }', '\n    chargeWhen: { status: [200] }')}
${chatRoute('chat-refund', '/refund/v1/chat/completions', '{ responseJson: usage.total_tokens }', '\n    refundOn: [5xx, connection_error, timeout, client_abort]')}
${chatRoute('trailer', '/v1/trailer', '{ responseTrailer: x-usage-tokens }')}`;

describe('metering AI calls (sidecar, Redis)', () => {
  let h: Harness;
  const logs = captureLogger();
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('ai-metering'), logger: logs.logger });
  });
  afterAll(async () => h.close());

  const account = () => `ai-${randomUUID()}`;
  const used = async (a: string) => (await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools.ai_tokens.used as number;
  const client = (a: string, base = '/v1') =>
    new OpenAI({ baseURL: `${h.proxy}${base}`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-account-id': a } });
  const messages = [{ role: 'user' as const, content: 'hello' }];
  const overage = async () => Number(/creditgate_unbilled_overage_total\{credit_type="ai_tokens"\} (\d+)/.exec(await metricsText(h))?.[1] ?? 'NaN');

  it('a JSON answer is charged its usage.total_tokens exactly; the hold came from max_tokens (default 4096)', async () => {
    const a = account();
    h.upstream.respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(chatCompletion(57)));
    const answer = await client(a).chat.completions.create({ model: 'fake', messages });
    expect(answer.usage?.total_tokens).toBe(57);
    expect(h.upstream.requests.at(-1)?.headers['creditgate-reserved']).toBe('ai_tokens=4096');
    // Usage can only be read from an uncompressed body.
    expect(h.upstream.requests.at(-1)?.headers['accept-encoding']).toBe('identity');
    expect(await used(a)).toBe(57);
    await client(a).chat.completions.create({ model: 'fake', messages, max_tokens: 300 });
    expect(h.upstream.requests.at(-1)?.headers['creditgate-reserved']).toBe('ai_tokens=300');
    expect(await used(a)).toBe(114);
  });

  it('a stream with include_usage is charged by its final chunk, and each chunk reaches the client before the next is written', async () => {
    const a = account();
    let written = 0;
    h.upstream.respond = (_req, res) => {
      const chunks = [sse(chatChunk('one')), sse(chatChunk('two')), sse(chatChunk('three')), sse(usageChunk(42)) + sse('[DONE]')];
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      void (async () => {
        for (const chunk of chunks) {
          res.write(chunk);
          written++;
          await sleep(50);
        }
        res.end();
      })();
    };
    const stream = await client(a).chat.completions.create({
      model: 'fake',
      messages,
      max_tokens: 1000,
      stream: true,
      stream_options: { include_usage: true },
    });
    const seenWhen: number[] = [];
    let total: number | undefined;
    for await (const chunk of stream) {
      seenWhen.push(written);
      total = chunk.usage?.total_tokens ?? total;
    }
    // Chunk n arrived after the upstream wrote n chunks and before it wrote the next: forwarded as it came, not buffered.
    expect(seenWhen).toEqual([1, 2, 3, 4]);
    expect(total).toBe(42);
    // The SDK stops at [DONE]; the settle runs when the stream itself ends.
    await vi.waitFor(async () => expect(await used(a)).toBe(42), { timeout: 5000, interval: 20 });
  });

  it('usage above the hold is capped at the hold and counted as unbilled overage', async () => {
    const a = account();
    const before = await overage();
    h.upstream.respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(chatCompletion(25)));
    await client(a).chat.completions.create({ model: 'fake', messages, max_tokens: 10 });
    expect(await used(a)).toBe(10);
    expect((await overage()) - before).toBe(15);
  });

  it('Anthropic, through @anthropic-ai/sdk: a stream is charged message_start input tokens plus the last cumulative output_tokens', async () => {
    const a = account();
    h.upstream.respond = (_req, res) => void writeStream(res, anthropicEvents(25, [3, 9, 15]), 5);
    const anthropic = new Anthropic({ baseURL: h.proxy, apiKey: 'sk-ant-test', maxRetries: 0, defaultHeaders: { 'x-account-id': a } });
    const final = await anthropic.messages.stream({ model: 'fake', max_tokens: 1024, messages }).finalMessage();
    expect(final.usage).toMatchObject({ input_tokens: 25, output_tokens: 15 });
    expect(h.upstream.requests.at(-1)?.headers['creditgate-reserved']).toBe('ai_tokens=1024');
    // The SDK may resolve at message_stop; the settle runs when the stream ends.
    await vi.waitFor(async () => expect(await used(a)).toBe(40), { timeout: 5000, interval: 20 });
  });

  it('with chargeWhen: { status: [200] }, an upstream error answer (no usage in it) is refunded, not settled by onIncomplete', async () => {
    const a = account();
    h.upstream.respond = (_req, res) =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long' } }));
    const r = await fetch(`${h.proxy}/v1/messages`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', max_tokens: 1024, messages }),
    });
    expect(r.status).toBe(400);
    expect((await r.json()).error.message).toBe('prompt is too long');
    expect(await used(a)).toBe(0);
  });

  /** The upstream sends one chunk, then waits until its connection is closed. */
  const stallAfterFirstChunk = () => {
    let closed!: () => void;
    const upstreamClosed = new Promise<void>((resolve) => (closed = resolve));
    h.upstream.respond = (_req, res) => {
      res.on('close', () => closed());
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(chatChunk('partial')));
    };
    return upstreamClosed;
  };

  for (const [rule, base, charged] of [
    ['onIncomplete: hold', '/v1', 700],
    ['onIncomplete: release', '/release/v1', 0],
    ['refundOn: [client_abort]', '/refund/v1', 0],
  ] as const) {
    it(`a client that aborts mid-stream (${rule}) is charged ${charged}, and the upstream sees its connection closed`, async () => {
      const a = account();
      const upstreamClosed = stallAfterFirstChunk();
      const stream = await client(a, base).chat.completions.create({ model: 'fake', messages, max_tokens: 700, stream: true });
      for await (const chunk of stream) {
        expect(chunk.choices[0]?.delta.content).toBe('partial');
        stream.controller.abort();
      }
      await upstreamClosed;
      await vi.waitFor(async () => expect(await used(a)).toBe(charged), { timeout: 5000, interval: 50 });
      // The hold stays held (hold) or is given back (release) for good: nothing settles it later.
      await sleep(100);
      expect(await used(a)).toBe(charged);
    });
  }

  it('a client that leaves before the response headers, on an onIncomplete: release route, is charged nothing', async () => {
    const a = account();
    let closed!: () => void;
    const upstreamClosed = new Promise<void>((resolve) => (closed = resolve));
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    h.upstream.respond = (_req, res) => {
      res.on('close', () => closed());
      arrived();
    };
    const abort = new AbortController();
    const r = fetch(`${h.proxy}/release/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', max_tokens: 400, messages }),
      signal: abort.signal,
    });
    await requestArrived;
    abort.abort();
    await expect(r).rejects.toThrow();
    await upstreamClosed;
    await vi.waitFor(async () => expect(await used(a)).toBe(0), { timeout: 5000, interval: 50 });
  });

  it('an upstream connection that fails mid-stream is settled by onIncomplete (hold: the hold is charged)', async () => {
    const a = account();
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(chatChunk('partial')));
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const r = await fetch(`${h.proxy}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', max_tokens: 600, stream: true, messages }),
    });
    expect(r.status).toBe(200);
    await expect(r.text()).rejects.toThrow();
    await vi.waitFor(async () => expect(await used(a)).toBe(600), { timeout: 5000, interval: 50 });
  });

  it('a complete answer without the usage path is settled by onIncomplete (hold), with a warning naming the path', async () => {
    const a = account();
    const before = logs.lines.length;
    h.upstream.respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[]}');
    const r = await fetch(`${h.proxy}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', max_tokens: 80, messages }),
    });
    expect(r.status).toBe(200);
    await r.text();
    expect(await used(a)).toBe(80);
    const warning = logs.lines.slice(before).find((l) => l.msg === 'cannot settle from the response: hold');
    expect(warning).toMatchObject({ route: 'chat', creditType: 'ai_tokens', held: 80, onIncomplete: 'hold' });
    expect(warning?.reason).toContain('usage.total_tokens');
  });

  it('a JSON answer larger than limits.maxBodyBytes still reaches the client whole, and is settled by onIncomplete', async () => {
    const a = account();
    const big = JSON.stringify({ ...chatCompletion(5), padding: 'x'.repeat(10_000) });
    h.upstream.respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(big);
    const r = await fetch(`${h.proxy}/release/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', max_tokens: 90, messages }),
    });
    expect(await r.text()).toBe(big);
    expect(await used(a)).toBe(0);
  });

  it('trailers are forwarded to the client and settle the hold', async () => {
    const a = account();
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-usage-tokens' });
      res.write('working…');
      res.addTrailers({ 'x-usage-tokens': '33' });
      res.end(' done');
    };
    const { body, trailers } = await new Promise<{ body: string; trailers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request(`${h.proxy}/v1/trailer`, { method: 'POST', headers: { 'x-account-id': a, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ body: text, trailers: res.trailers }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ max_tokens: 500 }));
    });
    expect(body).toBe('working… done');
    expect(trailers['x-usage-tokens']).toBe('33');
    expect(await used(a)).toBe(33);
  });

  it('a reserve rule refuses a max_tokens above its max with 400 invalid-cost', async () => {
    const r = await fetch(`${h.proxy}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-account-id': account(), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', max_tokens: 200001, messages }),
    });
    expect(r.status).toBe(400);
    expect((await r.json()).type).toMatch(/invalid-cost$/);
  });
});
