// The request-level decision both adapters share, as a sequence of steps:
// find the route, identify the account, apply the burst limit, read what the
// cost needs, compute the cost, bind an idempotency key, charge, answer.
// Framework-neutral: the sidecar and the Express middleware only differ in
// how they read a body and answer.

import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import type { UpstreamResult } from '../domain/refund-policy.js';
import { settlesAtEnd } from '../domain/settle-rule.js';
import type { CreditEngine } from '../engine/credit-engine.js';
import type { ChargeDecision, CostLine, RequestIdempotency } from '../engine/types.js';
import type { Logger } from '../logger.js';
import { NO_CREDIT_TYPE, UNMATCHED_ROUTE, type Outcome } from '../observability/metrics.js';
import { AfterUpstream } from './after-upstream.js';
import type { BurstLimiter } from './burst-limiter.js';
import {
  inProgressProblem,
  keyReusedProblem,
  OUTCOME_OF_PROBLEM,
  rateLimitedProblem,
  refusalProblem,
  replayUnavailableProblem,
  storeProblem,
} from './gate-problems.js';
import { CHARGED_HEADER, RESERVED_HEADER, type AllowOutcome, type FinishResult, type GateObserver, type GateOutcome, type GateRequest } from './gate-types.js';
import { costsOf, lookupRoute } from './gate-steps.js';
import { IdentityVerifier } from './identity.js';
import type { BodyRead } from './json-body.js';
import { problem, type Problem } from './problem-details.js';
import { rateLimitHeaders } from './ratelimit-headers.js';
import { requestFingerprint } from './request-fingerprint.js';
import { decodeResponse, type SentResponse } from './stored-response.js';

export type { AllowOutcome, FinishResult, GateObserver, GateOutcome, GateRequest } from './gate-types.js';

export interface RequestGateOptions {
  readonly observer?: GateObserver | undefined;
  readonly burst?: BurstLimiter | undefined;
  readonly now?: () => number;
}

type ReadBody = BodyRead & { ok: true };
/** A step either gives its value or refuses the request. */
type Step<T> = { ok: true; value: T } | { ok: false; problem: Problem; log?: Record<string, unknown> };
const pass = <T>(value: T): Step<T> => ({ ok: true, value });
const stop = (p: Problem, log?: Record<string, unknown>): Step<never> => ({ ok: false, problem: p, ...(log ? { log } : {}) });

/** The request once its route is known. */
interface Matched {
  readonly req: GateRequest;
  readonly config: CompiledConfig;
  readonly route: RouteDef;
  readonly forwardUrl: string;
  readonly query: URLSearchParams;
}

export class RequestGate {
  private readonly observer: GateObserver | undefined;
  private readonly burst: BurstLimiter | undefined;
  private readonly now: () => number;
  private readonly verifiers = new WeakMap<CompiledConfig, IdentityVerifier>();
  private readonly after: AfterUpstream;

  constructor(
    readonly engine: CreditEngine,
    private readonly logger: Logger,
    options: RequestGateOptions = {},
  ) {
    this.observer = options.observer;
    this.burst = options.burst;
    this.now = options.now ?? Date.now;
    this.after = new AfterUpstream(engine, logger, this.now);
  }

  async evaluate(req: GateRequest): Promise<GateOutcome> {
    // One config snapshot per request: a reload mid-request does not split it.
    const config = this.engine.currentConfig();
    const found = this.matchRoute(req, config);
    if ('kind' in found) return found;
    const refuse = (s: { problem: Problem; log?: Record<string, unknown> }) => this.refuse(found, s.problem, s.log);

    // Steps with nothing to wait for are not awaited: no promise, no extra turn.
    const verifier = this.verifierFor(config);
    const identity = verifier.identifyNow(req.headers) ?? (await verifier.identify(req.headers));
    if (!identity.ok) return refuse(identity);
    if (found.route.rateLimit && this.burst) {
      const limited = await this.burstLimit(found.route, identity.account);
      if (!limited.ok) return refuse(limited);
    }
    const read = found.route.readsBody ? await this.readCostBody(found) : pass(undefined);
    if (!read.ok) return refuse(read);
    const costs = costsFor(found, read.value);
    if (!costs.ok) return refuse(costs);
    const keyed: Step<{ idempotency?: RequestIdempotency; body?: ReadBody }> =
      this.idempotencyKeyOf(found) === undefined ? pass(read.value ? { body: read.value } : {}) : await this.bindIdempotencyKey(found, costs.value, read.value);
    if (!keyed.ok) return refuse(keyed);
    const body = keyed.value.body;
    const decision = await this.charge(found, identity.account, costs.value, keyed.value.idempotency, identity.plan);
    if (!decision.ok) return refuse(decision);
    return this.answer(found, identity.account, decision.value, body);
  }

