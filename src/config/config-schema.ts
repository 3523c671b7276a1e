// The YAML config's shape: one zod schema that validates files on load and
// generates the published JSON Schema, so the two never disagree.

import { z } from 'zod';
import { parseInstant } from '../domain/billing-cycle.js';
import { checkRoutePath } from '../domain/route-table.js';
import { billing } from './config-schema-billing.js';
import { alerts, credits, creditType, creditTypeId, HEADER_NAME, identity, instant, mode, plan } from './config-schema-parts.js';
import { type costSpec, problemStyle, refundOn, route } from './config-schema-routes.js';

export { CREDIT_TYPE_ID } from './config-schema-parts.js';
export { COST_SPEC_MESSAGE } from './config-schema-routes.js';
export { HTTP_METHODS } from '../domain/request-target.js';

const PLAN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Largest cost one rule may produce unless the rule sets its own `max`. */
export const DEFAULT_MAX_COST = 1_000_000;
export const DEFAULT_MAX_BODY_BYTES = 1_048_576;

export const configSchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    identity: identity.default({ header: 'x-account-id', trustedHopHeader: 'x-creditgate-hop-secret' }),
    mode: mode.default('enforce'),
    enforceFrom: instant.optional().describe('Before this instant everything runs in shadow mode ("announced before enforced").'),
    defaultPlan: z.string().optional().describe('Plan for accounts with no record, on calendar-month cycles. Omitted: such accounts get 403.'),
    unmatched: z.enum(['pass', 'reject']).default('pass').describe('Requests no route matches: pass through uncharged, or reject with 404.'),
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
        maxCost: credits(1).default(DEFAULT_MAX_COST).describe('Largest cost one rule accepts unless the route or rule says otherwise (else 400).'),
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
          .describe(
            'Outage charges and refunds kept for replay when the store is back; when full, allow-mode requests are denied and a refund that cannot be kept is logged and counted as lost.',
          ),
        journalFile: z
          .string()
          .min(1)
          .optional()
          .describe(
            'Where the outage journal is kept across a restart: written at shutdown when the store could not take it, read back and replayed at start. Without it, entries left at shutdown are logged (everything needed to apply them by hand) and counted as lost.',
          ),
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
          .describe(
            'How long a replica may use an account record or an empty pool from memory; changes are pushed to every replica at once (0 turns caching off).',
          ),
        maxAccounts: z.number().int().min(0).default(100_000).describe('Accounts remembered per replica, least recently used out first.'),
      })
      .default({ accountTtlMs: 60_000, maxAccounts: 100_000 }),
    upstream: z
      .strictObject({
        timeoutMs: z.number().int().min(1).default(30_000).describe("Longest wait for the upstream's response headers (then 504 and a refund)."),
        refundOn: refundOn.default(['5xx', 'connection_error', 'timeout']),
      })
      .default({ timeoutMs: 30_000, refundOn: ['5xx', 'connection_error', 'timeout'] }),
    idempotency: z
      .strictObject({
        header: z.string().regex(HEADER_NAME, 'expected an HTTP header name').default('idempotency-key'),
        ttlMs: z.number().int().min(1000).default(86_400_000).describe("How long a completed request's key is remembered."),
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
        style: problemStyle.default('problem+json'),
      })
      .default({ baseUrl: 'https://creditgate.dev/problems/', style: 'problem+json' }),
    alerts: alerts.default({ thresholds: [0.8, 1.0], keepEvents: 100, queueSize: 10_000 }),
    creditTypes: z.record(creditTypeId, creditType),
    plans: z.record(z.string().regex(PLAN_ID, 'plan ids are letters, digits, _ . -'), plan),
    routes: z.array(route).default([]),
    billing: billing.optional(),
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
    const stripe = cfg.billing?.stripe;
    const unknownPlan = (id: string) => `unknown plan "${id}" (declared: ${Object.keys(cfg.plans).join(', ')})`;
    for (const [price, planId] of Object.entries(stripe?.plans ?? {})) {
      if (!(planId in cfg.plans)) ctx.addIssue({ code: 'custom', path: ['billing', 'stripe', 'plans', price], message: unknownPlan(planId) });
    }
    if (stripe && typeof stripe.onCanceled === 'object' && !(stripe.onCanceled.plan in cfg.plans)) {
      ctx.addIssue({ code: 'custom', path: ['billing', 'stripe', 'onCanceled', 'plan'], message: unknownPlan(stripe.onCanceled.plan) });
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
