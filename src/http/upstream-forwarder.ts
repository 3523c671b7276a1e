// Forwards a request to the upstream and streams the answer back, over a pool
// of keep-alive connections (undici's Pool through its dispatch API: no
// ClientRequest or IncomingMessage per request, the cost a profile showed).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { Logger } from '../logger.js';
import { forwardable } from './forwarded-headers.js';
import type { ForwardOptions } from './forward-options.js';
import { UpstreamExchange } from './upstream-exchange.js';

export type { ForwardOptions } from './forward-options.js';

export class UpstreamForwarder {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    readonly upstream: URL,
    private readonly logger: Logger,
  ) {
    // Pipelining off: one request per connection at a time, as with any proxy
    // an upstream expects. No body timeout: an event stream may pause for long.
    // No headers timeout either: each exchange times the wait for the head
    // itself, from the forward (upstream.timeoutMs), so one timer, not two.
    this.pool = new Pool(upstream.origin, { connections: 512, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
    this.basePath = upstream.pathname.replace(/\/$/, '');
  }

  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
    if (res.destroyed) {
      // The client left while the gate decided: nothing is sent, nothing is owed.
      if (options.beforeRespond) {
        void Promise.resolve()
          .then(() => options.beforeRespond?.({ error: 'not_forwarded' }, {}))
          .catch((err: unknown) => this.logger.error({ err }, 'refund after the client left failed'));
      }
      return;
    }
    const headers = forwardable(req.headers, true, options.dropHeaders);
    const peer = req.socket.remoteAddress;
    if (peer) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${peer}` : peer;
    headers['x-forwarded-proto'] ??= 'encrypted' in req.socket ? 'https' : 'http';
    if (req.headers.host) headers['x-forwarded-host'] ??= req.headers.host;
    if (options.upstreamHeaders) Object.assign(headers, options.upstreamHeaders);
    let body: Buffer | IncomingMessage | null = null;
    if (options.body) {
      headers['content-length'] = String(options.body.length);
      body = options.body;
    } else if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      // RFC 9112 §6.3: a request with neither field has no body.
      body = req;
    }
    this.pool.dispatch(
      {
        method: req.method ?? 'GET',
        path: this.basePath + options.path,
        headers: headers as Record<string, string | string[]>,
        body,
      },
      new UpstreamExchange(req, res, options, this.logger),
    );
  }

  close(): void {
    void this.pool.destroy().catch(() => {});
  }
}
