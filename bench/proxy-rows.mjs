// What the per-request tools (cpu-per-request.mjs, instructions-per-request.mjs)
// share: how a row's proxy is started and the load they put on it; and free
// ports, which npm run bench takes here too.

import net from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';

/** Rows that bench/servers.mjs runs: the yardsticks and the Express peers. */
const SERVER_KINDS = ['minimal', 'minimal-undici', 'peer-erl', 'peer-rlf', 'express-bare'];

export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/**
 * The node arguments that start a row's proxy: a proxy script of one's own
 * (`*.mjs`), a bench/servers.mjs kind, or creditgate (`bare` | `redis` |
 * `memory`, as `row@dir` from another build's dist).
 */
export function rowArgs(row, { port, adminPort, upstreamPort, redisUrl, configPath }) {
  const [kind, dist = 'dist'] = row.split('@');
  if (kind.endsWith('.mjs')) return [kind, String(port), String(upstreamPort), redisUrl];
  if (SERVER_KINDS.includes(kind)) return ['bench/servers.mjs', kind, String(port), String(upstreamPort), redisUrl];
  return [
    join(dist, 'cli.js'),
    'serve',
    ...['--config', configPath, '--upstream', `http://127.0.0.1:${upstreamPort}`],
    ...['--port', String(port), '--admin-port', String(adminPort), '--host', '127.0.0.1'],
    ...(kind === 'memory' ? [] : ['--redis', redisUrl]),
  ];
}

/** The path a row's requests go to: a charged route, or none for `bare`. */
export const rowPath = (row) => (row.split('@')[0] === 'bare' ? '/v1/plain' : '/v1/ai/custom');

/** The bench's load on one row: POSTs over 10,000 accounts; `until` is { duration } (s) or { amount } (requests), and may add autocannon's { timeout } (s). */
export const loadRow = (port, path, connections, until) =>
  new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections,
        ...until,
        requests: [
          {
            method: 'POST',
            path,
            setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-account-id': `a${Math.floor(Math.random() * 10_000)}`, 'x-task-count': '1' } }),
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
