// The config schema's shared parts and its smaller sections: ids, credit
// amounts, instants and modes; credit types and plans; alerts; identity (a
// trusted header or a verified JWT). Routes and cost rules are in
// config-schema-routes.ts; the whole file and its cross-checks in
// config-schema.ts.

import { z } from 'zod';
import { MAX_CREDITS, MAX_CREDITS_TEXT } from '../domain/credit-amount.js';

export const CREDIT_TYPE_ID = /^[a-z][a-z0-9_]{0,62}$/;
const ID_HINT = 'lower-case letters, digits and _, starting with a letter';
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const creditTypeId = z.string().regex(CREDIT_TYPE_ID, `credit type ids are ${ID_HINT}`);

/** A whole number of credits from `min` up to MAX_CREDITS, the most every store keeps exact. */
export const credits = (min: number) =>
  z
    .number()
    .int()
    .min(min)
    .max(MAX_CREDITS, { error: `at most ${MAX_CREDITS_TEXT} credits (the largest amount creditgate keeps exact)` });

const topUp = z.union(
  [
    z.strictObject({ url: z.url().describe('Self-serve add-ons page.') }),
    z.strictObject({ contact: z.string().min(1).describe('Who to ask (support address or page).') }),
  ],
  { error: 'expected { url: https://… } or { contact: … }' },
);

export const instant = z.string().describe('An ISO 8601 instant with a UTC offset, e.g. 2025-08-07T00:00:00Z.');
export const mode = z.enum(['enforce', 'shadow']).describe('shadow: charge and count as usual, never refuse; would-be refusals are logged and counted.');

const onStoreError = z
  .union([z.enum(['deny', 'allow']), z.strictObject({ allow: credits(1) })])
  .describe('When the store is unreachable: deny (503), or allow up to an outage allowance per account and replica.');

export const creditType = z.strictObject({
  name: z.string().min(1).describe('Display name, as a billing page shows it.'),
  onStoreError: onStoreError.optional().describe('Default deny; plain allow = { allow: 100 }.'),
  enforceFrom: instant.optional().describe('Before this instant this credit type runs in shadow mode.'),
  topUp: topUp.optional().describe('How more of this credit type is bought; carried in 402 bodies and alerts.'),
  kind: z
    .enum(['consumable', 'capacity'])
    .default('consumable')
    .describe('consumable: a monthly allowance that resets each cycle. capacity: a count of connected things.'),
  unit: z.string().min(1).optional().describe('What one credit is, for messages: "minute", "page".'),
});

const quota = z.union([credits(0), z.literal('unlimited')], {
  error: `expected a whole number from 0 to ${MAX_CREDITS_TEXT} or "unlimited"`,
});

export const plan = z.record(creditTypeId, quota).describe('Monthly allowance per credit type; omitted or 0 = not in plan.');

export const secretRef = z.string().min(1).describe('A literal, or env:NAME to read it from the environment.');

export const alerts = z.strictObject({
  thresholds: z
    .array(z.number().gt(0).max(1))
    .default([0.8, 1.0])
    .describe('Fractions of the allowance; each fires once per account, pool and cycle. 1.0 = exhausted.'),
  keepEvents: z.number().int().min(1).max(10_000).default(100).describe('Events kept per account for the feed.'),
  webhook: z
    .strictObject({
      url: z.url(),
      secret: secretRef.optional().describe('HMAC-SHA256 signing secret (creditgate-signature header).'),
      timeoutMs: z.number().int().min(1).default(5000),
      maxAttempts: z.number().int().min(1).max(20).default(6),
    })
    .optional(),
  email: z
    .strictObject({
      smtp: z
        .string()
        .regex(/^smtps?:\/\//, 'expected smtp://… or smtps://…')
        .describe('SMTP URL, e.g. smtp://user:pass@host:587'),
      from: z.string().min(3),
      subject: z.string().min(1).optional().describe('Subject template; {creditType}, {percent}, {account} are filled in.'),
      maxAttempts: z.number().int().min(1).max(20).default(4),
    })
    .optional(),
  queueSize: z.number().int().min(1).default(10_000).describe('Deliveries waiting at most; beyond it the oldest are dropped.'),
  forecast: z
    .strictObject({
      daysBeforeReset: z
        .number()
        .int()
        .min(1)
        .max(31)
        .describe('Fire when a charge puts the pool on pace to run out at least this many days before its reset.'),
    })
    .optional()
    .describe('One "forecast" event per account, pool and cycle when usage is on pace to run out early.'),
});

const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512'] as const;

const jwtIdentity = z
  .strictObject({
    issuer: z.string().min(1).describe('Expected iss.'),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe('Expected aud.'),
    jwksUrl: z.url().optional().describe('JWKS endpoint (https, or http on a loopback host); cached, refreshed on an unknown kid.'),
    publicKey: z.string().optional().describe('A PEM public key (SPKI) or certificate.'),
    secret: secretRef.optional().describe('HMAC secret for HS* tokens (env:NAME).'),
    algorithms: z.array(z.enum(JWT_ALGORITHMS, { error: `expected one of ${JWT_ALGORITHMS.join(', ')} (never "none")` })).min(1),
    accountClaim: z.string().min(1).default('sub').describe('The claim whose value is the account id.'),
    planClaim: z.string().min(1).optional().describe('A claim naming the plan: the plan comes from the token, not from an account record.'),
    header: z.string().regex(HEADER_NAME, 'expected an HTTP header name').default('authorization').describe('Header carrying "Bearer <token>".'),
    clockSkewSeconds: z.number().int().min(0).max(600).default(30).describe('Tolerance on exp and nbf.'),
    jwksCooldownSeconds: z.number().min(0.1).max(3600).default(30).describe('An unknown kid refetches the JWKS at most once per this many seconds.'),
  })
  .superRefine((jwt, ctx) => {
    const sources = (['jwksUrl', 'publicKey', 'secret'] as const).filter((k) => jwt[k] !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of jwksUrl, publicKey or secret' });
      return;
    }
    const hmac = jwt.algorithms.filter((a) => a.startsWith('HS'));
    const asymmetric = jwt.algorithms.filter((a) => !a.startsWith('HS'));
    // A key used both ways is how an RS256 public key becomes an HMAC secret.
    if (jwt.secret !== undefined && asymmetric.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: `a shared secret verifies HS* only, not ${asymmetric.join(', ')}` });
    }
    if (jwt.secret === undefined && hmac.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: `${hmac.join(', ')} need a shared secret, not a public key` });
    }
    if (jwt.jwksUrl !== undefined) {
      const url = new URL(jwt.jwksUrl);
      const loopback = ['localhost', '127.0.0.1', '[::1]', '::1'].includes(url.hostname) || url.hostname.startsWith('127.');
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
        ctx.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'jwksUrl must be https (http only on a loopback host)' });
      }
    }
  });

export const identity = z.strictObject({
  header: z
    .string()
    .regex(HEADER_NAME, 'expected an HTTP header name')
    .default('x-account-id')
    .describe('Request header carrying the account id. Must be set by a trusted hop.'),
  trustedHopSecret: secretRef.optional().describe('Header mode: require the trusted hop to prove itself with this shared secret (env:NAME).'),
  trustedHopHeader: z
    .string()
    .regex(HEADER_NAME, 'expected an HTTP header name')
    .default('x-creditgate-hop-secret')
    .describe('The header carrying the trusted hop secret; never forwarded upstream.'),
  jwt: jwtIdentity.optional().describe('Identify accounts by a verified JWT instead of trusting a header.'),
});
