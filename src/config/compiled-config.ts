// The validated config in the form the hot path wants: maps, compiled route
// matchers, cost rules. Built once per load and never mutated, so a reload is
// one reference swap and requests in flight keep the config they started with.

import { createHash } from 'node:crypto';
import type { CostRule, CostSource } from '../domain/cost-rules.js';
import type { SettleRule } from '../domain/settle-rule.js';
import { parseInstant } from '../domain/billing-cycle.js';
import { parseDuration } from '../domain/duration.js';
import type { RefundCondition } from '../domain/refund-policy.js';
import { RouteTable } from '../domain/route-table.js';
import type { StripeBilling } from './config-schema-billing.js';
import type { ParsedConfig, ParsedCostSpec } from './config-schema.js';

/** How refusals are written: RFC 9457 problem+json, or OpenAI-compatible JSON for AI clients. */
export type ProblemStyle = 'problem+json' | 'openai';

/** What plain `onStoreError: allow` lets an account spend per pool and replica during an outage. */
export const DEFAULT_OUTAGE_ALLOWANCE = 100;

export type TopUpInfo = { readonly url: string } | { readonly contact: string };

export interface CreditTypeDef {
  readonly id: string;
  readonly name: string;
  readonly kind: 'consumable' | 'capacity';
  readonly unit?: string | undefined;
  /** How more is bought, when the config says. */
  readonly topUp: TopUpInfo | null;
  /** Epoch ms before which this type runs in shadow mode; null = enforced. */
  readonly enforceFrom: number | null;
  /** Store outage: deny (503), or allow up to this many credits per account and replica. */
  readonly onStoreError: { readonly allow: number } | 'deny';
}

export interface AlertsConfig {
  /** Ascending fractions of the allowance. */
  readonly thresholds: readonly number[];
  readonly keepEvents: number;
  readonly queueSize: number;
  readonly webhook?: { readonly url: string; readonly secret?: string | undefined; readonly timeoutMs: number; readonly maxAttempts: number };
  readonly email?: { readonly smtp: string; readonly from: string; readonly subject?: string | undefined; readonly maxAttempts: number };
  /** Forecast alert: on pace to run out at least this many days before the reset. */
  readonly forecast?: { readonly daysBeforeReset: number } | undefined;
}

/** A plan's quota for one credit type: a number, null for unlimited, 0 when not in plan. */
export type Quota = number | null;

export interface PlanDef {
  readonly id: string;
  readonly quotas: ReadonlyMap<string, Quota>;
}

export interface RouteCharge {
  readonly creditType: string;
  /** charge spends (or acquires capacity); release gives capacity back. */
  readonly op: 'charge' | 'release';
  readonly rule: CostRule;
}

export interface RouteDef {
  readonly name: string;
  readonly methods: readonly string[] | '*';
  readonly path: string;
  readonly charges: readonly RouteCharge[];
  readonly readsBody: boolean;
  /** The route's own mode, or the global one. */
  readonly mode: 'enforce' | 'shadow';
  readonly refundOn: readonly RefundCondition[];
  readonly chargeWhen?: { readonly status: readonly number[] } | undefined;
  /** Statuses that confirm a release; undefined = any 2xx. */
  readonly releaseWhen?: { readonly status: readonly number[] } | undefined;
  readonly rateLimit?: { readonly points: number; readonly durationMs: number } | undefined;
  /** How this route's refusals are written (its own problems.style, or the global one). */
  readonly problemStyle: ProblemStyle;
}

