// Prometheus metrics, on a registry of this instance's own (never the global
// one: a library must not collide with its host's metrics). No metric carries
// an account id: label values come from the config (routes, credit types,
// plans) or from small fixed sets, so cardinality is bounded.

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CompiledConfig } from '../config/compiled-config.js';
import {
  METRIC_NAMES,
  POOL_OUTCOMES,
  REQUEST_OUTCOMES,
  MISNAMED_DEFAULT_GAUGES,
  JOURNAL_KINDS,
  REFUND_REASONS,
  STORE_OPERATIONS,
  STATUS_CLASSES,
  RELOAD_RESULTS,
  ALERT_CHANNELS,
  ALERT_RESULTS,
  BILLING_OUTCOMES,
  UNMATCHED_ROUTE,
  NO_CREDIT_TYPE,
  type Outcome,
} from './metric-names.js';
import { LabelledChildren } from './labelled-children.js';
import { CellCounter, CellHistogram } from './metric-cells.js';

/**
 * How often the event loop's delay is sampled for nodejs_eventloop_lag_*, in
 * ms. prom-client's default of 10 woke an idle sidecar about 200 times a
 * second (strace: 1,023 epoll waits in 5 s), and on a VM each wake-up of one
 * process delays the others on its core: a sidecar runs beside its app. At
 * 100 ms a 15 s scrape still reads 150 samples.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

// Callers import names and label sets from here, with the metrics.
export * from './metric-names.js';

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
  /** Counts accounts paused on each pool; called at scrape time. */
  readonly countExhausted?: (creditTypes: readonly string[]) => Promise<Map<string, number>>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly decisions: CellCounter<'route' | 'credit_type' | 'outcome'>;
  readonly creditsCharged: CellCounter<'credit_type' | 'plan'>;
  readonly creditsRefunded: Counter<'credit_type' | 'reason'>;
  readonly topUpCreditsGranted: Counter<'credit_type'>;
  readonly storeDuration: CellHistogram<'operation'>;
  readonly storeErrors: Counter<'operation'>;
  readonly upstreamDuration: CellHistogram<'route' | 'status_class'>;
  readonly httpRequests: CellCounter<'route' | 'status_class'>;
  readonly configReloads: Counter<'result'>;
  readonly configInfo: Gauge<'config_hash'>;
  readonly alertsSent: Counter<'channel' | 'result'>;
  readonly accountsExhausted: Gauge<'credit_type'>;
  readonly unbilledOverage: Counter<'credit_type'>;
  readonly journalEntries: Gauge;
  readonly journalReplayed: Counter;
  readonly journalDropped: Counter;
  readonly journalLost: Counter<'kind'>;
  readonly storeBreakerOpen: Gauge;
  readonly storeFull: Counter;
  readonly billingEvents: Counter<'source' | 'outcome'>;
  private creditTypes: readonly string[] = [];
  // The per-request metrics' cells (metric-cells.ts), one per label set, found through nested Maps (labelled-children.ts).
  private readonly requestChildren = new LabelledChildren((route, status) => this.httpRequests.cell({ route, status_class: status }));
  private readonly upstreamChildren = new LabelledChildren((route, status) => this.upstreamDuration.cell({ route, status_class: status }));
  private readonly decisionChildren = new LabelledChildren((route, type, outcome) => this.decisions.cell({ route, credit_type: type, outcome }));
  private readonly chargedChildren = new LabelledChildren((type, plan) => this.creditsCharged.cell({ credit_type: type, plan }));
  private readonly storeChildren = new LabelledChildren((operation) => this.storeDuration.cell({ operation }));

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.decisions = new CellCounter({
      name: METRIC_NAMES.decisions,
      help: 'Credit decisions by route, credit type and outcome (per pool; request-level outcomes use credit_type="none").',
      labelNames: ['route', 'credit_type', 'outcome'],
      registers,
    });
    this.creditsCharged = new CellCounter({
      name: METRIC_NAMES.creditsCharged,
      help: 'Credits charged, by credit type and plan.',
      labelNames: ['credit_type', 'plan'],
      registers,
    });
    this.creditsRefunded = new Counter({
      name: METRIC_NAMES.creditsRefunded,
      help: 'Credits given back, by credit type and reason.',
      labelNames: ['credit_type', 'reason'],
      registers,
    });
    this.topUpCreditsGranted = new Counter({
      name: METRIC_NAMES.topUpCreditsGranted,
      help: 'Top-up credits granted, by credit type.',
      labelNames: ['credit_type'],
      registers,
    });
    this.storeDuration = new CellHistogram({
      name: METRIC_NAMES.storeDuration,
      help: 'Time of credit store operations.',
      labelNames: ['operation'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.storeErrors = new Counter({
      name: METRIC_NAMES.storeErrors,
      help: 'Credit store operations that failed (unreachable, timeout, error).',
      labelNames: ['operation'],
      registers,
    });
    this.upstreamDuration = new CellHistogram({
      name: METRIC_NAMES.upstreamDuration,
      help: 'Time from forwarding a request to the upstream until its response headers.',
      labelNames: ['route', 'status_class'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.httpRequests = new CellCounter({
      name: METRIC_NAMES.httpRequests,
      help: 'Requests answered by the sidecar, by route and status class.',
      labelNames: ['route', 'status_class'],
      registers,
    });
    this.unbilledOverage = new Counter({
      name: METRIC_NAMES.unbilledOverage,
      help: 'Actual use reported above a hold, not charged (no overage beyond plan limits), by credit type.',
      labelNames: ['credit_type'],
      registers,
    });
    this.journalEntries = new Gauge({
      name: METRIC_NAMES.journalEntries,
      help: 'Charges allowed during a store outage, waiting in this replica to be written to the store.',
      registers,
    });
    this.journalReplayed = new Counter({
      name: METRIC_NAMES.journalReplayed,
      help: 'Outage journal entries written to the store after it came back.',
      registers,
    });
    this.journalDropped = new Counter({
      name: METRIC_NAMES.journalDropped,
      help: 'Outage journal entries dropped at replay (their cycle long over, or the account gone).',
      registers,
    });
    this.journalLost = new Counter({
      name: METRIC_NAMES.journalLost,
      help: 'Outage journal entries neither written to the store nor kept (journal full, or a shutdown without store.journalFile): logged with all they hold.',
      labelNames: ['kind'],
      registers,
    });
    this.storeBreakerOpen = new Gauge({
      name: METRIC_NAMES.storeBreakerOpen,
      help: '1 while the store is considered down (requests follow onStoreError), else 0.',
      registers,
    });
    this.storeFull = new Counter({
      name: METRIC_NAMES.storeFull,
      help: 'Store calls refused because the memory store holds store.maxAccounts accounts and the call needed a new one (503 store-full; nothing charged).',
      registers,
    });
    this.billingEvents = new Counter({
      name: METRIC_NAMES.billingEvents,
      help: 'Billing webhook deliveries, by source and outcome (invalid: bad signature).',
      labelNames: ['source', 'outcome'],
      registers,
    });
    this.configReloads = new Counter({
      name: METRIC_NAMES.configReloads,
      help: 'Config reload attempts, by result.',
      labelNames: ['result'],
      registers,
    });
    this.configInfo = new Gauge({
      name: METRIC_NAMES.configInfo,
      help: 'The config in force (value 1), by hash.',
      labelNames: ['config_hash'],
      registers,
    });
    this.alertsSent = new Counter({
      name: METRIC_NAMES.alertsSent,
      help: 'Alert deliveries, by channel and result.',
      labelNames: ['channel', 'result'],
      registers,
    });
    const metrics = this;
    this.accountsExhausted = new Gauge({
      name: METRIC_NAMES.accountsExhausted,
      help: 'Accounts whose pool is empty in their current cycle, by credit type (the same value on every replica: aggregate with max).',
      labelNames: ['credit_type'],
      registers,
      async collect() {
        if (!options.countExhausted) return;
        try {
          const counts = await options.countExhausted(metrics.creditTypes);
          for (const t of metrics.creditTypes) this.set({ credit_type: t }, counts.get(t) ?? 0);
        } catch {
          // The store is down: keep the last values; store errors are counted elsewhere.
        }
      },
    });
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
      // Gauges named like counters break `promtool check metrics`; their
      // per-type siblings (nodejs_active_handles{type}…) say the same, summed.
      for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    }
    for (const r of RELOAD_RESULTS) this.configReloads.inc({ result: r }, 0);
    this.journalEntries.set(0);
    this.journalReplayed.inc(0);
    this.journalDropped.inc(0);
    for (const kind of JOURNAL_KINDS) this.journalLost.inc({ kind }, 0);
    this.storeBreakerOpen.set(0);
    this.storeFull.inc(0);
    for (const op of STORE_OPERATIONS) this.storeErrors.inc({ operation: op }, 0);
    for (const outcome of BILLING_OUTCOMES) this.billingEvents.inc({ source: 'stripe', outcome }, 0);
    for (const c of ALERT_CHANNELS) for (const r of ALERT_RESULTS) this.alertsSent.inc({ channel: c, result: r }, 0);
  }

  /**
   * Puts every known label set at 0 (so dashboards and alert rules see a
   * series before the first event) and records which config is in force.
   * Called at start and on every reload.
   */
  initialise(config: CompiledConfig): void {
    this.creditTypes = [...config.creditTypes.keys()];
    for (const route of config.routeList) {
      for (const outcome of REQUEST_OUTCOMES) this.decisions.inc({ route: route.name, credit_type: NO_CREDIT_TYPE, outcome }, 0);
      for (const c of route.charges) {
        for (const outcome of POOL_OUTCOMES) this.decisions.inc({ route: route.name, credit_type: c.creditType, outcome }, 0);
      }
      for (const sc of STATUS_CLASSES) {
        this.httpRequests.inc({ route: route.name, status_class: sc }, 0);
      }
    }
    for (const sc of STATUS_CLASSES) this.httpRequests.inc({ route: UNMATCHED_ROUTE, status_class: sc }, 0);
    for (const plan of config.plans.values()) {
      for (const [type, quota] of plan.quotas) if (quota !== 0) this.creditsCharged.inc({ credit_type: type, plan: plan.id }, 0);
    }
    for (const t of config.creditTypes.values()) {
      for (const reason of REFUND_REASONS) this.creditsRefunded.inc({ credit_type: t.id, reason }, 0);
      if (t.kind === 'consumable') {
        this.topUpCreditsGranted.inc({ credit_type: t.id }, 0);
        this.unbilledOverage.inc({ credit_type: t.id }, 0);
      }
      this.accountsExhausted.set({ credit_type: t.id }, 0);
    }
    this.configInfo.reset();
    this.configInfo.set({ config_hash: config.hash }, 1);
  }

  decision(route: string, creditType: string, outcome: Outcome): void {
    this.decisionChildren.three(route, creditType, outcome).inc();
  }

  /** creditgate_http_requests_total{route, status_class} + 1. */
  countRequest(route: string, status: (typeof STATUS_CLASSES)[number]): void {
    this.requestChildren.two(route, status).inc();
  }

  /** creditgate_upstream_duration_seconds{route, status_class}. */
  observeUpstream(route: string, status: (typeof STATUS_CLASSES)[number], seconds: number): void {
    this.upstreamChildren.two(route, status).observe(seconds);
  }

  /** creditgate_credits_charged_total{credit_type, plan} + amount. */
  countCharged(creditType: string, plan: string, amount: number): void {
    this.chargedChildren.two(creditType, plan).inc(amount);
  }

  /** creditgate_store_duration_seconds{operation}. */
  observeStore(operation: string, seconds: number): void {
    this.storeChildren.one(operation).observe(seconds);
  }
}
