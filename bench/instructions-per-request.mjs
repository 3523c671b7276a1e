// Machine instructions per request in the proxy, counted by valgrind's
// callgrind, for an A/B of two builds on a shared VM whose speed drifts: there
// CPU time per request moved by 2 x within a minute, while two runs of this on
// the same build gave 368k and 355k instructions per request (3.5 % apart).
// It counts work, not time (a cache miss or a system call counts as nothing
// more than its instructions), so confirm a gain with cpu-per-request.mjs.
// The proxy warms up uninstrumented first (a short warm-up counted 543k for
// the same build); at full speed V8 kept re-optimizing the sidecar for
// 300,000-400,000 requests, more than a warm-up under valgrind can afford.
// Under valgrind the proxy runs about 50 x slower, so more requests share each
// event-loop turn than at full speed: compare rows with each other, not with
// the CPU figures. About 2-5 minutes a row with the defaults.
// Usage: npm run build && node bench/instructions-per-request.mjs <rows> [requests] [connections]
//   rows: as cpu-per-request.mjs (minimal | minimal-undici | bare | redis |
//         memory, row@dir for another build, or a proxy script's path)
//   WARM_UP=<requests> (default 40000) before counting; NODE_FLAGS="..." are
//   passed to the proxy's node.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_CONFIG } from './bench-config.mjs';
import { freePort, loadRow, rowArgs, rowPath } from './proxy-rows.mjs';

const [rowsArg = 'redis', requestsArg = '10000', connectionsArg = '16'] = process.argv.slice(2);
const rows = rowsArg.split(',');
const REQUESTS = Number(requestsArg);
const CONNECTIONS = Number(connectionsArg);
const WARM_UP = Number(process.env.WARM_UP ?? 40_000);
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const start = (command, args) => {
  const child = spawn(command, args, { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'error', CREDITGATE_ADMIN_TOKEN: 'bench' } });
  children.push(child);
  return child;
};
const listening = async (port) => {
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(() => resolve(true))).on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(250);
  }
};

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('instructions-per-request: needs valgrind (apt-get install -y valgrind)');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'cg-ir-'));
// Under valgrind a loop turn is slow; a generous store deadline keeps every answer a 200.
writeFileSync(join(dir, 'credits.yaml'), `${BENCH_CONFIG}store: { timeoutMs: 5000 }\n`);
const [redisPort, upPort] = await Promise.all([freePort(), freePort()]);
start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
start(process.execPath, ['bench/servers.mjs', 'upstream', String(upPort)]);

/** Instructions the proxy ran between `callgrind_control -i on` and the dump. */
async function count(row) {
  const [port, adminPort] = await Promise.all([freePort(), freePort()]);
  const args = rowArgs(row, { port, adminPort, upstreamPort: upPort, redisUrl: `redis://127.0.0.1:${redisPort}`, configPath: join(dir, 'credits.yaml') });
  const out = join(dir, `callgrind.${rows.indexOf(row)}.out`);
  const proxy = start('valgrind', [
    '--tool=callgrind',
    '--instr-atstart=no',
    `--callgrind-out-file=${out}`,
    process.execPath,
    ...(process.env.NODE_FLAGS ?? '').split(' ').filter(Boolean),
    ...args,
  ]);
  await listening(port);
  const path = rowPath(row);
  await loadRow(port, path, CONNECTIONS, { amount: WARM_UP, timeout: 60 }); // warm-up: JIT tiers and accounts
  execFileSync('callgrind_control', ['-i', 'on', String(proxy.pid)], { stdio: 'ignore' });
  // Under valgrind an answer can take seconds: autocannon's 10 s timeout would count it lost.
  const result = await loadRow(port, path, CONNECTIONS, { amount: REQUESTS, timeout: 60 });
  execFileSync('callgrind_control', ['-i', 'off', String(proxy.pid)], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-d', String(proxy.pid)], { stdio: 'ignore' });
  proxy.kill('SIGKILL');
  const dumped = readFileSync(`${out}.1`, 'utf8');
  const total = Number(/^totals:\s*(\d+)/m.exec(dumped)[1]);
  return { row, requests: result.requests.total, non2xx: result.non2xx + result.errors, instructionsPerRequest: Math.round(total / result.requests.total) };
}

for (const row of rows) console.log(JSON.stringify(await count(row)));
process.exit(0);
