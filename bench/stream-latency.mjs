// Server-sent events, one stream at a time: how long after the upstream sent
// each of a stream's 20 chunks it reached this process (the upstream stamps
// each chunk; one machine, one clock). Run by bench/run.mjs in a fresh
// process, so that no load generator's heap adds its GC pauses to the lags.
// Usage: node bench/stream-latency.mjs <port> <streams>   (prints JSON)

import http from 'node:http';

async function streamLatency(port, streams) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const lags = [];
  for (let i = 0; i < streams; i++) {
    await new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/ai/stream',
          method: 'POST',
          agent,
          headers: { 'x-account-id': `sse-${i % 50}`, 'x-task-count': '1', 'content-length': '0' },
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
              if (i >= 10) lags.push(at - sent);
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
  agent.destroy();
  lags.sort((a, b) => a - b);
  const at = (q) => Number(lags[Math.floor(q * (lags.length - 1))].toFixed(3));
  return { chunks: lags.length, p50: at(0.5), p99: at(0.99) };
}

const [port, streams] = process.argv.slice(2).map(Number);
process.stdout.write(`${JSON.stringify(await streamLatency(port, streams))}\n`);
