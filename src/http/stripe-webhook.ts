// POST /v1/billing/stripe/webhook on the admin port: Stripe subscription
// events set account plans and anchors. Authenticated by Stripe-Signature
// over the raw body (not the admin token); applied at most once and in order
// per account by the store, so any replica may receive any delivery.

import express, { type NextFunction, type Request, type Response } from 'express';
import Stripe from 'stripe';
import { subscriptionChange, type SubscriptionLike } from '../billing/stripe-subscription.js';
import { resolveSecret } from '../config/secret-ref.js';
import type { CreditEngine } from '../engine/credit-engine.js';
import type { Logger } from '../logger.js';
import type { BillingOutcome, Metrics } from '../observability/metrics.js';
import { BILLING_EVENT_TTL_MS } from '../store/credit-store.js';
import { problem } from './problem-details.js';
import { sendProblem } from './send-problem.js';

export const STRIPE_WEBHOOK_PATH = '/v1/billing/stripe/webhook';
/** Stripe events are a few KiB; a MiB leaves room for large metadata without reading unbounded bodies. */
const MAX_BODY = 1024 * 1024;

const SUBSCRIPTION_EVENTS = new Set(['customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted']);

export interface StripeWebhookOptions {
  readonly engine: CreditEngine;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
}

/** The route's handlers: the raw body, the handler, and an error handler of its own (body limit). */
export function stripeWebhook(options: StripeWebhookOptions): express.RequestHandler[] {
  const { engine, logger, metrics } = options;
  const baseUrl = () => engine.currentConfig().problemBaseUrl;
  const count = (outcome: BillingOutcome) => metrics?.billingEvents.inc({ source: 'stripe', outcome });

  const handle = async (req: Request, res: Response, next: NextFunction) => {
    const config = engine.currentConfig();
    const rules = config.stripe;
    // The endpoint exists only while billing.stripe is configured (a reload may add or remove it).
    if (!rules) {
      sendProblem(res, problem('not-found', `no admin endpoint POST ${STRIPE_WEBHOOK_PATH}`), baseUrl(), req.path);
      return;
    }
    const secret = resolveSecret(rules.webhookSecret);
    if (secret === undefined) {
      logger.error('stripe webhook: billing.stripe.webhookSecret names an unset environment variable');
      sendProblem(res, problem('internal-error', 'the webhook secret is not configured'), baseUrl(), req.path);
      return;
    }
    let event: Stripe.Event;
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      event = Stripe.webhooks.constructEvent(body, req.get('stripe-signature') ?? '', secret);
    } catch (err) {
      count('invalid');
      logger.warn({ err: (err as Error).message }, 'stripe webhook: signature rejected');
      sendProblem(res, problem('invalid-signature', 'the Stripe-Signature header does not verify this body with the webhook secret'), baseUrl(), req.path);
      return;
    }
    const done = (outcome: BillingOutcome) => {
      count(outcome);
      res.status(200).json({ received: true, outcome });
    };
    if (!SUBSCRIPTION_EVENTS.has(event.type)) return done('ignored');
    const sub = event.data.object as unknown as SubscriptionLike;
    const change = subscriptionChange(sub, rules, event.type === 'customer.subscription.deleted');
    const log = { event: event.id, type: event.type, subscription: sub.id };
    if (change.kind === 'ignored') {
      logger.info({ ...log, reason: change.reason }, 'stripe webhook: event ignored');
      return done('ignored');
    }
    if (change.kind === 'unmapped') {
      logger.warn({ ...log, account: change.account, prices: change.prices }, `stripe webhook: no plan for prices ${change.prices.join(', ') || '(none)'}`);
      return done('unmapped');
    }
    try {
      const mark = { id: event.id, created: event.created, now: Date.now(), ttlMs: BILLING_EVENT_TTL_MS };
      const input = change.kind === 'delete' ? 'delete' : { plan: change.plan, ...(change.billingAnchor ? { billingAnchor: change.billingAnchor } : {}) };
      const outcome = await engine.applyBillingEvent(change.account, mark, input, config);
      logger.info({ ...log, account: change.account, change: change.kind === 'delete' ? 'delete' : change.plan, outcome }, 'stripe webhook: event handled');
      done(outcome);
    } catch (err) {
      // A store error answers 503 (the admin API's error handler): Stripe retries.
      next(err);
    }
  };

  const tooLarge = (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if ((err as { status?: number }).status === 413) {
      sendProblem(res, problem('body-too-large', 'webhook bodies are limited to 1 MiB'), baseUrl(), req.path);
      return;
    }
    next(err);
  };
  return [express.raw({ type: () => true, limit: MAX_BODY }), handle, tooLarge as unknown as express.RequestHandler];
}
