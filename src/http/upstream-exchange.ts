// One request's trip through the upstream, driven by undici's dispatch
// callbacks (see upstream-forwarder.ts for the pool that sends it).

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { UpstreamResult } from '../domain/refund-policy.js';
import type { Logger } from '../logger.js';
import { forwardable } from './forwarded-headers.js';
import type { ForwardOptions } from './forward-options.js';
import { problem } from './problem-details.js';
import { sendProblem } from './send-problem.js';
import type { EndOfBodySettle } from './settle-at-end.js';
import { isStreamed, ResponseRecorder, type SentResponse } from './stored-response.js';
import { UsageReader } from './usage-reader.js';

/** Response headers creditgate adds (RateLimit…). */
type Extra = Readonly<Record<string, string>> | undefined;

/** Why an exchange was cut off from this side. */
const CLIENT_LEFT = 'client went away';

/**
 * One request's trip through the upstream, driven by undici's dispatch
 * callbacks: the head waits for `beforeRespond` (refund, settle), body chunks
 * that arrive meanwhile are queued, and the client's backpressure pauses the
 * upstream connection.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private readonly started = performance.now();
  private requestSent = false;
  private clientGone = false;
  /** The upstream's status; 0 until its head arrived. */
  private status = 0;
  private upHeaders: IncomingHttpHeaders = {};
  private statusMessage = '';
  /** The head went out to the client: chunks pass through from here on. */
  private headWritten = false;
  private queued: Buffer[] | null = null;
  private upstreamEnded = false;
  private upstreamFailed = false;
  private trailers: IncomingHttpHeaders = {};
  private waitingForDrain = false;
  // Set when the body is read on its way (a settle, a kept response).
  private tapped = false;
  private metering: EndOfBodySettle | undefined;
  private reader: UsageReader | undefined;
  private recorder: ResponseRecorder | null = null;
  private streaming = false;
  private held: Buffer | undefined;
  private sentHeaders: OutgoingHttpHeaders = {};
  private settledAtEnd = false;
  private reported = false;
  /**
   * The upstream timeout, counted from the forward as http.request's timer
   * was: undici's headersTimeout starts only once the request is written (a
   * connection that never completes waited for its 10 s connect timeout, then
   * answered 502), and its coarse timer fires up to a second late. Decided
   * after the poll phase that follows it (as store-deadline.ts does): a head
   * that arrived in time but waits behind a busy event loop is read first,
   * not answered 504 and refunded for work the upstream did.
   */
  private readonly timer: NodeJS.Timeout;
  private timedOut = false;
  /** failedBeforeHead has run: whatever undici reports later is not answered again. */
  private answered = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly options: ForwardOptions,
    private readonly logger: Logger,
  ) {
    // A client that goes away should not leave the upstream working for nobody.
    res.on('close', () => this.clientClosed());
    this.timer = setTimeout(() => setImmediate(() => this.headersTimedOut()), options.timeoutMs);
    this.timer.unref();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone || this.answered) controller.abort(new Error(CLIENT_LEFT));
  }

  onRequestSent(): void {
    this.requestSent = true;
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // undici reports informational heads (100 Continue, 103 Early Hints) here
    // too; only the final response is answered, refunded or settled (as
    // http.request's 'response' event did).
    if (status < 200) return;
    clearTimeout(this.timer);
    this.status = status;
    this.upHeaders = headers;
    this.statusMessage = statusMessage ?? '';
    this.options.onUpstream?.(status, this.elapsed());
    const extra = this.beforeRespond({ status }, headers);
    if (!(extra instanceof Promise)) {
      this.respond(extra);
      return;
    }
    // The client sees no status until the refund or settle is decided.
    controller.pause();
    void extra.then((e) => this.respond(e));
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.headWritten) this.pass(chunk);
    else if (this.queued) this.queued.push(chunk);
    else this.queued = [chunk];
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.upstreamEnded = true;
    this.trailers = trailers;
    if (this.headWritten) this.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.answered) return;
    clearTimeout(this.timer);
    if (this.status === 0) {
      this.failedBeforeHead(err);
      return;
    }
    // Mid-body: the upstream connection broke, or this side cut it off.
    if (this.clientLeft()) return;
    this.upstreamFailed = true;
    if (this.headWritten) this.res.destroy();
  }

  private clientLeft(): boolean {
    return this.clientGone || this.res.destroyed || this.req.readableAborted;
  }

  private elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  private respond(extra: Extra): void {
    const { res, options } = this;
    this.metering = options.atEnd?.();
    if (this.metering) this.reader = new UsageReader(this.metering.paths, this.upHeaders['content-type'], this.metering.maxBytes);
    if (res.destroyed) {
      this.controller?.abort(new Error(CLIENT_LEFT));
      void this.settleAtEnd(false, 'client_abort');
      void this.report(null);
      return;
    }
    const out = forwardable(this.upHeaders, false);
    // Trailers are forwarded, so the field announcing them is too.
    if (this.upHeaders.trailer !== undefined) out.trailer = this.upHeaders.trailer;
    if (options.requestId !== undefined && out['x-request-id'] === undefined) out['x-request-id'] = options.requestId;
    if (extra) Object.assign(out, extra);
    res.writeHead(this.status, this.statusMessage, out);
    this.headWritten = true;
    this.sentHeaders = out;
    if (options.afterResponse || this.metering) {
      // A stream (SSE, NDJSON) goes out chunk by chunk; only its end waits.
      // Any other body's last chunk waits for the after-response steps (the
      // settle, an idempotency record): a client that has the whole answer
      // sees final numbers and can replay it at once.
      this.tapped = true;
      // Metered or not: an idempotency record alone must not hold a stream's events back.
      this.streaming = isStreamed(this.upHeaders['content-type']);
      if (options.recordUpTo !== undefined) this.recorder = new ResponseRecorder(options.recordUpTo);
    }
    if (this.upstreamFailed) {
      res.destroy();
      return;
    }
    const queued = this.queued;
    this.queued = null;
    if (queued) for (const chunk of queued) this.pass(chunk);
    if (this.upstreamEnded) this.finish();
    else if (!this.waitingForDrain) this.controller?.resume();
  }

  private pass(chunk: Buffer): void {
    if (this.tapped) {
      this.recorder?.add(chunk);
      this.reader?.add(chunk);
      if (!this.streaming) {
        // Held back one chunk: the last goes out after the after-response steps.
        const previous = this.held;
        this.held = chunk;
        if (previous === undefined) return;
        chunk = previous;
      }
    }
    this.send(chunk);
  }

  private send(chunk: Buffer): void {
    if (this.res.write(chunk) || this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.controller?.pause();
    this.res.once('drain', () => {
      this.waitingForDrain = false;
      this.controller?.resume();
    });
  }

  private finish(): void {
    const { res } = this;
    if (Object.keys(this.trailers).length > 0) res.addTrailers(this.trailers as OutgoingHttpHeaders);
    if (!this.tapped) {
      res.end();
      return;
    }
    const body = this.recorder?.body() ?? null;
    void this.settleAtEnd(true)
      .then(() => this.report(body ? { status: this.status, headers: this.sentHeaders, body } : null))
      .then(() => res.end(this.held));
  }

  private clientClosed(): void {
    if (!this.res.writableFinished) {
      this.clientGone = true;
      if (this.controller && !this.controller.aborted) this.controller.abort(new Error(CLIENT_LEFT));
      // Still waiting for a connection: undici has no request to abort yet (it
      // is cut off in onRequestStart), so nothing would answer before the
      // timeout; it was never sent, and is settled as such now.
      else if (!this.controller && this.status === 0) this.failedBeforeHead(new Error(CLIENT_LEFT));
    }
    if (!this.tapped) return;
    // The upstream answered whole and finish() is settling it: that answer is
    // kept for replays as it stands (only its last chunk did not reach this
    // client, and a retry after a dropped connection is what a key is for).
    if (this.upstreamEnded) return;
    void this.settleAtEnd(false, this.upstreamFailed ? 'connection_error' : 'client_abort');
    void this.report(null);
  }

  private headersTimedOut(): void {
    if (this.status !== 0 || this.answered) return;
    this.timedOut = true;
    const err = new Error(`upstream did not answer within ${this.options.timeoutMs} ms`);
    // Written or being written: cut off (onResponseError answers). Still
    // waiting for a connection: answered now, and never sent (onRequestStart).
    if (this.controller && !this.controller.aborted) this.controller.abort(err);
    else this.failedBeforeHead(err);
  }

  /** No status from the upstream: it failed, timed out, or the client left first. */
  private failedBeforeHead(err: Error): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.timer);
    const { res, options } = this;
    if (this.clientLeft()) {
      // Forwarded whole, the upstream had the request; cut off mid-request, it had nothing to work on.
      const whole = this.requestSent;
      this.logger.info({ upstream: whole ? 'client_abort' : 'not_forwarded' }, 'client went away: upstream request closed');
      void this.settle({ error: whole ? 'client_abort' : 'not_forwarded' }, {})
        .then(() =>
          whole ? options.atEnd?.()?.settle({ complete: false, reason: 'client_abort', values: new Map(), tooLarge: false, trailers: {} }) : undefined,
        )
        .catch((e: unknown) => this.logger.error({ err: e }, 'settle after the client left failed'))
        .then(() => this.report(null));
      return;
    }
    options.onUpstream?.(undefined, this.elapsed());
    const code = (err as NodeJS.ErrnoException).code;
    const { timedOut } = this;
    this.logger.warn({ err: { message: err.message, code }, timedOut }, 'upstream request failed');
    void this.settle({ error: timedOut ? 'timeout' : 'connection_error' }, {}).then((extra) => {
      if (res.destroyed) return void this.report(null);
      const p = timedOut
        ? problem('upstream-timeout', `the upstream service did not answer within ${options.timeoutMs} ms`, { headers: extra })
        : problem('upstream-unavailable', 'the upstream service did not answer', { headers: extra });
      if (options.requestId !== undefined) res.setHeader('x-request-id', options.requestId);
      sendProblem(res, p, options.problemBaseUrl);
      void this.report(null);
    });
  }

  private beforeRespond(result: UpstreamResult, headers: IncomingHttpHeaders): Extra | Promise<Extra> {
    const { options } = this;
    if (!options.beforeRespond) return options.responseHeaders;
    try {
      const extra = options.beforeRespond(result, headers);
      return extra instanceof Promise ? extra.catch((err: unknown) => this.beforeRespondFailed(err)) : extra;
    } catch (err) {
      return this.beforeRespondFailed(err);
    }
  }

  private beforeRespondFailed(err: unknown): Extra {
    // The answer still goes out; what could not be refunded or settled is logged.
    this.logger.error({ err: { message: (err as Error).message } }, 'refund or settle after the response failed');
    return this.options.responseHeaders;
  }

  private settle(result: UpstreamResult, headers: IncomingHttpHeaders): Promise<Extra> {
    return Promise.resolve(this.beforeRespond(result, headers));
  }

  private async settleAtEnd(complete: boolean, reason?: 'client_abort' | 'connection_error'): Promise<void> {
    const { metering, reader } = this;
    if (!metering || !reader || this.settledAtEnd) return;
    this.settledAtEnd = true;
    await metering
      .settle({ ...reader.end(), complete, ...(reason ? { reason } : {}), trailers: this.trailers })
      .catch((err: unknown) => this.logger.error({ err }, 'settle at the end of the response failed'));
  }

  private async report(response: SentResponse | null): Promise<void> {
    if (this.reported) return;
    this.reported = true;
    await this.options.afterResponse?.(response).catch((err: unknown) => this.logger.error({ err }, 'after-response step failed'));
  }
}
