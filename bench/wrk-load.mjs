// The bench's HTTP load: wrk (Debian's `wrk`), as issue #17 measured its
// yardstick, in a process of its own. A load generator in C costs each
// request a fraction of the CPU that one written in Node costs, and on a
// 2-core machine every process on the path shares the cores with it.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./wrk-load.lua', import.meta.url));

/**
 * POSTs to `url` + `path` over `connections` keep-alive connections for
 * `seconds`, each request for a random one of `accounts` accounts named
 * `<prefix><n>`. Resolves to req/s, p50/p99 in ms, and the answers that were
 * not 2xx/3xx or never came.
 */
export function wrkLoad(url, { path, prefix, accounts, seconds, connections, threads = 2 }) {
  return new Promise((resolve, reject) => {
    const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '-s', SCRIPT, `${url}${path}`, '--', path, prefix, String(accounts)];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => reject(e.code === 'ENOENT' ? new Error('npm run bench needs wrk on PATH (Debian: apt-get install -y wrk)') : e));
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`wrk ${args.join(' ')} failed (exit ${code}): ${err || out}`));
      const r = JSON.parse(line);
      resolve({
        rps: Math.round(r.requests / (r.durationUs / 1e6)),
        p50: Number((r.p50Us / 1000).toFixed(2)),
        p99: Number((r.p99Us / 1000).toFixed(2)),
        statusAbove399: r.statusAbove399,
        socketErrors: r.socketErrors,
      });
    });
  });
}
