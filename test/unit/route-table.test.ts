import { describe, expect, it } from 'vitest';
import { RouteTable } from '../../src/domain/route-table.js';

const table = new RouteTable([
  { route: 'enrich', methods: ['POST'], path: '/v1/contacts/:id/enrich' },
  { route: 'any-contact', methods: '*', path: '/v1/contacts/:id' },
  { route: 'report', methods: ['GET'], path: '/v1/reports/:id' },
  { route: 'files', methods: ['PUT', 'PATCH'], path: '/v1/files/*rest' },
] as const);

describe('route table', () => {
  it('matches method and express-style path, first match wins, with params', () => {
    expect(table.match('POST', '/v1/contacts/42/enrich')).toEqual({ route: 'enrich', params: { id: '42' } });
    expect(table.match('GET', '/v1/contacts/42')?.route).toBe('any-contact');
    expect(table.match('DELETE', '/v1/contacts/42')?.route).toBe('any-contact');
    expect(table.match('PATCH', '/v1/files/a/b/c')?.route).toBe('files');
  });

  it('does not match other methods or paths', () => {
    expect(table.match('GET', '/v1/contacts/42/enrich')).toBeNull();
    expect(table.match('POST', '/v1/reports/1')).toBeNull();
    expect(table.match('GET', '/v2/contacts/1')).toBeNull();
  });

  it('lowercase methods match too', () => {
    expect(table.match('post', '/v1/contacts/1/enrich')?.route).toBe('enrich');
  });

  it('HEAD is charged like the GET it runs', () => {
    expect(table.match('HEAD', '/v1/reports/9')?.route).toBe('report');
  });

  it('a trailing slash matches the same route', () => {
    expect(table.match('POST', '/v1/contacts/42/enrich/')?.route).toBe('enrich');
  });

  it('is case-sensitive by default and case-insensitive when configured', () => {
    expect(table.match('POST', '/V1/Contacts/42/enrich')).toBeNull();
    const loose = new RouteTable([{ route: 'r', methods: ['GET'], path: '/v1/reports' }], { caseSensitive: false });
    expect(loose.match('GET', '/V1/REPORTS')?.route).toBe('r');
  });
});
