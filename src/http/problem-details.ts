// RFC 9457 problem details: one stable type URI and one fixed title per
// problem, a detail for this occurrence, and extension members.

export const PROBLEM_TYPES = {
  exhausted: { status: 402, title: 'Credit pool exhausted' },
  'not-in-plan': { status: 402, title: 'Credit type not included in plan' },
  unauthenticated: { status: 401, title: 'Missing or invalid account identity' },
  'invalid-account-id': { status: 400, title: 'Invalid account id' },
  'unknown-account': { status: 403, title: 'Unknown account' },
  'unknown-plan': { status: 403, title: 'Account plan is not configured' },
  'invalid-cost': { status: 400, title: 'Invalid cost input' },
  'invalid-body': { status: 400, title: 'Malformed request body' },
  'invalid-path': { status: 400, title: 'Path cannot be normalised' },
  'invalid-identity': { status: 401, title: 'Invalid identity token' },
  'identity-unavailable': { status: 503, title: 'Identity cannot be verified right now' },
  'body-too-large': { status: 413, title: 'Request body too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'route-not-found': { status: 404, title: 'No route matches this request' },
  'store-unavailable': { status: 503, title: 'Credit store unavailable' },
  'store-full': { status: 503, title: 'Credit store full' },
  'upstream-unavailable': { status: 502, title: 'Upstream unavailable' },
  'upstream-timeout': { status: 504, title: 'Upstream timed out' },
  'idempotency-in-progress': { status: 409, title: 'Request with this idempotency key in progress' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency key reused with a different request' },
  'idempotency-replay-unavailable': { status: 409, title: 'First response for this idempotency key not kept' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'admin-disabled': { status: 403, title: 'Admin API disabled' },
  'admin-unauthorized': { status: 401, title: 'Admin token missing or wrong' },
  'invalid-request': { status: 400, title: 'Invalid request' },
  'invalid-signature': { status: 400, title: 'Invalid webhook signature' },
  'not-found': { status: 404, title: 'Not found' },
  'internal-error': { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemType = keyof typeof PROBLEM_TYPES;

export interface Problem {
  readonly type: ProblemType;
  readonly status: number;
  readonly detail: string;
  /** Extra response headers (Retry-After, RateLimit…). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly extensions?: Readonly<Record<string, unknown>>;
}

export function problem(type: ProblemType, detail: string, extras: { headers?: Record<string, string>; extensions?: Record<string, unknown> } = {}): Problem {
  return { type, status: PROBLEM_TYPES[type].status, detail, ...extras };
}

/** The memory store has no room for another account: nothing was charged or forwarded. */
export function storeFullProblem(retryAfterSeconds: number): Problem {
  return problem('store-full', 'the credit store holds as many accounts as it may (store.maxAccounts) and this account is not one of them; try again later', {
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemBody(p: Problem, baseUrl: string, instance?: string): Record<string, unknown> {
  return {
    type: `${baseUrl}${p.type}`,
    title: PROBLEM_TYPES[p.type].title,
    status: p.status,
    detail: p.detail,
    ...(instance === undefined ? {} : { instance }),
    ...p.extensions,
  };
}

/** Headers every problem response carries, plus the problem's own. */
export function problemHeaders(p: Problem, body: string): Record<string, string> {
  return {
    'content-type': PROBLEM_CONTENT_TYPE,
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(body)),
    ...p.headers,
  };
}
