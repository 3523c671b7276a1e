// npm run bench — one command, loopback only, bounded (about six minutes):
// starts its own redis-server, upstream, sidecars and peers, drives them with
// wrk (bench/wrk-load.mjs), and prints the tables measured in one run.
// Results also go to .bench/results.json. Run `npm run build` first (npm run bench does).

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisStore } from '../dist/index.js';
import { wrkLoad } from './wrk-load.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
const WARM_UP = Number(process.env.BENCH_WARM_UP_SECONDS ?? 10);
const CONNECTIONS = 64;
// Requests a row when timing one connection, unloaded: the rows the targets
// compare, twice; the others, once. Two passes of 5,000 moved the p99
// creditgate adds by 0.4-1.3 ms on a drifting VM, two of 20,000 by 0.18 ms.
const UNLOADED_SAMPLES = 20_000;
const UNLOADED_OTHERS_SAMPLES = 5000;
const children = [];

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`${url} never answered`);
}

function startChild(args, env = {}) {
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'error', ...env } });
  children.push(child);
  return child;
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 100; i++) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return { port, url: `redis://127.0.0.1:${port}`, client };
    } catch {
      client.disconnect();
      await sleep(50);
    }
  }
  throw new Error('redis-server did not start');
}

const CONFIG = `version: 1
defaultPlan: big
creditTypes:
  ai_tasks: { name: AI Task Credits }
plans:
  big: { ai_tasks: 1000000000 }
  spent: { ai_tasks: 1 }
cache: { accountTtlMs: 600000 }
routes:
  - name: ai
    method: POST
    path: /v1/ai/custom
    charge: { ai_tasks: { header: x-task-count } }
  - name: stream
    method: POST
    path: /v1/ai/stream
    charge: { ai_tasks: { header: x-task-count } }
`;

/** Accounts each loaded row's requests are spread over. */
const ACCOUNTS = 10_000;
const load = ({ url, path = '/v1/ai/custom', prefix, accounts = ACCOUNTS }, seconds) =>
  wrkLoad(url, { path, prefix, accounts, seconds, connections: CONNECTIONS });

/**
 * Each row's load runs, taken in turn: every row's first run, then every
 * row's second, and so on. On a machine whose speed drifts (a shared VM), a
 * slow spell then lands on one run of each row instead of on every run of
 * one row, and the median of each row compares like with like.
 */
async function measureRows(specs) {
  // Warm-up, discarded, as long for every row. V8 kept deoptimizing and
  // re-optimizing the sidecar's code for the first 30-40 s of load at about
  // 10,000 req/s (--trace-deopt): the rows compare processes past that, as a
  // sidecar that has run for an hour is.
  for (const spec of specs) await load(spec, WARM_UP);
  const runs = specs.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    for (const [j, spec] of specs.entries()) runs[j].push(await load(spec, DURATION));
  }
  return specs.map(({ name }, j) => {
    const sorted = runs[j].sort((a, b) => a.rps - b.rps);
    const median = sorted[Math.floor(sorted.length / 2)];
    const bad = sorted.reduce((sum, r) => sum + r.statusAbove399 + r.socketErrors, 0);
    // How far the runs of one row lay apart: on a VM whose speed drifts, a ratio is no firmer than this.
    const spreadPct = Math.round(((sorted.at(-1).rps - sorted[0].rps) / median.rps) * 100);
    return { row: name, rps: median.rps, p50: median.p50, p99: median.p99, runsRps: sorted.map((r) => r.rps), spreadPct, non2xxOrErrors: bad };
  });
}

