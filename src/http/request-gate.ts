// The request-level decision both adapters share: match the route, identify
// the account, compute the cost, charge. Framework-neutral: the sidecar and
// the Express middleware only differ in how they read a body and answer.

import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import { evaluateCost, type CostInputs } from '../domain/cost-rules.js';
import { METHOD_OVERRIDE_HEADERS, normalizePath } from '../domain/normalize-path.js';
import { refundReason, releaseConfirmed, type UpstreamResult } from '../domain/refund-policy.js';
import { settledAmount } from '../domain/settle-rule.js';
import type { ChargeDecision, ChargeReceipt, ChargeRefusal, CostLine, CreditEngine, PoolStatus, RequestIdempotency } from '../engine/credit-engine.js';
import type { Logger } from '../logger.js';
import { NO_CREDIT_TYPE, UNMATCHED_ROUTE, type Outcome } from '../observability/metrics.js';
import { StoreError, StoreFullError } from '../store/credit-store.js';
import type { BurstLimiter } from './burst-limiter.js';
import { IdentityVerifier } from './identity.js';
import type { BodyRead } from './json-body.js';
import { problem, storeFullProblem, type Problem } from './problem-details.js';
import { rateLimitHeaders, secondsUntil } from './ratelimit-headers.js';
import { requestFingerprint } from './request-fingerprint.js';
import { decodeResponse, encodeResponse, keepable, type SentResponse, type StoredResponse } from './stored-response.js';


export interface GateRequest {
  readonly method: string;
  /** Path and query as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** For logs: propagated from x-request-id or created by the adapter. */
  readonly requestId: string;
  /**
   * The host framework's own letter-case rule for paths (Express's "case
   * sensitive routing"); used only when the config does not set one.
   */
  readonly caseSensitive?: boolean;
  /** Reads the JSON body; called only for routes whose cost comes from it. */
  readBody(limitBytes: number, maxDepth: number): Promise<BodyRead>;
  /**
   * Reads the body of any type for an idempotency fingerprint, on routes
   * that did not read it as JSON. `raw` is what is hashed (and, in the
   * sidecar, forwarded).
   */
  readRawBody(limitBytes: number): Promise<BodyRead>;
}

export type GateOutcome =
  | { readonly kind: 'pass'; readonly config: CompiledConfig; readonly forwardUrl: string }
  | { readonly kind: 'refuse'; readonly config: CompiledConfig; readonly problem: Problem; readonly route?: RouteDef }
  /** A completed request's replay: answered from its first response, never forwarded again. */
  | { readonly kind: 'replay'; readonly config: CompiledConfig; readonly route: RouteDef; readonly response: StoredResponse }
  | AllowOutcome;

/** What finishing a request did to its charge. */
export interface FinishResult {
  /** RateLimit headers as they stand afterwards. */
  readonly headers: Record<string, string>;
  /** The charge stands: a request with an idempotency key is completed once its response has been sent. */
  readonly kept: boolean;
}

export interface AllowOutcome {
  readonly kind: 'allow';
  readonly config: CompiledConfig;
  readonly route: RouteDef;
  /** The normalised path and the query: what the upstream receives. */
  readonly forwardUrl: string;
  readonly accountId: string;
  readonly requestId: string;
  readonly pools: readonly PoolStatus[];
  /** RateLimit headers for the response. */
  readonly headers: Readonly<Record<string, string>>;
  /** Headers for the upstream: what each held pool may use (creditgate-reserved). */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** What was charged, to refund or settle after the response; absent for an idempotent replay. */
  readonly receipt?: ChargeReceipt;
  /** The body as read, when the route needed it. */
  readonly body?: BodyRead & { ok: true };
}

/** Header telling the upstream what a held pool may use: `voice_minutes=15`. */
export const RESERVED_HEADER = 'creditgate-reserved';
/** Header telling the upstream what this request was charged: `ai_tasks=25, database=1`. */
export const CHARGED_HEADER = 'creditgate-charged';

/** Where decisions are counted (the Prometheus metrics, in practice). */
export interface GateObserver {
  decision(route: string, creditType: string, outcome: Outcome): void;
}

