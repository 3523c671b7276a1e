// Finds routes that an earlier route makes unreachable: first match wins, so
// a later route whose own paths and methods an earlier one already takes is
// never charged as written. Checked with the route table itself (same
// matcher, same HEAD/GET rule, same letter-case rule), on sample paths made
// from the later route's pattern.

import { parse, type Token } from 'path-to-regexp';
import { HTTP_METHODS } from './request-target.js';
import { RouteTable, type RouteMatchInput, type RouteTableOptions } from './route-table.js';

export interface ShadowedRoute {
  /** Index of the route that is never reached for `method path`. */
  readonly later: number;
  /** Index of the earlier route that takes that request. */
  readonly earlier: number;
  readonly method: string;
  readonly path: string;
}

/** A parameter fills in as one segment; a wildcard as two, to show it spans slashes. */
const PARAM_SAMPLE = 'sample';
const WILDCARD_SAMPLE = 'a/b';
/** Optional groups double the samples; a pattern with more than this many is sampled partly. */
const MAX_SAMPLES = 64;

function expand(tokens: readonly Token[]): string[] {
  let out = [''];
  for (const t of tokens) {
    let next: string[];
    if (t.type === 'text') next = out.map((p) => p + t.value);
    else if (t.type === 'param') next = out.map((p) => p + PARAM_SAMPLE);
    else if (t.type === 'wildcard') next = out.map((p) => p + WILDCARD_SAMPLE);
    else {
      const inner = expand(t.tokens);
      next = out.flatMap((p) => [p, ...inner.map((i) => p + i)]);
    }
    out = next.slice(0, MAX_SAMPLES);
  }
  return out;
}

/** Concrete paths a route pattern declares: each parameter and wildcard filled in, each optional group with and without. */
export function samplePaths(pattern: string): string[] {
  return [...new Set(expand(parse(pattern).tokens))];
}

/** The methods a route answers: its own, HEAD with GET (as the route table treats them), all for "*". */
function declaredMethods(methods: readonly string[] | '*'): string[] {
  if (methods === '*') return [...HTTP_METHODS];
  const upper = methods.map((m) => m.toUpperCase());
  return upper.includes('GET') && !upper.includes('HEAD') ? [...upper, 'HEAD'] : upper;
}

/** Every route that an earlier one takes some of its requests from, with the first such request found. */
export function findShadowedRoutes(routes: readonly RouteMatchInput<unknown>[], options: RouteTableOptions = {}): ShadowedRoute[] {
  const indexed = routes.map((r, i) => ({ ...r, route: i }));
  const found: ShadowedRoute[] = [];
  for (let later = 1; later < indexed.length; later++) {
    const earlierTable = new RouteTable(indexed.slice(0, later), options);
    const hit = firstHit(earlierTable, indexed[later]!);
    if (hit) found.push({ later, ...hit });
  }
  return found;
}

function firstHit(earlier: RouteTable<number>, route: RouteMatchInput<number>): { earlier: number; method: string; path: string } | undefined {
  for (const path of samplePaths(route.path)) {
    for (const method of declaredMethods(route.methods)) {
      const m = earlier.match(method, path);
      if (m) return { earlier: m.route, method, path };
    }
  }
  return undefined;
}
