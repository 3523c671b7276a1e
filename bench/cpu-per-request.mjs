// CPU time per request of each process on the path, under the bench's load:
// less noisy than req/s on a machine whose cores every process shares.
// Usage: npm run build && node bench/cpu-per-request.mjs <rows> [seconds] [connections] [rounds]
//   rows: comma-separated, each minimal | minimal-undici | bare | redis | memory
//         | peer-erl | peer-rlf | express-bare (bench/servers.mjs),
//         a creditgate row optionally as row@dir to run another build's cli.js
//         (an A/B of two builds: `redis,redis@/tmp/other-dist`), or the path of
//         a proxy script of your own, started as `node <script> <port>
//         <upstream-port> <redis-url>` (its requests go to /v1/ai/custom)
//   rounds: how many times the rows are measured in turn (default 1); with
//         more than one, a summary gives each row's minimum and median, which
//         a machine whose speed drifts (a shared VM) spreads across all rows
//         alike instead of onto whichever row ran during a slow spell.
// Prints req/s and µs of CPU per request for the proxy, Redis, the upstream
// and the load generator (this process), read from /proc (Linux), with the
// proxy's read and write system calls per request.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_CONFIG } from './bench-config.mjs';
import { freePort, loadRow, rowArgs, rowPath } from './proxy-rows.mjs';

const [rowsArg = 'redis', secondsArg = '6', connectionsArg = '64', roundsArg = '1'] = process.argv.slice(2);
const rows = rowsArg.split(',');
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** User + system CPU of a process so far, in ms (clock ticks of 10 ms). */
const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
/** Read and write system calls of a process so far. */
const syscalls = (pid) => {
  const io = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(': ')),
  );
  return { reads: Number(io.syscr), writes: Number(io.syscw) };
};
// The proxy gets core 0 to itself and everything else shares core 1: the
// measured process neither migrates nor waits behind the load generator, so
// rows measured in turn compare like with like (skipped without taskset).
const PIN = (() => {
  try {
    execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const start = (command, args, env = {}, core = '1') => {
  if (PIN) [command, args] = ['taskset', ['-c', core, command, ...args]];
  const child = spawn(command, args, { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'error', CREDITGATE_ADMIN_TOKEN: 'bench', ...env } });
  children.push(child);
  return child;
};

const dir = mkdtempSync(join(tmpdir(), 'cg-cpu-'));
writeFileSync(join(dir, 'credits.yaml'), BENCH_CONFIG);
const [redisPort, upPort] = await Promise.all([freePort(), freePort()]);
const redis = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
const upstream = start(process.execPath, ['bench/servers.mjs', 'upstream', String(upPort)]);

async function startRow(row) {
  const [port, adminPort] = await Promise.all([freePort(), freePort()]);
  const args = rowArgs(row, { port, adminPort, upstreamPort: upPort, redisUrl: `redis://127.0.0.1:${redisPort}`, configPath: join(dir, 'credits.yaml') });
  return { row, path: rowPath(row), port, proxy: start(process.execPath, args, {}, '0') };
}
const servers = await Promise.all(rows.map(startRow));
await sleep(1500);

const load = (server, duration) => loadRow(server.port, server.path, Number(connectionsArg), { duration });

async function measure(server) {
  const { proxy } = server;
  const before = { proxy: cpuMs(proxy.pid), redis: cpuMs(redis.pid), upstream: cpuMs(upstream.pid), self: process.cpuUsage(), calls: syscalls(proxy.pid) };
  const result = await load(server, Number(secondsArg));
  const n = result.requests.total;
  const per = (ms) => Number(((ms * 1000) / n).toFixed(1));
  const self = process.cpuUsage(before.self);
  const calls = syscalls(proxy.pid);
  return {
    row: server.row,
    requestsPerSecond: Math.round(result.requests.average),
    non2xxOrErrors: result.non2xx + result.errors,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count])),
    cpuMicrosecondsPerRequest: {
      proxy: per(cpuMs(proxy.pid) - before.proxy),
      redis: per(cpuMs(redis.pid) - before.redis),
      upstream: per(cpuMs(upstream.pid) - before.upstream),
      loadGenerator: per((self.user + self.system) / 1000),
    },
    proxySyscallsPerRequest: {
      read: Number(((calls.reads - before.calls.reads) / n).toFixed(2)),
      write: Number(((calls.writes - before.calls.writes) / n).toFixed(2)),
    },
  };
}

for (const server of servers) await load(server, 2); // warm-up
const results = [];
for (let round = 0; round < Number(roundsArg); round++) {
  for (const server of servers) {
    const r = await measure(server);
    results.push(r);
    console.log(JSON.stringify(r));
  }
}
if (Number(roundsArg) > 1) {
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('\nrow                         proxy µs/req min / median   redis µs/req min / median   req/s max / median');
  for (const row of rows) {
    const mine = results.filter((r) => r.row === row);
    const proxyUs = mine.map((r) => r.cpuMicrosecondsPerRequest.proxy);
    const redisUs = mine.map((r) => r.cpuMicrosecondsPerRequest.redis);
    const rps = mine.map((r) => r.requestsPerSecond);
    console.log(
      `${row.padEnd(28)}${`${Math.min(...proxyUs)} / ${median(proxyUs)}`.padEnd(30)}${`${Math.min(...redisUs)} / ${median(redisUs)}`.padEnd(28)}${Math.max(...rps)} / ${median(rps)}`,
    );
  }
}
process.exit(0);
