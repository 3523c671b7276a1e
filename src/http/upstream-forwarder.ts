// Forwards a request to the upstream and streams the answer back, over
// keep-alive connections. Hop-by-hop headers (RFC 9110 §7.6.1) stay on their
// own hop; everything else passes through untouched.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from '../logger.js';
import type { UpstreamResult } from '../domain/refund-policy.js';
import { problem } from './problem-details.js';
import { sendProblem } from './send-problem.js';
import type { EndOfBodySettle } from './settle-at-end.js';
import { UsageReader } from './usage-reader.js';
import { ResponseRecorder, type SentResponse } from './stored-response.js';

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

/** The fields a Connection header names, or null when it names none (the usual case: no allocation). */
function namedByConnection(connection: string | string[] | undefined): Set<string> | null {
  if (connection === undefined) return null;
  const list = String(connection);
  if (list === '' || list === 'keep-alive' || list === 'close') return null;
  const named = new Set(
    list
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  return named.size > 0 ? named : null;
}

/**
 * One pass over a message's headers: hop-by-hop fields (and those its
 * Connection header names) dropped; with `ownToo`, creditgate-* fields as well
 * (a client's are never trusted upstream) and the `drop` list.
 */
function forwardable(headers: http.IncomingHttpHeaders, ownToo: boolean, drop?: readonly string[]): http.OutgoingHttpHeaders {
  const named = namedByConnection(headers.connection);
  const out: http.OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (named?.has(name)) continue;
    if (ownToo && (name.startsWith('creditgate-') || (drop !== undefined && drop.length > 0 && drop.includes(name)))) continue;
    out[name] = value;
  }
  return out;
}

export interface ForwardOptions {
  /** The request target to send: the normalised path and the query. */
  readonly path: string;
  /** The request's x-request-id, added to the response unless the upstream sent its own. */
  readonly requestId?: string;
  /** Request headers to drop before forwarding (the trusted-hop secret…). */
  readonly dropHeaders?: readonly string[];
  /** Response headers to add (RateLimit…), when there is no `beforeRespond`. */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** Request headers to add for the upstream (creditgate-reserved…). */
  readonly upstreamHeaders?: Readonly<Record<string, string>>;
  /** The body, when the gate already read it; otherwise the request is streamed. */
  readonly body?: Buffer;
  readonly problemBaseUrl: string;
  /** Longest wait for the upstream's response headers; then 504. */
  readonly timeoutMs: number;
  /** Called once: with the upstream's status and the seconds until its headers, or with no status on failure. */
  readonly onUpstream?: (status: number | undefined, seconds: number) => void;
  /**
   * Runs after the upstream answered or failed and before the client sees a
   * status (refund, settle); returns the response headers to add.
   */
  readonly beforeRespond?: (result: UpstreamResult, headers: http.IncomingHttpHeaders) => Promise<Record<string, string>>;
  /**
   * Called once after `beforeRespond`: with the response (body up to
   * `recordUpTo` bytes) once the upstream's body is complete — the client's
   * response ends only after it resolves — or with null when there is no
   * such response (an error, a larger body, a client that left).
   */
  readonly afterResponse?: (response: SentResponse | null) => Promise<void>;
  readonly recordUpTo?: number;
  /**
   * Called once `beforeRespond` has run: when it gives a settle, the body is
   * read on its way to the client and the settle runs when it ends (or ends
   * early), before the client's response ends.
   */
  readonly atEnd?: () => EndOfBodySettle | undefined;
}

export class UpstreamForwarder {
  private readonly agent: http.Agent;
  private readonly client: typeof http | typeof https;
  private readonly basePath: string;
  private readonly hostname: string;
  private readonly port: number | undefined;

