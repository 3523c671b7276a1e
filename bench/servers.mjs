// The processes a bench row runs against, each started as a child process so
// that the load generator does not share its event loop with them:
//   upstream   — the trivial upstream every row ends at
//   peer-erl   — express-rate-limit + rate-limit-redis in an Express app that forwards
//   peer-rlf   — rate-limiter-flexible RateLimiterRedis in an Express app that forwards
//   express-bare — the same Express app forwarding with no limiter (the peers' baseline)
//   minimal    — the minimal Node proxy: node:http server, keep-alive http.Agent,
//                hop-by-hop headers dropped, nothing else (the yardstick)
//   minimal-undici — the same with undici's Pool (dispatch API) as the
//                upstream client, the client creditgate uses: what is left
//                of the gap once the client is the same
// Usage: node bench/servers.mjs <kind> <port> [upstream-port] [redis-url]

import http from 'node:http';

const [kind, portArg, upstreamPort, redisUrl] = process.argv.slice(2);
const port = Number(portArg);

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** A message's headers without the hop-by-hop ones: all the minimal proxies do to them. */
function strip(headers) {
  const out = {};
  for (const k in headers) if (!HOP_BY_HOP.has(k)) out[k] = headers[k];
  return out;
}

function forwarder() {
  // The same forwarding creditgate does: keep-alive agent, hop-by-hop headers
  // dropped, x-forwarded-* added, an upstream timeout, streamed both ways.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256 });
  return (req, res) => {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers['x-forwarded-for'] = req.socket.remoteAddress;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = req.headers.host;
    const out = http.request({ host: '127.0.0.1', port: Number(upstreamPort), method: req.method, path: req.url, headers, agent }, (up) => {
      clearTimeout(timer);
      const back = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) back[k] = v;
      res.writeHead(up.statusCode ?? 502, back);
      up.pipe(res);
    });
    const timer = setTimeout(() => out.destroy(), 30_000);
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  };
}

async function main() {
  if (kind === 'upstream') {
    const body = '{"ok":true}';
    /** Event streams waiting for their twin, by ?pair=. */
    const waiting = new Map();
    http
      .createServer((req, res) => {
        req.resume();
        // An event stream of 20 chunks 1 ms apart, each numbered. Two requests
        // with the same ?pair= (one direct, one through a proxy) are twins:
        // each chunk goes to both in the same callback, so the client can tell
        // how much later the proxy delivered it than the direct connection did.
        if (req.url.startsWith('/v1/ai/stream')) {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
          res.flushHeaders();
          const pair = new URL(req.url, 'http://upstream').searchParams.get('pair') ?? '';
          const twins = waiting.get(pair) ?? [];
          twins.push(res);
          if (pair !== '' && twins.length < 2) {
            waiting.set(pair, twins);
            return;
          }
          waiting.delete(pair);
          let n = 0;
          const tick = setInterval(() => {
            for (const twin of twins) twin.write(`data: ${n}\n\n`);
            if (++n === 20) {
              clearInterval(tick);
              for (const twin of twins) twin.end();
            }
          }, 1);
          return;
        }
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
          res.end(body);
        });
      })
      .listen(port, '127.0.0.1', () => process.send?.('ready'));
    return;
  }
  if (kind === 'minimal') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256 });
    http
      .createServer((req, res) => {
        const out = http.request(
          { host: '127.0.0.1', port: Number(upstreamPort), method: req.method, path: req.url, headers: strip(req.headers), agent },
          (up) => {
            res.writeHead(up.statusCode ?? 502, strip(up.headers));
            up.pipe(res);
          },
        );
        out.on('error', () => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
        req.pipe(out);
      })
      .listen(port, '127.0.0.1', () => process.send?.('ready'));
    return;
  }
  if (kind === 'minimal-undici') {
    const { Pool } = await import('undici');
    const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 512, pipelining: 1 });
    http
      .createServer((req, res) => {
        const body = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined ? req : null;
        pool.dispatch(
          { method: req.method, path: req.url, headers: strip(req.headers), body },
          {
            onRequestStart() {},
            onResponseStart(_c, status, headers) {
              res.writeHead(status, strip(headers));
            },
            onResponseData(c, chunk) {
              if (!res.write(chunk)) {
                c.pause();
                res.once('drain', () => c.resume());
              }
            },
            onResponseEnd() {
              res.end();
            },
            onResponseError() {
              if (!res.headersSent) res.writeHead(502);
              res.end();
            },
          },
        );
      })
      .listen(port, '127.0.0.1', () => process.send?.('ready'));
    return;
  }
  const { default: express } = await import('express');
  const { Redis } = await import('ioredis');
  const client = kind === 'express-bare' ? undefined : new Redis(redisUrl, { enableAutoPipelining: true });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (kind === 'peer-erl') {
    const { rateLimit } = await import('express-rate-limit');
    const { RedisStore } = await import('rate-limit-redis');
    app.use(
      rateLimit({
        windowMs: 30 * 24 * 3600 * 1000,
        limit: 1_000_000_000,
        keyGenerator: (req) => String(req.headers['x-account-id']),
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        store: new RedisStore({ sendCommand: (...args) => client.call(...args), prefix: 'bench-erl:' }),
      }),
    );
  } else if (kind === 'peer-rlf') {
    const { RateLimiterRedis } = await import('rate-limiter-flexible');
    const limiter = new RateLimiterRedis({ storeClient: client, points: 1_000_000_000, duration: 30 * 24 * 3600, keyPrefix: 'bench-rlf' });
    app.use(async (req, res, next) => {
      try {
        await limiter.consume(String(req.headers['x-account-id']), Number(req.headers['x-task-count'] ?? 1));
        next();
      } catch {
        res.status(429).end();
      }
    });
  }
  app.use(forwarder());
  app.listen(port, '127.0.0.1', () => process.send?.('ready'));
}

void main();