export function splitUrl(url: string): { pathname: string; search: string; query: URLSearchParams } {
  const hash = url.indexOf('#');
  const clean = hash === -1 ? url : url.slice(0, hash);
  const q = clean.indexOf('?');
  return q === -1
    ? { pathname: clean, search: '', query: new URLSearchParams() }
    : { pathname: clean.slice(0, q), search: clean.slice(q), query: new URLSearchParams(clean.slice(q + 1)) };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * The methods a request may be handled as: its own, and the one a
 * method-override header names (frameworks that honour X-HTTP-Method-Override
 * run that handler). null when an override is malformed or ambiguous.
 */
function candidateMethods(method: string, headers: IncomingHttpHeaders): string[] | null {
  const overrides = new Set<string>();
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const v = headers[name];
    if (v === undefined) continue;
    for (const m of (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(','))) overrides.add(m.trim().toUpperCase());
  }
  if (overrides.size === 0) return [method];
  if (overrides.size > 1) return null;
  const [override] = overrides;
  if (!KNOWN_METHODS.has(override!)) return null;
  return override === method ? [method] : [override!, method];
}

const OUTCOME_OF_PROBLEM: Partial<Record<Problem['type'], Outcome>> = {
  unauthenticated: 'unauthenticated',
  'invalid-account-id': 'bad_request',
  'invalid-cost': 'bad_request',
  'invalid-body': 'bad_request',
  'invalid-path': 'bad_request',
  'invalid-identity': 'unauthenticated',
  'identity-unavailable': 'unauthenticated',
  'body-too-large': 'bad_request',
  'unsupported-media-type': 'bad_request',
  'unknown-account': 'unknown_account',
  'unknown-plan': 'unknown_account',
  'store-unavailable': 'store_error',
  'store-full': 'store_error',
  'invalid-request': 'bad_request',
  'idempotency-in-progress': 'bad_request',
  'idempotency-key-reused': 'bad_request',
  'idempotency-replay-unavailable': 'bad_request',
  'rate-limited': 'rate_limited',
};

export interface RequestGateOptions {
  readonly observer?: GateObserver | undefined;
  readonly burst?: BurstLimiter | undefined;
  readonly now?: () => number;
}

export class RequestGate {
  private readonly observer: GateObserver | undefined;
  private readonly burst: BurstLimiter | undefined;
  private readonly now: () => number;
  private readonly verifiers = new WeakMap<CompiledConfig, IdentityVerifier>();

  private verifierFor(config: CompiledConfig): IdentityVerifier {
    let v = this.verifiers.get(config);
    if (!v) {
      v = new IdentityVerifier(config);
      this.verifiers.set(config, v);
    }
    return v;
  }

  constructor(
    readonly engine: CreditEngine,
    private readonly logger: Logger,
    options: RequestGateOptions = {},
  ) {
    this.observer = options.observer;
    this.burst = options.burst;
    this.now = options.now ?? Date.now;
  }

