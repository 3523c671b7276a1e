// JWT identity with real keys (RS256, ES256, HS256), a real JWKS endpoint on
// loopback with key rotation, and the attacks: none, HS/RS confusion,
// expired, not yet valid, wrong issuer, wrong audience, unknown kid.

import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const ISSUER = 'https://auth.example.com';
const AUDIENCE = 'creditgate';

type Key = Awaited<ReturnType<typeof generateKeyPair>>;

async function jwksServer(): Promise<{ url: string; keys: JWK[]; fetches: () => number; close: () => Promise<void> }> {
  const state = { keys: [] as JWK[], fetches: 0 };
  const server = http.createServer((_req, res) => {
    state.fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    keys: state.keys,
    fetches: () => state.fetches,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

describe('JWT identity', () => {
  let jwks: Awaited<ReturnType<typeof jwksServer>>;
  let rsa: Key;
  let ec: Key;
  let h: Harness;
  const sign = (
    key: Key,
    alg: string,
    kid: string,
    claims: Record<string, unknown> = {},
    opts: { exp?: string | number; nbf?: string | number; iss?: string; aud?: string } = {},
  ) => {
    const jwt = new SignJWT({ plan: 'big', ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer(opts.iss ?? ISSUER)
      .setAudience(opts.aud ?? AUDIENCE)
      .setSubject(String(claims.sub ?? 'acct-default'))
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m');
    if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
    return jwt.sign(key.privateKey);
  };

  beforeAll(async () => {
    jwks = await jwksServer();
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
    jwks.keys.push(
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    );
    const config = editConfig(TEST_CONFIG, [
      'identity: { header: x-account-id }',
      `identity:
  header: x-account-id
  jwt:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    jwksUrl: ${jwks.url}
    algorithms: [RS256, ES256]
    accountClaim: sub
    planClaim: plan
    clockSkewSeconds: 5
    jwksCooldownSeconds: 1`,
    ]);
    h = await startHarness({ config, redis: redisUrl(), keyPrefix: uniquePrefix('jwt') });
  });
  afterAll(async () => {
    await h.close();
    await jwks.close();
  });

  const call = (token: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${h.proxy}/v1/ai/custom`, {
      method: 'POST',
      headers: { 'x-task-count': '1', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });

  it('RS256 and ES256 tokens from the JWKS identify the account; the plan comes from the token', async () => {
    const a = `jwt-${randomUUID()}`;
    for (const [key, alg, kid] of [
      [rsa, 'RS256', 'rsa-1'],
      [ec, 'ES256', 'ec-1'],
    ] as const) {
      const r = await call(await sign(key, alg, kid, { sub: a }));
      expect(r.status).toBe(200);
      // The "big" plan from the token: ai_tasks unlimited, so no RateLimit fields.
      expect(r.headers.get('ratelimit')).toBeNull();
    }
    const seen = h.upstream.requests.filter((x) => x.headers['x-account-id'] === a);
    expect(seen).toHaveLength(2);
    const usage = await (await h.adminFetch(`/v1/accounts/${a}/usage`)).json();
    expect(usage.pools.ai_tasks.used).toBe(2);
  });

  it('the token wins over an x-account-id header, which never reaches the upstream as the client sent it', async () => {
    const a = `tok-${randomUUID()}`;
    const r = await call(await sign(rsa, 'RS256', 'rsa-1', { sub: a }), { 'x-account-id': 'someone-else' });
    expect(r.status).toBe(200);
    expect(h.upstream.requests.at(-1)!.headers['x-account-id']).toBe(a);
    // Unrouted requests lose the client's header too.
    await fetch(`${h.proxy}/v1/unrouted`, { headers: { 'x-account-id': 'someone-else' } });
    expect(h.upstream.requests.at(-1)!.headers['x-account-id']).toBeUndefined();
  });

  it.each([
    ['no token', async () => undefined, 'unauthenticated', /Bearer token/],
    ['expired', async () => sign(rsa, 'RS256', 'rsa-1', {}, { exp: Math.floor(Date.now() / 1000) - 60 }), 'invalid-identity', /expired/],
    ['not yet valid', async () => sign(rsa, 'RS256', 'rsa-1', {}, { nbf: Math.floor(Date.now() / 1000) + 600 }), 'invalid-identity', /not valid yet/],
    ['wrong issuer', async () => sign(rsa, 'RS256', 'rsa-1', {}, { iss: 'https://evil.example.com' }), 'invalid-identity', /wrong issuer/],
    ['wrong audience', async () => sign(rsa, 'RS256', 'rsa-1', {}, { aud: 'another-api' }), 'invalid-identity', /wrong audience/],
    ['unknown kid', async () => sign(await generateKeyPair('RS256'), 'RS256', 'rsa-unknown'), 'invalid-identity', /unknown key/],
    ['bad signature (another key, known kid)', async () => sign(await generateKeyPair('RS256'), 'RS256', 'rsa-1'), 'invalid-identity', /bad signature/],
    [
      'alg none',
      async () =>
        `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 }))}.`,
      'invalid-identity',
      /algorithm|malformed/,
    ],
    [
      'HS256 signed with the RS256 public key as the secret',
      async () => {
        const pem = await exportSPKI(rsa.publicKey);
        const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'rsa-1' }));
        const body = b64url(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60, plan: 'big' }));
        const sig = createHmac('sha256', pem).update(`${head}.${body}`).digest('base64url');
        return `${head}.${body}.${sig}`;
      },
      'invalid-identity',
      /algorithm/,
    ],
    ['garbage', async () => 'not.a.jwt', 'invalid-identity', /malformed/],
  ])('%s → 401 that says why, without echoing the token', async (_name, make, type, detail) => {
    const token = await make();
    const r = await call(token);
    expect(r.status).toBe(401);
    const body = await r.json();
    expect(body.type).toBe(`https://creditgate.dev/problems/${type}`);
    expect(body.detail).toMatch(detail);
    if (token) expect(JSON.stringify(body) + (r.headers.get('www-authenticate') ?? '')).not.toContain(token);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('a token whose plan is not configured is refused (403 unknown-plan)', async () => {
    const r = await call(await sign(rsa, 'RS256', 'rsa-1', { sub: 'p1', plan: 'platinum' }));
    expect(r.status).toBe(403);
    expect((await r.json()).type).toBe('https://creditgate.dev/problems/unknown-plan');
  });

  it('key rotation: a new key is accepted once the JWKS publishes it, the retired one refused', async () => {
    const next = await generateKeyPair('RS256');
    const a = `rot-${randomUUID()}`;
    await new Promise((r) => setTimeout(r, 1100)); // past the refetch cooldown
    expect((await call(await sign(next, 'RS256', 'rsa-2', { sub: a }))).status).toBe(401);
    jwks.keys.push({ ...(await exportJWK(next.publicKey)), kid: 'rsa-2', alg: 'RS256', use: 'sig' });
    const retired = jwks.keys.findIndex((k) => k.kid === 'rsa-1');
    jwks.keys.splice(retired, 1);
    await new Promise((r) => setTimeout(r, 1100));
    const before = jwks.fetches();
    expect((await call(await sign(next, 'RS256', 'rsa-2', { sub: a }))).status).toBe(200);
    expect(jwks.fetches()).toBe(before + 1);
    // The cached set now lacks rsa-1: tokens from the retired key fail (after the cooldown refetch).
    await new Promise((r) => setTimeout(r, 1100));
    expect((await call(await sign(rsa, 'RS256', 'rsa-1', { sub: a }))).status).toBe(401);
  });

  it('unknown kids do not flood the JWKS endpoint: refetches are rate-limited', async () => {
    const before = jwks.fetches();
    const stranger = await generateKeyPair('RS256');
    await Promise.all(Array.from({ length: 30 }, async (_, i) => call(await sign(stranger, 'RS256', `made-up-${i}`))));
    expect(jwks.fetches() - before).toBeLessThanOrEqual(1);
  });
});
