// The other identity modes: HS256 with a shared secret, a PEM public key,
// and header mode behind a trusted hop that proves itself with a secret.

import { randomUUID } from 'node:crypto';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfigText } from '../../src/config/index.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const jwtConfig = (block: string) =>
  editConfig(TEST_CONFIG, ['identity: { header: x-account-id }', `identity:\n  jwt:\n    issuer: iss\n    audience: aud\n${block}`]);
const call = (harness: Harness, headers: Record<string, string>) =>
  fetch(`${harness.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-task-count': '1', ...headers } });

describe('identity modes', () => {
  it('HS256 with a shared secret from the environment', async () => {
    process.env.CG_TEST_JWT_SECRET = 'a-long-shared-secret-for-hs256-tests';
    h = await startHarness({ config: jwtConfig('    secret: env:CG_TEST_JWT_SECRET\n    algorithms: [HS256]\n') });
    const a = `hs-${randomUUID()}`;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('iss')
      .setAudience('aud')
      .setSubject(a)
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(process.env.CG_TEST_JWT_SECRET));
    expect((await call(h, { authorization: `Bearer ${token}` })).status).toBe(200);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('iss')
      .setAudience('aud')
      .setSubject(a)
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode('guessed'));
    const r = await call(h, { authorization: `Bearer ${forged}` });
    expect(r.status).toBe(401);
    expect((await r.json()).detail).toMatch(/bad signature/);
  });

  it('a PEM public key (ES256)', async () => {
    const key = await generateKeyPair('ES256');
    const pem = (await exportSPKI(key.publicKey))
      .trim()
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n');
    h = await startHarness({ config: jwtConfig(`    publicKey: |\n${pem}\n    algorithms: [ES256]\n`) });
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('iss')
      .setAudience('aud')
      .setSubject('pem-acct')
      .setExpirationTime('1m')
      .sign(key.privateKey);
    expect((await call(h, { authorization: `Bearer ${token}` })).status).toBe(200);
    const other = await generateKeyPair('ES256');
    const bad = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('iss')
      .setAudience('aud')
      .setSubject('pem-acct')
      .setExpirationTime('1m')
      .sign(other.privateKey);
    expect((await call(h, { authorization: `Bearer ${bad}` })).status).toBe(401);
  });

  it('header mode behind a trusted hop: the secret is required, compared exactly, and never forwarded', async () => {
    process.env.CG_TEST_HOP_SECRET = 'hop-secret-123';
    h = await startHarness({
      config: editConfig(TEST_CONFIG, ['identity: { header: x-account-id }', 'identity: { header: x-account-id, trustedHopSecret: env:CG_TEST_HOP_SECRET }']),
    });
    const a = `hop-${randomUUID()}`;
    for (const secret of [undefined, 'wrong', 'hop-secret-1234', 'hop-secret-12']) {
      const r = await call(h, { 'x-account-id': a, ...(secret ? { 'x-creditgate-hop-secret': secret } : {}) });
      expect(r.status).toBe(401);
    }
    const ok = await call(h, { 'x-account-id': a, 'x-creditgate-hop-secret': 'hop-secret-123' });
    expect(ok.status).toBe(200);
    const seen = h.upstream.requests.filter((r) => r.headers['x-account-id'] === a);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-creditgate-hop-secret']).toBeUndefined();
  });

  it.each([
    ['jwksUrl over plain http to a remote host', '    jwksUrl: http://auth.example.com/jwks.json\n    algorithms: [RS256]\n', /jwksUrl must be https/],
    ['HS256 with a public key (HS/RS confusion)', '    publicKey: "-----BEGIN PUBLIC KEY-----"\n    algorithms: [HS256]\n', /HS256 need a shared secret/],
    ['a secret for RS256', '    secret: s3cret\n    algorithms: [RS256]\n', /a shared secret verifies HS\* only/],
    ['alg none', '    secret: s3cret\n    algorithms: [none]\n', /never "none"/],
    ['two key sources', '    secret: s3cret\n    jwksUrl: https://a.example.com/j\n    algorithms: [HS256]\n', /exactly one of jwksUrl, publicKey or secret/],
  ])('refuses a config with %s', (_name, block, message) => {
    try {
      loadConfigText(jwtConfig(block), 'c.yaml');
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
    }
  });
});