  async evaluate(req: GateRequest): Promise<GateOutcome> {
    // One config snapshot per request: a reload mid-request does not split it.
    const config = this.engine.currentConfig();
    const { pathname: rawPath, search, query } = splitUrl(req.url);
    const normalized = normalizePath(rawPath);
    if (!normalized.ok) {
      this.observer?.decision(UNMATCHED_ROUTE, NO_CREDIT_TYPE, 'bad_request');
      this.logger.info({ requestId: req.requestId, outcome: 'bad_request', reason: normalized.reason }, 'path refused');
      return { kind: 'refuse', config, problem: problem('invalid-path', normalized.reason) };
    }
    const pathname = normalized.path;
    const forwardUrl = pathname + search;
    const methods = candidateMethods(req.method.toUpperCase(), req.headers);
    if (!methods) {
      this.observer?.decision(UNMATCHED_ROUTE, NO_CREDIT_TYPE, 'bad_request');
      return { kind: 'refuse', config, problem: problem('invalid-request', 'method-override headers disagree or name an unknown method') };
    }
    const routes = config.caseSensitive === undefined && req.caseSensitive !== undefined ? config.routesFor(req.caseSensitive) : config.routes;
    let matched = null;
    for (const m of methods) {
      matched = routes.match(m, pathname);
      if (matched) break;
    }
    if (!matched) {
      if (config.unmatched === 'reject') {
        return { kind: 'refuse', config, problem: problem('route-not-found', `no route matches ${req.method} ${pathname}`) };
      }
      return { kind: 'pass', config, forwardUrl };
    }
    const route = matched.route;
    // Request-level refusals: counted once, logged once.
    const refuse = (p: Problem, extra: Record<string, unknown> = {}): GateOutcome => {
      const outcome = OUTCOME_OF_PROBLEM[p.type] ?? 'bad_request';
      this.observer?.decision(route.name, NO_CREDIT_TYPE, outcome);
      const level = outcome === 'store_error' ? 'error' : 'info';
      this.logger[level]({ requestId: req.requestId, route: route.name, creditType: NO_CREDIT_TYPE, outcome, status: p.status, ...extra }, p.detail);
      return { kind: 'refuse', config, problem: p, route };
    };

    const identity = await this.verifierFor(config).identify(req.headers);
    if (!identity.ok) return refuse(identity.problem);
    const accountId = identity.account;

    if (route.rateLimit && this.burst) {
      const burst = await this.burst.consume(route.name, route.rateLimit, accountId);
      if (!burst.ok) {
        const seconds = Math.max(1, Math.ceil(burst.retryAfterMs / 1000));
        const window = Math.round(burst.durationMs / 1000);
        return refuse(
          problem('rate-limited', `at most ${burst.points} requests per ${window} s per account on this route; retry in ${seconds} s`, {
            headers: {
              'retry-after': String(seconds),
              'ratelimit-policy': `"requests";q=${burst.points};w=${window}`,
              ratelimit: `"requests";r=0;t=${seconds}`,
            },
          }),
        );
      }
    }

    let body: (BodyRead & { ok: true }) | undefined;
    if (route.readsBody) {
      const read = await req.readBody(config.maxBodyBytes, config.maxJsonDepth);
      if (!read.ok) return refuse(read.problem);
      body = read;
    }

    const inputs: CostInputs = { headers: req.headers, query, body: body?.value };
    const costs: CostLine[] = [];
    for (const charge of route.charges) {
      const result = evaluateCost(charge.rule, inputs);
      if (!result.ok) {
        return refuse(problem('invalid-cost', `${charge.creditType}: ${result.message}`, { extensions: { creditType: charge.creditType } }));
      }
      const { settle, minReserve } = charge.rule;
      costs.push({
        creditType: charge.creditType,
        amount: result.amount,
        op: charge.op,
        ...(settle ? { hold: { minAmount: minReserve ?? 1, settle } } : {}),
      });
    }

    const idempotencyHeader = req.headers[config.idempotency.header];
    const idempotencyKey = typeof idempotencyHeader === 'string' && idempotencyHeader !== '' ? idempotencyHeader : undefined;
    let idempotency: RequestIdempotency | undefined;
    if (idempotencyKey !== undefined) {
      if (!/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
        return refuse(problem('invalid-request', `${config.idempotency.header} must be 1–255 visible ASCII characters`));
      }
      // The key is bound to the whole request, body included: read it now.
      if (!body) {
        const read = await req.readRawBody(config.maxBodyBytes);
        if (!read.ok) return refuse(read.problem);
        body = read;
      }
      const fingerprint = requestFingerprint({
        method: req.method,
        target: forwardUrl,
        route: route.name,
        amounts: costs.map((c) => ({ creditType: c.creditType, op: c.op ?? 'charge', amount: c.amount })),
        // Behind a body parser only the parsed body is left: hash its JSON.
        body: body.raw.length > 0 || body.value === undefined ? body.raw : JSON.stringify(body.value),
      });
      idempotency = { key: idempotencyKey, fingerprint };
    }

    let decision: ChargeDecision;
    try {
      decision = await this.engine.charge(accountId, costs, {
        config,
        route,
        ...(idempotency ? { idempotency } : {}),
        ...(identity.plan !== undefined ? { plan: identity.plan } : {}),
      });
    } catch (err) {
      if (err instanceof StoreFullError) return refuse(storeFullProblem(err.retryAfterSeconds), { err: err.message });
      if (!(err instanceof StoreError)) throw err;
      return refuse(problem('store-unavailable', 'the credit store cannot be reached; try again shortly', { headers: { 'retry-after': '1' } }), {
        err: err.message,
      });
    }

    if (!decision.allowed && decision.reason === 'idempotency-key-reused') {
      return refuse(
        problem(
          'idempotency-key-reused',
          `this ${config.idempotency.header} was first used with a different request (method, path, route, amounts or body); use a new key for a new request`,
        ),
      );
    }
    if (!decision.allowed && decision.reason === 'duplicate') {
      if (decision.state === 'pending') {
        return refuse(
          problem('idempotency-in-progress', 'a request with this idempotency key is still being processed; retry when it has finished', {
            headers: { 'retry-after': '1' },
          }),
        );
      }
      const first = decision.response === undefined ? null : decodeResponse(decision.response);
      if (!first) {
        return refuse(
          problem(
            'idempotency-replay-unavailable',
            'this request completed and was charged once, but its response was not kept (a stream, larger than idempotency.maxResponseBytes, or the client left before it ended); it is not sent again',
          ),
        );
      }
      // Completed before: charged then; answered now from the first response, never forwarded again.
      this.observer?.decision(route.name, NO_CREDIT_TYPE, 'replayed');
      this.logger.info({ requestId: req.requestId, route: route.name, outcome: 'replayed', status: first.status }, 'idempotent replay: answered from the first response');
      return { kind: 'replay', config, route, response: first };
    }

    if (decision.allowed) {
      for (const p of decision.pools) if (p.op === 'charge') this.observer?.decision(route.name, p.creditType, 'allowed');
      if (decision.receipt.journalId !== undefined) {
        this.logger.warn({ requestId: req.requestId, route: route.name, outcome: 'allowed', storeOutage: true }, 'credit store unreachable: allowed by onStoreError, journaled for replay');
      }
      for (const d of decision.shadowDenied) {
        this.observer?.decision(route.name, d.pool.creditType, 'shadow_denied');
        this.logger.warn(
          { requestId: req.requestId, route: route.name, creditType: d.pool.creditType, outcome: 'shadow_denied', wouldBe: d.reason, required: d.pool.required, remaining: d.pool.remaining },
          'shadow mode: this request would have been refused',
        );
      }
      if (this.logger.isLevelEnabled('debug')) {
        this.logger.debug({ requestId: req.requestId, route: route.name, outcome: 'allowed', pools: decision.pools.map((p) => ({ creditType: p.creditType, required: p.required, remaining: p.remaining })) }, 'decision');
      }
      const held = decision.receipt.lines.filter((l) => l.settle);
      const charged = decision.receipt.lines.filter((l) => l.op === 'charge');
      const upstreamHeaders: Record<string, string> = {};
      // With a verified token, the upstream learns the account from creditgate, not from the client.
      if (config.identity.jwt) upstreamHeaders[config.identityHeader] = accountId;
      if (held.length > 0) upstreamHeaders[RESERVED_HEADER] = held.map((l) => `${l.creditType}=${l.charged}`).join(', ');
      if (charged.length > 0) upstreamHeaders[CHARGED_HEADER] = charged.map((l) => `${l.creditType}=${l.charged}`).join(', ');
      return {
        kind: 'allow',
        config,
        route,
        forwardUrl,
        accountId,
        requestId: req.requestId,
        pools: decision.pools,
        headers: rateLimitHeaders(decision.pools.filter((p) => p.op === 'charge'), this.now()),
        upstreamHeaders,
        receipt: decision.receipt,
        ...(body ? { body } : {}),
      };
    }
    if (decision.reason === 'unknown-account' || decision.reason === 'unknown-plan') return refuse(refusalProblem(decision, this.now()));
    // Only exhausted and not-in-plan remain here.
    const outcome: Outcome = decision.reason === 'exhausted' ? 'exhausted' : 'not_in_plan';
    for (const s of decision.short) {
      this.observer?.decision(route.name, s.creditType, outcome);
      this.logger.info({ requestId: req.requestId, route: route.name, creditType: s.creditType, outcome, required: s.required, remaining: s.remaining }, 'request refused');
    }
    return { kind: 'refuse', config, problem: refusalProblem(decision, this.now()), route };
  }

