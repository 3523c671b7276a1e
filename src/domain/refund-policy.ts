// Whether an upstream's answer means the request's credits are given back:
// failures listed in refundOn (5xx, connection errors, timeouts by default),
// and answers outside chargeWhen (credits owed only on success).

export type RefundCondition = '5xx' | '4xx' | 'connection_error' | 'timeout' | number;
export type UpstreamResult = { readonly status: number } | { readonly error: 'connection_error' | 'timeout' };
export type RefundReason = 'upstream_error' | 'not_delivered';

export function refundReason(
  result: UpstreamResult,
  refundOn: readonly RefundCondition[],
  chargeWhen?: { readonly status: readonly number[] },
): RefundReason | null {
  if ('error' in result) return refundOn.includes(result.error) ? 'upstream_error' : null;
  const { status } = result;
  const cls = `${Math.floor(status / 100)}xx`;
  if (refundOn.includes(status) || refundOn.includes(cls as RefundCondition)) return 'upstream_error';
  if (chargeWhen && !chargeWhen.status.includes(status)) return 'not_delivered';
  return null;
}
