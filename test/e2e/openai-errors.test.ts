// problems.style: openai, read through the official openai client: a 402, a
// 429 and an invalid cost reach the SDK's error object with status, code,
// type and the shortfall; the default style stays problem+json.

import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = `version: 1
identity: { header: x-account-id }
store: { timeoutMs: 2000 }
defaultPlan: tiny
problems: { style: openai }
creditTypes:
  ai_tokens: { name: AI Tokens }
plans:
  tiny: { ai_tokens: 10 }
routes:
  - name: chat
    method: POST
    path: /v1/chat/completions
    rateLimit: { points: 3, duration: 1h }
    charge: { ai_tokens: { body: max_tokens, default: 4, max: 8 } }
  - name: plain
    method: POST
    path: /v1/plain
    problems: { style: problem+json }
    charge: { ai_tokens: { body: max_tokens, default: 4, max: 8 } }
`;

const CHAT_ANSWER = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'fake',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
};

describe('problems.style: openai through the openai client', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('openai-errors') });
    h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(CHAT_ANSWER));
    };
  });
  afterAll(async () => h.close());

  const client = (account: string) => new OpenAI({ baseURL: `${h.proxy}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-account-id': account } });
  const ask = (c: OpenAI, maxTokens?: number) =>
    c.chat.completions.create({ model: 'fake', messages: [{ role: 'user', content: 'hello' }], ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }) });
  const caught = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err as InstanceType<typeof OpenAI.APIError>;
    }
    throw new Error('expected the request to be refused');
  };

  it('a 402 is an APIError with status 402, code credits_exhausted, type insufficient_quota and the shortfall', async () => {
    const c = client(`oa-${randomUUID()}`);
    expect((await ask(c, 7)).usage?.total_tokens).toBe(2);
    const err = await caught(ask(c, 6));
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(402);
    expect(err.code).toBe('credits_exhausted');
    expect(err.type).toBe('insufficient_quota');
    expect(err.param).toBeNull();
    const body = err.error as Record<string, unknown>;
    expect(body).toMatchObject({ creditType: 'ai_tokens', required: 6, remaining: 3 });
    expect(body.message).toMatch(/^this request needs 6 AI Tokens; 3 of 10 remain until \d{4}-\d\d-\d\dT/);
    expect(body.resetsAt).toMatch(/^\d{4}-/);
    expect(err.headers?.get('content-type')).toBe('application/json');
    expect(Number(err.headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(err.headers?.get('ratelimit')).toMatch(/^"ai_tokens";r=3;/);
  });

  it('an invalid cost is a 400 BadRequestError with code invalid_cost', async () => {
    const err = await caught(ask(client(`oa-${randomUUID()}`), 9));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_cost');
    expect(err.type).toBe('invalid_request_error');
    expect(err.message).toMatch(/max_tokens.*at most 8/);
  });

  it('the burst refusal is a 429 RateLimitError with code rate_limited and its Retry-After', async () => {
    const c = client(`oa-${randomUUID()}`);
    for (let i = 0; i < 3; i++) await ask(c, 1);
    const err = await caught(ask(c, 1));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limited');
    expect(err.type).toBe('rate_limit_error');
    expect(Number(err.headers?.get('retry-after'))).toBeGreaterThan(0);
  });

  it('a route with problems.style: problem+json keeps RFC 9457', async () => {
    const r = await fetch(`${h.proxy}/v1/plain`, {
      method: 'POST',
      headers: { 'x-account-id': `oa-${randomUUID()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ max_tokens: 9 }),
    });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(await r.json()).toMatchObject({ type: 'https://creditgate.dev/problems/invalid-cost', status: 400 });
  });
});
