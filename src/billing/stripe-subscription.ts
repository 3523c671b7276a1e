// What a Stripe subscription means for its creditgate account, by the
// config's billing.stripe rules. Shared by the webhook and `stripe sync`, so
// both apply the same mapping.

import { subscriptionAccount, type StripeBilling } from '../config/config-schema-billing.js';
import { isValidAccountId } from '../domain/account-id.js';
import { truncateAnchorIso } from '../domain/billing-cycle.js';

/** The fields of a Stripe subscription creditgate reads (webhook payloads and API lists alike). */
export interface SubscriptionLike {
  readonly id: string;
  readonly status: string;
  readonly customer?: unknown;
  readonly metadata?: Record<string, string> | null;
  readonly billing_cycle_anchor?: number | null;
  readonly created?: number;
  readonly items?: { readonly data?: readonly { readonly price?: { readonly id?: string } | null }[] } | null;
}

/** Statuses that carry a plan; the others end it (onCanceled), except "incomplete" (not paid yet: nothing changes). */
const LIVE = new Set(['active', 'trialing', 'past_due']);
const ENDED = new Set(['canceled', 'unpaid', 'incomplete_expired', 'paused']);

export type SubscriptionChange =
  /** Set the account's plan and anchor (as admin PUT does), or apply onCanceled. */
  | { readonly kind: 'put'; readonly account: string; readonly plan: string; readonly billingAnchor?: string; readonly canceled?: true }
  | { readonly kind: 'delete'; readonly account: string; readonly canceled: true }
  /** No price of the subscription is in billing.stripe.plans. */
  | { readonly kind: 'unmapped'; readonly account: string; readonly prices: readonly string[] }
  /** Nothing to do; `reason` says why (for the log). */
  | { readonly kind: 'ignored'; readonly reason: string };

/** `ended`: the subscription is over whatever its status says (customer.subscription.deleted). */
export function subscriptionChange(sub: SubscriptionLike, rules: StripeBilling, ended = false): SubscriptionChange {
  const account = subscriptionAccount(rules.accountFrom, sub);
  if (account === undefined) return { kind: 'ignored', reason: `subscription ${sub.id} names no account (${rules.accountFrom})` };
  if (!isValidAccountId(account)) return { kind: 'ignored', reason: `subscription ${sub.id} names an invalid account id` };
  if (ended || ENDED.has(sub.status)) {
    return rules.onCanceled === 'delete' ? { kind: 'delete', account, canceled: true } : { kind: 'put', account, plan: rules.onCanceled.plan, canceled: true };
  }
  if (!LIVE.has(sub.status)) return { kind: 'ignored', reason: `subscription ${sub.id} is ${sub.status}` };
  const prices = (sub.items?.data ?? []).map((i) => i.price?.id).filter((p): p is string => typeof p === 'string');
  const price = prices.find((p) => Object.hasOwn(rules.plans, p));
  if (price === undefined) return { kind: 'unmapped', account, prices };
  const anchor = sub.billing_cycle_anchor;
  return {
    kind: 'put',
    account,
    plan: rules.plans[price]!,
    ...(typeof anchor === 'number' ? { billingAnchor: truncateAnchorIso(new Date(anchor * 1000).toISOString()) } : {}),
  };
}
