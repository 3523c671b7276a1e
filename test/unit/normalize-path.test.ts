import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normalizePath, normalizePathFully } from '../../src/domain/normalize-path.js';
import { fcSeed } from '../helpers/fc-seed.js';

describe('path normalisation', () => {
  it.each([
    ['/v1/ai/followups', '/v1/ai/followups'],
    ['//v1/ai/followups', '/v1/ai/followups'],
    ['/v1//ai///followups', '/v1/ai/followups'],
    ['/v1/ai/./followups', '/v1/ai/followups'],
    ['/v1/x/../ai/followups', '/v1/ai/followups'],
    ['/v1/ai/followups/', '/v1/ai/followups/'],
    ['/v1/ai/%66ollowups', '/v1/ai/followups'],
    ['/v1/ai/%2e/followups', '/v1/ai/followups'],
    ['/v1/x/%2E%2E/ai/followups', '/v1/ai/followups'],
    ['/v1/ai/followups;jsessionid=1', '/v1/ai/followups'],
    ['/v1;v=2/ai/followups', '/v1/ai/followups'],
    ['/v1/contacts/a%20b', '/v1/contacts/a%20b'],
    ['/v1/contacts/%c3%a9', '/v1/contacts/%C3%A9'],
    ['http://example.com/v1/ai/followups', '/v1/ai/followups'],
    ['/', '/'],
  ])('%s → %s', (raw, expected) => {
    expect(normalizePath(raw)).toEqual({ ok: true, path: expected });
  });

  it.each([
    ['/v1%2Fai%2Ffollowups', /encoded slash/],
    ['/v1/ai%5cfollowups', /encoded slash/],
    ['/v1/ai\\followups', /backslash/],
    ['/v1/ai/%00', /control/],
    ['/v1/ai/%zz', /malformed percent/],
    ['/../etc/passwd', /above the root/],
    ['v1/ai', /start with/],
    ['/v1/ai\tfollowups', /control/],
  ])('refuses %s', (raw, reason) => {
    const r = normalizePath(raw);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });
});

describe('path normalisation: the shortcut for paths already normal', () => {
  it('gives what the whole algorithm gives, for any path built from the characters that matter', () => {
    const piece = fc.constantFrom(
      'a',
      'Z',
      '0',
      '.',
      '..',
      '/',
      '//',
      '%2e',
      '%2F',
      '%41',
      '%zz',
      ';x=1',
      '-',
      '_',
      '~',
      '!',
      '*',
      ':',
      '@',
      ' ',
      '%',
      '\\',
      '$',
      '&',
      "'",
      '(',
      ',',
      '=',
      '+',
      '\u00e9',
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(piece, { minLength: 0, maxLength: 10 }), (rooted, pieces) => {
        const raw = (rooted ? '/' : '') + pieces.join('');
        expect(normalizePath(raw)).toEqual(normalizePathFully(raw));
      }),
      { numRuns: 20_000, seed: fcSeed('path shortcut', 20261201) },
    );
  });

  it('takes the shortcut only where nothing changes', () => {
    for (const raw of ['/v1/ai/followups', '/v1/ai/followups/', "/a!$&'()*+,=:@~._-/b"]) expect(normalizePath(raw)).toEqual({ ok: true, path: raw });
    for (const raw of ['/v1/./a', '/v1/../a', '/v1//a', '/v1/%61', '/v1;p=1/a', '/.', '/..']) expect(normalizePath(raw)).toEqual(normalizePathFully(raw));
  });
});
