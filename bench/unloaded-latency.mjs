// One request at a time on one keep-alive connection per row, timed with
// hrtime: the latency a single request sees, to the microsecond. Run by
// bench/run.mjs in a fresh process (its own heap, grown by nothing else, adds
// no GC pauses of its own). The rows take turns request by request, so a slow
// spell of the machine reaches every row alike.
// Usage: node bench/unloaded-latency.mjs <samples> '<rows as JSON>'
//   rows: [{ "name", "port", "path", "prefix" }, …]; each request is for one
//   of 100 accounts `<prefix><n>`; the first 200 requests of a row are not counted
//   prints a JSON object, { <name>: { p50, p99 } } in ms

import http from 'node:http';
import { quantile } from './quantile.mjs';

const WARM_UP = 200;
const samples = Number(process.argv[2]);
const rows = JSON.parse(process.argv[3]);

function once(row, agent, i) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: row.port,
        path: row.path,
        method: 'POST',
        agent,
        headers: { 'x-account-id': `${row.prefix}${i % 100}`, 'x-task-count': '1', 'content-length': '0' },
      },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const agents = rows.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
const times = rows.map(() => []);
for (let i = 0; i < samples + WARM_UP; i++) {
  for (const [j, row] of rows.entries()) {
    const t0 = process.hrtime.bigint();
    await once(row, agents[j], i);
    if (i >= WARM_UP) times[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
for (const agent of agents) agent.destroy();
const result = {};
for (const [j, { name }] of rows.entries()) {
  const sorted = times[j].sort((a, b) => a - b);
  result[name] = { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}
console.log(JSON.stringify(result));
