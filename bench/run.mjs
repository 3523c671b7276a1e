// npm run bench — one command, loopback only, bounded (about three minutes):
// starts its own redis-server, upstream, sidecars and peers, drives them with
// autocannon from this process, and prints two tables measured in one run.
// Results also go to .bench/results.json. Run `npm run build` first (npm run bench does).

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { RedisStore } from '../dist/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
const CONNECTIONS = 64;
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

function requestsFor(accounts, prefix) {
  return [
    {
      method: 'POST',
      path: '/v1/ai/custom',
      setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-account-id': `${prefix}${Math.floor(Math.random() * accounts)}`, 'x-task-count': '1' } }),
    },
  ];
}

async function load(url, opts, connections, duration) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections, duration, pipelining: 1, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/**
 * Each row's load runs, taken in turn: every row's first run, then every
 * row's second, and so on. On a machine whose speed drifts (a shared VM), a
 * slow spell then lands on one run of each row instead of on every run of
 * one row, and the median of each row compares like with like.
 */
async function measureRows(specs) {
  for (const { url, opts } of specs) await load(url, opts, CONNECTIONS, 2); // warm-up, discarded: every process starts as warm as the others
  const runs = specs.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    for (const [j, { url, opts }] of specs.entries()) runs[j].push(await load(url, opts, CONNECTIONS, DURATION));
  }
  return specs.map(({ name }, j) => {
    const sorted = runs[j].sort((a, b) => a.requests.average - b.requests.average);
    const median = sorted[Math.floor(sorted.length / 2)];
    const bad = sorted.reduce((sum, r) => sum + r.errors + r.timeouts + r.non2xx, 0);
    return { row: name, rps: Math.round(median.requests.average), p50: median.latency.p50, p99: median.latency.p99, non2xxOrErrors: bad };
  });
}

