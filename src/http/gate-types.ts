// What the request gate takes from an adapter and what it answers: the
// framework-neutral shape of a request, and pass / refuse / replay / allow.

import type { EndOfBodySettle } from './settle-at-end.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import type { ChargeReceipt, PoolStatus } from '../engine/types.js';
import type { Outcome } from '../observability/metrics.js';
import type { BodyRead } from './json-body.js';
import type { Problem } from './problem-details.js';
import type { StoredResponse } from './stored-response.js';

export interface GateRequest {
  readonly method: string;
  /** Path and query as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** For logs: propagated from x-request-id or created by the adapter. */
  readonly requestId: string;
  /**
   * The host framework's own letter-case rule for paths (Express's "case
   * sensitive routing"); used only when the config does not set one.
   */
  readonly caseSensitive?: boolean;
  /** Reads the JSON body; called only for routes whose cost comes from it. */
  readBody(limitBytes: number, maxDepth: number): Promise<BodyRead>;
  /**
   * Reads the body of any type for an idempotency fingerprint, on routes
   * that did not read it as JSON. `raw` is what is hashed (and, in the
   * sidecar, forwarded).
   */
  readRawBody(limitBytes: number): Promise<BodyRead>;
}

export type GateOutcome =
  | { readonly kind: 'pass'; readonly config: CompiledConfig; readonly forwardUrl: string }
  | { readonly kind: 'refuse'; readonly config: CompiledConfig; readonly problem: Problem; readonly route?: RouteDef }
  /** A completed request's replay: answered from its first response, never forwarded again. */
  | { readonly kind: 'replay'; readonly config: CompiledConfig; readonly route: RouteDef; readonly response: StoredResponse }
  | AllowOutcome;

export interface AllowOutcome {
  readonly kind: 'allow';
  readonly config: CompiledConfig;
  readonly route: RouteDef;
  /** The normalised path and the query: what the upstream receives. */
  readonly forwardUrl: string;
  readonly accountId: string;
  readonly requestId: string;
  readonly pools: readonly PoolStatus[];
  /** RateLimit headers for the response. */
  readonly headers: Readonly<Record<string, string>>;
  /** Headers for the upstream: what each held pool may use (creditgate-reserved). */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** What was charged, to refund or settle after the response. */
  readonly receipt?: ChargeReceipt;
  /** The body as read, when the route (or an idempotency key) needed it. */
  readonly body?: BodyRead & { ok: true };
}

/** What finishing a request did to its charge. */
export interface FinishResult {
  /** RateLimit headers as they stand afterwards. */
  readonly headers: Record<string, string>;
  /** The charge stands: a request with an idempotency key is completed once its response has been sent. */
  readonly kept: boolean;
  /** A kept charge with holds the body or a trailer settles: read the body and settle when it ends. */
  readonly atEnd?: EndOfBodySettle | undefined;
}

/** Where decisions are counted (the Prometheus metrics, in practice). */
export interface GateObserver {
  decision(route: string, creditType: string, outcome: Outcome): void;
}

/** Header telling the upstream what a held pool may use: `voice_minutes=15`. */
export const RESERVED_HEADER = 'creditgate-reserved';
/** Header telling the upstream what this request was charged: `ai_tasks=25, database=1`. */
export const CHARGED_HEADER = 'creditgate-charged';