  constructor(
    readonly upstream: URL,
    private readonly logger: Logger,
  ) {
    const secure = upstream.protocol === 'https:';
    this.client = secure ? https : http;
    this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256 });
    this.basePath = upstream.pathname.replace(/\/$/, '');
    this.hostname = upstream.hostname;
    this.port = upstream.port === '' ? undefined : Number(upstream.port);
  }

  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
    if (res.destroyed) {
      // The client left while the gate decided: nothing is sent, nothing is owed.
      void options.beforeRespond?.({ error: 'not_forwarded' }, {}).catch((err: unknown) => this.logger.error({ err }, 'refund after the client left failed'));
      return;
    }
    const headers = forwardable(req.headers, true, options.dropHeaders);
    const peer = req.socket.remoteAddress;
    if (peer) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${peer}` : peer;
    headers['x-forwarded-proto'] ??= 'encrypted' in req.socket ? 'https' : 'http';
    if (req.headers.host) headers['x-forwarded-host'] ??= req.headers.host;
    Object.assign(headers, options.upstreamHeaders);
    if (options.body) headers['content-length'] = String(options.body.length);

    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const outgoing = this.client.request({
      hostname: this.hostname,
      ...(this.port === undefined ? {} : { port: this.port }),
      method: req.method,
      path: this.basePath + options.path,
      headers,
      agent: this.agent,
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      outgoing.destroy(new Error(`upstream did not answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    timer.unref();

    const settle = async (result: UpstreamResult, upHeaders: http.IncomingHttpHeaders): Promise<Record<string, string>> => {
      if (!options.beforeRespond) return { ...options.responseHeaders };
      try {
        return await options.beforeRespond(result, upHeaders);
      } catch (err) {
        // The answer still goes out; what could not be refunded or settled is logged.
        this.logger.error({ err: { message: (err as Error).message } }, 'refund or settle after the response failed');
        return { ...options.responseHeaders };
      }
    };

    let reported = false;
    const report = async (response: SentResponse | null): Promise<void> => {
      if (reported) return;
      reported = true;
      await options.afterResponse?.(response).catch((err: unknown) => this.logger.error({ err }, 'after-response step failed'));
    };

    outgoing.on('response', (up) => {
      clearTimeout(timer);
      options.onUpstream?.(up.statusCode, elapsed());
      const respond = (extra: Record<string, string>): void => {
        const metering = options.atEnd?.();
        const reader = metering ? new UsageReader(metering.paths, up.headers['content-type'], metering.maxBytes) : undefined;
        let settledAtEnd = false;
        const settleAtEnd = async (complete: boolean, reason?: 'client_abort' | 'connection_error'): Promise<void> => {
          if (!metering || !reader || settledAtEnd) return;
          settledAtEnd = true;
          await metering
            .settle({ ...reader.end(), complete, ...(reason ? { reason } : {}), trailers: up.trailers })
            .catch((err: unknown) => this.logger.error({ err }, 'settle at the end of the response failed'));
        };
        if (res.destroyed) {
          up.destroy();
          void settleAtEnd(false, 'client_abort');
          void report(null);
          return;
        }
        const status = up.statusCode ?? 502;
        const out = forwardable(up.headers, false);
        // Trailers are forwarded (below), so the field announcing them is too.
        if (up.headers.trailer !== undefined) out.trailer = up.headers.trailer;
        if (options.requestId !== undefined && out['x-request-id'] === undefined) out['x-request-id'] = options.requestId;
        Object.assign(out, extra);
        res.writeHead(status, up.statusMessage, out);
        let upstreamFailed = false;
        const upstreamBroke = () => {
          if (clientGone) return;
          upstreamFailed = true;
          res.destroy();
        };
        up.on('error', upstreamBroke);
        // An upstream connection that closes mid-body need not say so with an error.
        up.once('close', () => {
          if (!up.complete) upstreamBroke();
        });
        const forwardTrailers = () => {
          if (Object.keys(up.trailers).length > 0) res.addTrailers(up.trailers);
        };
        if (!options.afterResponse && !metering) {
          up.once('end', forwardTrailers);
          up.pipe(res);
          return;
        }
        // An event stream goes out chunk by chunk. Any other body's last chunk
        // waits for the after-response steps (the settle, an idempotency
        // record): a client that has the whole answer sees final numbers and
        // can replay it at once.
        const streaming = reader?.stream ?? false;
        const recorder = options.recordUpTo === undefined ? null : new ResponseRecorder(options.recordUpTo);
        let held: Buffer | undefined;
        let ended = false;
        res.once('close', () => {
          if (!ended) void settleAtEnd(false, upstreamFailed ? 'connection_error' : 'client_abort');
          void report(null);
        });
        const send = (chunk: Buffer) => {
          if (!res.write(chunk)) {
            up.pause();
            res.once('drain', () => up.resume());
          }
        };
        up.on('data', (chunk: Buffer) => {
          recorder?.add(chunk);
          reader?.add(chunk);
          if (streaming) return send(chunk);
          if (held) send(held);
          held = chunk;
        });
        up.once('end', () => {
          ended = true;
          forwardTrailers();
          const body = recorder?.body() ?? null;
          void settleAtEnd(true)
            .then(() => report(body ? { status, headers: out, body } : null))
            .then(() => res.end(held));
        });
      };
      // With nothing to settle, the head goes out now (no promise, no extra turn).
      if (options.beforeRespond) void settle({ status: up.statusCode ?? 502 }, up.headers).then(respond);
      else respond({ ...options.responseHeaders });
    });
    outgoing.on('error', (err) => {
      clearTimeout(timer);
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      if (clientGone) {
        // Forwarded whole, the upstream had the request; cut off mid-request, it had nothing to work on.
        const whole = outgoing.writableFinished;
        this.logger.info({ upstream: whole ? 'client_abort' : 'not_forwarded' }, 'client went away: upstream request closed');
        void settle({ error: whole ? 'client_abort' : 'not_forwarded' }, {})
          .then(() =>
            whole ? options.atEnd?.()?.settle({ complete: false, reason: 'client_abort', values: new Map(), tooLarge: false, trailers: {} }) : undefined,
          )
          .catch((err: unknown) => this.logger.error({ err }, 'settle after the client left failed'))
          .then(() => report(null));
        return;
      }
      // Not a hang-up: the upstream failed (no status).
      options.onUpstream?.(undefined, elapsed());
      const code = (err as NodeJS.ErrnoException).code;
      this.logger.warn({ err: { message: err.message, code }, timedOut }, 'upstream request failed');
      void settle({ error: timedOut ? 'timeout' : 'connection_error' }, {}).then((extra) => {
        if (res.destroyed) return void report(null);
        const p = timedOut
          ? problem('upstream-timeout', `the upstream service did not answer within ${options.timeoutMs} ms`, { headers: extra })
          : problem('upstream-unavailable', 'the upstream service did not answer', { headers: extra });
        if (options.requestId !== undefined) res.setHeader('x-request-id', options.requestId);
        sendProblem(res, p, options.problemBaseUrl);
        void report(null);
      });
    });
    // A client that goes away should not leave the upstream working for nobody.
    let clientGone = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      outgoing.destroy();
    });

    if (options.body) outgoing.end(options.body);
    else req.pipe(outgoing);
  }

  close(): void {
    this.agent.destroy();
  }
}
