// The problem+json a refused request gets, for every reason the gate refuses:
// an empty pool or one outside the plan, an unknown account, a burst limit,
// the store, and an idempotency key. And the outcome each counts as.

import type { ChargeRefusal, PoolStatus } from '../engine/types.js';
import type { Outcome } from '../observability/metrics.js';
import { StoreError, StoreFullError } from '../store/credit-store.js';
import { problem, storeFullProblem, type Problem } from './problem-details.js';
import { rateLimitHeaders, secondsUntil } from './ratelimit-headers.js';

/** Request-level refusals, as counted in creditgate_decisions_total. */
export const OUTCOME_OF_PROBLEM: Partial<Record<Problem['type'], Outcome>> = {
  unauthenticated: 'unauthenticated',
  'invalid-account-id': 'bad_request',
  'invalid-cost': 'bad_request',
  'invalid-body': 'bad_request',
  'invalid-path': 'bad_request',
  'invalid-identity': 'unauthenticated',
  'identity-unavailable': 'unauthenticated',
  'body-too-large': 'bad_request',
  'unsupported-media-type': 'bad_request',
  'unknown-account': 'unknown_account',
  'unknown-plan': 'unknown_account',
  'store-unavailable': 'store_error',
  'store-full': 'store_error',
  'invalid-request': 'bad_request',
  'idempotency-in-progress': 'bad_request',
  'idempotency-key-reused': 'bad_request',
  'idempotency-replay-unavailable': 'bad_request',
  'rate-limited': 'rate_limited',
};

export function rateLimitedProblem(burst: { readonly points: number; readonly durationMs: number; readonly retryAfterMs: number }): Problem {
  const seconds = Math.max(1, Math.ceil(burst.retryAfterMs / 1000));
  const window = Math.round(burst.durationMs / 1000);
  return problem('rate-limited', `at most ${burst.points} requests per ${window} s per account on this route; retry in ${seconds} s`, {
    headers: {
      'retry-after': String(seconds),
      'ratelimit-policy': `"requests";q=${burst.points};w=${window}`,
      ratelimit: `"requests";r=0;t=${seconds}`,
    },
  });
}

/** A store that could not decide: full (memory store at its bound) or unreachable. Anything else is rethrown. */
export function storeProblem(err: unknown): Problem {
  if (err instanceof StoreFullError) return storeFullProblem(err.retryAfterSeconds);
  if (err instanceof StoreError)
    return problem('store-unavailable', 'the credit store cannot be reached; try again shortly', { headers: { 'retry-after': '1' } });
  throw err;
}

export function keyReusedProblem(header: string): Problem {
  return problem(
    'idempotency-key-reused',
    `this ${header} was first used with a different request (method, path, route, amounts or body); use a new key for a new request`,
  );
}

export function inProgressProblem(): Problem {
  return problem('idempotency-in-progress', 'a request with this idempotency key is still being processed; retry when it has finished', {
    headers: { 'retry-after': '1' },
  });
}

export function replayUnavailableProblem(): Problem {
  return problem(
    'idempotency-replay-unavailable',
    'this request completed and was charged once, but its response was not kept (a stream, larger than idempotency.maxResponseBytes, or the client left before it ended); it is not sent again',
  );
}

function shortfall(p: PoolStatus) {
  return {
    creditType: p.creditType,
    creditTypeName: p.name,
    required: p.required,
    remaining: p.remaining,
    allowance: p.allowance,
    resetsAt: p.resetsAt === null ? null : new Date(p.resetsAt).toISOString(),
    ...(p.topUp ? { topUp: p.topUp } : {}),
  };
}

export function refusalProblem(decision: Exclude<ChargeRefusal, { reason: 'duplicate' | 'idempotency-key-reused' }>, now: number): Problem {
  if (decision.reason === 'unknown-account') {
    return problem('unknown-account', 'this account has no record and no default plan is configured');
  }
  if (decision.reason === 'unknown-plan') {
    return problem('unknown-plan', `the account's plan "${decision.plan}" is not in the config`);
  }
  const first = decision.short[0]!;
  const extensions = { ...shortfall(first), plan: decision.account.plan.id, shortfalls: decision.short.map(shortfall) };
  if (decision.reason === 'not-in-plan') {
    return problem('not-in-plan', `${first.name} are not included in the ${decision.account.plan.id} plan`, { extensions });
  }
  // Every short pool must have reset before a retry can pass. A spent top-up
  // outside the plan never refills by a reset (only another top-up does): no Retry-After.
  const resets = decision.short.map((s) => s.resetsAt).filter((r): r is number => r !== null);
  const headers: Record<string, string> = rateLimitHeaders(decision.short, now);
  if (resets.length > 0 && !decision.short.some((s) => s.topUpsOnly)) headers['retry-after'] = String(Math.max(1, secondsUntil(Math.max(...resets), now)));
  return problem(
    'exhausted',
    `this request needs ${first.required} ${first.name}; ${first.remaining} of ${first.allowance} remain` +
      (first.topUpsOnly
        ? ` (top-ups only: not included in the ${decision.account.plan.id} plan)`
        : first.resetsAt === null
          ? ''
          : ` until ${new Date(first.resetsAt).toISOString()}`),
    { headers, extensions },
  );
}
