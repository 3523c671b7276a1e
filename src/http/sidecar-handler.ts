// The sidecar's request handler: ask the gate, then answer with a problem or
// forward to the upstream with the RateLimit headers of the charged pools.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import { statusClass, UNMATCHED_ROUTE, type Metrics } from '../observability/metrics.js';
import { readJsonBody, readRawBody } from './json-body.js';
import { problem } from './problem-details.js';
import type { FinishResult } from './gate-types.js';
import type { RequestGate } from './request-gate.js';
import { requestIdOf } from './request-id.js';
import { sendProblem } from './send-problem.js';
import type { EndOfBodySettle } from './settle-at-end.js';
import { sendReplay } from './stored-response.js';
import type { UpstreamForwarder } from './upstream-forwarder.js';

export function createSidecarHandler(gate: RequestGate, forwarder: UpstreamForwarder, logger: Logger, metrics?: Metrics) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = requestIdOf(req.headers);
    req.headers['x-request-id'] = requestId;
    // Set on the response only where creditgate answers itself; a forwarded
    // response carries it in the head written once (no merge of set fields).
    const ownAnswer = () => res.setHeader('x-request-id', requestId);
    let routeLabel = UNMATCHED_ROUTE;
    if (metrics) {
      res.once('close', () => metrics.countRequest(routeLabel, res.headersSent ? statusClass(res.statusCode) : 'error'));
    }
    const onUpstream = metrics ? (status: number | undefined, seconds: number) => metrics.observeUpstream(routeLabel, statusClass(status), seconds) : undefined;
    const baseUrl = gate.engine.currentConfig().problemBaseUrl;
    // RFC 9112 §6.3: a request whose transfer coding does not end in chunked
    // has no knowable length; servers disagree on it, so it is refused.
    const te = req.headers['transfer-encoding'];
    if (te !== undefined && !/(^|,)\s*chunked\s*$/i.test(te)) {
      ownAnswer();
      res.setHeader('connection', 'close');
      sendProblem(res, problem('invalid-request', 'Transfer-Encoding must end with chunked'), baseUrl);
      return;
    }
    try {
      const outcome = await gate.evaluate({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        requestId,
        readBody: (limit, depth) => readJsonBody(req, req.headers, limit, depth),
        readRawBody: (limit) => readRawBody(req, req.headers, limit, 'a request with an idempotency key may carry'),
      });
      switch (outcome.kind) {
        case 'pass':
          forwarder.forward(req, res, {
            path: outcome.forwardUrl,
            problemBaseUrl: outcome.config.problemBaseUrl,
            timeoutMs: outcome.config.upstreamTimeoutMs,
            dropHeaders: outcome.config.dropHeaders,
            requestId,
            onUpstream,
          });
          return;
        case 'refuse':
          ownAnswer();
          if (outcome.route) routeLabel = outcome.route.name;
          // Node discards an unread body before the next request on this
          // connection; one too large to read is not worth discarding.
          if (outcome.problem.status === 413) res.setHeader('connection', 'close');
          sendProblem(res, outcome.problem, outcome.config.problemBaseUrl, req.url, outcome.route?.problemStyle ?? outcome.config.problemStyle);
          return;
        case 'replay':
          routeLabel = outcome.route.name;
          ownAnswer();
          sendReplay(res, outcome.response);
          return;
        case 'allow': {
          routeLabel = outcome.route.name;
          // Whether the charge stood once the upstream answered: only then is the response kept for replays.
          let kept = false;
          let atEnd: EndOfBodySettle | undefined;
          const idempotent = outcome.receipt?.idempotency !== undefined;
          forwarder.forward(req, res, {
            path: outcome.forwardUrl,
            problemBaseUrl: outcome.config.problemBaseUrl,
            timeoutMs: outcome.config.upstreamTimeoutMs,
            dropHeaders: outcome.config.dropHeaders,
            requestId,
            responseHeaders: outcome.headers,
            upstreamHeaders: outcome.upstreamHeaders,
            beforeRespond: (result, headers) => {
              const take = (finished: FinishResult) => {
                kept = finished.kept;
                atEnd = finished.atEnd;
                return finished.headers;
              };
              const finished = gate.finish(outcome, result, headers);
              return finished instanceof Promise ? finished.then(take) : take(finished);
            },
            atEnd: () => atEnd,
            recordUpTo: idempotent ? outcome.config.idempotency.maxResponseBytes : undefined,
            afterResponse: idempotent
              ? async (response) => {
                  if (kept) await gate.complete(outcome, response);
                }
              : undefined,
            body: outcome.body?.raw,
            onUpstream,
          });
          return;
        }
      }
    } catch (err) {
      logger.error({ err, requestId }, 'request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      ownAnswer();
      res.setHeader('connection', 'close');
      sendProblem(res, problem('internal-error', 'creditgate failed to handle this request'), baseUrl);
    }
  };
}
