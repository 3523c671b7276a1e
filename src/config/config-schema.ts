// The YAML config's shape: one zod schema that validates files on load and
// generates the published JSON Schema, so the two never disagree.

import { z } from 'zod';
import { parseInstant } from '../domain/billing-cycle.js';
import { MAX_CREDITS, MAX_CREDITS_TEXT } from '../domain/credit-amount.js';
import { checkRoutePath } from '../domain/route-table.js';

export const CREDIT_TYPE_ID = /^[a-z][a-z0-9_]{0,62}$/;
const ID_HINT = 'lower-case letters, digits and _, starting with a letter';
const PLAN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Largest cost one rule may produce unless the rule sets its own `max`. */
export const DEFAULT_MAX_COST = 1_000_000;
export const DEFAULT_MAX_BODY_BYTES = 1_048_576;

const creditTypeId = z.string().regex(CREDIT_TYPE_ID, `credit type ids are ${ID_HINT}`);

/** A whole number of credits from `min` up to MAX_CREDITS, the most every store keeps exact. */
const credits = (min: number) =>
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

const instant = z.string().describe('An ISO 8601 instant with a UTC offset, e.g. 2025-08-07T00:00:00Z.');
const mode = z.enum(['enforce', 'shadow']).describe('shadow: charge and count as usual, never refuse; would-be refusals are logged and counted.');

const onStoreError = z
  .union([z.enum(['deny', 'allow']), z.strictObject({ allow: credits(1) })])
  .describe('When the store is unreachable: deny (503), or allow up to an outage allowance per account and replica.');

const creditType = z.strictObject({
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

const plan = z.record(creditTypeId, quota).describe('Monthly allowance per credit type; omitted or 0 = not in plan.');

const costRule = z
  .strictObject({
    body: z.string().min(1).optional().describe('A number field of the JSON body (dotted path: "job.count").'),
    bodyLength: z.string().min(1).optional().describe('The length of an array field of the JSON body.'),
    header: z.string().regex(HEADER_NAME, 'expected an HTTP header name').optional(),
    query: z.string().min(1).optional().describe('A query-string parameter.'),
    reserve: credits(1).optional().describe('A fixed hold, settled after the response (needs settle).'),
    settle: z
      .strictObject({
        responseHeader: z.string().regex(HEADER_NAME, 'expected an HTTP header name').describe('Response header with the actual amount.'),
        divideBy: z.number().positive().default(1).describe('Divide the header value by this (seconds → minutes: 60).'),
        round: z.enum(['up', 'down', 'nearest']).default('up'),
      })
      .optional()
      .describe('Hold the cost before forwarding; charge the actual amount from the response, never above the hold.'),
    minReserve: credits(1)
      .optional()
      .describe('With settle: when less than the hold remains, hold what remains down to this (default 1); below it, 402.'),
    default: credits(0).optional().describe('Cost when the input is absent (else 400).'),
    min: credits(0).default(1).describe('Smallest accepted cost (else 400).'),
    max: credits(1)
      .optional()
      .describe("Largest accepted cost (else 400); default: the route's maxCost, else limits.maxCost."),
  })
  .superRefine((rule, ctx) => {
    const sources = (['body', 'bodyLength', 'header', 'query', 'reserve'] as const).filter((k) => rule[k] !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          sources.length === 0
            ? 'a cost rule needs one of body, bodyLength, header, query or reserve'
            : `a cost rule takes one input, got ${sources.join(' and ')}`,
      });
    }
    if (rule.reserve !== undefined && rule.settle === undefined) {
      ctx.addIssue({ code: 'custom', path: ['settle'], message: 'reserve holds credits until the response settles them: add settle' });
    }
    if (rule.minReserve !== undefined && rule.settle === undefined) {
      ctx.addIssue({ code: 'custom', path: ['minReserve'], message: 'minReserve applies to a held cost: add settle' });
    }
    if (rule.max !== undefined && rule.min > rule.max) ctx.addIssue({ code: 'custom', path: ['min'], message: 'min is above max' });
  });

export const COST_SPEC_MESSAGE = 'expected a number or a cost rule';

