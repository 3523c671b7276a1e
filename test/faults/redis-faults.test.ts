// Fault tests over real processes: Redis killed mid-load (deny and allow
// policies), Redis slowed with DEBUG SLEEP, Redis restarted with AOF.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { adminJson, expectUp, metricsText } from '../helpers/checked-setup.js';
import { editConfig } from '../helpers/edit-config.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { usedIn } from '../helpers/redis-usage.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: TestRedis | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  await redis?.stop();
  h = undefined;
  redis = undefined;
});

const config = (onStoreError: string) =>
  editConfig(
    TEST_CONFIG,
    ['store: { timeoutMs: 2000 }', 'store: { timeoutMs: 100 }'],
    ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 100000,'],
    ['ai_tasks: { name: AI Task Credits,', `ai_tasks: { name: AI Task Credits, onStoreError: ${onStoreError},`],
  );

const spend = (harness: Harness, account: string) =>
  fetch(`${harness.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': account, 'x-task-count': '1' } }).then(
    async (r) => {
      await r.arrayBuffer();
      return r.status;
    },
    () => -1,
  );

describe('Redis killed mid-load', () => {
  it('deny: 503s while it is down, never a 402 and never an uncharged 200; no credit lost after an AOF restart', async () => {
    redis = await startRedis(AOF);
    h = await startHarness({ config: config('deny'), redis: redis.url });
    await expectUp(h);
    const a = `kill-${randomUUID()}`;
    const statuses: number[] = [];
    let stop = false;
    const workers = Array.from({ length: 8 }, async () => {
      while (!stop) statuses.push(await spend(h!, a));
    });
    await sleep(300);
    // The load was served before the crash: otherwise nothing below is tested.
    expect(statuses.filter((s) => s === 200).length, 'requests served before Redis was killed').toBeGreaterThan(0);
    const port = redis.port;
    const dir = redis.dir;
    await redis.kill();
    await sleep(500);
    const duringOutage = statuses.length;
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    const afterKill = statuses.slice(duringOutage);
    expect(afterKill.length).toBeGreaterThan(0);
    expect(afterKill.every((s) => s === 503)).toBe(true);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);

    redis = await startRedis(AOF, { port, dir });
    const served = statuses.filter((s) => s === 200).length;
    const used = await usedIn(redis.url, a);
    // Every 200 was charged and survived the crash. A charge whose reply was
    // lost in the crash may be counted without having been served: at most
    // one per request in flight.
    expect(used).toBeGreaterThanOrEqual(served);
    expect(used).toBeLessThanOrEqual(served + 8);
  });

  it('allow { allow: 20 }: 200s up to the outage allowance, then 503; the journal is replayed exactly', async () => {
    redis = await startRedis(AOF);
    h = await startHarness({ config: config('{ allow: 20 }'), redis: redis.url });
    await expectUp(h);
    const a = `allow-${randomUUID()}`;
    for (let i = 0; i < 30; i++) expect(await spend(h, a)).toBe(200);
    const port = redis.port;
    const dir = redis.dir;
    await redis.kill();
    const outage = await Promise.all(Array.from({ length: 40 }, () => spend(h!, a)));
    expect(outage.filter((s) => s === 200)).toHaveLength(20);
    expect(outage.filter((s) => s === 503)).toHaveLength(20);
    let metrics = await metricsText(h);
    expect(metrics).toMatch(/^creditgate_outage_journal_entries 20$/m);
    expect(metrics).toMatch(/^creditgate_store_breaker_open 1$/m);

    redis = await startRedis(AOF, { port, dir });
    for (let i = 0; i < 100; i++) {
      metrics = await metricsText(h);
      if (/^creditgate_outage_journal_entries 0$/m.test(metrics)) break;
      await sleep(100);
    }
    expect(metrics).toMatch(/^creditgate_outage_journal_replayed_total 20$/m);
    expect(metrics).toMatch(/^creditgate_store_breaker_open 0$/m);
    expect(await usedIn(redis.url, a)).toBe(50);
    // Back to normal: charged in Redis again.
    expect(await spend(h, a)).toBe(200);
    expect(await usedIn(redis.url, a)).toBe(51);
  });
});

describe('Redis slowed down (DEBUG SLEEP)', () => {
  it('times out at the store timeout, answers 503 without waiting for Redis, and recovers', async () => {
    redis = await startRedis();
    h = await startHarness({ config: config('deny'), redis: redis.url });
    await expectUp(h);
    const a = `slow-${randomUUID()}`;
    expect(await spend(h, a)).toBe(200);
    const admin = new Redis(redis.url);
    expect(await admin.ping()).toBe('PONG');
    // Settled either way here, asserted below: Redis really slept.
    const sleeping = admin.call('DEBUG', 'SLEEP', '2').then(
      (reply) => reply,
      (err: Error) => err,
    );
    await sleep(50);
    const during = await Promise.all(Array.from({ length: 20 }, () => spend(h!, a)));
    expect(during.every((s) => s === 503)).toBe(true);
    expect(await sleeping).toBe('OK');
    admin.disconnect();
    let status = 0;
    for (let i = 0; i < 60 && status !== 200; i++) {
      status = await spend(h, a);
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
    const text = await metricsText(h);
    expect(
      Number(/^creditgate_store_errors_total\{operation="get_account"\} (\d+)$/m.exec(text)?.[1]) +
        Number(/^creditgate_store_errors_total\{operation="charge"\} (\d+)$/m.exec(text)?.[1]),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('Redis restarted with AOF', () => {
  it('loses no counter, grant or account record', async () => {
    redis = await startRedis(AOF);
    h = await startHarness({ config: config('deny'), redis: redis.url });
    await expectUp(h);
    const a = `aof-${randomUUID()}`;
    for (let i = 0; i < 25; i++) expect(await spend(h, a)).toBe(200);
    await adminJson(h, `/v1/accounts/${a}`, { method: 'PUT', body: JSON.stringify({ plan: 'tiny', email: 'ops@example.com' }) }, 201);
    await adminJson(h, `/v1/accounts/${a}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'database', amount: 7 }) }, 201);
    const before = await adminJson(h, `/v1/accounts/${a}/usage`);
    // What the restart must keep is there to keep.
    expect(before.pools.ai_tasks.used).toBe(25);
    expect(before.pools.database.topUpRemaining).toBe(7);
    const port = redis.port;
    const dir = redis.dir;
    await redis.kill();
    redis = await startRedis(AOF, { port, dir });
    let after: { pools: Record<string, unknown> } | undefined;
    for (let i = 0; i < 50; i++) {
      const r = await h.adminFetch(`/v1/accounts/${a}/usage`);
      if (r.status === 200) {
        after = await r.json();
        break;
      }
      await sleep(100);
    }
    expect(after).toEqual(before);
    expect((after!.pools.ai_tasks as { used: number }).used).toBe(25);
    expect((await adminJson(h, `/v1/accounts/${a}`)).email).toBe('ops@example.com');
  });
});
