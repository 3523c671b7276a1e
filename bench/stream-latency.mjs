// Server-sent events, one stream at a time: how much later each of a stream's
// 20 chunks reached this process through a proxy than the same chunk did
// directly. Each stream through a proxy has a twin opened straight to the
// upstream at the same time (bench/servers.mjs writes every chunk to both
// twins in one callback), so a chunk's added lag is its arrival through the
// proxy minus its twin's direct arrival, read on one clock: what issue #17
// asks ("within 1 ms of when it would arrive directly"), with the upstream's
// and this process's own delays common to both twins.
// Run by bench/run.mjs in a fresh process, so that no load generator's heap
// adds its GC pauses. With several proxies their streams take turns (proxy 1,
// proxy 2, …, proxy 1, …): a slow spell of the machine reaches each alike.
// Usage: node bench/stream-latency.mjs <streams> <upstream-port> <proxy-port> [proxy-port …]
//   prints a JSON array, one { chunks, p50, p90, p99 } (ms added) per proxy

import http from 'node:http';
import { quantile } from './quantile.mjs';

const CHUNKS = 20;

/** One stream; records when each numbered chunk arrived in `arrivals`. */
function oneStream(port, agent, pair, account, arrivals) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: `/v1/ai/stream?pair=${pair}`,
        method: 'POST',
        agent,
        headers: { 'x-account-id': account, 'x-task-count': '1', 'content-length': '0' },
      },
      (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (text) => {
          const at = performance.now();
          buf += text;
          let cut = buf.indexOf('\n\n');
          while (cut >= 0) {
            arrivals[Number(buf.slice(6, cut))] = at;
            buf = buf.slice(cut + 2);
            cut = buf.indexOf('\n\n');
          }
        });
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`stream on port ${port} answered ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function streamLatency(upstreamPort, ports, streams) {
  const direct = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const added = ports.map(() => []);
  for (let i = 0; i < streams; i++) {
    for (const [j, port] of ports.entries()) {
      const viaProxy = [];
      const straight = [];
      const pair = `${j}-${i}`;
      const account = `sse-${i % 50}`;
      await Promise.all([oneStream(port, agents[j], pair, account, viaProxy), oneStream(upstreamPort, direct, pair, account, straight)]);
      // The first 10 streams of each proxy warm it up and are not counted.
      if (i < 10) continue;
      for (let k = 0; k < CHUNKS; k++) added[j].push(viaProxy[k] - straight[k]);
    }
  }
  direct.destroy();
  for (const agent of agents) agent.destroy();
  return added.map((l) => {
    if (l.some(Number.isNaN)) throw new Error('a stream lost a chunk');
    l.sort((a, b) => a - b);
    return { chunks: l.length, p50: quantile(l, 0.5), p90: quantile(l, 0.9), p99: quantile(l, 0.99) };
  });
}

const [streams, upstreamPort, ...ports] = process.argv.slice(2).map(Number);
process.stdout.write(`${JSON.stringify(await streamLatency(upstreamPort, ports, streams))}\n`);