const costSpec = z.union([credits(1), costRule], {
  error: COST_SPEC_MESSAGE,
});

const method = z
  .string()
  .transform((m) => m.toUpperCase())
  .pipe(z.enum([...HTTP_METHODS, '*'], { error: `expected one of ${HTTP_METHODS.join(', ')} or *` }));

const refundCondition = z.union([
  z.enum(['5xx', '4xx', 'connection_error', 'timeout', 'client_abort']),
  z.number().int().min(100).max(599),
]);
const refundOn = z
  .array(refundCondition)
  .describe(
    'Upstream outcomes that give the charge back: 5xx, 4xx, exact statuses, connection_error, timeout; client_abort (the client hung up after the request was forwarded) only when listed.',
  );

const route = z.strictObject({
  name: z.string().regex(ROUTE_NAME, 'route names are letters, digits, _ . : -').describe('Used in logs and metrics.'),
  method: z.union([method, z.array(method).min(1)]).default('*'),
  path: z
    .string()
    .startsWith('/', 'a route path starts with /')
    .describe('Express-style: /v1/contacts/:id, /v1/files/*rest'),
  mode: mode.optional().describe('Overrides the global mode for this route.'),
  maxCost: credits(1).optional().describe('Largest cost any rule of this route accepts (default limits.maxCost).'),
  refundOn: refundOn.optional().describe('Overrides upstream.refundOn for this route.'),
  chargeWhen: z
    .strictObject({ status: z.array(z.number().int().min(100).max(599)).min(1) })
    .optional()
    .describe('Credits owed only on these statuses; any other answer is refunded (e.g. 404 "not identified").'),
  releaseWhen: z
    .strictObject({ status: z.array(z.number().int().min(100).max(599)).min(1) })
    .optional()
    .describe('Capacity in release is given back only when the upstream answers with one of these statuses (default: any 2xx).'),
  rateLimit: z
    .strictObject({
      points: z.number().int().min(1).describe('Requests allowed per account per window.'),
      duration: z
        .string()
        .regex(/^[1-9]\d*(s|m|h)$/, 'expected a whole number of seconds, minutes or hours: 1s, 10s, 1m')
        .describe('The window (whole seconds: the limiter keeps Redis TTLs in seconds).'),
    })
    .optional()
    .describe('A request-rate limit per account beside the credits (429 when exceeded; nothing charged).'),
  charge: z
    .record(creditTypeId, costSpec)
    .default({})
    .describe('Credits this route spends, per credit type: all or nothing.'),
  release: z
    .record(creditTypeId, costSpec)
    .default({})
    .describe('Capacity this route gives back (disconnect): never below zero, never refused.'),
});

const secretRef = z
  .string()
  .min(1)
  .describe('A literal, or env:NAME to read it from the environment.');

