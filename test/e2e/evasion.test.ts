// No way around a charge: every spelling of a charged route is either
// matched and charged (the upstream receiving the normalised path), or
// refused with 400 — never forwarded uncharged. Real sockets, real upstream,
// real Redis; raw TCP for the shapes no client library sends.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { sendRaw } from '../helpers/raw-http.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const CONFIG = editConfig(TEST_CONFIG, ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 100000,']);

type Case = {
  name: string;
  method?: string;
  target: string;
  headers?: Record<string, string>;
  /** The path the upstream must receive, or 400 when the request must be refused. */
  expect: string | 400;
};

const CASES: Case[] = [
  { name: 'plain', target: '/v1/ai/custom', expect: '/v1/ai/custom' },
  { name: 'leading double slash', target: '//v1/ai/custom', expect: '/v1/ai/custom' },
  { name: 'dot segment', target: '/v1/ai/./custom', expect: '/v1/ai/custom' },
  { name: 'dot-dot segment', target: '/v1/x/../ai/custom', expect: '/v1/ai/custom' },
  { name: 'trailing slash', target: '/v1/ai/custom/', expect: '/v1/ai/custom/' },
  { name: 'percent-encoded letter', target: '/v1/ai/%63ustom', expect: '/v1/ai/custom' },
  { name: 'percent-encoded dots', target: '/v1/x/%2e%2E/ai/custom', expect: '/v1/ai/custom' },
  { name: 'encoded slashes', target: '/v1%2Fai%2Fcustom', expect: 400 },
  { name: 'encoded backslash', target: '/v1/ai%5Ccustom', expect: 400 },
  { name: ';params', target: '/v1/ai/custom;jsessionid=abc', expect: '/v1/ai/custom' },
  { name: ';params mid-path', target: '/v1;v=1/ai/custom', expect: '/v1/ai/custom' },
  { name: 'query string', target: '/v1/ai/custom?x=1&y=2', expect: '/v1/ai/custom?x=1&y=2' },
  { name: 'fragment', target: '/v1/ai/custom#section', expect: '/v1/ai/custom' },
  { name: 'doubled slashes in the middle', target: '/v1//ai///custom', expect: '/v1/ai/custom' },
  { name: 'absolute-form target', target: 'http://elsewhere.example/v1/ai/custom', expect: '/v1/ai/custom' },
  { name: 'encoded NUL', target: '/v1/ai/custom%00', expect: 400 },
  { name: '".." above the root', target: '/../v1/ai/custom', expect: 400 },
  { name: 'HEAD for a GET route', method: 'HEAD', target: '/v1/ai/report?n=1', expect: '/v1/ai/report?n=1' },
  {
    name: 'X-HTTP-Method-Override to a charged GET',
    method: 'POST',
    target: '/v1/ai/report?n=1',
    headers: { 'x-http-method-override': 'GET' },
    expect: '/v1/ai/report?n=1',
  },
  { name: 'X-HTTP-Method to a charged POST', method: 'GET', target: '/v1/ai/custom', headers: { 'x-http-method': 'POST' }, expect: '/v1/ai/custom' },
  { name: 'X-Method-Override lower-case', method: 'PUT', target: '/v1/ai/custom', headers: { 'x-method-override': 'post' }, expect: '/v1/ai/custom' },
  {
    name: 'conflicting overrides',
    method: 'POST',
    target: '/v1/ai/custom',
    headers: { 'x-http-method-override': 'GET', 'x-http-method': 'DELETE' },
    expect: 400,
  },
  { name: 'override to an unknown method', method: 'POST', target: '/v1/ai/custom', headers: { 'x-http-method-override': 'BREW' }, expect: 400 },
];