export interface CompiledConfig {
  readonly parsed: ParsedConfig;
  /** sha256 of the canonical parsed config, first 12 hex digits. */
  readonly hash: string;
  readonly creditTypes: ReadonlyMap<string, CreditTypeDef>;
  readonly plans: ReadonlyMap<string, PlanDef>;
  readonly defaultPlan: string | undefined;
  /** Routes matched in any letter case unless `routing.caseSensitive` is true. */
  readonly routes: RouteTable<RouteDef>;
  /** `routing.caseSensitive` as written; undefined lets the Express middleware follow its app. */
  readonly caseSensitive: boolean | undefined;
  /** The route table for one letter-case rule (the middleware's app may decide it). */
  routesFor(caseSensitive: boolean): RouteTable<RouteDef>;
  /** The routes in file order, for summaries. */
  readonly routeList: readonly RouteDef[];
  readonly identityHeader: string;
  readonly identity: {
    /** env:NAME or literal; required from the trusted hop in header mode. */
    readonly trustedHopSecret?: string | undefined;
    readonly trustedHopHeader: string;
    readonly jwt?: ParsedConfig['identity']['jwt'];
  };
  /** Request headers never forwarded upstream (the trusted-hop secret). */
  readonly dropHeaders: readonly string[];
  readonly unmatched: 'pass' | 'reject';
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  readonly storeTimeoutMs: number;
  readonly problemBaseUrl: string;
  /** problems.style: how refusals outside any route are written. */
  readonly problemStyle: ProblemStyle;
  readonly alerts: AlertsConfig;
  /** Epoch ms before which everything runs in shadow mode; null = from the start. */
  readonly enforceFrom: number | null;
  readonly upstreamTimeoutMs: number;
  readonly idempotency: { readonly header: string; readonly ttlMs: number; readonly maxResponseBytes: number };
  readonly journalSize: number;
  /** Stripe webhooks and sync; null: the webhook endpoint does not exist. */
  readonly stripe: StripeBilling | null;
}

/** Whether a pool runs in shadow mode for this route at this instant (DESIGN.md rule 10). */
export function isShadow(config: CompiledConfig, route: RouteDef | undefined, creditType: string, now: number): boolean {
  if ((route?.mode ?? config.parsed.mode) === 'shadow') return true;
  if (config.enforceFrom !== null && now < config.enforceFrom) return true;
  const from = config.creditTypes.get(creditType)?.enforceFrom ?? null;
  return from !== null && now < from;
}

export function quotaOf(plan: PlanDef, creditType: string): Quota {
  // Not `?? 0`: null is unlimited and must survive.
  const q = plan.quotas.get(creditType);
  return q === undefined ? 0 : q;
}

type ParsedRule = Exclude<ParsedCostSpec, number>;
type ReadRule = Pick<ParsedRule, 'body' | 'bodyLength' | 'header' | 'query'>;

function readSource(spec: ReadRule): CostSource {
  if (spec.body !== undefined) return { from: 'body', field: spec.body };
  if (spec.bodyLength !== undefined) return { from: 'bodyLength', field: spec.bodyLength };
  if (spec.header !== undefined) return { from: 'header', name: spec.header.toLowerCase() };
  return { from: 'query', name: spec.query! };
}

function toSettleRule(settle: NonNullable<ParsedRule['settle']>): SettleRule {
  const { responseJson, ...rest } = settle;
  return {
    ...rest,
    ...(settle.responseHeader === undefined ? {} : { responseHeader: settle.responseHeader.toLowerCase() }),
    ...(settle.responseTrailer === undefined ? {} : { responseTrailer: settle.responseTrailer.toLowerCase() }),
    ...(responseJson === undefined ? {} : { responseJson: typeof responseJson === 'string' ? [responseJson] : responseJson }),
  };
}

function toCostRule(spec: ParsedCostSpec, maxCost: number): CostRule {
  if (typeof spec === 'number') return { source: { from: 'fixed', amount: spec }, min: spec, max: spec };
  const held = {
    settle: spec.settle ? toSettleRule(spec.settle) : undefined,
    minReserve: spec.settle ? (spec.minReserve ?? 1) : undefined,
  };
  // A hold sized from the request: its own input, default and bounds.
  if (typeof spec.reserve === 'object')
    return { source: readSource(spec.reserve), default: spec.reserve.default, min: spec.reserve.min, max: spec.reserve.max ?? maxCost, ...held };
  const source: CostSource = spec.reserve !== undefined ? { from: 'fixed', amount: spec.reserve } : readSource(spec);
  return { source, default: spec.default, min: spec.min, max: spec.max ?? maxCost, ...held };
}

