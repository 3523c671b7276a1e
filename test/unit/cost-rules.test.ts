import { describe, expect, it } from 'vitest';
import { evaluateCost, readJsonPath, type CostRule, type CostInputs } from '../../src/domain/cost-rules.js';

const inputs = (over: Partial<CostInputs> = {}): CostInputs => ({
  headers: {},
  query: new URLSearchParams(),
  body: undefined,
  ...over,
});
const rule = (source: CostRule['source'], extra: Partial<CostRule> = {}): CostRule => ({ source, min: 1, max: 1_000_000, ...extra });

describe('cost rules', () => {
  it('fixed costs ignore the request', () => {
    expect(evaluateCost({ source: { from: 'fixed', amount: 3 }, min: 3, max: 3 }, inputs())).toEqual({ ok: true, amount: 3 });
  });

  it('reads a number field of the JSON body, including dotted paths', () => {
    expect(evaluateCost(rule({ from: 'body', field: 'count' }), inputs({ body: { count: 25 } }))).toEqual({ ok: true, amount: 25 });
    expect(evaluateCost(rule({ from: 'body', field: 'job.size' }), inputs({ body: { job: { size: 7 } } }))).toEqual({ ok: true, amount: 7 });
  });

  it('counts the elements of a JSON array', () => {
    const emails = Array.from({ length: 300 }, (_, i) => `u${i}@example.com`);
    expect(evaluateCost(rule({ from: 'bodyLength', field: 'emails' }), inputs({ body: { emails } }))).toEqual({ ok: true, amount: 300 });
  });

  it('reads decimal headers and query parameters', () => {
    expect(evaluateCost(rule({ from: 'header', name: 'x-task-count' }), inputs({ headers: { 'x-task-count': '12' } }))).toEqual({ ok: true, amount: 12 });
    expect(evaluateCost(rule({ from: 'query', name: 'n' }), inputs({ query: new URLSearchParams('n=4') }))).toEqual({ ok: true, amount: 4 });
  });

  it.each([
    ['-3', 'a whole number'],
    ['1.5', 'a whole number'],
    ['1e3', 'a whole number'],
    ['0x10', 'a whole number'],
    [' 5', 'a whole number'],
    ['abc', 'a whole number'],
    ['99999999999999999', 'a whole number'],
  ])('refuses header value %j', (value, expected) => {
    const r = evaluateCost(rule({ from: 'header', name: 'x-n' }), inputs({ headers: { 'x-n': value } }));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toContain(expected);
  });

  it.each([
    [{ count: -1 }, 'at least 1'],
    [{ count: 0 }, 'at least 1'],
    [{ count: 2.5 }, 'whole number'],
    [{ count: '25' }, 'whole number'],
    [{ count: 1e300 }, 'whole number'],
    [{ count: 2_000_000 }, 'at most 1000000'],
    [{}, 'missing body field "count"'],
    [undefined, 'missing body field "count"'],
    [[1, 2], 'missing body field "count"'],
  ])('refuses body %j', (body, expected) => {
    const r = evaluateCost(rule({ from: 'body', field: 'count' }), inputs({ body }));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toContain(expected);
  });

  it('refuses a non-array where a length is wanted, and an empty array below min', () => {
    const r1 = evaluateCost(rule({ from: 'bodyLength', field: 'emails' }), inputs({ body: { emails: 'a@b' } }));
    expect(!r1.ok && r1.message).toContain('must be an array');
    const r2 = evaluateCost(rule({ from: 'bodyLength', field: 'emails' }), inputs({ body: { emails: [] } }));
    expect(!r2.ok && r2.message).toContain('at least 1');
    const r3 = evaluateCost(rule({ from: 'bodyLength', field: 'emails' }, { min: 0 }), inputs({ body: { emails: [] } }));
    expect(r3).toEqual({ ok: true, amount: 0 });
  });

  it('uses the default only when the input is absent, never when it is malformed', () => {
    const r = rule({ from: 'query', name: 'n' }, { default: 2 });
    expect(evaluateCost(r, inputs())).toEqual({ ok: true, amount: 2 });
    expect(evaluateCost(r, inputs({ query: new URLSearchParams('n=x') })).ok).toBe(false);
  });

  it('refuses repeated query parameters and repeated headers: which one would be charged is ambiguous', () => {
    expect(evaluateCost(rule({ from: 'query', name: 'n' }), inputs({ query: new URLSearchParams('n=1&n=500') })).ok).toBe(false);
    expect(evaluateCost(rule({ from: 'header', name: 'x-n' }), inputs({ headers: { 'x-n': ['1', '500'] } })).ok).toBe(false);
  });

  it('readJsonPath does not walk into prototypes', () => {
    expect(readJsonPath({}, 'constructor')).toBeUndefined();
    expect(readJsonPath({ a: { b: 1 } }, 'a.b')).toBe(1);
    expect(readJsonPath(null, 'a')).toBeUndefined();
  });
});
