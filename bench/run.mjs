// npm run bench — one command, loopback only, bounded (about seven minutes):
// starts its own redis-server, upstream, sidecars and peers, drives them with
// wrk (bench/wrk-load.mjs), and prints the tables measured in one run.
// Results also go to .bench/results.json. Run `npm run build` first (npm run bench does).

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { BENCH_CONFIG } from './bench-config.mjs';
import { ALL_CORES, CAN_PLACE, placeOn, startOn } from './core-placement.mjs';
import { measureEngine } from './engine-rates.mjs';
import { printResults } from './print-results.mjs';
import { freePort } from './proxy-rows.mjs';
import { wrkLoad } from './wrk-load.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
const WARM_UP = Number(process.env.BENCH_WARM_UP_SECONDS ?? 10);
const CONNECTIONS = 64;
// Requests a row when timing one connection, unloaded: the rows the targets
// compare, twice; a single pass (the other rows, the unplaced comparison),
// fewer. Two passes of 5,000 moved the p99 creditgate adds by 0.4-1.3 ms on
// a drifting VM, two of 20,000 by 0.18 ms.
const UNLOADED_SAMPLES = 20_000;
const ONE_PASS_SAMPLES = 5000;
const children = [];

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
      return { port, url: `redis://127.0.0.1:${port}`, client, pid: child.pid };
    } catch {
      client.disconnect();
      await sleep(50);
    }
  }
  throw new Error('redis-server did not start');
}

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

