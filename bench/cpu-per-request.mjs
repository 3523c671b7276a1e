// CPU time per request of each process on the path, under the bench's load:
// less noisy than req/s on a machine whose cores every process shares.
// Usage: npm run build && node bench/cpu-per-request.mjs <row> [seconds] [connections]
//   row: minimal | minimal-undici | bare | redis | memory
// Prints req/s and µs of CPU per request for the proxy, Redis, the upstream
// and the load generator (this process), read from /proc (Linux).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const [row = 'redis', secondsArg = '6', connectionsArg = '64'] = process.argv.slice(2);
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
/** User + system CPU of a process so far, in ms (clock ticks of 10 ms). */
const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const start = (command, args, env = {}) => {
  const child = spawn(command, args, { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'error', CREDITGATE_ADMIN_TOKEN: 'bench', ...env } });
  children.push(child);
  return child;
};

const dir = mkdtempSync(join(tmpdir(), 'cg-cpu-'));
const config = readFileSync(new URL('./run.mjs', import.meta.url), 'utf8').match(/const CONFIG = `([^`]*)`/)[1];
writeFileSync(join(dir, 'credits.yaml'), config);
const [redisPort, upPort, port, adminPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
const redis = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
const upstream = start(process.execPath, ['bench/servers.mjs', 'upstream', String(upPort)]);
const proxy = ['minimal', 'minimal-undici'].includes(row)
  ? start(process.execPath, ['bench/servers.mjs', row, String(port), String(upPort)])
  : start(process.execPath, [
      'dist/cli.js',
      'serve',
      ...['--config', join(dir, 'credits.yaml'), '--upstream', `http://127.0.0.1:${upPort}`],
      ...['--port', String(port), '--admin-port', String(adminPort), '--host', '127.0.0.1'],
      ...(row === 'memory' ? [] : ['--redis', `redis://127.0.0.1:${redisPort}`]),
    ]);
await sleep(1500);

const load = (duration) =>
  new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections: Number(connectionsArg),
        duration,
        requests: [
          {
            method: 'POST',
            path: row === 'bare' ? '/v1/plain' : '/v1/ai/custom',
            setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-account-id': `a${Math.floor(Math.random() * 10_000)}`, 'x-task-count': '1' } }),
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
await load(2); // warm-up
const before = { proxy: cpuMs(proxy.pid), redis: cpuMs(redis.pid), upstream: cpuMs(upstream.pid), self: process.cpuUsage() };
const result = await load(Number(secondsArg));
const n = result.requests.total;
const per = (ms) => Number(((ms * 1000) / n).toFixed(1));
const self = process.cpuUsage(before.self);
console.log(
  JSON.stringify({
    row,
    requestsPerSecond: Math.round(result.requests.average),
    non2xxOrErrors: result.non2xx + result.errors,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count])),
    cpuMicrosecondsPerRequest: {
      proxy: per(cpuMs(proxy.pid) - before.proxy),
      redis: per(cpuMs(redis.pid) - before.redis),
      upstream: per(cpuMs(upstream.pid) - before.upstream),
      loadGenerator: per((self.user + self.system) / 1000),
    },
  }),
);
process.exit(0);
