// No refusal outlives the reason for it, on two sidecars sharing one Redis:
// a reload that raises an allowance, a token whose plan claim changed, and a
// top-up whose answer was a 503 although Redis applied it (Redis stalled).

import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar.js';
import { editConfig } from '../helpers/edit-config.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_TOKEN, TEST_CONFIG, writeConfig } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let upstream: RecordingUpstream | undefined;
let sidecars: RunningSidecar[] = [];
let redis: TestRedis | undefined;
afterEach(async () => {
  for (const s of sidecars) await s.close();
  await upstream?.close();
  await redis?.stop();
  sidecars = [];
  upstream = undefined;
  redis = undefined;
});

/** Two sidecars on one Redis and one key prefix, each with its own copy of the config file. */
async function twoSidecars(config: string, url = redisUrl()): Promise<{ a: RunningSidecar; b: RunningSidecar; files: string[] }> {
  upstream = await startRecordingUpstream();
  const prefix = uniquePrefix('stale');
  const files = [writeConfig(config), writeConfig(config)];
  for (const configPath of files) {
    sidecars.push(
      await startSidecar({
        configPath,
        upstream: upstream.url,
        port: 0,
        adminPort: 0,
        host: '127.0.0.1',
        redis: url,
        keyPrefix: prefix,
        adminToken: ADMIN_TOKEN,
        logger: silentLogger(),
        // Reloads come from reload() in these tests, not from the poll.
        configPollMs: 600_000,
      }),
    );
  }
  return { a: sidecars[0]!, b: sidecars[1]!, files };
}

const spend = (s: RunningSidecar, headers: Record<string, string>, n = 1) =>
  fetch(`http://127.0.0.1:${s.port}/v1/ai/custom`, { method: 'POST', headers: { 'x-task-count': String(n), ...headers } }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });
const charges = async (s: RunningSidecar) => {
  const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
  return Number(/^creditgate_store_duration_seconds_count\{operation="charge"\} (\d+)$/m.exec(text)?.[1] ?? 0);
};

/** Both sidecars refuse from memory: the pool is empty and each knows it. */
async function emptyAndCachedOnBoth(a: RunningSidecar, b: RunningSidecar, headers: Record<string, string>) {
  expect(await spend(a, headers, 10)).toBe(200);
  for (const s of [a, b]) {
    expect(await spend(s, headers)).toBe(402);
    const before = await charges(s);
    expect(await spend(s, headers)).toBe(402);
    expect(await charges(s)).toBe(before);
  }
}

describe('no stale refusal after a reload, a plan claim change or an unknown outcome', () => {
  it('a hot reload that raises the allowance ends every cached refusal at once, on each replica', async () => {
    const { a, b, files } = await twoSidecars(TEST_CONFIG);
    const headers = { 'x-account-id': `reload-${randomUUID()}` };
    await emptyAndCachedOnBoth(a, b, headers);
    for (const f of files) writeFileSync(f, editConfig(TEST_CONFIG, ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 20,']));
    expect(await a.reload()).toBe('success');
    expect(await b.reload()).toBe('success');
    expect(await spend(a, headers)).toBe(200);
    expect(await spend(b, headers)).toBe(200);
  });

  it('a refusal cached for one plan is never served for another (a token whose plan claim changed)', async () => {
    const secret = 'a-shared-secret-of-at-least-32-bytes!';
    process.env.CG_TEST_JWT_SECRET = secret;
    const config = editConfig(TEST_CONFIG, [
      'identity: { header: x-account-id }',
      `identity:
  jwt:
    issuer: https://auth.example.com
    audience: creditgate
    secret: env:CG_TEST_JWT_SECRET
    algorithms: [HS256]
    planClaim: plan`,
    ]);
    const { a, b } = await twoSidecars(config);
    const account = `plan-${randomUUID()}`;
    const token = (plan: string) =>
      new SignJWT({ plan })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://auth.example.com')
        .setAudience('creditgate')
        .setSubject(account)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret));
    const tiny = { authorization: `Bearer ${await token('tiny')}` };
    await emptyAndCachedOnBoth(a, b, tiny);
    // The customer upgraded; the new token says so. Unlimited on "big".
    const big = { authorization: `Bearer ${await token('big')}` };
    expect(await spend(a, big)).toBe(200);
    expect(await spend(b, big)).toBe(200);
    // The old token is still refused: its plan's pool is still empty.
    expect(await spend(b, tiny)).toBe(402);
  });

  it('a top-up answered 503 while Redis stalled, but applied, ends the cached refusal on every replica', async () => {
    redis = await startRedis();
    const { a, b } = await twoSidecars(editConfig(TEST_CONFIG, ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 100 }']), redis.url);
    const account = `stall-${randomUUID()}`;
    const headers = { 'x-account-id': account };
    await emptyAndCachedOnBoth(a, b, headers);
    const admin = new Redis(redis.url);
    try {
      // Redis stops answering for 600 ms; a top-up sent meanwhile times out, and runs when Redis wakes.
      // (A top-up first reads the account; if that read is what timed out, nothing was sent: try again.)
      let applied = false;
      for (let attempt = 0; attempt < 5 && !applied; attempt++) {
        const stalled = admin.call('DEBUG', 'SLEEP', '0.6');
        await sleep(50);
        const topUp = await fetch(`http://127.0.0.1:${a.adminPort}/v1/accounts/${account}/topups`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ creditType: 'ai_tasks', amount: 5 }),
        });
        expect(topUp.status).toBe(503);
        expect(await stalled).toBe('OK');
        applied = (await admin.keys(`*{${account}}:g:ai_tasks`)).length === 1;
      }
      expect(applied).toBe(true);
    } finally {
      admin.disconnect();
    }
    // Within the breaker's probe and the announcement's retry, both replicas serve the grant.
    for (const s of [a, b]) {
      let status = 0;
      for (let i = 0; i < 60 && status !== 200; i++) {
        status = await spend(s, headers);
        if (status !== 200) await sleep(50);
      }
      expect(status).toBe(200);
    }
  });
});
