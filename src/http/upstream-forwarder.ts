// Forwards a request to the upstream and streams the answer back, over
// keep-alive connections. Hop-by-hop headers (RFC 9110 §7.6.1) stay on their
// own hop; everything else passes through untouched.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from '../logger.js';
import { problem, problemBody, problemHeaders } from './problem-details.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export interface ForwardOptions {
  /** Response headers to add (RateLimit…). */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** The body, when the gate already read it; otherwise the request is streamed. */
  readonly body?: Buffer;
  readonly problemBaseUrl: string;
  /** Called once: with the upstream's status and the seconds until its headers, or with no status on failure. */
  readonly onUpstream?: (status: number | undefined, seconds: number) => void;
}

export class UpstreamForwarder {
  private readonly agent: http.Agent;
  private readonly client: typeof http | typeof https;
  private readonly basePath: string;

  constructor(
    readonly upstream: URL,
    private readonly logger: Logger,
  ) {
    const secure = upstream.protocol === 'https:';
    this.client = secure ? https : http;
    this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256 });
    this.basePath = upstream.pathname.replace(/\/$/, '');
  }

  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
    const headers = withoutHopByHop(req.headers);
    const peer = req.socket.remoteAddress;
    if (peer) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${peer}` : peer;
    headers['x-forwarded-proto'] ??= 'encrypted' in req.socket ? 'https' : 'http';
    if (req.headers.host) headers['x-forwarded-host'] ??= req.headers.host;
    if (options.body) headers['content-length'] = String(options.body.length);

    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const outgoing = this.client.request({
      protocol: this.upstream.protocol,
      hostname: this.upstream.hostname,
      port: this.upstream.port,
      method: req.method,
      path: this.basePath + (req.url ?? '/'),
      headers,
      agent: this.agent,
    });

    outgoing.on('response', (up) => {
      options.onUpstream?.(up.statusCode, elapsed());
      const out = withoutHopByHop(up.headers);
      Object.assign(out, options.responseHeaders);
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    outgoing.on('error', (err) => {
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      options.onUpstream?.(undefined, elapsed());
      this.logger.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'upstream request failed');
      const p = problem('upstream-unavailable', 'the upstream service did not answer');
      const body = JSON.stringify(problemBody(p, options.problemBaseUrl));
      res.writeHead(p.status, problemHeaders(p, body));
      res.end(body);
    });
    // A client that goes away should not leave the upstream working for nobody.
    res.on('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });

    if (options.body) outgoing.end(options.body);
    else req.pipe(outgoing);
  }

  close(): void {
    this.agent.destroy();
  }
}
