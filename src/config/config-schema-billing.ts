// The `billing` section: syncing plans and anchors from a biller (Stripe)
// into account records, by webhook and by `creditgate stripe sync`.

import { z } from 'zod';
import { secretRef } from './config-schema-parts.js';

/** Where the account id comes from: a subscription metadata key, or the Stripe customer id. */
const ACCOUNT_FROM = /^(customer|metadata\.[A-Za-z0-9_-]{1,40})$/;

export const stripeBilling = z.strictObject({
  webhookSecret: secretRef.describe("The webhook endpoint's signing secret (whsec_…), usually env:STRIPE_WEBHOOK_SECRET."),
  apiKey: secretRef.optional().describe('A Stripe API key that may read subscriptions; only `creditgate stripe sync` uses it (env:STRIPE_API_KEY).'),
  accountFrom: z
    .string()
    .regex(ACCOUNT_FROM, 'expected metadata.<key> or customer')
    .default('metadata.account_id')
    .describe("Which creditgate account a subscription belongs to: a subscription metadata key (metadata.<key>), or the subscription's customer id."),
  plans: z
    .record(z.string().min(1), z.string().min(1))
    .describe('Stripe price id → plan id; a subscription gets the plan of its first item whose price is listed.'),
  onCanceled: z
    .union([z.literal('delete'), z.strictObject({ plan: z.string().min(1) })])
    .default('delete')
    .describe('A canceled, unpaid, expired or paused subscription: delete the record (defaultPlan rules apply), or move the account to this plan.'),
});

export const billing = z.strictObject({
  stripe: stripeBilling.optional().describe('Stripe webhooks at POST /v1/billing/stripe/webhook on the admin port.'),
});

export type StripeBilling = z.output<typeof stripeBilling>;

/** The account a subscription belongs to, per `accountFrom`; undefined when it names none. */
export function subscriptionAccount(
  accountFrom: string,
  subscription: { readonly customer?: unknown; readonly metadata?: Record<string, string> | null },
): string | undefined {
  if (accountFrom === 'customer') {
    const c = subscription.customer;
    const id = typeof c === 'string' ? c : (c as { id?: unknown } | null)?.id;
    return typeof id === 'string' && id !== '' ? id : undefined;
  }
  const value = subscription.metadata?.[accountFrom.slice('metadata.'.length)];
  return value === undefined || value === '' ? undefined : value;
}
