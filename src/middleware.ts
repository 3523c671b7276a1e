// Express middleware: the same engine and the same answers as the sidecar,
// inside an existing app. `app.use(await creditGate({ config, redis }))`.

import type { IncomingHttpHeaders } from 'node:http';
import type { Cluster, Redis } from 'ioredis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { CompiledConfig } from './config/compiled-config.js';
import { loadConfigFile, loadConfigObject } from './config/index.js';
import type { CreditEngine, PoolStatus } from './engine/credit-engine.js';
import { readJsonBody, type BodyRead } from './http/json-body.js';
import { sendProblem } from './http/send-problem.js';
import { RequestGate } from './http/request-gate.js';
import { requestIdOf } from './http/request-id.js';
import { silentLogger, type Logger } from './logger.js';
import type { CreditStore } from './store/credit-store.js';
import type { Metrics } from './observability/metrics.js';
import { createRuntime } from './runtime.js';

export interface CreditGateOptions {
  /** A YAML file path, or the config as an object (the YAML's shape). */
  readonly config: string | Record<string, unknown>;
  /** A Redis URL or an ioredis client; without it, the in-memory store. */
  readonly redis?: string | Redis | Cluster;
  /** A store of your own (overrides `redis`). */
  readonly store?: CreditStore;
  /** Key prefix in Redis (default "cg"). */
  readonly keyPrefix?: string;
  /** pino logger; silent by default inside your app. */
  readonly logger?: Logger;
}

/** What `res.locals.credits` holds after an allowed, charged request. */
export interface ChargedRequest {
  readonly account: string;
  readonly route: string;
  readonly pools: readonly PoolStatus[];
  /** Held pools and what each may use (what creditgate-reserved tells a sidecar's upstream). */
  readonly reserved: Readonly<Record<string, number>>;
  /**
   * Settles held pools to what was actually used (never above the hold) and
   * keeps the charge. Call it before responding for final numbers; otherwise
   * it happens from the response headers when the response finishes.
   */
  settle(actuals: Readonly<Record<string, number>>): Promise<void>;
  /** Gives the whole charge back (the work was not delivered). */
  refund(): Promise<void>;
}

export interface CreditGateMiddleware extends RequestHandler {
  readonly engine: CreditEngine;
  /** The instance's Prometheus registry: serve `metrics.registry.metrics()` where you like. */
  readonly metrics: Metrics;
  /** Sends queued alerts (up to 5 s), then closes the store if creditGate opened it. */
  close(): Promise<void>;
}

// If a body parser already ran, its result is used; otherwise the body is
// read here and left in req.body, and body parsers that run later see a
// finished stream and keep it.
async function expressBody(req: Request, limit: number, depth: number): Promise<BodyRead> {
  if (req.body !== undefined || req.readableEnded) return { ok: true, raw: Buffer.alloc(0), value: req.body };
  const read = await readJsonBody(req, req.headers, limit, depth);
  if (read.ok) req.body = read.value;
  return read;
}

export async function creditGate(options: CreditGateOptions): Promise<CreditGateMiddleware> {
  const config: CompiledConfig =
    typeof options.config === 'string' ? await loadConfigFile(options.config) : loadConfigObject(options.config);
  const logger = options.logger ?? silentLogger();
  const runtime = createRuntime({
    config: () => config,
    redis: options.redis,
    store: options.store,
    keyPrefix: options.keyPrefix,
    logger,
    // Inside someone else's app the process metrics are theirs to collect.
    defaultMetrics: false,
  });
  const { engine } = runtime;
  await runtime.start();
  const gate = new RequestGate(engine, logger, { observer: runtime.metrics, burst: runtime.burst });

  const handler = (req: Request, res: Response, next: NextFunction): void => {
    const requestId = requestIdOf(req.headers);
    gate
      .evaluate({
        method: req.method,
        url: req.originalUrl,
        headers: req.headers,
        requestId,
        // Charge by the same letter-case rule the app routes by.
        caseSensitive: Boolean(req.app.get('case sensitive routing')),
        readBody: (limit, depth) => expressBody(req, limit, depth),
      })
      .then((outcome) => {
        // Downstream routing sees the path that was matched (and charged).
        if (outcome.kind !== 'refuse' && req.url === req.originalUrl) req.url = outcome.forwardUrl;
        if (outcome.kind === 'pass') {
          next();
        } else if (outcome.kind === 'refuse') {
          sendProblem(res, outcome.problem, outcome.config.problemBaseUrl, req.originalUrl);
        } else {
          res.set(outcome.headers);
          for (const [name, value] of Object.entries(outcome.upstreamHeaders)) req.headers[name] = value;
          const receipt = outcome.receipt;
          // One of: the handler settles or refunds, or the finished response decides.
          let done = false;
          const once = async (fn: () => Promise<unknown>) => {
            if (done || !receipt) return;
            done = true;
            await fn();
          };
          const credits: ChargedRequest = {
            account: outcome.accountId,
            route: outcome.route.name,
            pools: outcome.pools,
            reserved: Object.fromEntries((receipt?.lines ?? []).filter((l) => l.settle).map((l) => [l.creditType, l.charged])),
            settle: (actuals) =>
              once(async () => {
                await engine.settle(receipt!, new Map(Object.entries(actuals)));
                await engine.complete(receipt!, outcome.config);
              }),
            refund: () => once(() => engine.refund(receipt!, 'not_delivered')),
          };
          res.locals.credits = credits;
          res.once('finish', () => {
            void once(() => gate.finish(outcome, { status: res.statusCode }, res.getHeaders() as IncomingHttpHeaders)).catch((err: unknown) =>
              logger.error({ err, requestId }, 'refund or settle after the response failed'),
            );
          });
          // A client that hangs up while the handler works does not make the work free.
          res.once('close', () => {
            if (res.writableFinished) return;
            void once(() => gate.finish(outcome, { error: 'client_abort' })).catch((err: unknown) =>
              logger.error({ err, requestId }, 'finishing a charge after the client left failed'),
            );
          });
          next();
        }
      }, next);
  };
  return Object.assign(handler, {
    engine,
    metrics: runtime.metrics,
    close: () => runtime.close(5000),
  });
}
