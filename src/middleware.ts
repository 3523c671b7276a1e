// Express middleware: the same engine and the same answers as the sidecar,
// inside an existing app. `app.use(await creditGate({ config, redis }))`.

import type { IncomingHttpHeaders } from 'node:http';
import type { Cluster, Redis } from 'ioredis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { CompiledConfig } from './config/compiled-config.js';
import { loadConfigFile, loadConfigObject } from './config/index.js';
import type { CreditEngine, PoolStatus } from './engine/credit-engine.js';
import { jsonContentTypeProblem, readJsonBody, type BodyRead } from './http/json-body.js';
import { sendProblem } from './http/send-problem.js';
import { type BodyEnd, endOfBodySettle } from './http/settle-at-end.js';
import { UsageReader } from './http/usage-reader.js';
import type { UpstreamResult } from './domain/refund-policy.js';
import { RequestGate, type AllowOutcome } from './http/request-gate.js';
import { onEnd } from './http/response-tap.js';
import { sendReplay } from './http/stored-response.js';
import { requestIdOf } from './http/request-id.js';
import { silentLogger, type Logger } from './logger.js';
import type { CreditStore } from './store/credit-store.js';
import type { Metrics } from './observability/metrics.js';
import { createRuntime } from './runtime.js';

export interface CreditGateOptions {
  /** A YAML file path, or the config as an object (the YAML's shape). */
  readonly config: string | Record<string, unknown>;
  /** A Redis URL or an ioredis client; without it, the in-memory store (with a warning). */
  readonly redis?: string | Redis | Cluster;
  /**
   * A store of your own (overrides `redis`), or 'memory' to choose the
   * in-memory store (one process, counts lost on restart) without the warning.
   */
  readonly store?: CreditStore | 'memory';
  /** Key prefix in Redis (default "cg"). */
  readonly keyPrefix?: string;
  /** pino logger; silent by default inside your app (a memory-store fallback is then a process warning). */
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

// A body no parser has read and that is not declared JSON is left for the
// app to read: its type and length stand in for it in the idempotency
// fingerprint (a replay is answered from the stored response either way).
async function expressRawBody(req: Request, limit: number, depth: number): Promise<BodyRead> {
  const declaredJson = req.headers['content-type'] !== undefined && jsonContentTypeProblem(req.headers) === null;
  if (req.body !== undefined || req.readableEnded || declaredJson) return expressBody(req, limit, depth);
  return {
    ok: true,
    raw: Buffer.from(`${req.headers['content-type'] ?? ''}\n${req.headers['content-length'] ?? req.headers['transfer-encoding'] ?? ''}`),
    value: undefined,
  };
}

/**
 * Follows an allowed request to its end. Exactly one of decides the charge:
 * the handler settles or refunds, or its response (status and headers) does
 * when it ends. A client that leaves first changes nothing — the charge
 * stands and the handler's answer still settles it — unless the route lists
 * client_abort in refundOn, or its hold settles from the body (onIncomplete
 * decides then, from what the handler had written). A kept charge with an idempotency key is then
 * completed, with the response as the app wrote it when the client got it.
 */
function trackCharge(gate: RequestGate, outcome: AllowOutcome, res: Response, logger: Logger, requestId: string): ChargedRequest {
  const { engine } = gate;
  const receipt = outcome.receipt;
  let decided: Promise<boolean> | undefined;
  const decide = (fn: () => Promise<boolean>): Promise<boolean> => (decided ??= receipt ? fn() : Promise.resolve(false));
  const failed = (what: string) => (err: unknown) => logger.error({ err, requestId }, what);
  let clientGone = false;
  // Holds the body or a trailer settles: what the handler writes is read on its way, never held back.
  const metering = endOfBodySettle(engine, logger, outcome);
  let reader: UsageReader | undefined;
  const tap = metering
    ? (chunk: Buffer) => {
        reader ??= new UsageReader(metering.paths, res.getHeader('content-type') as string | undefined, metering.maxBytes);
        reader.add(chunk);
      }
    : undefined;
  const trailers: Record<string, string> = {};
  const bodyEnd = (complete: boolean): BodyEnd => ({
    ...(reader?.end() ?? { values: new Map<string, number>(), tooLarge: false }),
    complete,
    ...(complete ? {} : { reason: 'client_abort' as const }),
    trailers,
  });
  const finish = async (result: UpstreamResult, complete: boolean): Promise<boolean> => {
    const finished = await gate.finish(outcome, result, res.getHeaders() as IncomingHttpHeaders);
    if (finished.atEnd) await finished.atEnd.settle(bodyEnd(complete));
    return finished.kept;
  };

  const atEnd = async (body: Buffer | null): Promise<void> => {
    const status = res.statusCode;
    let explicit = true;
    const kept = await decide(async () => {
      explicit = false;
      return finish({ status }, true);
    });
    // A handler that settled itself still releases what its answer confirms.
    if (explicit && kept) await gate.confirmRelease(outcome, { status });
    if (kept) await gate.complete(outcome, body && !clientGone ? { status, headers: res.getHeaders(), body } : null);
  };
  const ended = onEnd(
    res,
    receipt?.idempotency ? outcome.config.idempotency.maxResponseBytes : 0,
    (body) => void atEnd(body).catch(failed('refund, settle or idempotency record after the response failed')),
    tap,
    metering ? trailers : undefined,
  );
  res.once('close', () => {
    if (ended()) return;
    clientGone = true;
    if (outcome.route.refundOn.includes('client_abort')) {
      void decide(async () => (await gate.finish(outcome, { error: 'client_abort' })).kept).catch(failed('refund after the client left failed'));
      return;
    }
    // A body-settled hold is decided now, by what was read and onIncomplete.
    if (metering) void decide(() => finish({ error: 'client_abort' }, false)).catch(failed('settle after the client left failed'));
    // Otherwise the handler is still working: its answer decides.
  });
  return {
    account: outcome.accountId,
    route: outcome.route.name,
    pools: outcome.pools,
    reserved: Object.fromEntries((receipt?.lines ?? []).filter((l) => l.settle).map((l) => [l.creditType, l.charged])),
    settle: async (actuals) => {
      await decide(async () => {
        await engine.settle(receipt!, new Map(Object.entries(actuals)));
        return true;
      });
    },
    refund: async () => {
      await decide(async () => {
        await engine.refund(receipt!, 'not_delivered');
        return false;
      });
    },
  };
}

export async function creditGate(options: CreditGateOptions): Promise<CreditGateMiddleware> {
  const config: CompiledConfig = typeof options.config === 'string' ? await loadConfigFile(options.config) : loadConfigObject(options.config);
  const logger = options.logger ?? silentLogger();
  const runtime = createRuntime({
    config: () => config,
    redis: options.redis,
    store: options.store,
    keyPrefix: options.keyPrefix,
    logger,
    // Falling back to the memory store is said even inside an app that gave no logger.
    warn: options.logger ? undefined : (message) => process.emitWarning(message, { code: 'CREDITGATE_MEMORY_STORE' }),
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
        readRawBody: (limit) => expressRawBody(req, limit, config.maxJsonDepth),
      })
      .then((outcome) => {
        if (outcome.kind === 'refuse') {
          sendProblem(res, outcome.problem, outcome.config.problemBaseUrl, req.originalUrl, outcome.route?.problemStyle ?? outcome.config.problemStyle);
          return;
        }
        if (outcome.kind === 'replay') {
          // Answered from the first response: the handler does not run again.
          sendReplay(res, outcome.response);
          return;
        }
        // Downstream routing sees the path that was matched (and charged).
        if (req.url === req.originalUrl) req.url = outcome.forwardUrl;
        if (outcome.kind === 'pass') {
          next();
          return;
        }
        if (res.destroyed) {
          // The client left while creditgate decided: the handler does not run, nothing is owed.
          void Promise.resolve(gate.finish(outcome, { error: 'not_forwarded' })).catch((err: unknown) =>
            logger.error({ err, requestId }, 'refund after the client left failed'),
          );
          return;
        }
        res.set(outcome.headers);
        for (const [name, value] of Object.entries(outcome.upstreamHeaders)) req.headers[name] = value;
        res.locals.credits = trackCharge(gate, outcome, res, logger, requestId);
        next();
      }, next);
  };
  return Object.assign(handler, {
    engine,
    metrics: runtime.metrics,
    close: () => runtime.close(5000),
  });
}