  /**
   * After the upstream answered (or failed): give back capacity whose release
   * the answer confirms; refund when the answer says the credits are not
   * owed, otherwise settle held pools from the response and mark the
   * idempotency key done. Returns the RateLimit headers as they stand
   * afterwards. Awaited before the client sees a status, so a usage read
   * right after the response sees the final numbers.
   */
  async finish(allow: AllowOutcome, result: UpstreamResult, responseHeaders: IncomingHttpHeaders = {}): Promise<FinishResult> {
    const { receipt, route } = allow;
    if (!receipt) return { headers: { ...allow.headers }, kept: false };
    await this.confirmRelease(allow, result);
    const reason = refundReason(result, route.refundOn, route.chargeWhen);
    if (reason) {
      await this.engine.refund(receipt, reason);
      this.logger.info({ requestId: allow.requestId, route: route.name, outcome: 'refunded', reason, upstream: 'status' in result ? result.status : result.error }, 'charge refunded');
      return { headers: this.headersAfterReturning(allow, new Map(receipt.lines.map((l) => [l.creditType, l.charged]))), kept: false };
    }
    const actuals = new Map<string, number>();
    for (const line of receipt.lines) {
      if (!line.settle) continue;
      const settled = settledAmount(line.settle, responseHeaders[line.settle.responseHeader.toLowerCase()]);
      if (settled.ok) actuals.set(line.creditType, settled.amount);
      else this.logger.warn({ requestId: allow.requestId, route: route.name, creditType: line.creditType, held: line.charged, reason: settled.reason }, 'cannot settle: keeping the hold');
    }
    const settled = actuals.size > 0 ? await this.engine.settle(receipt, actuals) : new Map<string, { charged: number; overage: number }>();
    for (const [creditType, { charged, overage }] of settled) {
      if (overage > 0) {
        this.logger.warn({ requestId: allow.requestId, route: route.name, creditType, charged, overage }, 'actual use above the hold: not charged (no overage beyond plan limits)');
      }
    }
    if (settled.size === 0) return { headers: { ...allow.headers }, kept: true };
    const held = new Map(receipt.lines.map((l) => [l.creditType, l.charged]));
    return { headers: this.headersAfterReturning(allow, new Map([...settled].map(([type, s]) => [type, (held.get(type) ?? 0) - s.charged]))), kept: true };
  }

