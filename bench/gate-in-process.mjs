// The gate's own work per charged request, in this process, without sockets:
// RequestGate.evaluate then finish (a 2xx, nothing to refund), 64 requests in
// flight, on the memory store or on Redis. What the sidecar adds to a proxy
// hop before any socket is touched, measured precisely enough to compare two
// builds (`node bench/gate-in-process.mjs` in each).
// Usage: npm run build && node bench/gate-in-process.mjs [memory|redis-url] [requests]

import { compileConfig } from '../dist/config/compiled-config.js';
import { parseConfigText } from '../dist/config/load-config.js';
import { RequestGate } from '../dist/http/request-gate.js';
import { createLogger } from '../dist/logger.js';
import { createRuntime } from '../dist/runtime.js';
import { BENCH_CONFIG } from './bench-config.mjs';

const [storeArg = 'memory', requestsArg = '300000'] = process.argv.slice(2);
const REQUESTS = Number(requestsArg);
const IN_FLIGHT = 64;
const config = compileConfig(parseConfigText(BENCH_CONFIG, 'bench.yaml'));
const logger = createLogger({ level: 'error' });
const runtime = createRuntime({
  config: () => config,
  ...(storeArg === 'memory' ? { store: 'memory' } : { redis: storeArg, keyPrefix: `gate-bench-${process.pid}` }),
  logger,
  defaultMetrics: false,
});
await runtime.start();
const gate = new RequestGate(runtime.engine, logger, { observer: runtime.metrics, burst: runtime.burst });
const noBody = () => Promise.reject(new Error('the bench routes read no body'));

async function one(i) {
  const outcome = await gate.evaluate({
    method: 'POST',
    url: '/v1/ai/custom',
    headers: { host: 'bench', 'x-account-id': `a${i % 10_000}`, 'x-task-count': '1' },
    requestId: `r${i}`,
    readBody: noBody,
    readRawBody: noBody,
  });
  if (outcome.kind !== 'allow') throw new Error(`expected allow, got ${outcome.kind}`);
  await gate.finish(outcome, { status: 200 }, {});
}

async function run(n) {
  let next = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await one(next++);
    }),
  );
  const used = process.cpuUsage(cpu);
  return { wallMicroseconds: ((performance.now() - started) * 1000) / n, cpuMicroseconds: (used.user + used.system) / n };
}

await run(Math.min(50_000, REQUESTS)); // warm-up: the JIT and the accounts
const results = [];
for (let i = 0; i < 5; i++) results.push(await run(REQUESTS));
results.sort((a, b) => a.wallMicroseconds - b.wallMicroseconds);
const fmt = (x) => Number(x.toFixed(2));
console.log(
  JSON.stringify({
    store: storeArg === 'memory' ? 'memory' : 'redis',
    requests: REQUESTS,
    inFlight: IN_FLIGHT,
    microsecondsPerRequest: { best: fmt(results[0].wallMicroseconds), median: fmt(results[2].wallMicroseconds) },
    cpuMicrosecondsPerRequestMedian: fmt(results[2].cpuMicroseconds),
  }),
);
await runtime.close?.();
process.exit(0);
