// The engine-level rows of `npm run bench`: RedisStore.charge alone at 1, 64
// and 256 in flight, redis-benchmark running the same script, the bytes an
// active account-pool costs in Redis, and how the rate moves with the number
// of distinct accounts.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RedisStore } from '../dist/index.js';

async function engineRate(store, inFlight, seconds, accounts) {
  const pool = (_a) => [
    { creditType: 'ai_tasks', op: 'charge', amount: 1, limit: null, cycleStart: 1_700_000_000_000, expireAt: Date.now() + 3_600_000, extras: true },
  ];
  let done = 0;
  const start = Date.now();
  const until = start + seconds * 1000;
  const ctx = { now: Date.now(), thresholds: [0.8, 1] };
  let last = start;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < until) {
        await store.charge(`eng-${Math.floor(Math.random() * accounts)}`, pool(), ctx);
        done += 1;
        last = Date.now();
      }
    }),
  );
  // Calls that started before the deadline, over the time they actually took.
  return Math.round(done / ((last - start) / 1000));
}

/** `redis` is the bench's own redis-server: { url, port, client }. */
export async function measureEngine(redis) {
  const store = new RedisStore({ url: redis.url, prefix: 'bench', timeoutMs: 5000 });
  await store.ready();
  const engine = [];
  for (const inFlight of [1, 64, 256]) engine.push({ inFlight, chargesPerSecond: await engineRate(store, inFlight, 3, 10_000) });
  const lua = readFileSync('lua/charge.lua', 'utf8');
  const sha = await redis.client.script('LOAD', lua);
  // The same work as a RedisStore charge: two alert thresholds, keys spread over 10,000 accounts.
  const t = 'rb__rand_int__';
  const scriptArgs = [
    '-r',
    '10000',
    'EVALSHA',
    sha,
    '6',
    `bench:{${t}}:keys`,
    `bench:{${t}}:ik:-`,
    `bench:{${t}}:u:ai_tasks:1`,
    `bench:{${t}}:g:ai_tasks`,
    `bench:{${t}}:gx:ai_tasks`,
    `bench:{${t}}:al:ai_tasks:1`,
    String(Date.now()),
    '0',
    '0',
    '2',
    '0.8',
    '1',
    'c',
    '1',
    '-1',
    String(Date.now() + 3_600_000),
    '1',
    '0',
    '1',
  ];
  const redisBenchmark = (extra) => {
    const out = spawnSync('redis-benchmark', ['-p', String(redis.port), '-n', '300000', '-q', ...extra, ...scriptArgs], { encoding: 'utf8' }).stdout;
    return Number(/([\d.]+) requests per second/.exec(out)?.[1] ?? NaN);
  };
  // The same concurrency as the 256-in-flight row, one command per round trip;
  // and Redis's absolute ceiling, 16 commands pipelined per round trip.
  const sameConcurrency = redisBenchmark(['-c', '256']);
  const ceiling = redisBenchmark(['-c', '50', '-P', '16']);
  const at256 = engine.find((e) => e.inFlight === 256).chargesPerSecond;

  // Bytes per active account-pool, and how cost grows with distinct accounts.
  const keys = await redis.client.keys('bench:{eng-1*}:u:*');
  let bytes = 0;
  for (const k of keys.slice(0, 100)) bytes += Number(await redis.client.memory('USAGE', k));
  const bytesPerPool = Math.round(bytes / Math.max(1, Math.min(100, keys.length)));
  const scaling = [];
  for (const accounts of [1, 10_000, 1_000_000]) scaling.push({ accounts, chargesPerSecond: await engineRate(store, 256, 3, accounts) });
  await store.close();
  return {
    engine: {
      rows: engine,
      redisBenchmark256Clients: sameConcurrency,
      redisBenchmarkPipelined16: ceiling,
      ratioAt256VsSameConcurrency: Number((at256 / sameConcurrency).toFixed(2)),
      ratioAt256VsPipelined: Number((at256 / ceiling).toFixed(2)),
    },
    redisBytesPerAccountPool: bytesPerPool,
    scaling,
  };
}
