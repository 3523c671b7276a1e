// Server-sent events, one stream at a time: how long after the upstream sent
// each of a stream's 20 chunks it reached this process (the upstream stamps
// each chunk; one machine, one clock). Run by bench/run.mjs in a fresh
// process, so that no load generator's heap adds its GC pauses to the lags.
// With several ports the streams take turns (port 1, port 2, …, port 1, …):
// a slow spell of the machine reaches every port alike.
// Usage: node bench/stream-latency.mjs <streams> <port> [port …]
//   prints a JSON array, one { chunks, p50, p99 } per port

import http from 'node:http';

/** One stream of 20 chunks; pushes each chunk's lag (ms) to `lags` unless `discard`. */
function oneStream(port, agent, account, lags, discard) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/ai/stream',
        method: 'POST',
        agent,
        headers: { 'x-account-id': account, 'x-task-count': '1', 'content-length': '0' },
      },
      (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (text) => {
          const at = performance.timeOrigin + performance.now();
          buf += text;
          let cut = buf.indexOf('\n\n');
          while (cut >= 0) {
            const sent = Number(buf.slice(6, cut));
            if (!discard) lags.push(at - sent);
            buf = buf.slice(cut + 2);
            cut = buf.indexOf('\n\n');
          }
        });
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function streamLatency(ports, streams) {
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const lags = ports.map(() => []);
  for (let i = 0; i < streams; i++) {
    // The first 10 streams of each port warm it up and are not counted.
    for (const [j, port] of ports.entries()) await oneStream(port, agents[j], `sse-${i % 50}`, lags[j], i < 10);
  }
  for (const agent of agents) agent.destroy();
  return lags.map((l) => {
    l.sort((a, b) => a - b);
    const at = (q) => Number(l[Math.floor(q * (l.length - 1))].toFixed(3));
    return { chunks: l.length, p50: at(0.5), p99: at(0.99) };
  });
}

const [streams, ...ports] = process.argv.slice(2).map(Number);
process.stdout.write(`${JSON.stringify(await streamLatency(ports, streams))}\n`);
