// The OpenAI-compatible error shape (`problems.style: openai`): AI clients and
// the official SDKs read `{"error": {message, type, param, code}}` as JSON and
// surface `status`, `code`, `type` and the body's extra members; problem+json
// would reach them as an unreadable string.

import type { ProblemStyle } from '../config/compiled-config.js';
import type { Problem, ProblemType } from './problem-details.js';

export type { ProblemStyle };

/** The refusals an AI client must tell apart, with OpenAI's error type for each. */
const OPENAI_ERRORS: Partial<Record<ProblemType, { readonly code: string; readonly type: string }>> = {
  exhausted: { code: 'credits_exhausted', type: 'insufficient_quota' },
  'not-in-plan': { code: 'not_in_plan', type: 'insufficient_quota' },
  'rate-limited': { code: 'rate_limited', type: 'rate_limit_error' },
  'invalid-cost': { code: 'invalid_cost', type: 'invalid_request_error' },
};

/** The OpenAI-shaped body for a problem, or undefined when this problem keeps problem+json. */
export function openAiErrorBody(p: Problem): { error: Record<string, unknown> } | undefined {
  const known = OPENAI_ERRORS[p.type];
  if (!known) return undefined;
  // Extensions first: the four OpenAI members must not be shadowed by them.
  return { error: { ...p.extensions, message: p.detail, type: known.type, code: known.code, param: null } };
}

/** Status and headers unchanged (Retry-After, RateLimit); only the body and its media type differ. */
export function openAiErrorHeaders(p: Problem, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(body)),
    ...p.headers,
  };
}
