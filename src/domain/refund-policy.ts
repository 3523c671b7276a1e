// Whether an upstream's answer means the request's credits are given back:
// failures listed in refundOn (5xx, connection errors, timeouts by default),
// and answers outside chargeWhen (credits owed only on success).
//
// A client that hangs up after its request was forwarded is not an upstream
// failure: the upstream does the work anyway, so the charge stands unless the
// route opts back in with refundOn: [client_abort].

export type RefundCondition = '5xx' | '4xx' | 'connection_error' | 'timeout' | 'client_abort' | number;
export type UpstreamResult =
  | { readonly status: number }
  | { readonly error: 'connection_error' | 'timeout' | 'client_abort' }
  /** The client was gone before anything was sent upstream: no work was done. */
  | { readonly error: 'not_forwarded' };
export type RefundReason = 'upstream_error' | 'not_delivered' | 'client_abort';

export function refundReason(
  result: UpstreamResult,
  refundOn: readonly RefundCondition[],
  chargeWhen?: { readonly status: readonly number[] },
): RefundReason | null {
  if ('error' in result) {
    if (result.error === 'not_forwarded') return 'not_delivered';
    if (!refundOn.includes(result.error)) return null;
    return result.error === 'client_abort' ? 'client_abort' : 'upstream_error';
  }
  const { status } = result;
  const cls = `${Math.floor(status / 100)}xx`;
  if (refundOn.includes(status) || refundOn.includes(cls as RefundCondition)) return 'upstream_error';
  if (chargeWhen && !chargeWhen.status.includes(status)) return 'not_delivered';
  return null;
}

/**
 * Whether the upstream's answer confirms a capacity release: a 2xx by
 * default, or one of `releaseWhen`'s statuses. Failures and anything else
 * release nothing (deleting what does not exist frees no slot).
 */
export function releaseConfirmed(result: UpstreamResult, releaseWhen?: { readonly status: readonly number[] }): boolean {
  if ('error' in result) return false;
  return releaseWhen ? releaseWhen.status.includes(result.status) : result.status >= 200 && result.status < 300;
}
