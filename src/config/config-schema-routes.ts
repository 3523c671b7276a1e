// The config schema's routes: what a request is charged (cost rules: a fixed
// number, or read from the body, a header or the query, or held and settled
// from the response), what it gives back, and when.

import { z } from 'zod';
import { credits, creditTypeId, HEADER_NAME, mode } from './config-schema-parts.js';
import { HTTP_METHODS } from '../domain/request-target.js';

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;

const INPUTS = ['body', 'bodyLength', 'header', 'query'] as const;

/** Where a cost is read from the request (one of them), and what it may be. */
const inputFields = {
  body: z.string().min(1).optional().describe('A number field of the JSON body (dotted path: "job.count").'),
  bodyLength: z.string().min(1).optional().describe('The length of an array field of the JSON body.'),
  header: z.string().regex(HEADER_NAME, 'expected an HTTP header name').optional(),
  query: z.string().min(1).optional().describe('A query-string parameter.'),
  default: credits(0).optional().describe('Cost when the input is absent (else 400).'),
  min: credits(0).default(1).describe('Smallest accepted cost (else 400).'),
  max: credits(1).optional().describe("Largest accepted cost (else 400); default: the route's maxCost, else limits.maxCost."),
};

function oneInput(rule: Record<string, unknown>, ctx: z.RefinementCtx, also: readonly string[], what: string): void {
  const sources = [...INPUTS, ...also].filter((k) => rule[k] !== undefined);
  if (sources.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: sources.length === 0 ? `${what} needs one of ${[...INPUTS, ...also].join(', ')}` : `${what} takes one input, got ${sources.join(' and ')}`,
    });
  }
  if (typeof rule.max === 'number' && typeof rule.min === 'number' && rule.min > rule.max)
    ctx.addIssue({ code: 'custom', path: ['min'], message: 'min is above max' });
}

/** A hold sized from the request: `reserve: { body: max_tokens, default: 4096, max: 200000 }`. */
const reserveRule = z.strictObject(inputFields).superRefine((rule, ctx) => oneInput(rule, ctx, [], 'a reserve rule'));

const SETTLE_SOURCES = ['responseHeader', 'responseJson', 'responseTrailer'] as const;
const settleRule = z
  .strictObject({
    responseHeader: z.string().regex(HEADER_NAME, 'expected an HTTP header name').optional().describe('Response header with the actual amount.'),
    responseJson: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('Dotted path(s) to numbers in the JSON body, or in the JSON data of each SSE event (the last value seen counts); several paths are summed.'),
    responseTrailer: z.string().regex(HEADER_NAME, 'expected an HTTP header name').optional().describe('HTTP trailer with the actual amount.'),
    divideBy: z.number().positive().default(1).describe('Divide the amount by this (seconds → minutes: 60).'),
    round: z.enum(['up', 'down', 'nearest']).default('up'),
    onIncomplete: z
      .enum(['hold', 'release'])
      .default('hold')
      .describe(
        'A body that ends early (client abort, upstream failure) or lacks the amount: hold charges the hold, release charges nothing. Body and trailer settles only.',
      ),
  })
  .superRefine((rule, ctx) => {
    const sources = SETTLE_SOURCES.filter((k) => rule[k] !== undefined);
    if (sources.length !== 1)
      ctx.addIssue({
        code: 'custom',
        message: `settle takes one of ${SETTLE_SOURCES.join(', ')}, got ${sources.length === 0 ? 'none' : sources.join(' and ')}`,
      });
  });

const costRule = z
  .strictObject({
    ...inputFields,
    reserve: z
      .union([credits(1), reserveRule])
      .optional()
      .describe('A hold, settled after the response (needs settle): a fixed number, or a rule reading the request ({ body: max_tokens, default: 4096 }).'),
    settle: settleRule.optional().describe('Hold the cost before forwarding; charge the actual amount from the response, never above the hold.'),
    minReserve: credits(1).optional().describe('With settle: when less than the hold remains, hold what remains down to this (default 1); below it, 402.'),
  })
  .superRefine((rule, ctx) => {
    oneInput(rule, ctx, ['reserve'], 'a cost rule');
    if (rule.reserve !== undefined && rule.settle === undefined) {
      ctx.addIssue({ code: 'custom', path: ['settle'], message: 'reserve holds credits until the response settles them: add settle' });
    }
    if (typeof rule.reserve === 'object' && (rule.default !== undefined || rule.max !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['reserve'], message: 'a reserve rule carries its own default, min and max: move them into reserve' });
    }
    if (rule.minReserve !== undefined && rule.settle === undefined) {
      ctx.addIssue({ code: 'custom', path: ['minReserve'], message: 'minReserve applies to a held cost: add settle' });
    }
  });

export const problemStyle = z
  .enum(['problem+json', 'openai'])
  .describe('How 402, 429 and invalid-cost refusals are written: RFC 9457 problem+json, or OpenAI-compatible {"error": {...}} JSON for AI clients.');

export const COST_SPEC_MESSAGE = 'expected a number or a cost rule';

export const costSpec = z.union([credits(1), costRule], {
  error: COST_SPEC_MESSAGE,
});

const method = z
  .string()
  .transform((m) => m.toUpperCase())
  .pipe(z.enum([...HTTP_METHODS, '*'], { error: `expected one of ${HTTP_METHODS.join(', ')} or *` }));

const refundCondition = z.union([z.enum(['5xx', '4xx', 'connection_error', 'timeout', 'client_abort']), z.number().int().min(100).max(599)]);
export const refundOn = z
  .array(refundCondition)
  .describe(
    'Upstream outcomes that give the charge back: 5xx, 4xx, exact statuses, connection_error, timeout; client_abort (the client hung up after the request was forwarded) only when listed.',
  );

export const route = z.strictObject({
  name: z.string().regex(ROUTE_NAME, 'route names are letters, digits, _ . : -').describe('Used in logs and metrics.'),
  method: z.union([method, z.array(method).min(1)]).default('*'),
  path: z.string().startsWith('/', 'a route path starts with /').describe('Express-style: /v1/contacts/:id, /v1/files/*rest'),
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
  problems: z.strictObject({ style: problemStyle }).optional().describe('Overrides problems.style for this route.'),
  charge: z.record(creditTypeId, costSpec).default({}).describe('Credits this route spends, per credit type: all or nothing.'),
  release: z.record(creditTypeId, costSpec).default({}).describe('Capacity this route gives back (disconnect): never below zero, never refused.'),
});
