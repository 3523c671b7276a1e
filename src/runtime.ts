// Assembles what both run modes share: the store, the alert dispatcher and
// the engine over them, and closes them in the right order.

import type { Cluster, Redis } from 'ioredis';
import { AlertDispatcher, type AlertChannel, type DeliveryResult } from './alerts/alert-dispatcher.js';
import type { CompiledConfig } from './config/compiled-config.js';
import { missingSecretEnv } from './config/secret-ref.js';
import { CreditEngine } from './engine/credit-engine.js';
import type { Logger } from './logger.js';
import type { CreditStore } from './store/credit-store.js';
import { openStore } from './store/open-store.js';

export interface RuntimeOptions {
  readonly config: () => CompiledConfig;
  readonly redis?: string | Redis | Cluster | undefined;
  /** A store the caller owns (overrides `redis`); never closed here. */
  readonly store?: CreditStore | undefined;
  readonly keyPrefix?: string | undefined;
  readonly logger: Logger;
  readonly alertRetryBaseMs?: number | undefined;
  readonly onAlertResult?: (channel: AlertChannel, result: DeliveryResult) => void;
}

export interface Runtime {
  readonly engine: CreditEngine;
  readonly store: CreditStore;
  readonly alerts: AlertDispatcher;
  /** Waits (up to graceMs) for queued alerts, then closes the store if it opened it. */
  close(graceMs: number): Promise<void>;
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const config = options.config();
  const missing = missingSecretEnv([config.alerts.webhook?.secret]);
  if (missing.length > 0) {
    throw new Error(`alerts.webhook.secret refers to ${missing.map((m) => `$${m}`).join(', ')}, which is not set`);
  }
  const store =
    options.store ??
    openStore({ redis: options.redis, timeoutMs: config.storeTimeoutMs, prefix: options.keyPrefix, logger: options.logger });
  const alerts = new AlertDispatcher({
    config: () => options.config().alerts,
    logger: options.logger,
    ...(options.alertRetryBaseMs === undefined ? {} : { retryBaseMs: options.alertRetryBaseMs }),
    ...(options.onAlertResult ? { onResult: options.onAlertResult } : {}),
  });
  const engine = new CreditEngine({ store, config: options.config, alerts });
  return {
    engine,
    store,
    alerts,
    async close(graceMs) {
      await alerts.flush(graceMs);
      alerts.close();
      if (!options.store) await store.close();
    },
  };
}
