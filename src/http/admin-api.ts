// The admin port: health, the account API (PUT/GET account, usage), and the
// Stripe webhook.
// Everything but the health endpoints needs the admin Bearer token.

import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { ACCOUNT_ID_RULE, isValidAccountId } from '../domain/account-id.js';
import { truncateAnchorIso } from '../domain/billing-cycle.js';
import { AccountInputError, TopUpError, type CreditEngine } from '../engine/credit-engine.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import { StoreError, StoreFullError, type AccountRecord } from '../store/credit-store.js';
import type { AdminToken } from './admin-auth.js';
import { problem, storeFullProblem, type Problem } from './problem-details.js';
import { sendProblem } from './send-problem.js';
import { STRIPE_WEBHOOK_PATH, stripeWebhook } from './stripe-webhook.js';
import { renderUsagePage } from './usage-page.js';

const accountBody = z.strictObject({
  plan: z.string().min(1),
  billingAnchor: z.string().optional(),
  email: z.email().nullable().optional(),
});

const topUpBody = z.strictObject({
  creditType: z.string().min(1),
  amount: z.number(),
  expiresAt: z.string().optional(),
});

/** Idempotency keys: printable ASCII, as the IETF Idempotency-Key draft expects. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function invalid(error: z.ZodError): ProblemError {
  const detail = error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  return new ProblemError(problem('invalid-request', detail));
}

export interface AdminApiOptions {
  readonly engine: CreditEngine;
  readonly token: AdminToken;
  readonly logger: Logger;
  /** Extra readiness condition beyond "the store answers". */
  readonly isReady?: () => boolean;
  /** Served at /metrics, without the token. */
  readonly metrics?: Metrics;
}

class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

function accountIdParam(req: Request): string {
  const id = String(req.params.id);
  if (!isValidAccountId(id)) throw new ProblemError(problem('invalid-account-id', `account ids are ${ACCOUNT_ID_RULE}`));
  return id;
}

