// Runs creditgate as a sidecar: the proxy port in front of the upstream, and
// the admin port (health, account API). Used by `creditgate serve` and by the
// end-to-end tests, which start it in-process on loopback.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import type { CompiledConfig } from './config/compiled-config.js';
import { loadConfigFile } from './config/index.js';
import type { CreditEngine } from './engine/credit-engine.js';
import { AdminToken } from './http/admin-auth.js';
import { createAdminApp } from './http/admin-api.js';
import { RequestGate } from './http/request-gate.js';
import { createSidecarHandler } from './http/sidecar-handler.js';
import { UpstreamForwarder } from './http/upstream-forwarder.js';
import { createLogger, type Logger } from './logger.js';
import type { CreditStore } from './store/credit-store.js';
import { createRuntime } from './runtime.js';

export interface SidecarOptions {
  readonly configPath: string;
  readonly upstream: string;
  readonly port?: number;
  readonly adminPort?: number;
  /** Interface to listen on; default: all. */
  readonly host?: string;
  readonly redis?: string | Redis | Cluster;
  readonly store?: CreditStore;
  readonly keyPrefix?: string;
  readonly adminToken?: string;
  readonly logger?: Logger;
  /** How long shutdown waits for requests in flight, then for queued alerts (ms). */
  readonly shutdownGraceMs?: number;
  /** First alert retry delay (tests shorten it). */
  readonly alertRetryBaseMs?: number;
}

export interface RunningSidecar {
  readonly port: number;
  readonly adminPort: number;
  readonly engine: CreditEngine;
  readonly store: CreditStore;
  /** Resolves when queued alert deliveries are done (or after `timeoutMs`). */
  flushAlerts(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    // Idle keep-alive connections would hold close() open for their timeout.
    server.closeIdleConnections();
  });
}

export async function startSidecar(options: SidecarOptions): Promise<RunningSidecar> {
  const logger = options.logger ?? createLogger();
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    throw new Error(`--upstream must be an http:// or https:// URL, got ${options.upstream}`);
  }
  const config: CompiledConfig = await loadConfigFile(options.configPath);
  const runtime = createRuntime({
    config: () => config,
    redis: options.redis,
    store: options.store,
    keyPrefix: options.keyPrefix,
    logger,
    alertRetryBaseMs: options.alertRetryBaseMs,
  });
  const { engine, store } = runtime;
  const gate = new RequestGate(engine, logger);
  const forwarder = new UpstreamForwarder(upstream, logger);

  const handler = createSidecarHandler(gate, forwarder, logger);
  const proxy = http.createServer((req, res) => void handler(req, res));
  const admin = http.createServer(
    createAdminApp({ engine, token: new AdminToken(options.adminToken), logger }),
  );
  const port = await listen(proxy, options.port ?? 8080, options.host);
  const adminPort = await listen(admin, options.adminPort ?? 9090, options.host);
  logger.info(
    { port, adminPort, upstream: upstream.origin, config: options.configPath, configHash: config.hash, store: store.constructor.name },
    'creditgate sidecar listening',
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    adminPort,
    engine,
    store,
    flushAlerts: (timeoutMs = 10_000) => runtime.alerts.flush(timeoutMs),
    close() {
      closing ??= (async () => {
        const grace = options.shutdownGraceMs ?? 10_000;
        await Promise.all([closeServer(proxy, grace), closeServer(admin, grace)]);
        forwarder.close();
        await runtime.close(grace);
      })();
      return closing;
    },
  };
}