// Sequential requests, one keep-alive connection per row, from a fresh
// process (bench/unloaded-latency.mjs): the latency a single request sees.
function unloadedLatency(rows, samples = UNLOADED_SAMPLES) {
  const run = spawnSync(process.execPath, ['bench/unloaded-latency.mjs', String(samples), JSON.stringify(rows)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`bench/unloaded-latency.mjs failed (exit ${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}

// Server-sent events, measured from a fresh process (bench/stream-latency.mjs):
// this one's heap, grown by the load runs, would add its own GC pauses. The
// rows' streams take turns there, as the unloaded requests do here.
function streamLatency(ports, streams = 200) {
  const run = spawnSync(process.execPath, ['bench/stream-latency.mjs', String(streams), ...ports.map(String)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`bench/stream-latency.mjs failed (exit ${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}

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

async function main() {
  const started = Date.now();
  const redis = await startRedis();
  const [upPort, cgPort, cgAdmin, memPort, memAdmin, erlPort, rlfPort, exPort, minPort, undiciPort] = await Promise.all(Array.from({ length: 10 }, freePort));
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-'));
  const configPath = join(dir, 'credits.yaml');
  writeFileSync(configPath, CONFIG);

  startChild(['bench/servers.mjs', 'upstream', String(upPort)]);
  const serve = (port, admin, extra) =>
    startChild(
      [
        'dist/cli.js',
        'serve',
        '--config',
        configPath,
        '--upstream',
        `http://127.0.0.1:${upPort}`,
        '--port',
        String(port),
        '--admin-port',
        String(admin),
        '--host',
        '127.0.0.1',
        ...extra,
      ],
      {
        CREDITGATE_ADMIN_TOKEN: 'bench',
      },
    );
  serve(cgPort, cgAdmin, ['--redis', redis.url]);
  serve(memPort, memAdmin, []);
  startChild(['bench/servers.mjs', 'peer-erl', String(erlPort), String(upPort), redis.url]);
  startChild(['bench/servers.mjs', 'peer-rlf', String(rlfPort), String(upPort), redis.url]);
  startChild(['bench/servers.mjs', 'express-bare', String(exPort), String(upPort)]);
  startChild(['bench/servers.mjs', 'minimal', String(minPort), String(upPort)]);
  startChild(['bench/servers.mjs', 'minimal-undici', String(undiciPort), String(upPort)]);
  await Promise.all(
    [upPort, cgAdmin, memAdmin, erlPort, rlfPort, exPort, minPort, undiciPort].map((p) =>
      waitFor(`http://127.0.0.1:${p}/${p === cgAdmin || p === memAdmin ? 'healthz' : ''}`),
    ),
  );

  // 1,000 accounts whose pool is empty: every request of the refusals row is a 402.
  for (let i = 0; i < 1000; i++) {
    await fetch(`http://127.0.0.1:${cgAdmin}/v1/accounts/spent-${i}`, {
      method: 'PUT',
      headers: { authorization: 'Bearer bench', 'content-type': 'application/json' },
      body: '{"plan":"spent"}',
    });
    await fetch(`http://127.0.0.1:${cgPort}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': `spent-${i}`, 'x-task-count': '1' } });
  }

  const rows = await measureRows([
    { name: 'upstream direct', url: `http://127.0.0.1:${upPort}`, prefix: 'u-' },
    { name: 'minimal Node proxy', url: `http://127.0.0.1:${minPort}`, prefix: 'n-' },
    { name: 'minimal undici proxy (the upstream client creditgate uses)', url: `http://127.0.0.1:${undiciPort}`, prefix: 'd-' },
    { name: 'bare proxy', url: `http://127.0.0.1:${cgPort}`, path: '/v1/plain', prefix: 'b-' },
    { name: 'creditgate (Redis)', url: `http://127.0.0.1:${cgPort}`, prefix: 'r-' },
    { name: 'creditgate (Redis, refusals; empty pools known to the replica)', url: `http://127.0.0.1:${cgPort}`, prefix: 'spent-', accounts: 1000 },
    { name: 'creditgate (memory)', url: `http://127.0.0.1:${memPort}`, prefix: 'm-' },
    { name: 'peer: express-rate-limit + rate-limit-redis', url: `http://127.0.0.1:${erlPort}`, prefix: 'e-' },
    { name: 'peer: rate-limiter-flexible RateLimiterRedis', url: `http://127.0.0.1:${rlfPort}`, prefix: 'f-' },
    { name: "peers' baseline: the same Express app, no limiter", url: `http://127.0.0.1:${exPort}`, prefix: 'x-' },
  ]);
  // The refusals row answers 402 by design: not counted as errors.
  rows.find((r) => r.row.startsWith('creditgate (Redis, refusals')).non2xxOrErrors = undefined;
  const bare = rows.find((r) => r.row === 'bare proxy');
  const minimal = rows.find((r) => r.row === 'minimal Node proxy');
  for (const r of rows) {
    r.vsMinimalProxy = Number((r.rps / minimal.rps).toFixed(2));
    r.vsBareProxy = Number((r.rps / bare.rps).toFixed(2));
  }

  // Latency creditgate adds over a proxy hop, one connection, unloaded. Two
  // passes, each in a fresh process: how far p99 moves between them says how
  // far one pass can be trusted. A target holds only if it holds in both.
  const latencyRow = (name, port, path, prefix) => ({ name, port, path, prefix });
  const targetRows = [
    latencyRow('minimalProxy', minPort, '/v1/ai/custom', 'ln-'),
    latencyRow('bareProxy', cgPort, '/v1/plain', 'lb-'),
    latencyRow('creditgateRedis', cgPort, '/v1/ai/custom', 'lr-'),
  ];
  const passes = [unloadedLatency(targetRows), unloadedLatency(targetRows)];
  const others = unloadedLatency(
    [
      latencyRow('upstreamDirect', upPort, '/v1/ai/custom', 'lu-'),
      latencyRow('minimalProxy', minPort, '/v1/ai/custom', 'ln-'),
      latencyRow('minimalUndiciProxy', undiciPort, '/v1/ai/custom', 'ld-'),
      latencyRow('creditgateMemory', memPort, '/v1/ai/custom', 'lm-'),
      latencyRow('peerExpressRateLimit', erlPort, '/v1/ai/custom', 'le-'),
      latencyRow('peerRateLimiterFlexible', rlfPort, '/v1/ai/custom', 'lf-'),
    ],
    UNLOADED_OTHERS_SAMPLES,
  );
  const ms = (x) => Number(x.toFixed(3));
  const addedOver = (base) =>
    passes.map((pass) => ({ p50: ms(pass.creditgateRedis.p50 - pass[base].p50), p99: ms(pass.creditgateRedis.p99 - pass[base].p99) }));
  const added = addedOver('bareProxy');
  const addedOverMinimal = addedOver('minimalProxy');
  const worstAdded = (q) => Math.max(...addedOverMinimal.map((a) => a[q]));
  const p99AddedMoved = ms(Math.abs(addedOverMinimal[0].p99 - addedOverMinimal[1].p99));
  const [direct, minimalProxy, creditgateRedis] = streamLatency([upPort, minPort, cgPort]);
  const sse = { direct, minimalProxy, creditgateRedis };
  sse.addedOverDirectP99 = ms(sse.creditgateRedis.p99 - sse.direct.p99);

  // The memory store with a million accounts on two pools each (a fresh process), checked exactly.
  const rssRun = spawnSync(process.execPath, ['--expose-gc', 'bench/memory-store-rss.mjs', '1000000'], { encoding: 'utf8' });
  const rss = JSON.parse(rssRun.stdout || '{}');
  if (rssRun.status !== 0) throw new Error(`bench/memory-store-rss.mjs failed (exit ${rssRun.status}): ${rssRun.stderr}`);

  // Engine level: RedisStore alone, and Redis running the same script.
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

  // The targets of issue #17, from this run: each creditgate row against the minimal proxy.
  const row = (name) => rows.find((r) => r.row === name);
  const charged = row('creditgate (Redis)');
  const refusals = row('creditgate (Redis, refusals; empty pools known to the replica)');
  const targets = [
    { target: 'no route matched vs the minimal proxy', wanted: '>= 0.90 x', measured: bare.vsMinimalProxy, met: bare.vsMinimalProxy >= 0.9 },
    { target: 'charged on Redis vs the minimal proxy', wanted: '>= 0.70 x', measured: charged.vsMinimalProxy, met: charged.vsMinimalProxy >= 0.7 },
    {
      target: 'refusals from the local cache vs the charged path',
      wanted: '>= 1.5 x',
      measured: Number((refusals.rps / charged.rps).toFixed(2)),
      met: refusals.rps / charged.rps >= 1.5,
    },
    { target: 'unloaded, added over the minimal proxy, p50 (worse pass)', wanted: '<= 0.3 ms', measured: worstAdded('p50'), met: worstAdded('p50') <= 0.3 },
    { target: 'unloaded, added over the minimal proxy, p99 (worse pass)', wanted: '<= 1 ms', measured: worstAdded('p99'), met: worstAdded('p99') <= 1 },
    { target: 'unloaded, that p99 moved between the passes', wanted: '<= 0.2 ms', measured: p99AddedMoved, met: p99AddedMoved <= 0.2 },
    { target: 'SSE chunk, added over direct, p99', wanted: '<= 1 ms', measured: sse.addedOverDirectP99, met: sse.addedOverDirectP99 <= 1 },
  ];

  const results = {
    when: new Date().toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    settings: { runs: RUNS, secondsPerRun: DURATION, warmUpSeconds: WARM_UP, connections: CONNECTIONS, loadGenerator: 'wrk, 2 threads' },
    http: rows,
    targets,
    unloadedLatencyMs: {
      samples: UNLOADED_SAMPLES,
      passes,
      addedOverBareProxy: added,
      addedOverMinimalProxy: addedOverMinimal,
      p99AddedMoved,
      others: { samples: UNLOADED_OTHERS_SAMPLES, ...others },
    },
    sseChunkLagMs: sse,
    memoryStoreMillionAccounts: rss,
    engine: {
      rows: engine,
      redisBenchmark256Clients: sameConcurrency,
      redisBenchmarkPipelined16: ceiling,
      ratioAt256VsSameConcurrency: Number((at256 / sameConcurrency).toFixed(2)),
      ratioAt256VsPipelined: Number((at256 / ceiling).toFixed(2)),
    },
    redisBytesPerAccountPool: bytesPerPool,
    scaling,
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  };
  mkdirSync('.bench', { recursive: true });
  writeFileSync('.bench/results.json', `${JSON.stringify(results, null, 2)}\n`);

  const pad = (s, n) => String(s).padEnd(n);
  const padl = (s, n) => String(s).padStart(n);
  console.log(`\nHTTP, wrk with 2 threads and ${CONNECTIONS} connections, median of ${RUNS} × ${DURATION}s (rows taken in turn) after a ${WARM_UP} s warm-up`);
  console.log(`${pad('row', 64)}${padl('req/s', 9)}${padl('spread', 8)}${padl('p50 ms', 8)}${padl('p99 ms', 8)}${padl('×min', 7)}${padl('×bare', 7)}`);
  for (const r of rows)
    console.log(
      `${pad(r.row, 64)}${padl(r.rps, 9)}${padl(`${r.spreadPct}%`, 8)}${padl(r.p50, 8)}${padl(r.p99, 8)}${padl(r.vsMinimalProxy, 7)}${padl(r.vsBareProxy, 7)}`,
    );
  console.log("(spread: the slowest to the fastest of a row's runs, over its median)");
  console.log(`\nOne connection, unloaded, ${UNLOADED_SAMPLES} requests a row in each of two passes (ms, p50 / p99):`);
  for (const k of Object.keys(passes[0])) console.log(`  ${pad(k, 26)}${passes.map((p) => `${padl(p[k].p50, 8)} /${padl(p[k].p99, 7)}`).join('   ')}`);
  const both = (a) => a.map((x) => `p50 ${x.p50} ms, p99 ${x.p99} ms`).join('; then ');
  console.log(`  creditgate (Redis) adds over the minimal proxy: ${both(addedOverMinimal)}`);
  console.log(`  creditgate (Redis) adds over the bare proxy: ${both(added)}`);
  console.log(`  the others, ${UNLOADED_OTHERS_SAMPLES} requests a row, one pass:`);
  for (const [k, v] of Object.entries(others)) console.log(`  ${pad(k, 26)}${padl(v.p50, 8)} /${padl(v.p99, 7)}`);
  console.log(`\nSSE, 20 chunks a stream, ${sse.direct.chunks} chunks: lag after the upstream sent each (ms, p50 / p99)`);
  for (const k of ['direct', 'minimalProxy', 'creditgateRedis']) console.log(`  ${pad(k, 26)}${padl(sse[k].p50, 8)} /${padl(sse[k].p99, 7)}`);
  console.log(`  creditgate (Redis, charged) adds at p99: ${sse.addedOverDirectP99} ms`);
  console.log(
    `Memory store, ${rss.accounts} accounts × 2 pools, all held, ${rss.sampled} checked exactly: RSS ${rss.rssMB} MB ` +
      `(V8 young generation ${rss.youngGenerationMB} MB of it; ${rss.rssAfterMemoryReducingGcMB} MB after a memory-reducing GC), ${rss.bytesPerAccount} bytes per account`,
  );
  console.log(`\nEngine: RedisStore.charge (one EVALSHA each)`);
  for (const e of engine) console.log(`${pad(`  ${e.inFlight} in flight`, 20)}${padl(e.chargesPerSecond, 9)} charges/s`);
  console.log(
    `  redis-benchmark EVALSHA, 256 clients: ${Math.round(sameConcurrency)}/s (ratio at 256: ${results.engine.ratioAt256VsSameConcurrency}); pipelined 16: ${Math.round(ceiling)}/s (ratio ${results.engine.ratioAt256VsPipelined})`,
  );
  console.log(`\nRedis bytes per active account-pool: ${bytesPerPool}`);
  console.log('Charges/s at 256 in flight by distinct accounts:', scaling.map((s) => `${s.accounts}: ${s.chargesPerSecond}`).join(', '));
  console.log('\nTargets (issue #17):');
  for (const t of targets) console.log(`  ${pad(t.target, 52)}${padl(t.wanted, 10)}${padl(t.measured, 8)}  ${t.met ? 'met' : 'NOT met'}`);
  console.log(`\n${results.elapsedSeconds}s; results in .bench/results.json`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill('SIGKILL');
    setTimeout(() => process.exit(), 200).unref();
  });
