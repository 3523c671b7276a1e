// The names and label values of creditgate's metrics: Prometheus names with
// units and _total, and the small fixed label sets that are initialised at 0.

export const METRIC_NAMES = {
  decisions: 'creditgate_decisions_total',
  creditsCharged: 'creditgate_credits_charged_total',
  creditsRefunded: 'creditgate_credits_refunded_total',
  topUpCreditsGranted: 'creditgate_topup_credits_granted_total',
  storeDuration: 'creditgate_store_duration_seconds',
  storeErrors: 'creditgate_store_errors_total',
  upstreamDuration: 'creditgate_upstream_duration_seconds',
  httpRequests: 'creditgate_http_requests_total',
  configReloads: 'creditgate_config_reloads_total',
  configInfo: 'creditgate_config_info',
  alertsSent: 'creditgate_alerts_sent_total',
  accountsExhausted: 'creditgate_accounts_exhausted',
  unbilledOverage: 'creditgate_unbilled_overage_total',
  journalEntries: 'creditgate_outage_journal_entries',
  journalReplayed: 'creditgate_outage_journal_replayed_total',
  journalDropped: 'creditgate_outage_journal_dropped_total',
  journalLost: 'creditgate_outage_journal_lost_total',
  storeBreakerOpen: 'creditgate_store_breaker_open',
  storeFull: 'creditgate_store_full_total',
  billingEvents: 'creditgate_billing_events_total',
} as const;

export const OUTCOMES = [
  'allowed',
  'exhausted',
  'not_in_plan',
  'unknown_account',
  'unauthenticated',
  'bad_request',
  'store_error',
  'shadow_denied',
  'rate_limited',
  'replayed',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Outcomes decided per pool; the others are decided per request (credit_type="none"). */
export const POOL_OUTCOMES: readonly Outcome[] = ['allowed', 'exhausted', 'not_in_plan', 'shadow_denied'];
export const REQUEST_OUTCOMES: readonly Outcome[] = ['unknown_account', 'unauthenticated', 'bad_request', 'store_error', 'rate_limited', 'replayed'];

/** prom-client default gauges whose names end in _total. */
export const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export const JOURNAL_KINDS = ['charge', 'refund'] as const;
export const REFUND_REASONS = ['upstream_error', 'not_delivered', 'client_abort', 'settled_below_hold'] as const;
export const STORE_OPERATIONS = [
  'charge',
  'refund',
  'idempotency',
  'usage',
  'topup',
  'get_account',
  'put_account',
  'delete_account',
  'append_events',
  'list_events',
  'exhausted',
  'mark_alert',
  'billing_event',
  'invalidate',
  'ping',
] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const;
export const RELOAD_RESULTS = ['success', 'error'] as const;
export const ALERT_CHANNELS = ['webhook', 'email'] as const;
export const ALERT_RESULTS = ['sent', 'retried', 'failed', 'dropped'] as const;
/** What became of a billing webhook delivery (invalid: its signature did not verify). */
export const BILLING_OUTCOMES = ['applied', 'duplicate', 'stale', 'ignored', 'unmapped', 'invalid'] as const;
export type BillingOutcome = (typeof BILLING_OUTCOMES)[number];

/** Route label for requests no route matched. */
export const UNMATCHED_ROUTE = '(unmatched)';
/** credit_type label for decisions that concern the request, not a pool. */
export const NO_CREDIT_TYPE = 'none';

export function statusClass(status: number | undefined): (typeof STATUS_CLASSES)[number] {
  if (status === undefined || status < 100 || status > 599) return 'error';
  return `${Math.floor(status / 100)}xx` as (typeof STATUS_CLASSES)[number];
}
