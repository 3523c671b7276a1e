// Stripe webhook deliveries as Stripe sends them: a subscription event,
// JSON-encoded and signed with the official package's test header.

import Stripe from 'stripe';

export const WEBHOOK_SECRET = 'whsec_creditgate_test_secret';

export interface SubscriptionFields {
  account?: string;
  status?: string;
  prices?: string[];
  /** Unix seconds. */
  anchor?: number;
  id?: string;
}

export function subscription(f: SubscriptionFields) {
  return {
    id: f.id ?? 'sub_test',
    object: 'subscription',
    status: f.status ?? 'active',
    customer: 'cus_test',
    metadata: f.account === undefined ? {} : { account_id: f.account },
    billing_cycle_anchor: f.anchor ?? 1_767_225_600,
    items: {
      object: 'list',
      data: (f.prices ?? ['price_big_monthly']).map((p, i) => ({ id: `si_${i}`, object: 'subscription_item', price: { id: p, object: 'price' } })),
    },
  };
}

export function stripeEvent(id: string, type: string, created: number, object: unknown): string {
  return JSON.stringify({ id, object: 'event', api_version: '2025-03-31.basil', type, created, livemode: false, data: { object } });
}

/** POSTs `body` to the webhook as Stripe would: signed now (or at `timestamp`, Unix seconds). */
export function deliver(admin: string, body: string, options: { secret?: string; timestamp?: number; header?: string | null; tamper?: boolean } = {}) {
  const header =
    options.header === undefined
      ? Stripe.webhooks.generateTestHeaderString({
          payload: body,
          secret: options.secret ?? WEBHOOK_SECRET,
          ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
        })
      : options.header;
  const sent = options.tamper ? body.replace('"price_', '"price_x') : body;
  return fetch(`${admin}/v1/billing/stripe/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(header === null ? {} : { 'stripe-signature': header }) },
    body: sent,
  });
}

export const STRIPE_BILLING = (onCanceled: string) => `billing:
  stripe:
    webhookSecret: ${WEBHOOK_SECRET}
    accountFrom: metadata.account_id
    plans:
      price_tiny_monthly: tiny
      price_big_monthly: big
      price_big_yearly: big
    onCanceled: ${onCanceled}
`;
