// The same AI metering inside an Express app: creditGate() reads the usage
// from what the handler writes (JSON, SSE), without delaying it, and settles
// a stream the client abandons by onIncomplete; problems.style: openai too.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { creditGate, type CreditGateMiddleware } from '../../src/index.js';
import { chatChunk, chatCompletion, sleep, sse, usageChunk } from '../helpers/ai-upstream.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = {
  version: 1,
  identity: { header: 'x-account-id' },
  defaultPlan: 'tiny',
  problems: { style: 'openai' },
  creditTypes: { ai_tokens: { name: 'AI Tokens' } },
  plans: { tiny: { ai_tokens: 5000 } },
  routes: [
    {
      name: 'chat',
      method: 'POST',
      path: '/v1/chat/completions',
      charge: {
        ai_tokens: { reserve: { body: 'max_tokens', default: 4096, max: 200000 }, settle: { responseJson: 'usage.total_tokens', onIncomplete: 'hold' } },
      },
    },
  ],
};

describe('AI metering in the Express middleware (Redis)', () => {
  let redis: Redis;
  let gate: CreditGateMiddleware;
  let server: http.Server;
  let base: string;
  /** How many stream chunks the handler has written so far; and whether its response was closed under it. */
  let written = 0;
  let handlerSawClose: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    redis = new Redis(redisUrl());
    gate = await creditGate({ config: CONFIG, redis, keyPrefix: uniquePrefix('ai-mw') });
    const app = express();
    app.use(gate);
    app.post('/v1/chat/completions', (req, res) => {
      const { stream, max_tokens: maxTokens } = req.body as { stream?: boolean; max_tokens?: number };
      if (!stream) {
        res.json(chatCompletion(57));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      written = 0;
      let closed!: () => void;
      handlerSawClose = new Promise((resolve) => (closed = resolve));
      res.on('close', () => closed());
      void (async () => {
        // max_tokens 999 marks the stream that stalls after its first chunk.
        const chunks = maxTokens === 999 ? [sse(chatChunk('partial'))] : [sse(chatChunk('a')), sse(chatChunk('b')), sse(usageChunk(42)), sse('[DONE]')];
        for (const chunk of chunks) {
          res.write(chunk);
          written++;
          await sleep(50);
        }
        if (maxTokens !== 999) res.end();
      })();
    });
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await gate.close();
    redis.disconnect();
  });

  const used = async (a: string) => (await gate.engine.usage(a))?.pools.ai_tokens?.used;
  const client = (a: string) => new OpenAI({ baseURL: base, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-account-id': a } });
  const messages = [{ role: 'user' as const, content: 'hello' }];

  it('a JSON answer from res.json() is charged its usage.total_tokens', async () => {
    const a = `mw-${randomUUID()}`;
    expect((await client(a).chat.completions.create({ model: 'fake', messages })).usage?.total_tokens).toBe(57);
    await vi.waitFor(async () => expect(await used(a)).toBe(57), { timeout: 5000, interval: 20 });
  });

  it('a stream written with res.write() reaches the client chunk by chunk and is charged by its usage chunk', async () => {
    const a = `mw-${randomUUID()}`;
    const stream = await client(a).chat.completions.create({
      model: 'fake',
      messages,
      max_tokens: 1000,
      stream: true,
      stream_options: { include_usage: true },
    });
    const seenWhen: number[] = [];
    for await (const _chunk of stream) seenWhen.push(written);
    expect(seenWhen).toEqual([1, 2, 3]);
    await vi.waitFor(async () => expect(await used(a)).toBe(42), { timeout: 5000, interval: 20 });
  });

  it('a client that abandons the stream is charged the hold (onIncomplete: hold)', async () => {
    const a = `mw-${randomUUID()}`;
    const stream = await client(a).chat.completions.create({ model: 'fake', messages, max_tokens: 999, stream: true });
    for await (const _chunk of stream) stream.controller.abort();
    await handlerSawClose;
    await vi.waitFor(async () => expect(await used(a)).toBe(999), { timeout: 5000, interval: 20 });
  });

  it('an invalid cost reaches the SDK as a 400 invalid_cost (problems.style: openai)', async () => {
    const err = await client(`mw-${randomUUID()}`)
      .chat.completions.create({ model: 'fake', messages, max_tokens: 300000 })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
    expect(err?.status).toBe(400);
    expect(err?.code).toBe('invalid_cost');
    expect(err?.message).toMatch(/max_tokens.*at most 200000/);
  });
});
