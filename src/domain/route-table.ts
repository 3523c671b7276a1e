// Matches a request's method and path to the first configured route that
// fits, in file order. Pure: compiled once per config load.

import { match, type MatchFunction } from 'path-to-regexp';

export interface RouteMatchInput<R> {
  readonly route: R;
  readonly methods: readonly string[] | '*';
  readonly path: string;
}

export interface RouteMatch<R> {
  readonly route: R;
  readonly params: Readonly<Record<string, string | string[]>>;
}

interface CompiledEntry<R> {
  readonly route: R;
  readonly methods: ReadonlySet<string> | '*';
  readonly matchPath: MatchFunction<Partial<Record<string, string | string[]>>>;
}

export interface RouteTableOptions {
  /** Paths compare case-sensitively unless this is false. */
  readonly caseSensitive?: boolean;
}

export class RouteTable<R> {
  private readonly entries: readonly CompiledEntry<R>[];

  constructor(routes: readonly RouteMatchInput<R>[], options: RouteTableOptions = {}) {
    const sensitive = options.caseSensitive ?? true;
    this.entries = routes.map((r) => ({
      route: r.route,
      methods: r.methods === '*' ? '*' : new Set(r.methods.map((m) => m.toUpperCase())),
      matchPath: match(r.path, { sensitive, trailing: true, decode: false }),
    }));
  }

  match(method: string, pathname: string): RouteMatch<R> | null {
    const upper = method.toUpperCase();
    for (const entry of this.entries) {
      if (!methodFits(entry.methods, upper)) continue;
      const m = entry.matchPath(pathname);
      if (m) return { route: entry.route, params: m.params as Record<string, string | string[]> };
    }
    return null;
  }
}

// HEAD runs the GET handler in every common framework, so a HEAD must cost
// what the GET costs: otherwise it is a free way to reach a charged route.
function methodFits(methods: ReadonlySet<string> | '*', method: string): boolean {
  if (methods === '*') return true;
  return methods.has(method) || (method === 'HEAD' && methods.has('GET'));
}

/** Throws path-to-regexp's own error when a route path is malformed. */
export function checkRoutePath(path: string): void {
  match(path);
}