export function compileConfig(parsed: ParsedConfig): CompiledConfig {
  const creditTypes = new Map<string, CreditTypeDef>(
    Object.entries(parsed.creditTypes).map(([id, t]) => [
      id,
      {
        id,
        name: t.name,
        kind: t.kind,
        unit: t.unit,
        topUp: t.topUp ?? null,
        enforceFrom: t.enforceFrom === undefined ? null : parseInstant(t.enforceFrom),
        onStoreError:
          t.onStoreError === undefined || t.onStoreError === 'deny'
            ? ('deny' as const)
            : { allow: t.onStoreError === 'allow' ? DEFAULT_OUTAGE_ALLOWANCE : t.onStoreError.allow },
      },
    ]),
  );
  const plans = new Map<string, PlanDef>(
    Object.entries(parsed.plans).map(([id, quotas]) => [
      id,
      { id, quotas: new Map(Object.entries(quotas).map(([t, q]) => [t, q === 'unlimited' ? null : q])) },
    ]),
  );
  const routeDefs: RouteDef[] = parsed.routes.map((r) => {
    const maxCost = r.maxCost ?? parsed.limits.maxCost;
    const charges: RouteCharge[] = [
      ...Object.entries(r.charge).map(([creditType, spec]) => ({ creditType, op: 'charge' as const, rule: toCostRule(spec, maxCost) })),
      ...Object.entries(r.release).map(([creditType, spec]) => ({ creditType, op: 'release' as const, rule: toCostRule(spec, maxCost) })),
    ];
    const methods = Array.isArray(r.method) ? r.method : r.method;
    return {
      name: r.name,
      methods: methods === '*' || (Array.isArray(methods) && methods.includes('*')) ? '*' : ([] as string[]).concat(methods),
      path: r.path,
      charges,
      readsBody: charges.some((c) => c.rule.source.from === 'body' || c.rule.source.from === 'bodyLength'),
      mode: r.mode ?? parsed.mode,
      refundOn: r.refundOn ?? parsed.upstream.refundOn,
      chargeWhen: r.chargeWhen,
      releaseWhen: r.releaseWhen,
      rateLimit: r.rateLimit ? { points: r.rateLimit.points, durationMs: parseDuration(r.rateLimit.duration) } : undefined,
      problemStyle: r.problems?.style ?? parsed.problems.style,
    };
  });
  const tables = new Map<boolean, RouteTable<RouteDef>>();
  const routesFor = (sensitive: boolean): RouteTable<RouteDef> => {
    let table = tables.get(sensitive);
    if (!table) {
      table = new RouteTable(
        routeDefs.map((route) => ({ route, methods: route.methods, path: route.path })),
        { caseSensitive: sensitive },
      );
      tables.set(sensitive, table);
    }
    return table;
  };
  return {
    parsed,
    hash: createHash('sha256').update(JSON.stringify(parsed)).digest('hex').slice(0, 12),
    creditTypes,
    plans,
    defaultPlan: parsed.defaultPlan,
    // A path's letter case must not dodge a charge: upstreams (Express among
    // them) commonly route case-insensitively.
    routes: routesFor(parsed.routing.caseSensitive ?? false),
    caseSensitive: parsed.routing.caseSensitive,
    routesFor,
    routeList: routeDefs,
    identityHeader: parsed.identity.header.toLowerCase(),
    identity: {
      trustedHopSecret: parsed.identity.trustedHopSecret,
      trustedHopHeader: parsed.identity.trustedHopHeader.toLowerCase(),
      jwt: parsed.identity.jwt ? { ...parsed.identity.jwt, header: parsed.identity.jwt.header.toLowerCase() } : undefined,
    },
    // The hop secret stays on its hop; with tokens, the account header is creditgate's to set.
    dropHeaders: [
      ...(parsed.identity.trustedHopSecret ? [parsed.identity.trustedHopHeader.toLowerCase()] : []),
      ...(parsed.identity.jwt ? [parsed.identity.header.toLowerCase()] : []),
    ],
    unmatched: parsed.unmatched,
    maxBodyBytes: parsed.limits.maxBodyBytes,
    maxJsonDepth: parsed.limits.maxJsonDepth,
    storeTimeoutMs: parsed.store.timeoutMs,
    problemBaseUrl: parsed.problems.baseUrl.endsWith('/') ? parsed.problems.baseUrl : `${parsed.problems.baseUrl}/`,
    problemStyle: parsed.problems.style,
    alerts: { ...parsed.alerts, thresholds: [...parsed.alerts.thresholds].sort((a, b) => a - b) },
    enforceFrom: parsed.enforceFrom === undefined ? null : parseInstant(parsed.enforceFrom),
    upstreamTimeoutMs: parsed.upstream.timeoutMs,
    idempotency: { header: parsed.idempotency.header.toLowerCase(), ttlMs: parsed.idempotency.ttlMs, maxResponseBytes: parsed.idempotency.maxResponseBytes },
    journalSize: parsed.store.journalSize,
    stripe: parsed.billing?.stripe ?? null,
  };
}
