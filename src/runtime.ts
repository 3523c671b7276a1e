// Assembles what both run modes share: the store (instrumented), the alert
// dispatcher, the metrics and the engine over them, and closes them in order.

import type { Cluster, Redis } from 'ioredis';
import { AlertDispatcher } from './alerts/alert-dispatcher.js';
import type { CompiledConfig } from './config/compiled-config.js';
import { missingSecretEnv } from './config/secret-ref.js';
import { CreditEngine } from './engine/credit-engine.js';
import type { Logger } from './logger.js';
import { instrumentStore } from './observability/instrumented-store.js';
import { Metrics } from './observability/metrics.js';
import type { CreditStore } from './store/credit-store.js';
import { openStore } from './store/open-store.js';
import { RedisStore } from './store/redis-store.js';
import { BurstLimiter } from './http/burst-limiter.js';

export interface RuntimeOptions {
  readonly config: () => CompiledConfig;
  readonly redis?: string | Redis | Cluster | undefined;
  /**
   * A store the caller owns (overrides `redis`; never closed here), or
   * 'memory': the memory store, chosen (so no fallback warning).
   */
  readonly store?: CreditStore | 'memory' | undefined;
  /** Where the memory-store fallback warning goes (default: the logger). */
  readonly warn?: ((message: string) => void) | undefined;
  readonly keyPrefix?: string | undefined;
  readonly logger: Logger;
  readonly alertRetryBaseMs?: number | undefined;
  /** Node process metrics in the registry (default true). */
  readonly defaultMetrics?: boolean | undefined;
  /** How often an open store breaker probes the store (ms). */
  readonly probeIntervalMs?: number | undefined;
}

export interface Runtime {
  readonly engine: CreditEngine;
  /** The store as the engine sees it (instrumented). */
  readonly store: CreditStore;
  readonly alerts: AlertDispatcher;
  readonly metrics: Metrics;
  /** Request-rate limits of routes with `rateLimit`. */
  readonly burst: BurstLimiter;
  /** Waits (up to graceMs) for queued alerts, then closes the store if it opened it. */
  close(graceMs: number): Promise<void>;
  /** Waits for the store connection and starts the invalidation feed. */
  start(): Promise<void>;
}

export function checkSecrets(config: CompiledConfig): void {
  // The Stripe API key is only needed by `creditgate stripe sync`, which checks it itself.
  const refs = [config.alerts.webhook?.secret, config.identity.trustedHopSecret, config.identity.jwt?.secret, config.stripe?.webhookSecret];
  const missing = missingSecretEnv(refs);
  if (missing.length > 0) {
    throw new Error(`the config refers to ${missing.map((m) => `$${m}`).join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not set`);
  }
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const config = options.config();
  checkSecrets(config);
  const owned = typeof options.store !== 'object';
  const raw =
    typeof options.store === 'object'
      ? options.store
      : openStore({
          redis: options.redis,
          store: options.store,
          timeoutMs: config.storeTimeoutMs,
          prefix: options.keyPrefix,
          logger: options.logger,
          // Read at each new account: a reload can move the bound.
          maxAccounts: () => options.config().parsed.store.maxAccounts,
          warn: options.warn,
        });
  const metrics = new Metrics({
    defaultMetrics: options.defaultMetrics ?? true,
    countExhausted: (types) => store.countExhausted(types, Date.now()),
  });
  const store = instrumentStore(raw, metrics);
  metrics.initialise(config);
  const alerts = new AlertDispatcher({
    config: () => options.config().alerts,
    logger: options.logger,
    ...(options.alertRetryBaseMs === undefined ? {} : { retryBaseMs: options.alertRetryBaseMs }),
    onResult: (channel, result) => metrics.alertsSent.inc({ channel, result }),
  });
  const engine = new CreditEngine({
    store,
    config: options.config,
    alerts,
    ...(options.probeIntervalMs === undefined ? {} : { probeIntervalMs: options.probeIntervalMs }),
    observer: {
      creditsCharged: (creditType, plan, amount) => metrics.countCharged(creditType, plan, amount),
      creditsRefunded: (creditType, reason, amount) => metrics.creditsRefunded.inc({ credit_type: creditType, reason }, amount),
      unbilledOverage: (creditType, amount) => metrics.unbilledOverage.inc({ credit_type: creditType }, amount),
      journal: (size, replayed, dropped) => {
        metrics.journalEntries.set(size);
        metrics.journalReplayed.inc(replayed);
        metrics.journalDropped.inc(dropped);
      },
      journalLost: (entry, why) => {
        metrics.journalLost.inc({ kind: entry.kind });
        // One line per entry with all it holds: enough to apply it by hand.
        options.logger.error({ journalEntry: entry, why }, 'outage journal entry lost: apply it by hand');
      },
      // Logged whole as well: a file on a volume that does not outlive the pod is gone with it.
      journalKept: (entries, path) => {
        for (const entry of entries) options.logger.warn({ journalEntry: entry, path }, 'outage journal entry kept for the next start');
      },
      journalFileUnreadable: (path, message) => options.logger.error({ path, err: message }, 'outage journal file unreadable: left in place, not replayed'),
      breaker: (open) => {
        metrics.storeBreakerOpen.set(open ? 1 : 0);
        options.logger[open ? 'error' : 'info'](open ? 'credit store unreachable: following onStoreError until it answers' : 'credit store reachable again');
      },
      topUpGranted: (creditType, amount) => metrics.topUpCreditsGranted.inc({ credit_type: creditType }, amount),
    },
  });
  const redisStore = raw instanceof RedisStore ? raw : undefined;
  const burst = new BurstLimiter(redisStore?.client, options.keyPrefix ?? 'cg', redisStore?.deadlineMs);
  return {
    engine,
    store,
    alerts,
    metrics,
    burst,
    async start() {
      if (raw instanceof RedisStore && !(await raw.ready())) {
        // Where and why, so that a wrong host, port, password or TLS setting is plain from the log (the URL's password never is).
        const cause = raw.connectionError() ?? 'no answer yet';
        const at = raw.target ? ` at ${raw.target}` : '';
        options.logger.error({ redis: raw.target, cause }, `Redis${at} is not reachable (${cause}): following onStoreError until it is`);
      }
      await engine.start();
    },
    async close(graceMs) {
      await engine.close();
      await alerts.flush(graceMs);
      alerts.close();
      if (owned) await raw.close();
    },
  };
}
