// What `creditgate check-config` warns about in a valid config: routes an
// earlier route makes unreachable, each named with its file:line.

import { findShadowedRoutes } from '../domain/shadowed-routes.js';
import type { CompiledConfig } from './compiled-config.js';
import { routeLines } from './load-config.js';

export function configWarnings(config: CompiledConfig, file: string, text: string): string[] {
  const routes = config.routeList;
  const lines = routeLines(text, routes.length);
  const at = (i: number) => (lines[i] === undefined ? file : `${file}:${lines[i]}`);
  const name = (i: number) => `routes[${i}] "${routes[i]!.name}"`;
  // The sidecar's own letter-case rule (case-insensitive unless routing.caseSensitive is true).
  const shadowed = findShadowedRoutes(
    routes.map((r) => ({ route: r, methods: r.methods, path: r.path })),
    { caseSensitive: config.caseSensitive ?? false },
  );
  return shadowed.map(
    (s) => `${at(s.later)} ${name(s.later)} is never reached for ${s.method} ${s.path}: ${name(s.earlier)} (${at(s.earlier)}) matches it first`,
  );
}
