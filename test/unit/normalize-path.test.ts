import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../src/domain/normalize-path.js';

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
