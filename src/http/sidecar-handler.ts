// The sidecar's request handler: ask the gate, then answer with a problem or
// forward to the upstream with the RateLimit headers of the charged pools.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import { readJsonBody } from './json-body.js';
import { problem } from './problem-details.js';
import { sendProblem } from './send-problem.js';
import type { RequestGate } from './request-gate.js';
import type { UpstreamForwarder } from './upstream-forwarder.js';

export function createSidecarHandler(gate: RequestGate, forwarder: UpstreamForwarder, logger: Logger) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const baseUrl = gate.engine.currentConfig().problemBaseUrl;
    try {
      const outcome = await gate.evaluate({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        readBody: (limit) => readJsonBody(req, req.headers, limit),
      });
      switch (outcome.kind) {
        case 'pass':
          forwarder.forward(req, res, { problemBaseUrl: outcome.config.problemBaseUrl });
          return;
        case 'refuse':
          // Node discards an unread body before the next request on this
          // connection; one too large to read is not worth discarding.
          if (outcome.problem.status === 413) res.setHeader('connection', 'close');
          sendProblem(res, outcome.problem, outcome.config.problemBaseUrl, req.url);
          return;
        case 'allow':
          forwarder.forward(req, res, {
            problemBaseUrl: outcome.config.problemBaseUrl,
            responseHeaders: outcome.headers,
            ...(outcome.body ? { body: outcome.body.raw } : {}),
          });
          return;
      }
    } catch (err) {
      logger.error({ err }, 'request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.setHeader('connection', 'close');
      sendProblem(res, problem('internal-error', 'creditgate failed to handle this request'), baseUrl);
    }
  };
}
