// Who is asking. Two modes:
//  - header: the account id in a header (identity.header), which only a
//    trusted hop may set; optionally that hop proves itself with a shared
//    secret header, compared in constant time.
//  - jwt: a Bearer token verified with jose (signature, exp/nbf with a small
//    skew, issuer, audience, an allow-list of algorithms); the account is a
//    claim's value. A token wins over an account header.

import type { IncomingHttpHeaders } from 'node:http';
import { createRemoteJWKSet, importSPKI, importX509, jwtVerify, type JWTVerifyGetKey, type JWTPayload } from 'jose';
import type { CompiledConfig } from '../config/compiled-config.js';
import { resolveSecret } from '../config/secret-ref.js';
import { ACCOUNT_ID_RULE, isValidAccountId } from '../domain/account-id.js';
import { ConstantTimeSecret } from './constant-time-secret.js';
import { problem, type Problem } from './problem-details.js';

export type IdentityResult = { readonly ok: true; readonly account: string; readonly plan?: string } | { readonly ok: false; readonly problem: Problem };

type JwtConfig = NonNullable<CompiledConfig['identity']['jwt']>;

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? undefined : v;
}

// JWKS fetchers outlive config reloads: their cache and refresh cooldown
// belong to the endpoint, not to one config.
const jwksByUrl = new Map<string, JWTVerifyGetKey>();

function keyResolver(jwt: JwtConfig): JWTVerifyGetKey | Uint8Array {
  if (jwt.jwksUrl !== undefined) {
    const id = `${jwt.jwksUrl}\u0000${jwt.jwksCooldownSeconds}`;
    let jwks = jwksByUrl.get(id);
    if (!jwks) {
      // An unknown kid refetches the set, at most once per cooldown: a flood
      // of made-up kids cannot turn into a flood of JWKS requests.
      jwks = createRemoteJWKSet(new URL(jwt.jwksUrl), {
        cooldownDuration: jwt.jwksCooldownSeconds * 1000,
        cacheMaxAge: 600_000,
        timeoutDuration: 5_000,
      });
      jwksByUrl.set(id, jwks);
    }
    return jwks;
  }
  if (jwt.publicKey !== undefined) {
    const pem = jwt.publicKey.trim();
    const cache = new Map<string, ReturnType<typeof importSPKI>>();
    return async (header) => {
      const alg = header.alg;
      let key = cache.get(alg);
      if (!key) {
        key = pem.startsWith('-----BEGIN CERTIFICATE') ? importX509(pem, alg) : importSPKI(pem, alg);
        cache.set(alg, key);
      }
      return key;
    };
  }
  const secret = resolveSecret(jwt.secret);
  if (!secret) throw new Error('identity.jwt.secret is not set');
  return new TextEncoder().encode(secret);
}

/** A sentence for the client: why the token was refused, never the token itself. */
function reasonOf(err: unknown): { status: 401 | 503; detail: string } {
  const code = (err as { code?: string }).code;
  const claim = (err as { claim?: string }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return { status: 401, detail: 'the token has expired' };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'iss') return { status: 401, detail: 'the token has the wrong issuer' };
      if (claim === 'aud') return { status: 401, detail: 'the token has the wrong audience' };
      if (claim === 'nbf') return { status: 401, detail: 'the token is not valid yet' };
      return { status: 401, detail: `the token's ${claim ?? 'claims'} claim is invalid` };
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return { status: 401, detail: 'the token has a bad signature' };
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return { status: 401, detail: 'the token is signed with an algorithm that is not allowed' };
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return { status: 401, detail: 'the token is signed with an unknown key (kid)' };
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return { status: 503, detail: 'the signing keys cannot be fetched right now' };
    default:
      if (err instanceof TypeError || (code === undefined && (err as Error).name === 'Error')) {
        return { status: 503, detail: 'the signing keys cannot be fetched right now' };
      }
      return { status: 401, detail: 'the token is malformed' };
  }
}

export class IdentityVerifier {
  private readonly key: JWTVerifyGetKey | Uint8Array | undefined;
  private readonly hopSecret: ConstantTimeSecret;

  constructor(private readonly config: CompiledConfig) {
    this.key = config.identity.jwt ? keyResolver(config.identity.jwt) : undefined;
    this.hopSecret = new ConstantTimeSecret(resolveSecret(config.identity.trustedHopSecret));
  }

  async identify(headers: IncomingHttpHeaders): Promise<IdentityResult> {
    const jwt = this.config.identity.jwt;
    if (jwt) return this.fromToken(jwt, headers);
    return this.fromHeaders(headers);
  }

  /** The identity at once, when no token needs verifying (no JWT configured); otherwise undefined: call identify. */
  identifyNow(headers: IncomingHttpHeaders): IdentityResult | undefined {
    return this.config.identity.jwt ? undefined : this.fromHeaders(headers);
  }

  private fromHeaders(headers: IncomingHttpHeaders): IdentityResult {
    if (this.hopSecret.isSet) {
      if (!this.hopSecret.matches(headerValue(headers, this.config.identity.trustedHopHeader))) {
        return { ok: false, problem: problem('unauthenticated', 'this request did not come through the trusted hop') };
      }
    }
    const account = headerValue(headers, this.config.identityHeader);
    if (account === undefined || account === '') {
      return { ok: false, problem: problem('unauthenticated', `send the account id in the ${this.config.identityHeader} header`) };
    }
    if (!isValidAccountId(account)) return { ok: false, problem: problem('invalid-account-id', `account ids are ${ACCOUNT_ID_RULE}`) };
    return { ok: true, account };
  }

  private async fromToken(jwt: JwtConfig, headers: IncomingHttpHeaders): Promise<IdentityResult> {
    const auth = headerValue(headers, jwt.header);
    const m = auth === undefined ? null : /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i.exec(auth);
    if (!m) {
      return {
        ok: false,
        problem: problem('unauthenticated', `send a Bearer token in the ${jwt.header} header`, { headers: { 'www-authenticate': 'Bearer' } }),
      };
    }
    let payload: JWTPayload;
    try {
      const verified = await jwtVerify(m[1]!, this.key as JWTVerifyGetKey, {
        issuer: jwt.issuer,
        audience: jwt.audience,
        algorithms: [...jwt.algorithms],
        clockTolerance: jwt.clockSkewSeconds,
        requiredClaims: ['exp'],
      });
      payload = verified.payload;
    } catch (err) {
      const { status, detail } = reasonOf(err);
      if (status === 503) return { ok: false, problem: problem('identity-unavailable', detail, { headers: { 'retry-after': '5' } }) };
      return {
        ok: false,
        problem: problem('invalid-identity', detail, { headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${detail}"` } }),
      };
    }
    const raw = payload[jwt.accountClaim];
    const account = typeof raw === 'number' ? String(raw) : raw;
    if (typeof account !== 'string' || !isValidAccountId(account)) {
      return { ok: false, problem: problem('invalid-identity', `the token's ${jwt.accountClaim} claim is not an account id (${ACCOUNT_ID_RULE})`) };
    }
    if (jwt.planClaim === undefined) return { ok: true, account };
    const plan = payload[jwt.planClaim];
    if (typeof plan !== 'string' || plan === '') {
      return { ok: false, problem: problem('invalid-identity', `the token has no ${jwt.planClaim} claim naming a plan`) };
    }
    return { ok: true, account, plan };
  }
}