function publicAccount(id: string, r: AccountRecord) {
  // A record saved before anchors were whole seconds shows the anchor in force.
  return {
    id,
    plan: r.plan,
    billingAnchor: truncateAnchorIso(r.billingAnchor),
    ...(r.email ? { email: r.email } : {}),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function createAdminApp(options: AdminApiOptions): express.Express {
  const { engine, token, logger } = options;
  const baseUrl = () => engine.currentConfig().problemBaseUrl;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    if (!options.metrics) {
      res.status(404).end();
      return;
    }
    const body = await options.metrics.registry.metrics();
    res.status(200).set('content-type', options.metrics.registry.contentType).send(body);
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await engine.ping();
      if (options.isReady && !options.isReady()) throw new Error('not ready');
      res.json({ status: 'ready', config: engine.currentConfig().hash });
    } catch {
      res.status(503).json({ status: 'unavailable' });
    }
  });

  // Before the token check: Stripe signs its deliveries instead (stripe-webhook.ts).
  app.post(STRIPE_WEBHOOK_PATH, ...stripeWebhook({ engine, logger, metrics: options.metrics }));

  app.use((req, res, next) => {
    if (!token.enabled) {
      sendProblem(res, problem('admin-disabled', 'set CREDITGATE_ADMIN_TOKEN to enable the admin API'), baseUrl(), req.path);
      return;
    }
    if (!token.matches(req.headers.authorization)) {
      sendProblem(
        res,
        problem('admin-unauthorized', 'send Authorization: Bearer <admin token>', { headers: { 'www-authenticate': 'Bearer' } }),
        baseUrl(),
        req.path,
      );
      return;
    }
    next();
  });
  app.use(express.json({ limit: '64kb', strict: true }));

  app.put('/v1/accounts/:id', async (req, res) => {
    const id = accountIdParam(req);
    const parsed = accountBody.safeParse(req.body);
    if (!parsed.success) throw invalid(parsed.error);
    let saved: Awaited<ReturnType<typeof engine.saveAccount>>;
    try {
      saved = await engine.saveAccount(id, parsed.data);
    } catch (err) {
      if (err instanceof AccountInputError) throw new ProblemError(problem('invalid-request', err.message));
      throw err;
    }
    logger.info({ plan: saved.record.plan, created: saved.created }, 'account saved');
    res.status(saved.created ? 201 : 200).json(publicAccount(id, saved.record));
  });

  app.get('/v1/accounts/:id', async (req, res) => {
    const id = accountIdParam(req);
    const record = await engine.getAccount(id);
    if (!record) throw new ProblemError(problem('not-found', `no account record for this id`));
    res.json(publicAccount(id, record));
  });

  app.delete('/v1/accounts/:id', async (req, res) => {
    const id = accountIdParam(req);
    if (!(await engine.deleteAccount(id))) throw new ProblemError(problem('not-found', 'nothing is stored for this account'));
    logger.info('account deleted');
    res.status(204).end();
  });

  app.post('/v1/accounts/:id/topups', async (req, res) => {
    const id = accountIdParam(req);
    const key = req.get('idempotency-key');
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw new ProblemError(problem('invalid-request', 'Idempotency-Key must be 1–255 visible ASCII characters'));
    }
    const parsed = topUpBody.safeParse(req.body);
    if (!parsed.success) throw invalid(parsed.error);
    try {
      const { topUp, created } = await engine.topUp(id, parsed.data, key);
      if (!created) res.set('idempotent-replayed', 'true');
      logger.info({ creditType: topUp.creditType, amount: topUp.amount, created }, 'top-up granted');
      res
        .status(201)
        .set('location', `/v1/accounts/${encodeURIComponent(id)}/topups`)
        .json(topUp);
    } catch (err) {
      if (err instanceof TopUpError) throw new ProblemError(problem('invalid-request', err.message));
      throw err;
    }
  });

  app.get('/v1/accounts/:id/topups', async (req, res) => {
    const id = accountIdParam(req);
    res.set('cache-control', 'no-store').json({ account: id, topUps: await engine.listTopUps(id) });
  });

  app.get('/v1/accounts/:id/events', async (req, res) => {
    const id = accountIdParam(req);
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ProblemError(problem('invalid-request', 'limit must be a whole number from 1 to 1000'));
    }
    res.set('cache-control', 'no-store').json({ account: id, events: await engine.events(id, limit) });
  });

  app.get('/v1/accounts/:id/usage', async (req, res) => {
    const id = accountIdParam(req);
    const usage = await engine.usage(id);
    if (!usage) throw new ProblemError(problem('not-found', 'no account record for this id and no default plan'));
    res.set('cache-control', 'no-store').json(usage);
  });

  app.get('/ui/accounts/:id', async (req, res) => {
    const id = accountIdParam(req);
    const config = engine.currentConfig();
    const usage = await engine.usage(id, config);
    if (!usage) throw new ProblemError(problem('not-found', 'no account record for this id and no default plan'));
    const [topUps, events] = await Promise.all([engine.listTopUps(id, config), engine.events(id, 20)]);
    const creditTypeNames = new Map([...config.creditTypes.values()].map((t) => [t.id, t.name]));
    // Types the plan lacks (and no top-up brings in): shown so a customer sees what more there is.
    const notInPlan = [...config.creditTypes.values()].filter((t) => !(t.id in usage.pools)).map((t) => ({ id: t.id, name: t.name, topUp: t.topUp }));
    res
      .status(200)
      .set({
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      })
      .send(renderUsagePage({ usage, topUps, events, creditTypeNames, notInPlan }));
  });

  app.use((req, res) => {
    sendProblem(res, problem('not-found', `no admin endpoint ${req.method} ${req.path}`), baseUrl(), req.path);
  });

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof ProblemError) {
      sendProblem(res, err.problem, baseUrl(), req.path);
      return;
    }
    if (err instanceof StoreFullError) {
      logger.error({ err: err.message }, 'admin request refused: the memory store is full');
      sendProblem(res, storeFullProblem(err.retryAfterSeconds), baseUrl(), req.path);
      return;
    }
    if (err instanceof StoreError) {
      logger.error({ err }, 'admin request: store unavailable');
      sendProblem(res, problem('store-unavailable', 'the credit store cannot be reached', { headers: { 'retry-after': '1' } }), baseUrl(), req.path);
      return;
    }
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const p: Problem =
        status === 413 ? problem('body-too-large', 'admin request bodies are limited to 64 KiB') : problem('invalid-request', (err as Error).message);
      sendProblem(res, p, baseUrl(), req.path);
      return;
    }
    logger.error({ err }, 'admin request failed');
    sendProblem(res, problem('internal-error', 'the admin request failed'), baseUrl(), req.path);
  });
  return app;
}