  /** Gives back the capacity the request released when the upstream's answer confirms it (releaseWhen). */
  async confirmRelease(allow: AllowOutcome, result: UpstreamResult): Promise<void> {
    const { receipt, route } = allow;
    if (!receipt?.lines.some((l) => l.op === 'release')) return;
    if (releaseConfirmed(result, route.releaseWhen)) await this.engine.release(receipt);
    else this.logger.info({ requestId: allow.requestId, route: route.name, upstream: 'status' in result ? result.status : result.error }, 'release not confirmed by the upstream: capacity kept');
  }

  /**
   * The response to a kept charge has been sent (or given up on): its
   * idempotency key becomes "done", with the response for replays when it
   * could be kept. A no-op for requests without a key.
   */
  async complete(allow: AllowOutcome, response: SentResponse | null): Promise<void> {
    const receipt = allow.receipt;
    if (!receipt?.idempotency) return;
    const max = allow.config.idempotency.maxResponseBytes;
    const kept = response && response.body.length <= max && keepable(response.headers, max) ? encodeResponse(response.status, response.headers, response.body) : undefined;
    await this.engine.complete(receipt, allow.config, kept);
  }

  /** The RateLimit fields once `returned` credits per pool are back in them. */
  private headersAfterReturning(allow: AllowOutcome, returned: ReadonlyMap<string, number>): Record<string, string> {
    const pools = allow.pools
      .filter((p) => p.op === 'charge')
      .map((p) => {
        const amount = returned.get(p.creditType) ?? 0;
        return amount <= 0 || p.remaining === null ? p : { ...p, used: p.used - amount, remaining: p.remaining + amount };
      });
    return rateLimitHeaders(pools, this.now());
  }
}

function shortfall(p: PoolStatus) {
  return {
    creditType: p.creditType,
    creditTypeName: p.name,
    required: p.required,
    remaining: p.remaining,
    allowance: p.allowance,
    resetsAt: p.resetsAt === null ? null : new Date(p.resetsAt).toISOString(),
    ...(p.topUp ? { topUp: p.topUp } : {}),
  };
}

export function refusalProblem(decision: Exclude<ChargeRefusal, { reason: 'duplicate' | 'idempotency-key-reused' }>, now: number): Problem {
  if (decision.reason === 'unknown-account') {
    return problem('unknown-account', 'this account has no record and no default plan is configured');
  }
  if (decision.reason === 'unknown-plan') {
    return problem('unknown-plan', `the account's plan "${decision.plan}" is not in the config`);
  }
  const first = decision.short[0]!;
  const extensions = { ...shortfall(first), plan: decision.account.plan.id, shortfalls: decision.short.map(shortfall) };
  if (decision.reason === 'not-in-plan') {
    return problem('not-in-plan', `${first.name} are not included in the ${decision.account.plan.id} plan`, { extensions });
  }
  // Every short pool must have reset before a retry can pass. A spent top-up
  // outside the plan never refills by a reset (only another top-up does): no Retry-After.
  const resets = decision.short.map((s) => s.resetsAt).filter((r): r is number => r !== null);
  const headers: Record<string, string> = rateLimitHeaders(decision.short, now);
  if (resets.length > 0 && !decision.short.some((s) => s.topUpsOnly)) headers['retry-after'] = String(Math.max(1, secondsUntil(Math.max(...resets), now)));
  return problem(
    'exhausted',
    `this request needs ${first.required} ${first.name}; ${first.remaining} of ${first.allowance} remain` +
      (first.topUpsOnly
        ? ` (top-ups only: not included in the ${decision.account.plan.id} plan)`
        : first.resetsAt === null
          ? ''
          : ` until ${new Date(first.resetsAt).toISOString()}`),
    { headers, extensions },
  );
}
