// Routes an earlier route makes unreachable: found on sample paths of the
// later route's pattern, with the route table's own method and case rules.

import { describe, expect, it } from 'vitest';
import { findShadowedRoutes, samplePaths } from '../../src/domain/shadowed-routes.js';

type R = { methods: readonly string[] | '*'; path: string };
const table = (...routes: R[]) => routes.map((r, i) => ({ route: i, ...r }));

describe('samplePaths', () => {
  it('fills parameters with one segment, wildcards with two, optional groups with and without', () => {
    expect(samplePaths('/v1/contacts/:id/enrich')).toEqual(['/v1/contacts/sample/enrich']);
    expect(samplePaths('/v1/files/*rest')).toEqual(['/v1/files/a/b']);
    expect(samplePaths('/v1/items{/:id}')).toEqual(['/v1/items', '/v1/items/sample']);
  });
});

describe('findShadowedRoutes', () => {
  it('finds a literal route after a parameter route that takes its path, for overlapping methods', () => {
    expect(findShadowedRoutes(table({ methods: ['POST'], path: '/v1/contacts/:id' }, { methods: ['POST', 'GET'], path: '/v1/contacts/lookup' }))).toEqual([
      { later: 1, earlier: 0, method: 'POST', path: '/v1/contacts/lookup' },
    ]);
  });

  it('sees no shadow when the methods do not overlap, or the earlier route is the narrower one', () => {
    expect(findShadowedRoutes(table({ methods: ['POST'], path: '/v1/contacts/:id' }, { methods: ['GET'], path: '/v1/contacts/lookup' }))).toEqual([]);
    expect(findShadowedRoutes(table({ methods: ['POST'], path: '/v1/contacts/lookup' }, { methods: ['POST'], path: '/v1/contacts/:id' }))).toEqual([]);
  });

  it('treats * as every method, HEAD as taken by GET, and wildcards as spanning segments', () => {
    expect(findShadowedRoutes(table({ methods: '*', path: '/v1/files/*rest' }, { methods: ['DELETE'], path: '/v1/files/:id/x' }))).toHaveLength(1);
    expect(findShadowedRoutes(table({ methods: ['GET'], path: '/v1/report' }, { methods: ['HEAD'], path: '/v1/report' }))).toEqual([
      { later: 1, earlier: 0, method: 'HEAD', path: '/v1/report' },
    ]);
    expect(findShadowedRoutes(table({ methods: ['POST'], path: '/v1/a' }, { methods: '*', path: '/v1/a' }))).toEqual([
      { later: 1, earlier: 0, method: 'POST', path: '/v1/a' },
    ]);
  });

  it('honours the letter-case rule', () => {
    const routes = table({ methods: ['GET'], path: '/v1/Report' }, { methods: ['GET'], path: '/v1/report' });
    expect(findShadowedRoutes(routes, { caseSensitive: false })).toHaveLength(1);
    expect(findShadowedRoutes(routes, { caseSensitive: true })).toEqual([]);
  });

  it('names the earlier route that wins, not any earlier one', () => {
    const routes = table({ methods: ['GET'], path: '/a/:x' }, { methods: ['GET'], path: '/a/:y' }, { methods: ['GET'], path: '/a/b' });
    expect(findShadowedRoutes(routes).map((s) => [s.later, s.earlier])).toEqual([
      [1, 0],
      [2, 0],
    ]);
  });
});
