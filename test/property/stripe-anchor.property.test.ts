// Anchor days 29–31 renew as Stripe renews them: a cycle anchored on the 31st
// renews on the last day of shorter months and returns to the 31st after.
// creditgate's cycle boundaries (billing-cycle.ts), reached through the
// webhook's own mapping of billing_cycle_anchor, are compared over 3 years of
// anchors with an independent month-by-month implementation of that rule.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { subscriptionChange } from '../../src/billing/stripe-subscription.js';
import { stripeBilling } from '../../src/config/config-schema-billing.js';
import { cycleStartAt, parseAnchor } from '../../src/domain/billing-cycle.js';
import { fcSeed } from '../helpers/fc-seed.js';

const RULES = stripeBilling.parse({ webhookSecret: 'whsec_x', plans: { price_p: 'p' } });
const CYCLES = 36;

/** Stripe's rule, written without billing-cycle.ts: walk the calendar a month at a time. */
function stripeRenewals(anchorSeconds: number, count: number): number[] {
  const a = new Date(anchorSeconds * 1000);
  const day = a.getUTCDate();
  const timeOfDay = anchorSeconds * 1000 - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), day);
  const out: number[] = [];
  let year = a.getUTCFullYear();
  let month = a.getUTCMonth();
  for (let i = 0; i < count; i++) {
    const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    out.push(Date.UTC(year, month, Math.min(day, lastDay)) + timeOfDay);
    month += 1;
    if (month === 12) {
      month = 0;
      year += 1;
    }
  }
  return out;
}

/** The anchor creditgate stores for a subscription with this billing_cycle_anchor (the webhook's mapping). */
function creditgateBoundaries(anchorSeconds: number, count: number): number[] {
  const change = subscriptionChange(
    { id: 'sub_p', status: 'active', metadata: { account_id: 'acct' }, billing_cycle_anchor: anchorSeconds, items: { data: [{ price: { id: 'price_p' } }] } },
    RULES,
  );
  if (change.kind !== 'put' || change.billingAnchor === undefined) throw new Error(`unexpected change ${JSON.stringify(change)}`);
  const anchor = parseAnchor(change.billingAnchor);
  return Array.from({ length: count }, (_, k) => cycleStartAt(anchor, k));
}

// Anchors on days 29–31 of any month of 2025–2027, at any second of the day.
const lateAnchor = fc
  .record({
    year: fc.integer({ min: 2025, max: 2027 }),
    month: fc.integer({ min: 0, max: 11 }),
    day: fc.integer({ min: 29, max: 31 }),
    second: fc.integer({ min: 0, max: 86_399 }),
  })
  .filter(({ year, month, day }) => new Date(Date.UTC(year, month, day)).getUTCDate() === day)
  .map(({ year, month, day, second }) => Date.UTC(year, month, day) / 1000 + second);

describe('Stripe anchor days 29–31 (property-based)', () => {
  it('creditgate renews when Stripe does, for 3 years of cycles', () => {
    fc.assert(
      fc.property(lateAnchor, (anchor) => {
        expect(creditgateBoundaries(anchor, CYCLES)).toEqual(stripeRenewals(anchor, CYCLES));
      }),
      { numRuns: 500, seed: fcSeed('stripe anchors', 20261201) },
    );
  });

  it('a 31st anchor: the last day of shorter months, back to the 31st after', () => {
    const days = creditgateBoundaries(Date.UTC(2026, 0, 31, 9) / 1000, 5).map((t) => new Date(t).toISOString().slice(0, 10));
    expect(days).toEqual(['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31']);
  });
});