// Sequential requests, one keep-alive connection per row, timed with hrtime:
// the latency a single request sees, to the microsecond. The rows take turns
// request by request, so a slow spell of the machine reaches every row alike
// and the differences between rows (what creditgate adds) stay put between runs.
async function unloadedLatency(rows, n = 5200) {
  const agents = rows.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const times = rows.map(() => []);
  for (let i = 0; i < n; i++) {
    for (const [j, { port, path, headers }] of rows.entries()) {
      const t0 = process.hrtime.bigint();
      await new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, path, method: 'POST', agent: agents[j], headers: { ...headers(i), 'content-length': '0' } },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end();
      });
      if (i >= 200) times[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  for (const agent of agents) agent.destroy();
  return Object.fromEntries(
    rows.map(({ name }, j) => {
      const sorted = times[j].sort((a, b) => a - b);
      const at = (q) => Number(sorted[Math.floor(q * (sorted.length - 1))].toFixed(3));
      return [name, { p50: at(0.5), p99: at(0.99) }];
    }),
  );
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

  const ACCOUNTS = 10_000;
  const rows = await measureRows([
    { name: 'upstream direct', url: `http://127.0.0.1:${upPort}`, opts: { requests: requestsFor(ACCOUNTS, 'u-') } },
    { name: 'minimal Node proxy', url: `http://127.0.0.1:${minPort}`, opts: { requests: requestsFor(ACCOUNTS, 'n-') } },
    {
      name: 'minimal undici proxy (the upstream client creditgate uses)',
      url: `http://127.0.0.1:${undiciPort}`,
      opts: { requests: requestsFor(ACCOUNTS, 'd-') },
    },
    { name: 'bare proxy', url: `http://127.0.0.1:${cgPort}`, opts: { requests: requestsFor(ACCOUNTS, 'b-').map((r) => ({ ...r, path: '/v1/plain' })) } },
    { name: 'creditgate (Redis)', url: `http://127.0.0.1:${cgPort}`, opts: { requests: requestsFor(ACCOUNTS, 'r-') } },
    {
      name: 'creditgate (Redis, refusals; empty pools known to the replica)',
      url: `http://127.0.0.1:${cgPort}`,
      opts: { requests: requestsFor(1000, 'spent-') },
    },
    { name: 'creditgate (memory)', url: `http://127.0.0.1:${memPort}`, opts: { requests: requestsFor(ACCOUNTS, 'm-') } },
    { name: 'peer: express-rate-limit + rate-limit-redis', url: `http://127.0.0.1:${erlPort}`, opts: { requests: requestsFor(ACCOUNTS, 'e-') } },
    { name: 'peer: rate-limiter-flexible RateLimiterRedis', url: `http://127.0.0.1:${rlfPort}`, opts: { requests: requestsFor(ACCOUNTS, 'f-') } },
    { name: "peers' baseline: the same Express app, no limiter", url: `http://127.0.0.1:${exPort}`, opts: { requests: requestsFor(ACCOUNTS, 'x-') } },
  ]);
  // The refusals row answers 402 by design: not counted as errors.
  rows.find((r) => r.row.startsWith('creditgate (Redis, refusals')).non2xxOrErrors = undefined;
  const bare = rows.find((r) => r.row === 'bare proxy');
  const minimal = rows.find((r) => r.row === 'minimal Node proxy');
  for (const r of rows) {
    r.vsMinimalProxy = Number((r.rps / minimal.rps).toFixed(2));
    r.vsBareProxy = Number((r.rps / bare.rps).toFixed(2));
  }

  // Latency creditgate adds over a bare proxy hop, one connection, unloaded.
  const acct = (p) => (i) => ({ 'x-account-id': `${p}${i % 100}`, 'x-task-count': '1' });
  const single = await unloadedLatency([
    { name: 'upstreamDirect', port: upPort, path: '/v1/ai/custom', headers: acct('lu-') },
    { name: 'minimalProxy', port: minPort, path: '/v1/ai/custom', headers: acct('ln-') },
    { name: 'minimalUndiciProxy', port: undiciPort, path: '/v1/ai/custom', headers: acct('ld-') },
    { name: 'bareProxy', port: cgPort, path: '/v1/plain', headers: acct('lb-') },
    { name: 'creditgateRedis', port: cgPort, path: '/v1/ai/custom', headers: acct('lr-') },
    { name: 'creditgateMemory', port: memPort, path: '/v1/ai/custom', headers: acct('lm-') },
    { name: 'peerExpressRateLimit', port: erlPort, path: '/v1/ai/custom', headers: acct('le-') },
    { name: 'peerRateLimiterFlexible', port: rlfPort, path: '/v1/ai/custom', headers: acct('lf-') },
  ]);
  const added = {
    p50: Number((single.creditgateRedis.p50 - single.bareProxy.p50).toFixed(3)),
    p99: Number((single.creditgateRedis.p99 - single.bareProxy.p99).toFixed(3)),
  };
  const [direct, minimalProxy, creditgateRedis] = streamLatency([upPort, minPort, cgPort]);
  const sse = { direct, minimalProxy, creditgateRedis };
  sse.addedOverDirectP99 = Number((sse.creditgateRedis.p99 - sse.direct.p99).toFixed(3));
  const addedOverMinimal = {
    p50: Number((single.creditgateRedis.p50 - single.minimalProxy.p50).toFixed(3)),
    p99: Number((single.creditgateRedis.p99 - single.minimalProxy.p99).toFixed(3)),
  };

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
    { target: 'unloaded, added over the minimal proxy, p50', wanted: '<= 0.3 ms', measured: addedOverMinimal.p50, met: addedOverMinimal.p50 <= 0.3 },
    { target: 'unloaded, added over the minimal proxy, p99', wanted: '<= 1 ms', measured: addedOverMinimal.p99, met: addedOverMinimal.p99 <= 1 },
    { target: 'SSE chunk, added over direct, p99', wanted: '<= 1 ms', measured: sse.addedOverDirectP99, met: sse.addedOverDirectP99 <= 1 },
  ];

  const results = {
    when: new Date().toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    settings: { runs: RUNS, secondsPerRun: DURATION, connections: CONNECTIONS },
    http: rows,
    targets,
    unloadedLatencyMs: { samples: 5000, ...single, addedOverBareProxy: added, addedOverMinimalProxy: addedOverMinimal },
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
  console.log(`\nHTTP, ${CONNECTIONS} connections, median of ${RUNS} × ${DURATION}s (rows taken in turn) after a 2 s warm-up`);
  console.log(`${pad('row', 64)}${padl('req/s', 9)}${padl('p50 ms', 8)}${padl('p99 ms', 8)}${padl('×min', 7)}${padl('×bare', 7)}`);
  for (const r of rows)
    console.log(`${pad(r.row, 64)}${padl(r.rps, 9)}${padl(r.p50, 8)}${padl(r.p99, 8)}${padl(r.vsMinimalProxy, 7)}${padl(r.vsBareProxy, 7)}`);
  console.log(`\nOne connection, unloaded (ms, p50 / p99):`);
  for (const [k, v] of Object.entries(single)) console.log(`  ${pad(k, 26)}${padl(v.p50, 8)} /${padl(v.p99, 7)}`);
  console.log(`  creditgate (Redis) adds over the minimal proxy: p50 ${addedOverMinimal.p50} ms, p99 ${addedOverMinimal.p99} ms`);
  console.log(`  creditgate (Redis) adds over the bare proxy: p50 ${added.p50} ms, p99 ${added.p99} ms`);
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