/** A bench script in a fresh process (its own heap, grown by nothing here), on `cores` if given: its stdout, parsed as JSON. */
function runFresh(script, args, nodeFlags = [], cores = undefined) {
  const run = spawnSync(...startOn(cores, process.execPath, [...nodeFlags, script, ...args]), { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${script} failed (exit ${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}

// Sequential requests, one keep-alive connection per row: the latency a single request sees.
const unloadedLatency = (rows, cores, samples = UNLOADED_SAMPLES) => runFresh('bench/unloaded-latency.mjs', [String(samples), JSON.stringify(rows)], [], cores);

// Server-sent events, each chunk through a proxy against its direct twin; the rows' streams take turns, as the unloaded requests do.
const streamLatency = (upstreamPort, ports, cores, streams = 500) =>
  runFresh('bench/stream-latency.mjs', [String(streams), String(upstreamPort), ...ports.map(String)], [], cores);

async function main() {
  const started = Date.now();
  const redis = await startRedis();
  const [upPort, cgPort, cgAdmin, memPort, memAdmin, erlPort, rlfPort, exPort, minPort, undiciPort] = await Promise.all(Array.from({ length: 10 }, freePort));
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-'));
  const configPath = join(dir, 'credits.yaml');
  writeFileSync(configPath, BENCH_CONFIG);

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
  const creditgateRedisProcess = serve(cgPort, cgAdmin, ['--redis', redis.url]);
  serve(memPort, memAdmin, []);
  startChild(['bench/servers.mjs', 'peer-erl', String(erlPort), String(upPort), redis.url]);
  startChild(['bench/servers.mjs', 'peer-rlf', String(rlfPort), String(upPort), redis.url]);
  startChild(['bench/servers.mjs', 'express-bare', String(exPort), String(upPort)]);
  const minimalProxyProcess = startChild(['bench/servers.mjs', 'minimal', String(minPort), String(upPort)]);
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
  const otherRows = [
    latencyRow('upstreamDirect', upPort, '/v1/ai/custom', 'lu-'),
    latencyRow('minimalProxy', minPort, '/v1/ai/custom', 'ln-'),
    latencyRow('minimalUndiciProxy', undiciPort, '/v1/ai/custom', 'ld-'),
    latencyRow('creditgateMemory', memPort, '/v1/ai/custom', 'lm-'),
    latencyRow('peerExpressRateLimit', erlPort, '/v1/ai/custom', 'le-'),
    latencyRow('peerRateLimiterFlexible', rlfPort, '/v1/ai/custom', 'lf-'),
  ];
  const streamLag = (clientCores) => {
    const [minimalProxy, creditgateRedis] = streamLatency(upPort, [minPort, cgPort], clientCores);
    return { minimalProxy, creditgateRedis };
  };
  // The latency steps with the rows placed alike (core-placement.mjs):
  // "beside", every server of the bench (the upstream, the proxies, Redis) on
  // core 1 and the client on core 0, as a sidecar runs in its app's pod and
  // its clients elsewhere; then, for the event streams, "apart": the two
  // proxies and Redis on core 0, each chunk crossing cores twice through a
  // proxy and not at all directly. Without taskset, unplaced. For
  // comparison, one pass of the target rows wherever the scheduler puts them.
  const unplacedPass = CAN_PLACE ? unloadedLatency(targetRows, undefined, ONE_PASS_SAMPLES) : undefined;
  const servers = children.map((c) => c.pid);
  const clientCores = CAN_PLACE ? '0' : undefined;
  let passes;
  let others;
  const sse = {};
  if (CAN_PLACE) placeOn(servers, '1');
  try {
    passes = [unloadedLatency(targetRows, clientCores), unloadedLatency(targetRows, clientCores)];
    others = unloadedLatency(otherRows, clientCores, ONE_PASS_SAMPLES);
    sse[CAN_PLACE ? 'beside' : 'unplaced'] = streamLag(clientCores);
    if (CAN_PLACE) {
      placeOn([minimalProxyProcess.pid, creditgateRedisProcess.pid, redis.pid], '0');
      sse.apart = streamLag('1');
    }
  } finally {
    if (CAN_PLACE) placeOn(servers, ALL_CORES);
  }
  const ms = (x) => Number(x.toFixed(3));
  const addedOver = (base) =>
    passes.map((pass) => ({ p50: ms(pass.creditgateRedis.p50 - pass[base].p50), p99: ms(pass.creditgateRedis.p99 - pass[base].p99) }));
  const added = addedOver('bareProxy');
  const addedOverMinimal = addedOver('minimalProxy');
  const worstAdded = (q) => Math.max(...addedOverMinimal.map((a) => a[q]));
  const p99AddedMoved = ms(Math.abs(addedOverMinimal[0].p99 - addedOverMinimal[1].p99));
  sse.addedOverDirectP99 = (sse.beside ?? sse.unplaced).creditgateRedis.p99;

  // The memory store with a million accounts on two pools each (a fresh process), checked exactly.
  const rss = runFresh('bench/memory-store-rss.mjs', ['1000000'], ['--expose-gc']);

  // Engine level: RedisStore alone, and Redis running the same script (bench/engine-rates.mjs).
  const engineLevel = await measureEngine(redis);

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
    { target: 'SSE chunk, added over its direct twin, p99 (beside)', wanted: '<= 1 ms', measured: sse.addedOverDirectP99, met: sse.addedOverDirectP99 <= 1 },
  ];

  const results = {
    when: new Date().toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    settings: { runs: RUNS, secondsPerRun: DURATION, warmUpSeconds: WARM_UP, connections: CONNECTIONS, loadGenerator: 'wrk, 2 threads' },
    http: rows,
    targets,
    unloadedLatencyMs: {
      samples: UNLOADED_SAMPLES,
      placement: CAN_PLACE ? 'beside' : 'unplaced',
      passes,
      unplacedPass,
      addedOverBareProxy: added,
      addedOverMinimalProxy: addedOverMinimal,
      p99AddedMoved,
      others: { samples: ONE_PASS_SAMPLES, ...others },
    },
    sseChunkLagMs: sse,
    memoryStoreMillionAccounts: rss,
    ...engineLevel,
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  };
  mkdirSync('.bench', { recursive: true });
  writeFileSync('.bench/results.json', `${JSON.stringify(results, null, 2)}\n`);

  printResults(results);
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
