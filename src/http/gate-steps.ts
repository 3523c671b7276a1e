// The pure parts of the request gate's steps: where a request goes (path
// normalisation, method overrides, first route that fits) and what it costs
// (from its headers, query and body). The live gate and `creditgate explain`
// both call these, so a dry run can never disagree with a real request.

import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import { evaluateCost } from '../domain/cost-rules.js';
import { normalizePath } from '../domain/normalize-path.js';
import { candidateMethods, splitUrl } from '../domain/request-target.js';
import type { CostLine } from '../engine/types.js';
import { problem, type Problem } from './problem-details.js';

export type RouteLookup =
  /** The request cannot be routed without guessing: `why` says whether the path or a method override was at fault. */
  | { readonly kind: 'bad-request'; readonly why: 'path' | 'method-override'; readonly problem: Problem }
  | { readonly kind: 'unmatched'; readonly reject: boolean; readonly path: string; readonly forwardUrl: string; readonly problem?: Problem }
  | { readonly kind: 'matched'; readonly route: RouteDef; readonly forwardUrl: string; readonly query: URLSearchParams };

/**
 * Normalises the path and finds the first route for the request's method (or
 * its override). `caseSensitive` is the host framework's rule, used only when
 * the config does not set one.
 */
export function lookupRoute(config: CompiledConfig, method: string, url: string, headers: IncomingHttpHeaders, caseSensitive?: boolean): RouteLookup {
  const { pathname: rawPath, search, query } = splitUrl(url);
  const normalized = normalizePath(rawPath);
  if (!normalized.ok) return { kind: 'bad-request', why: 'path', problem: problem('invalid-path', normalized.reason) };
  const forwardUrl = normalized.path + search;
  const methods = candidateMethods(method.toUpperCase(), headers);
  if (!methods) {
    return { kind: 'bad-request', why: 'method-override', problem: problem('invalid-request', 'method-override headers disagree or name an unknown method') };
  }
  const routes = config.caseSensitive === undefined && caseSensitive !== undefined ? config.routesFor(caseSensitive) : config.routes;
  for (const m of methods) {
    const matched = routes.match(m, normalized.path);
    if (matched) return { kind: 'matched', route: matched.route, forwardUrl, query };
  }
  if (config.unmatched === 'reject') {
    return {
      kind: 'unmatched',
      reject: true,
      path: normalized.path,
      forwardUrl,
      problem: problem('route-not-found', `no route matches ${method} ${normalized.path}`),
    };
  }
  return { kind: 'unmatched', reject: false, path: normalized.path, forwardUrl };
}

export type CostsResult = { readonly ok: true; readonly costs: CostLine[] } | { readonly ok: false; readonly problem: Problem };

/** The request's cost per pool, from the route's rules and what the request carries (body: parsed JSON, when the route reads it). */
export function costsOf(route: RouteDef, inputs: { headers: IncomingHttpHeaders; query: URLSearchParams; body?: unknown }): CostsResult {
  const costs: CostLine[] = [];
  for (const charge of route.charges) {
    const result = evaluateCost(charge.rule, inputs);
    if (!result.ok) {
      return { ok: false, problem: problem('invalid-cost', `${charge.creditType}: ${result.message}`, { extensions: { creditType: charge.creditType } }) };
    }
    const { settle, minReserve } = charge.rule;
    costs.push({ creditType: charge.creditType, amount: result.amount, op: charge.op, ...(settle ? { hold: { minAmount: minReserve ?? 1, settle } } : {}) });
  }
  return { ok: true, costs };
}
