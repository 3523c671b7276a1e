// What `npm run bench` prints: its results (the object it writes to
// .bench/results.json) as tables. `node bench/print-results.mjs` prints a
// saved run again.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function printResults(results) {
  const { settings, engine } = results;
  const unloaded = results.unloadedLatencyMs;
  const { samples, ...others } = unloaded.others;
  const placements = {
    beside: 'the servers (upstream, proxies, Redis) on one core, the client on the other',
    apart: 'the proxies and Redis on a core of their own, the client with the upstream',
    unplaced: 'wherever the scheduler put them (no taskset)',
  };
  const sse = results.sseChunkLagMs;
  const rss = results.memoryStoreMillionAccounts;
  const pad = (s, n) => String(s).padEnd(n);
  const padl = (s, n) => String(s).padStart(n);
  console.log(
    `\nHTTP, wrk with 2 threads and ${settings.connections} connections, median of ${settings.runs} × ${settings.secondsPerRun}s (rows taken in turn) after a ${settings.warmUpSeconds} s warm-up`,
  );
  console.log(`${pad('row', 64)}${padl('req/s', 9)}${padl('spread', 8)}${padl('p50 ms', 8)}${padl('p99 ms', 8)}${padl('×min', 7)}${padl('×bare', 7)}`);
  for (const r of results.http)
    console.log(
      `${pad(r.row, 64)}${padl(r.rps, 9)}${padl(`${r.spreadPct}%`, 8)}${padl(r.p50, 8)}${padl(r.p99, 8)}${padl(r.vsMinimalProxy, 7)}${padl(r.vsBareProxy, 7)}`,
    );
  console.log("(spread: the slowest to the fastest of a row's runs, over its median)");
  console.log(`\nOne connection, unloaded, ${unloaded.samples} requests a row in each of two passes (ms, p50 / p99)`);
  if (unloaded.placement) console.log(`  placed ${unloaded.placement}: ${placements[unloaded.placement]}`);
  for (const k of Object.keys(unloaded.passes[0]))
    console.log(`  ${pad(k, 26)}${unloaded.passes.map((p) => `${padl(p[k].p50, 8)} /${padl(p[k].p99, 7)}`).join('   ')}`);
  const both = (a) => a.map((x) => `p50 ${x.p50} ms, p99 ${x.p99} ms`).join('; then ');
  console.log(`  creditgate (Redis) adds over the minimal proxy: ${both(unloaded.addedOverMinimalProxy)}`);
  console.log(`  creditgate (Redis) adds over the bare proxy: ${both(unloaded.addedOverBareProxy)}`);
  console.log(`  the others, ${samples} requests a row, one pass:`);
  for (const [k, v] of Object.entries(others)) console.log(`  ${pad(k, 26)}${padl(v.p50, 8)} /${padl(v.p99, 7)}`);
  if (unloaded.unplacedPass) {
    console.log(`  for comparison, unplaced, ${samples} requests a row, one pass:`);
    for (const [k, v] of Object.entries(unloaded.unplacedPass)) console.log(`  ${pad(k, 26)}${padl(v.p50, 8)} /${padl(v.p99, 7)}`);
  }
  const chunks = (sse.beside ?? sse.unplaced).creditgateRedis.chunks;
  console.log(`\nSSE, 20 chunks a stream, ${chunks} chunks a row: each chunk's lag behind its direct twin (ms, p50 / p90 / p99)`);
  for (const [placement, rows] of Object.entries(sse)) {
    if (!(placement in placements)) continue;
    console.log(`  ${placement}: ${placements[placement]}`);
    for (const k of ['minimalProxy', 'creditgateRedis'])
      console.log(`    ${pad(k, 24)}${padl(rows[k].p50, 8)} /${padl(rows[k].p90, 7)} /${padl(rows[k].p99, 7)}`);
  }
  console.log(`  creditgate (Redis, charged) adds at p99, ${sse.beside ? 'beside' : 'unplaced'}: ${sse.addedOverDirectP99} ms`);
  console.log(
    `Memory store, ${rss.accounts} accounts × 2 pools, all held, ${rss.sampled} checked exactly: RSS ${rss.rssMB} MB ` +
      `(V8 young generation ${rss.youngGenerationMB} MB of it; ${rss.rssAfterMemoryReducingGcMB} MB after a memory-reducing GC), ${rss.bytesPerAccount} bytes per account`,
  );
  console.log(`\nEngine: RedisStore.charge (one EVALSHA each)`);
  for (const e of engine.rows) console.log(`${pad(`  ${e.inFlight} in flight`, 20)}${padl(e.chargesPerSecond, 9)} charges/s`);
  console.log(
    `  redis-benchmark EVALSHA, 256 clients: ${Math.round(engine.redisBenchmark256Clients)}/s (ratio at 256: ${engine.ratioAt256VsSameConcurrency}); pipelined 16: ${Math.round(engine.redisBenchmarkPipelined16)}/s (ratio ${engine.ratioAt256VsPipelined})`,
  );
  console.log(`\nRedis bytes per active account-pool: ${results.redisBytesPerAccountPool}`);
  console.log('Charges/s at 256 in flight by distinct accounts:', results.scaling.map((s) => `${s.accounts}: ${s.chargesPerSecond}`).join(', '));
  console.log('\nTargets (issue #17):');
  for (const t of results.targets) console.log(`  ${pad(t.target, 52)}${padl(t.wanted, 10)}${padl(t.measured, 8)}  ${t.met ? 'met' : 'NOT met'}`);
  console.log(`\n${results.elapsedSeconds}s; results in .bench/results.json`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printResults(JSON.parse(readFileSync(process.argv[2] ?? '.bench/results.json', 'utf8')));