  /** After the upstream answered (or failed): release, refund or settle. See AfterUpstream. */
  finish(allow: AllowOutcome, result: UpstreamResult, responseHeaders: IncomingHttpHeaders = {}): FinishResult | Promise<FinishResult> {
    return this.after.finish(allow, result, responseHeaders);
  }

  confirmRelease(allow: AllowOutcome, result: UpstreamResult): Promise<void> {
    return this.after.confirmRelease(allow, result);
  }

  complete(allow: AllowOutcome, response: SentResponse | null): Promise<void> {
    return this.after.complete(allow, response);
  }

  /** Normalises the path and finds the first route for the request's method (or its override): see gate-steps. */
  private matchRoute(req: GateRequest, config: CompiledConfig): Matched | GateOutcome {
    const found = lookupRoute(config, req.method, req.url, req.headers, req.caseSensitive);
    if (found.kind === 'matched') return { req, config, route: found.route, forwardUrl: found.forwardUrl, query: found.query };
    if (found.kind === 'unmatched')
      return found.problem ? { kind: 'refuse', config, problem: found.problem } : { kind: 'pass', config, forwardUrl: found.forwardUrl };
    this.observer?.decision(UNMATCHED_ROUTE, NO_CREDIT_TYPE, 'bad_request');
    if (found.why === 'path') this.logger.info({ requestId: req.requestId, outcome: 'bad_request', reason: found.problem.detail }, 'path refused');
    return { kind: 'refuse', config, problem: found.problem };
  }

  /** A request-level refusal: counted once, logged once. */
  private refuse(m: Matched, p: Problem, extra: Record<string, unknown> = {}): GateOutcome {
    const outcome = OUTCOME_OF_PROBLEM[p.type] ?? 'bad_request';
    this.observer?.decision(m.route.name, NO_CREDIT_TYPE, outcome);
    const level = outcome === 'store_error' ? 'error' : 'info';
    this.logger[level]({ requestId: m.req.requestId, route: m.route.name, creditType: NO_CREDIT_TYPE, outcome, status: p.status, ...extra }, p.detail);
    return { kind: 'refuse', config: m.config, problem: p, route: m.route };
  }

  private async burstLimit(route: RouteDef, account: string): Promise<Step<void>> {
    if (!route.rateLimit || !this.burst) return pass(undefined);
    const burst = await this.burst.consume(route.name, route.rateLimit, account);
    return burst.ok ? pass(undefined) : stop(rateLimitedProblem(burst));
  }

  /** The JSON body, for routes whose cost comes from it. */
  private async readCostBody({ req, config, route }: Matched): Promise<Step<ReadBody | undefined>> {
    if (!route.readsBody) return pass(undefined);
    const read = await req.readBody(config.maxBodyBytes, config.maxJsonDepth);
    return read.ok ? pass(read) : stop(read.problem);
  }

  private idempotencyKeyOf({ req, config }: Matched): string | undefined {
    const header = req.headers[config.idempotency.header];
    return typeof header === 'string' && header !== '' ? header : undefined;
  }

