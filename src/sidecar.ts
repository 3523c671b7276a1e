// Runs creditgate as a sidecar: the proxy port in front of the upstream, and
// the admin port (health, metrics, account API, usage page). Used by
// `creditgate serve` and by the end-to-end tests, which start it in-process.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import { ConfigReloader, type ReloadResult } from './config/config-reloader.js';
import type { CreditEngine } from './engine/credit-engine.js';
import { AdminToken } from './http/admin-auth.js';
import { createAdminApp } from './http/admin-api.js';
import { problem, problemBody } from './http/problem-details.js';
import { RequestGate } from './http/request-gate.js';
import { createSidecarHandler } from './http/sidecar-handler.js';
import { UpstreamForwarder } from './http/upstream-forwarder.js';
import { createLogger, type Logger } from './logger.js';
import type { Metrics } from './observability/metrics.js';
import { checkSecrets, createRuntime } from './runtime.js';
import type { CreditStore } from './store/credit-store.js';

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
  /** Config file poll interval (ms), the fallback to watching. */
  readonly configPollMs?: number;
}

export interface RunningSidecar {
  readonly port: number;
  readonly adminPort: number;
  readonly engine: CreditEngine;
  readonly store: CreditStore;
  readonly metrics: Metrics;
  /** Re-reads the config file now (what SIGHUP does). */
  reload(): Promise<ReloadResult>;
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

// Stop accepting, close idle keep-alive connections at once, let requests in
// flight finish, and cut what is still open when the grace period ends.
function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
    // A connection that finishes its request later is idle then: close it too.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    sweep.unref();
    server.once('close', () => clearInterval(sweep));
  });
}

export async function startSidecar(options: SidecarOptions): Promise<RunningSidecar> {
  const logger = options.logger ?? createLogger();
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    throw new Error(`--upstream must be an http:// or https:// URL, got ${options.upstream}`);
  }
  let metrics: Metrics | undefined;
  const reloader = await ConfigReloader.load({
    path: options.configPath,
    logger,
    validate: checkSecrets,
    onSwap: (config) => metrics?.initialise(config),
    onResult: (result) => {
      if (result !== 'unchanged') metrics?.configReloads.inc({ result });
    },
    ...(options.configPollMs === undefined ? {} : { pollMs: options.configPollMs }),
  });
  const runtime = createRuntime({
    config: () => reloader.current(),
    redis: options.redis,
    store: options.store,
    keyPrefix: options.keyPrefix,
    logger,
    alertRetryBaseMs: options.alertRetryBaseMs,
  });
  metrics = runtime.metrics;
  const { engine, store } = runtime;
  await runtime.start();
  const gate = new RequestGate(engine, logger, { observer: metrics, burst: runtime.burst });
  const forwarder = new UpstreamForwarder(upstream, logger);

  const handler = createSidecarHandler(gate, forwarder, logger, metrics);
  const proxy = http.createServer((req, res) => void handler(req, res));
  // Requests Node's parser refuses (Content-Length with Transfer-Encoding,
  // conflicting Content-Lengths, bad framing) never reach the gate or the
  // upstream: answer 400 problem+json and close.
  proxy.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify(
      problemBody(problem('invalid-request', `malformed HTTP request (${err.code ?? 'parse error'})`), reloader.current().problemBaseUrl),
    );
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
  const admin = http.createServer(createAdminApp({ engine, token: new AdminToken(options.adminToken), logger, metrics }));
  const port = await listen(proxy, options.port ?? 8080, options.host);
  const adminPort = await listen(admin, options.adminPort ?? 9090, options.host);
  reloader.start();
  logger.info(
    {
      port,
      adminPort,
      upstream: upstream.origin,
      config: options.configPath,
      configHash: reloader.current().hash,
      store: options.store ? 'custom' : options.redis ? 'redis' : 'memory',
    },
    'creditgate sidecar listening',
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    adminPort,
    engine,
    store,
    metrics,
    reload: () => reloader.reload('SIGHUP'),
    flushAlerts: (timeoutMs = 10_000) => runtime.alerts.flush(timeoutMs),
    close() {
      closing ??= (async () => {
        const grace = options.shutdownGraceMs ?? 10_000;
        reloader.stop();
        await Promise.all([closeServer(proxy, grace), closeServer(admin, grace)]);
        forwarder.close();
        await runtime.close(grace);
        logger.info('creditgate stopped');
      })();
      return closing;
    },
  };
}
