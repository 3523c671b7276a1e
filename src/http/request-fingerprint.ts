// What an Idempotency-Key is bound to: the request it was first used with.
// A reuse with another method, path, route, amount or body is another
// request (Stripe's rule), never a replay of the first.

import { createHash } from 'node:crypto';

export interface FingerprintInput {
  readonly method: string;
  /** The normalised path and the query, as forwarded. */
  readonly target: string;
  readonly route: string;
  /** Each pool's amount, in route order. */
  readonly amounts: readonly { readonly creditType: string; readonly op: string; readonly amount: number }[];
  /** The body's bytes (or, when only a parsed body exists, its JSON). */
  readonly body: Buffer | string;
}

export function requestFingerprint(input: FingerprintInput): string {
  const body = createHash('sha256').update(input.body).digest('base64url');
  const amounts = input.amounts.map((a) => `${a.op}:${a.creditType}=${a.amount}`);
  return createHash('sha256')
    .update(JSON.stringify([input.method.toUpperCase(), input.target, input.route, amounts, body]))
    .digest('base64url');
}
