// Exactly one Redis round trip per decision for a known account (the account
// record comes from the replica's memory), and none for a refusal of a pool
// the replica knows to be empty: counted with Redis's own command statistics.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';

describe('round trips per decision', () => {
  let redis: TestRedis;
  let admin: Redis;
  let h: Harness;
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    h = await startHarness({ config: TEST_CONFIG, redis: redis.url });
  });
  afterAll(async () => {
    await h.close();
    admin.disconnect();
    await redis.stop();
  });

  const stats = async () => {
    const text = await admin.info('commandstats');
    return Object.fromEntries([...text.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
  };
  const spend = (a: string, n: number) =>
    fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': a, 'x-task-count': String(n) } }).then((r) => r.status);

  it('a charge for a known account is one EVALSHA and nothing else; a known-empty pool refuses with no Redis command', async () => {
    const a = `rt-${randomUUID()}`;
    // First sight of the account reads its record once; the first charge on
    // each of the store's connections sends the script's source (EVAL).
    expect(await spend(a, 1)).toBe(200);
    expect(await spend(a, 1)).toBe(200);
    expect(await spend(a, 1)).toBe(200);
    await admin.config('RESETSTAT');
    expect(await spend(a, 1)).toBe(200);
    let s = await stats();
    // INFO itself is counted; the script's own GET/ZRANGEBYSCORE/INCRBY/PEXPIREAT show as commands inside it.
    const { info: _info, evalsha, ...rest } = s;
    expect(evalsha).toBe(1);
    expect(Object.keys(rest).sort()).toEqual(['get', 'incrby', 'pexpireat', 'zrangebyscore']);
    expect(rest.get).toBe(1);

    expect(await spend(a, 6)).toBe(200); // now empty: 10 of 10
    await admin.config('RESETSTAT');
    expect(await spend(a, 1)).toBe(402);
    expect(await spend(a, 1)).toBe(402);
    s = await stats();
    expect(s.evalsha ?? 0).toBe(0);
    expect(Object.keys(s).filter((k) => k !== 'info' && k !== 'config')).toEqual([]);
  });

  it('a pool outside the plan: the first refusal is the one charge script call, the next needs no Redis command; a top-up opens it', async () => {
    const a = `rt-${randomUUID()}`;
    const voice = () =>
      fetch(`${h.proxy}/v1/voice/calls`, {
        method: 'POST',
        headers: { 'x-account-id': a, 'content-type': 'application/json' },
        body: JSON.stringify({ minutes: 1 }),
      }).then(async (r) => [r.status, ((await r.json()) as { type?: string }).type]);
    const notInPlan = [402, 'https://creditgate.dev/problems/not-in-plan'];
    // The account's record is read once, and the script is loaded on each connection.
    for (let i = 0; i < 3; i++) expect(await spend(a, 1)).toBe(200);
    await admin.config('RESETSTAT');
    expect(await voice()).toEqual(notInPlan);
    let s = await stats();
    expect(s.evalsha).toBe(1);
    expect(Object.keys(s).filter((k) => !['info', 'evalsha', 'get', 'zrangebyscore'].includes(k))).toEqual([]);

    await admin.config('RESETSTAT');
    expect(await voice()).toEqual(notInPlan);
    expect(await voice()).toEqual(notInPlan);
    s = await stats();
    expect(Object.keys(s).filter((k) => k !== 'info' && k !== 'config')).toEqual([]);

    // The top-up makes every replica forget: the grant is spent at once.
    const topUp = await h.adminFetch(`/v1/accounts/${a}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'voice_minutes', amount: 1 }) });
    expect(topUp.status).toBe(201);
    expect((await voice())[0]).toBe(200);
  });
});