describe('evasion table (sidecar, Redis)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: CONFIG, redis: redisUrl(), keyPrefix: uniquePrefix('evasion') });
  });
  afterAll(async () => h.close());

  const used = async (a: string) => (await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json()).pools.ai_tasks.used as number;

  it.each(CASES)('$name: $target', async (c) => {
    const a = `ev-${randomUUID()}`;
    const extra = Object.entries({ 'x-task-count': '1', ...c.headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const res = await sendRaw(
      h.sidecar.port,
      `${c.method ?? 'POST'} ${c.target} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-account-id: ${a}\r\n${extra}content-length: 0\r\nconnection: close\r\n\r\n`,
    );
    const seen = h.upstream.requests.filter((r) => r.headers['x-account-id'] === a);
    if (c.expect === 400) {
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(seen).toHaveLength(0);
      expect(await used(a)).toBe(0);
    } else {
      expect(res.status).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.url).toBe(c.expect);
      expect(seen[0]!.headers['creditgate-charged']).toBe('ai_tasks=1');
      expect(await used(a)).toBe(1);
    }
  });

  it.each(['/V1/AI/CUSTOM', '/v1/AI/custom', '/V1/ai/Custom/'])(
    'case: %s is charged by default (matched in any letter case), forwarded as written',
    async (target) => {
      const a = `case-${randomUUID()}`;
      const res = await fetch(`${h.proxy}${target}`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1' } });
      expect(res.status).toBe(200);
      const seen = h.upstream.requests.filter((r) => r.headers['x-account-id'] === a);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.url).toBe(target);
      expect(seen[0]!.headers['creditgate-charged']).toBe('ai_tasks=1');
      expect(await used(a)).toBe(1);
    },
  );

  it('case: routing.caseSensitive: true treats another letter case as another path (for case-sensitive upstreams)', async () => {
    const strict = await startHarness({
      config: editConfig(CONFIG, ['defaultPlan: tiny', 'defaultPlan: tiny\nrouting: { caseSensitive: true }']),
      redis: redisUrl(),
      keyPrefix: uniquePrefix('evasion-case'),
    });
    try {
      const a = `case-${randomUUID()}`;
      const r = await fetch(`${strict.proxy}/V1/AI/CUSTOM`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1' } });
      expect(r.status).toBe(200);
      expect(strict.upstream.requests[0]!.url).toBe('/V1/AI/CUSTOM');
      expect(strict.upstream.requests[0]!.headers['creditgate-charged']).toBeUndefined();
      const exact = await fetch(`${strict.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': '1' } });
      expect(exact.status).toBe(200);
      expect(strict.upstream.requests[1]!.headers['creditgate-charged']).toBe('ai_tasks=1');
    } finally {
      await strict.close();
    }
  });

  it.each([
    ['Content-Length with Transfer-Encoding', 'content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'content-length: 0\r\ncontent-length: 5\r\n\r\n'],
    ['two equal Content-Lengths', 'content-length: 0\r\ncontent-length: 0\r\n\r\n'],
    ['Transfer-Encoding that is not chunked', 'transfer-encoding: gzip\r\n\r\n'],
  ])('request smuggling shape refused with 400: %s', async (_name, tail) => {
    const a = `smuggle-${randomUUID()}`;
    const res = await sendRaw(h.sidecar.port, `POST /v1/ai/custom HTTP/1.1\r\nhost: 127.0.0.1\r\nx-account-id: ${a}\r\nx-task-count: 1\r\n${tail}`);
    expect(res.status).toBe(400);
    expect(h.upstream.requests.filter((r) => r.headers['x-account-id'] === a)).toHaveLength(0);
    expect(await used(a)).toBe(0);
  });

  it('creditgate-* headers from a client never reach the upstream as sent', async () => {
    const a = `spoof-${randomUUID()}`;
    await fetch(`${h.proxy}/v1/ai/custom`, {
      method: 'POST',
      headers: { 'x-account-id': a, 'x-task-count': '2', 'creditgate-charged': 'ai_tasks=0', 'creditgate-reserved': 'voice_minutes=999' },
    });
    await fetch(`${h.proxy}/v1/unrouted`, { headers: { 'x-account-id': a, 'creditgate-charged': 'ai_tasks=100' } });
    const seen = h.upstream.requests.filter((r) => r.headers['x-account-id'] === a);
    expect(seen[0]!.headers['creditgate-charged']).toBe('ai_tasks=2');
    expect(seen[0]!.headers['creditgate-reserved']).toBeUndefined();
    expect(seen[1]!.headers['creditgate-charged']).toBeUndefined();
  });
});
