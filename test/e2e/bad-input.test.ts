// The bad-input table: every case answers problem+json with the right
// status, charges nothing, reaches no upstream, writes nothing, and the
// process keeps serving. Real sockets, real upstream, real Redis.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfigText } from '../../src/config/index.js';
import { MAX_CONFIG_BYTES } from '../../src/config/load-config.js';
import { editConfig } from '../helpers/edit-config.js';
import { ADMIN_TOKEN, startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = editConfig(
  TEST_CONFIG,
  ['defaultPlan: tiny', 'defaultPlan: tiny\nlimits: { maxBodyBytes: 2048, maxJsonDepth: 8, maxCost: 500 }'],
  ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 100000,'],
  ['  - name: by-header\n    method: POST', '  - name: by-header\n    maxCost: 50\n    method: POST'],
);

describe('bad input gets a clear answer and costs nothing', () => {
  let h: Harness;
  let redis: Redis;
  const prefix = uniquePrefix('bad');
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: prefix });
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await h.close();
  });

  type Case = [name: string, path: string, init: { headers?: Record<string, string>; body?: string; method?: string }, status: number, type: string];
  const cases: Case[] = [
    ['negative cost (header)', '/v1/ai/custom', { headers: { 'x-task-count': '-1' } }, 400, 'invalid-cost'],
    ['zero where the minimum is 1', '/v1/ai/custom', { headers: { 'x-task-count': '0' } }, 400, 'invalid-cost'],
    ['fractional cost', '/v1/ai/custom', { headers: { 'x-task-count': '1.5' } }, 400, 'invalid-cost'],
    ['not a number', '/v1/ai/custom', { headers: { 'x-task-count': 'ten' } }, 400, 'invalid-cost'],
    ['1e300', '/v1/ai/custom', { headers: { 'x-task-count': '1e300' } }, 400, 'invalid-cost'],
    ['above the route maxCost', '/v1/ai/custom', { headers: { 'x-task-count': '51' } }, 400, 'invalid-cost'],
    ['above the global maxCost (body)', '/v1/ai/followups', { body: '{"count": 501}' }, 400, 'invalid-cost'],
    ['1e300 in the body', '/v1/ai/followups', { body: '{"count": 1e300}' }, 400, 'invalid-cost'],
    ['negative in the body', '/v1/ai/followups', { body: '{"count": -3}' }, 400, 'invalid-cost'],
    ['a string in the body', '/v1/ai/followups', { body: '{"count": "3"}' }, 400, 'invalid-cost'],
    ['malformed JSON', '/v1/ai/followups', { body: '{"count": 3' }, 400, 'invalid-body'],
    ['JSON nested deeper than the limit', '/v1/ai/followups', { body: `{"count": 1, "x": ${'['.repeat(50)}${']'.repeat(50)}}` }, 400, 'invalid-body'],
    ['a hostile nesting depth', '/v1/ai/followups', { body: '['.repeat(100_0) }, 400, 'invalid-body'],
    ['a body over the limit', '/v1/ai/followups', { body: JSON.stringify({ count: 1, pad: 'x'.repeat(4096) }) }, 413, 'body-too-large'],
    [
      'a non-JSON content type',
      '/v1/ai/followups',
      { body: 'count=3', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      415,
      'unsupported-media-type',
    ],
    ['an empty account id', '/v1/ai/custom', { headers: { 'x-task-count': '1', 'x-account-id': '' } }, 401, 'unauthenticated'],
    ['an account id of 129 characters', '/v1/ai/custom', { headers: { 'x-task-count': '1', 'x-account-id': 'a'.repeat(129) } }, 400, 'invalid-account-id'],
    ['an account id with a space', '/v1/ai/custom', { headers: { 'x-task-count': '1', 'x-account-id': 'acme corp' } }, 400, 'invalid-account-id'],
    ['an account id with non-ASCII', '/v1/ai/custom', { headers: { 'x-task-count': '1', 'x-account-id': 'acmé' } }, 400, 'invalid-account-id'],
    ['a malformed idempotency key', '/v1/ai/custom', { headers: { 'x-task-count': '1', 'idempotency-key': 'x'.repeat(300) } }, 400, 'invalid-request'],
  ];

  it.each(cases)('%s → %i %s', async (_name, path, init, status, type) => {
    const account = init.headers?.['x-account-id'] ?? `bad-${randomUUID()}`;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
    if (!('x-account-id' in (init.headers ?? {}))) headers['x-account-id'] = account;
    const before = h.upstream.requests.length;
    const r = await fetch(`${h.proxy}${path}`, { method: init.method ?? 'POST', headers, ...(init.body !== undefined ? { body: init.body } : {}) });
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect((await r.json()).type).toBe(`https://creditgate.dev/problems/${type}`);
    expect(h.upstream.requests.length).toBe(before);
    if (/^[\x21-\x7e]{1,128}$/.test(account)) expect(await redis.keys(`${prefix}:{${account}}*`)).toEqual([]);
    expect((await fetch(`${h.admin}/healthz`)).status).toBe(200);
  });

  it('account ids shaped like the key layout are accepted, kept apart, and each stays on one hash slot', async () => {
    const base = randomUUID().slice(0, 8);
    const ids = [`${base}:ai_tasks`, `${base}}`, `{${base}}`, `${base}{x}`, base];
    for (const [i, id] of ids.entries()) {
      const r = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': id, 'x-task-count': String(i + 1) } });
      expect(r.status).toBe(200);
    }
    for (const [i, id] of ids.entries()) {
      expect((await (await h.adminFetch(`/v1/accounts/${encodeURIComponent(id)}/usage`)).json()).pools.ai_tasks.used).toBe(i + 1);
    }
    const keys = await redis.keys(`${prefix}:*${base}*`);
    const tags = new Map<string, Set<string>>();
    for (const k of keys) {
      const open = k.indexOf('{');
      const tag = k.slice(open + 1, k.indexOf('}', open + 1));
      if (!tags.has(tag)) tags.set(tag, new Set());
      tags.get(tag)!.add(k);
    }
    // One hash tag per account (so one Cluster slot), and five distinct accounts.
    expect(tags.size).toBe(5);
  });

  it.each([
    ['no token', {}],
    ['a wrong token of the same length', { authorization: `Bearer ${'x'.repeat(ADMIN_TOKEN.length)}` }],
    ['a token of a different length', { authorization: `Bearer ${ADMIN_TOKEN}${ADMIN_TOKEN}` }],
    ['a prefix of the token', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, 4)}` }],
  ])('admin API with %s → 401', async (_name, headers) => {
    const r = await fetch(`${h.admin}/v1/accounts/x/usage`, { headers });
    expect(r.status).toBe(401);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/admin-unauthorized');
  });

  it('admin JSON is validated like the config: unknown fields are refused and nothing is written', async () => {
    const id = `adm-${randomUUID()}`;
    const r = await h.adminFetch(`/v1/accounts/${id}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', role: 'admin' }) });
    expect(r.status).toBe(400);
    expect((await r.json()).detail).toMatch(/role/);
    expect(await redis.keys(`${prefix}:{${id}}*`)).toEqual([]);
  });

  it.each([
    [
      'a YAML bomb',
      [
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
        'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
        'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
        'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
        'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
        'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
      ].join('\n'),
      /cannot be expanded/,
    ],
    ['a huge file', `version: 1\n# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`, /larger than/],
    ['duplicate keys', 'version: 1\nversion: 1\n', /unique/i],
  ])('config: %s is a clear error, quickly', (_name, text, message) => {
    expect(() => loadConfigText(text, 'c.yaml')).toThrow(ConfigError);
    expect(() => loadConfigText(text, 'c.yaml')).toThrow(message);
  });
});
