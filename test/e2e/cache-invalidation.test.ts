// Two replicas on one Redis: a pool one replica knows to be empty is refused
// from memory (no Redis call), and no stale refusal outlives an
// invalidation — a top-up, a plan change, a refund or a DELETE on any
// replica reaches every replica over Redis pub/sub; a cycle reset needs none.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';
import { ADMIN_TOKEN, TEST_CONFIG, writeConfig } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

describe('refusal cache with pub/sub invalidation across replicas', () => {
  let upstream: RecordingUpstream;
  let a: RunningSidecar;
  let b: RunningSidecar;
  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    const configPath = writeConfig(TEST_CONFIG);
    const prefix = uniquePrefix('cache');
    const start = () =>
      startSidecar({
        configPath,
        upstream: upstream.url,
        port: 0,
        adminPort: 0,
        host: '127.0.0.1',
        redis: redisUrl(),
        keyPrefix: prefix,
        adminToken: ADMIN_TOKEN,
        logger: silentLogger(),
      });
    a = await start();
    b = await start();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await upstream.close();
  });

  const spend = (s: RunningSidecar, account: string, n = 1) =>
    fetch(`http://127.0.0.1:${s.port}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': account, 'x-task-count': String(n) } }).then(async (r) => ({
      status: r.status,
      body: await r.text(),
    }));
  const admin = (s: RunningSidecar, path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${s.adminPort}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } });
  const storeCharges = async (s: RunningSidecar) => {
    const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
    return Number(/^creditgate_store_duration_seconds_count\{operation="charge"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  /** The next request on `s` passes, within the time pub/sub takes to arrive. */
  const passesSoon = async (s: RunningSidecar, account: string) => {
    for (let i = 0; i < 50; i++) {
      if ((await spend(s, account)).status === 200) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  };

  async function emptyOnBoth(account: string) {
    expect((await spend(a, account, 10)).status).toBe(200);
    const first = await spend(b, account);
    expect(first.status).toBe(402);
    // Now both know the pool is empty: refusals come from memory, identical to the store's.
    const before = await storeCharges(b);
    const cached = await spend(b, account);
    expect(cached.status).toBe(402);
    expect(JSON.parse(cached.body)).toEqual({ ...JSON.parse(first.body) });
    expect(await storeCharges(b)).toBe(before);
  }

  it('a top-up on one replica ends the cached refusal on the other', async () => {
    const acct = `t-${randomUUID()}`;
    await emptyOnBoth(acct);
    expect((await admin(a, `/v1/accounts/${acct}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'ai_tasks', amount: 5 }) })).status).toBe(201);
    expect(await passesSoon(b, acct)).toBe(true);
  });

  it('a plan change on one replica ends the cached refusal on the other', async () => {
    const acct = `p-${randomUUID()}`;
    await emptyOnBoth(acct);
    await admin(a, `/v1/accounts/${acct}`, { method: 'PUT', body: JSON.stringify({ plan: 'big' }) });
    expect(await passesSoon(b, acct)).toBe(true);
  });

  it('a DELETE on one replica ends the cached refusal on the other', async () => {
    const acct = `d-${randomUUID()}`;
    await emptyOnBoth(acct);
    expect((await admin(a, `/v1/accounts/${acct}`, { method: 'DELETE' })).status).toBe(204);
    expect(await passesSoon(b, acct)).toBe(true);
  });

  it('a refund on one replica ends the cached refusal on the other', async () => {
    const acct = `r-${randomUUID()}`;
    let fail = false;
    upstream.respond = (_req, res) => {
      res.writeHead(fail ? 500 : 200).end();
    };
    expect((await spend(a, acct, 9)).status).toBe(200);
    fail = true;
    // The last credit, spent on a request that fails: empty for a moment, then refunded.
    const pending = spend(a, acct, 1);
    expect((await pending).status).toBe(500);
    fail = false;
    expect(await passesSoon(b, acct)).toBe(true);
  });

  it('a cycle reset needs no invalidation: the cached refusal ends with its cycle', async () => {
    const acct = `c-${randomUUID()}`;
    const anchorMs = Math.ceil((Date.now() + 1500) / 1000) * 1000;
    await admin(a, `/v1/accounts/${acct}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', billingAnchor: new Date(anchorMs).toISOString() }) });
    await emptyOnBoth(acct);
    await new Promise((r) => setTimeout(r, anchorMs - Date.now() + 50));
    expect((await spend(b, acct)).status).toBe(200);
  });
});