  /** An Idempotency-Key is bound to the whole request, body included: read it now if the cost did not. */
  private async bindIdempotencyKey(
    m: Matched,
    costs: readonly CostLine[],
    body: ReadBody | undefined,
  ): Promise<Step<{ idempotency?: RequestIdempotency; body?: ReadBody }>> {
    const { req, config } = m;
    const key = this.idempotencyKeyOf(m);
    if (key === undefined) return pass(body ? { body } : {});
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) return stop(problem('invalid-request', `${config.idempotency.header} must be 1–255 visible ASCII characters`));
    let whole = body;
    if (!whole) {
      const read = await req.readRawBody(config.maxBodyBytes);
      if (!read.ok) return stop(read.problem);
      whole = read;
    }
    const fingerprint = requestFingerprint({
      method: req.method,
      target: m.forwardUrl,
      route: m.route.name,
      amounts: costs.map((c) => ({ creditType: c.creditType, op: c.op ?? 'charge', amount: c.amount })),
      // Behind a body parser only the parsed body is left: hash its JSON.
      body: whole.raw.length > 0 || whole.value === undefined ? whole.raw : JSON.stringify(whole.value),
    });
    return pass({ idempotency: { key, fingerprint }, body: whole });
  }

  private charge(
    m: Matched,
    account: string,
    costs: CostLine[],
    idempotency: RequestIdempotency | undefined,
    plan: string | undefined,
  ): Promise<Step<ChargeDecision>> {
    const failed = (err: unknown) => stop(storeProblem(err), { err: (err as Error).message });
    try {
      return this.engine.charge(account, costs, { config: m.config, route: m.route, idempotency, plan }).then(pass, failed);
    } catch (err) {
      return Promise.resolve(failed(err));
    }
  }

  /** What the decision means for the request: allowed, refused, or a replay of an earlier one. */
  private answer(m: Matched, account: string, decision: ChargeDecision, body: ReadBody | undefined): GateOutcome {
    const { req, config, route } = m;
    if (decision.allowed) return this.allow(m, account, decision, body);
    if (decision.reason === 'idempotency-key-reused') return this.refuse(m, keyReusedProblem(config.idempotency.header));
    if (decision.reason === 'duplicate') {
      if (decision.state === 'pending') return this.refuse(m, inProgressProblem());
      const first = decision.response === undefined ? null : decodeResponse(decision.response);
      if (!first) return this.refuse(m, replayUnavailableProblem());
      // Completed before: charged then; answered now from the first response, never forwarded again.
      this.observer?.decision(route.name, NO_CREDIT_TYPE, 'replayed');
      this.logger.info(
        { requestId: req.requestId, route: route.name, outcome: 'replayed', status: first.status },
        'idempotent replay: answered from the first response',
      );
      return { kind: 'replay', config, route, response: first };
    }
    if (decision.reason === 'unknown-account' || decision.reason === 'unknown-plan') return this.refuse(m, refusalProblem(decision, this.now()));
    // Only exhausted and not-in-plan remain here.
    const outcome: Outcome = decision.reason === 'exhausted' ? 'exhausted' : 'not_in_plan';
    for (const s of decision.short) {
      this.observer?.decision(route.name, s.creditType, outcome);
      this.logger.info(
        { requestId: req.requestId, route: route.name, creditType: s.creditType, outcome, required: s.required, remaining: s.remaining },
        'request refused',
      );
    }
    return { kind: 'refuse', config, problem: refusalProblem(decision, this.now()), route };
  }

  private allow(m: Matched, account: string, decision: Extract<ChargeDecision, { allowed: true }>, body: ReadBody | undefined): AllowOutcome {
    const { req, config, route } = m;
    const log = { requestId: req.requestId, route: route.name };
    for (const p of decision.pools) if (p.op === 'charge') this.observer?.decision(route.name, p.creditType, 'allowed');
    if (decision.receipt.journalId !== undefined)
      this.logger.warn({ ...log, outcome: 'allowed', storeOutage: true }, 'credit store unreachable: allowed by onStoreError, journaled for replay');
    for (const d of decision.shadowDenied) {
      this.observer?.decision(route.name, d.pool.creditType, 'shadow_denied');
      this.logger.warn(
        { ...log, creditType: d.pool.creditType, outcome: 'shadow_denied', wouldBe: d.reason, required: d.pool.required, remaining: d.pool.remaining },
        'shadow mode: this request would have been refused',
      );
    }
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug(
        { ...log, outcome: 'allowed', pools: decision.pools.map((p) => ({ creditType: p.creditType, required: p.required, remaining: p.remaining })) },
        'decision',
      );
    }
    const held = decision.receipt.lines.filter((l) => l.settle);
    const charged = decision.receipt.lines.filter((l) => l.op === 'charge');
    const upstreamHeaders: Record<string, string> = {};
    // With a verified token, the upstream learns the account from creditgate, not from the client.
    if (config.identity.jwt) upstreamHeaders[config.identityHeader] = account;
    if (held.length > 0) upstreamHeaders[RESERVED_HEADER] = held.map((l) => `${l.creditType}=${l.charged}`).join(', ');
    // Usage is read from the body on its way to the client: ask for it uncompressed.
    if (held.some((l) => l.settle && settlesAtEnd(l.settle))) upstreamHeaders['accept-encoding'] = 'identity';
    if (charged.length > 0) upstreamHeaders[CHARGED_HEADER] = charged.map((l) => `${l.creditType}=${l.charged}`).join(', ');
    return {
      kind: 'allow',
      config,
      route,
      forwardUrl: m.forwardUrl,
      accountId: account,
      requestId: req.requestId,
      pools: decision.pools,
      headers: rateLimitHeaders(
        decision.pools.filter((p) => p.op === 'charge'),
        this.now(),
      ),
      upstreamHeaders,
      receipt: decision.receipt,
      ...(body ? { body } : {}),
    };
  }

  private verifierFor(config: CompiledConfig): IdentityVerifier {
    let v = this.verifiers.get(config);
    if (!v) {
      v = new IdentityVerifier(config);
      this.verifiers.set(config, v);
    }
    return v;
  }
}

/** The request's cost per pool: see gate-steps. */
function costsFor({ req, route, query }: Matched, body: ReadBody | undefined): Step<CostLine[]> {
  const result = costsOf(route, { headers: req.headers, query, body: body?.value });
  return result.ok ? pass(result.costs) : stop(result.problem);
}