const alerts = z.strictObject({
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
      smtp: z.string().regex(/^smtps?:\/\//, 'expected smtp://… or smtps://…').describe('SMTP URL, e.g. smtp://user:pass@host:587'),
      from: z.string().min(3),
      subject: z.string().min(1).optional().describe('Subject template; {creditType}, {percent}, {account} are filled in.'),
      maxAttempts: z.number().int().min(1).max(20).default(4),
    })
    .optional(),
  queueSize: z.number().int().min(1).default(10_000).describe('Deliveries waiting at most; beyond it the oldest are dropped.'),
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
    jwksCooldownSeconds: z
      .number()
      .min(0.1)
      .max(3600)
      .default(30)
      .describe('An unknown kid refetches the JWKS at most once per this many seconds.'),
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

const identity = z.strictObject({
  header: z
    .string()
    .regex(HEADER_NAME, 'expected an HTTP header name')
    .default('x-account-id')
    .describe('Request header carrying the account id. Must be set by a trusted hop.'),
  trustedHopSecret: secretRef
    .optional()
    .describe('Header mode: require the trusted hop to prove itself with this shared secret (env:NAME).'),
  trustedHopHeader: z
    .string()
    .regex(HEADER_NAME, 'expected an HTTP header name')
    .default('x-creditgate-hop-secret')
    .describe('The header carrying the trusted hop secret; never forwarded upstream.'),
  jwt: jwtIdentity.optional().describe('Identify accounts by a verified JWT instead of trusting a header.'),
});

export const configSchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    identity: identity.default({ header: 'x-account-id', trustedHopHeader: 'x-creditgate-hop-secret' }),
    mode: mode.default('enforce'),
    enforceFrom: instant.optional().describe('Before this instant everything runs in shadow mode ("announced before enforced").'),
    defaultPlan: z
      .string()
      .optional()
      .describe('Plan for accounts with no record, on calendar-month cycles. Omitted: such accounts get 403.'),
    unmatched: z
      .enum(['pass', 'reject'])
      .default('pass')
      .describe('Requests no route matches: pass through uncharged, or reject with 404.'),
    routing: z
      .strictObject({
        caseSensitive: z
          .boolean()
          .optional()
          .describe(
            'Whether route paths compare case-sensitively. Default false: a request is charged by the route it matches in any letter case. The Express middleware follows the app\'s "case sensitive routing" setting unless this is set.',
          ),
      })
      .default({}),
    limits: z
      .strictObject({
        maxBodyBytes: z
          .number()
          .int()
          .min(1)
          .default(DEFAULT_MAX_BODY_BYTES)
          .describe('Largest body read on a route whose cost comes from the body (else 413).'),
        maxJsonDepth: z.number().int().min(1).max(1000).default(32).describe('Deepest JSON nesting accepted in such a body (else 400).'),
        maxCost: credits(1)
          .default(DEFAULT_MAX_COST)
          .describe('Largest cost one rule accepts unless the route or rule says otherwise (else 400).'),
      })
      .default({ maxBodyBytes: DEFAULT_MAX_BODY_BYTES, maxJsonDepth: 32, maxCost: DEFAULT_MAX_COST }),
    store: z
      .strictObject({
        timeoutMs: z.number().int().min(1).max(60_000).default(50).describe('Timeout of each store call.'),
        journalSize: z
          .number()
          .int()
          .min(0)
          .default(100_000)
          .describe('Outage charges and refunds kept for replay when the store is back; when full, allow-mode requests are denied and a refund that cannot be kept is logged and counted as lost.'),
        journalFile: z
          .string()
          .min(1)
          .optional()
          .describe('Where the outage journal is kept across a restart: written at shutdown when the store could not take it, read back and replayed at start. Without it, entries left at shutdown are logged (everything needed to apply them by hand) and counted as lost.'),
        maxAccounts: z
          .number()
          .int()
          .min(1)
          .default(1_000_000)
          .describe(
            'Memory store only (ignored with Redis): accounts held at most. At the bound a new account gets 503 store-full; accounts held keep working and nothing live is dropped.',
          ),
      })
      .default({ timeoutMs: 50, journalSize: 100_000, maxAccounts: 1_000_000 }),
    cache: z
      .strictObject({
        accountTtlMs: z
          .number()
          .int()
          .min(0)
          .default(60_000)
          .describe('How long a replica may use an account record or an empty pool from memory; changes are pushed to every replica at once (0 turns caching off).'),
        maxAccounts: z.number().int().min(0).default(100_000).describe('Accounts remembered per replica, least recently used out first.'),
      })
      .default({ accountTtlMs: 60_000, maxAccounts: 100_000 }),
    upstream: z
      .strictObject({
        timeoutMs: z.number().int().min(1).default(30_000).describe('Longest wait for the upstream\'s response headers (then 504 and a refund).'),
        refundOn: refundOn.default(['5xx', 'connection_error', 'timeout']),
      })
      .default({ timeoutMs: 30_000, refundOn: ['5xx', 'connection_error', 'timeout'] }),
    idempotency: z
      .strictObject({
        header: z.string().regex(HEADER_NAME, 'expected an HTTP header name').default('idempotency-key'),
        ttlMs: z.number().int().min(1000).default(86_400_000).describe('How long a completed request\'s key is remembered.'),
        maxResponseBytes: z
          .number()
          .int()
          .min(0)
          .max(64 * 1024 * 1024)
          .default(1_048_576)
          .describe('Largest first response kept for replays (status, headers, body); a larger one, or a stream, is not kept and its replays get 409.'),
      })
      .default({ header: 'idempotency-key', ttlMs: 86_400_000, maxResponseBytes: 1_048_576 }),
    problems: z
      .strictObject({
        baseUrl: z.url().default('https://creditgate.dev/problems/').describe('Prefix of problem+json type URIs.'),
      })
      .default({ baseUrl: 'https://creditgate.dev/problems/' }),
    alerts: alerts.default({ thresholds: [0.8, 1.0], keepEvents: 100, queueSize: 10_000 }),
    creditTypes: z.record(creditTypeId, creditType),
    plans: z.record(z.string().regex(PLAN_ID, 'plan ids are letters, digits, _ . -'), plan),
    routes: z.array(route).default([]),
  })
  .superRefine((cfg, ctx) => {
    const types = Object.keys(cfg.creditTypes);
    if (types.length === 0) ctx.addIssue({ code: 'custom', path: ['creditTypes'], message: 'declare at least one credit type' });
    const known = new Set(types);
    const unknownType = (id: string) => `unknown credit type "${id}" (declared: ${types.join(', ') || 'none'})`;
    for (const [planId, quotas] of Object.entries(cfg.plans)) {
      for (const id of Object.keys(quotas)) {
        if (!known.has(id)) ctx.addIssue({ code: 'custom', path: ['plans', planId, id], message: unknownType(id) });
      }
    }
    const checkInstant = (value: string | undefined, path: (string | number)[]) => {
      if (value === undefined) return;
      try {
        parseInstant(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path, message: (err as Error).message });
      }
    };
    checkInstant(cfg.enforceFrom, ['enforceFrom']);
    for (const [id, t] of Object.entries(cfg.creditTypes)) checkInstant(t.enforceFrom, ['creditTypes', id, 'enforceFrom']);
    const sorted = [...cfg.alerts.thresholds].sort((a, b) => a - b);
    if (new Set(sorted).size !== sorted.length) ctx.addIssue({ code: 'custom', path: ['alerts', 'thresholds'], message: 'thresholds repeat' });
    if (Object.keys(cfg.plans).length === 0) ctx.addIssue({ code: 'custom', path: ['plans'], message: 'declare at least one plan' });
    if (cfg.defaultPlan !== undefined && !(cfg.defaultPlan in cfg.plans)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultPlan'],
        message: `unknown plan "${cfg.defaultPlan}" (declared: ${Object.keys(cfg.plans).join(', ')})`,
      });
    }
    const names = new Map<string, number>();
    cfg.routes.forEach((r, i) => {
      const first = names.get(r.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `duplicate route name (also routes[${first}])` });
      } else {
        names.set(r.name, i);
      }
      try {
        checkRoutePath(r.path);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: (err as Error).message.split(';')[0]! });
      }
      const charged = Object.keys(r.charge);
      const released = Object.keys(r.release);
      if (charged.length === 0 && released.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'charge'], message: 'charge (or release) at least one credit type' });
      }
      for (const id of charged) {
        if (!known.has(id)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'charge', id], message: unknownType(id) });
      }
      if (r.releaseWhen !== undefined && released.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'releaseWhen'], message: 'releaseWhen applies to a route that releases capacity: add release' });
      }
      for (const id of released) {
        if (!known.has(id)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'release', id], message: unknownType(id) });
        else if (cfg.creditTypes[id]!.kind !== 'capacity') {
          ctx.addIssue({ code: 'custom', path: ['routes', i, 'release', id], message: 'only capacity credit types can be released' });
        } else if (charged.includes(id)) {
          ctx.addIssue({ code: 'custom', path: ['routes', i, 'release', id], message: 'a route cannot both charge and release one credit type' });
        }
      }
    });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ParsedCostSpec = z.output<typeof costSpec>;

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://creditgate.dev/schema/config-v1.json',
    title: 'creditgate config',
  };
}
