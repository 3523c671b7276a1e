// `creditgate stripe sync`: a backfill (or a repair after missed webhooks).
// Lists every subscription through the Stripe API and applies each account's
// newest one with the webhook's mapping, through the admin API.

import { parseArgs } from 'node:util';
import Stripe from 'stripe';
import { subscriptionChange, type SubscriptionLike } from '../billing/stripe-subscription.js';
import { subscriptionAccount } from '../config/config-schema-billing.js';
import { loadConfigFile } from '../config/index.js';
import { resolveSecret } from '../config/secret-ref.js';
import { adminClient, adminOptions, sameAccount } from './admin-sync.js';
import { CliError, usageError } from './cli-errors.js';

/** STRIPE_API_BASE (e.g. http://127.0.0.1:12111) points the client at another host: a test double, a proxy. */
function stripeClient(apiKey: string, base: string | undefined): Stripe {
  if (!base) return new Stripe(apiKey, { telemetry: false });
  const url = new URL(base);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return new Stripe(apiKey, {
    telemetry: false,
    host: url.hostname,
    port: url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port),
    protocol,
  });
}

export async function stripeCommand(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'sync') throw usageError('usage: creditgate stripe sync --config FILE [--admin URL] [--dry-run]');
  const { values } = parseArgs({ args: rest, options: { ...adminOptions, config: { type: 'string' }, 'dry-run': { type: 'boolean' } } });
  if (!values.config) throw usageError('stripe sync needs --config FILE (its billing.stripe section)');
  const rules = (await loadConfigFile(values.config)).stripe;
  if (!rules) throw new CliError(`${values.config} has no billing.stripe section`);
  const apiKey = resolveSecret(rules.apiKey, env);
  if (!apiKey) throw new CliError('billing.stripe.apiKey is not set (or names an unset environment variable)');
  const dryRun = values['dry-run'] === true;
  const stripe = stripeClient(apiKey, env.STRIPE_API_BASE);

  // Each account's newest subscription decides (a customer may have ended one and started another).
  const newest = new Map<string, SubscriptionLike>();
  let ignored = 0;
  try {
    for await (const s of stripe.subscriptions.list({ status: 'all', limit: 100 })) {
      const sub = s as unknown as SubscriptionLike;
      const account = subscriptionAccount(rules.accountFrom, sub);
      if (account === undefined) {
        ignored++;
        continue;
      }
      const seen = newest.get(account);
      if (!seen || (sub.created ?? 0) > (seen.created ?? 0)) newest.set(account, sub);
    }
  } catch (err) {
    throw new CliError(`listing subscriptions from Stripe failed: ${(err as Error).message}`);
  }

  const admin = adminClient(values, env);
  const counts = { applied: 0, unchanged: 0, unmapped: 0, canceled: 0, ignored };
  const say = (text: string) => {
    if (!values.json) out(text);
  };
  for (const sub of newest.values()) {
    const change = subscriptionChange(sub, rules);
    if (change.kind === 'ignored') {
      counts.ignored++;
      continue;
    }
    if (change.kind === 'unmapped') {
      counts.unmapped++;
      say(`unmapped: ${change.account} (subscription ${sub.id}, prices ${change.prices.join(', ') || 'none'})`);
      continue;
    }
    const current = await admin.findAccount(change.account);
    if (change.kind === 'delete') {
      if (current === null) {
        counts.unchanged++;
        continue;
      }
      say(`${dryRun ? 'would delete' : 'deleted'} ${change.account} (subscription ${sub.id} ${sub.status})`);
      if (!dryRun) await admin.deleteAccount(change.account);
      counts.canceled++;
      continue;
    }
    if (current && sameAccount(current, change)) {
      counts.unchanged++;
      continue;
    }
    const was = current ? `was ${current.plan} from ${current.billingAnchor}` : 'new';
    say(`${dryRun ? 'would set' : 'set'} ${change.account}: plan ${change.plan}${change.billingAnchor ? ` from ${change.billingAnchor}` : ''} (${was})`);
    if (!dryRun) await admin.putAccount(change.account, { plan: change.plan, ...(change.billingAnchor ? { billingAnchor: change.billingAnchor } : {}) });
    if (change.canceled) counts.canceled++;
    else counts.applied++;
  }
  out(
    values.json
      ? JSON.stringify({ ...counts, dryRun })
      : `${dryRun ? 'dry run: ' : ''}${counts.applied} applied, ${counts.unchanged} unchanged, ${counts.unmapped} unmapped, ${counts.canceled} canceled, ${counts.ignored} ignored`,
  );
}
