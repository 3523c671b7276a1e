// What a request asks for, before any route is matched: its path and query
// (the fragment dropped), and the methods it may be handled as.

import type { IncomingHttpHeaders } from 'node:http';
import { METHOD_OVERRIDE_HEADERS } from './normalize-path.js';

/** The methods a route may name (and a method-override header may ask for). */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const KNOWN_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

export function splitUrl(url: string): { pathname: string; search: string; query: URLSearchParams } {
  const hash = url.indexOf('#');
  const clean = hash === -1 ? url : url.slice(0, hash);
  const q = clean.indexOf('?');
  return q === -1
    ? { pathname: clean, search: '', query: new URLSearchParams() }
    : { pathname: clean.slice(0, q), search: clean.slice(q), query: new URLSearchParams(clean.slice(q + 1)) };
}

/**
 * The methods a request may be handled as: its own, and the one a
 * method-override header names (frameworks that honour X-HTTP-Method-Override
 * run that handler). null when an override is malformed or ambiguous.
 */
export function candidateMethods(method: string, headers: IncomingHttpHeaders): string[] | null {
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
