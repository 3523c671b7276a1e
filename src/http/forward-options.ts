// What the sidecar hands the forwarder for one request: the target, the
// headers to add or drop, and the steps around the upstream's answer.

import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamResult } from '../domain/refund-policy.js';
import type { EndOfBodySettle } from './settle-at-end.js';
import type { SentResponse } from './stored-response.js';

export interface ForwardOptions {
  /** The request target to send: the normalised path and the query. */
  readonly path: string;
  /** The request's x-request-id, added to the response unless the upstream sent its own. */
  readonly requestId?: string;
  /** Request headers to drop before forwarding (the trusted-hop secret…). */
  readonly dropHeaders?: readonly string[];
  /** Response headers to add (RateLimit…), when there is no `beforeRespond`. */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** Request headers to add for the upstream (creditgate-reserved…). */
  readonly upstreamHeaders?: Readonly<Record<string, string>>;
  /** The body, when the gate already read it; otherwise the request is streamed. */
  readonly body?: Buffer;
  readonly problemBaseUrl: string;
  /** Longest wait for the upstream's response headers; then 504. */
  readonly timeoutMs: number;
  /** Called once: with the upstream's status and the seconds until its headers, or with no status on failure. */
  readonly onUpstream?: (status: number | undefined, seconds: number) => void;
  /**
   * Runs after the upstream answered or failed and before the client sees a
   * status (refund, settle); returns the response headers to add, at once
   * when nothing needed the store.
   */
  readonly beforeRespond?: (result: UpstreamResult, headers: IncomingHttpHeaders) => Record<string, string> | Promise<Record<string, string>>;
  /**
   * Called once after `beforeRespond`: with the response (body up to
   * `recordUpTo` bytes) once the upstream's body is complete — the client's
   * response ends only after it resolves — or with null when there is no
   * such response (an error, a larger body, a client that left).
   */
  readonly afterResponse?: (response: SentResponse | null) => Promise<void>;
  readonly recordUpTo?: number;
  /**
   * Called once `beforeRespond` has run: when it gives a settle, the body is
   * read on its way to the client and the settle runs when it ends (or ends
   * early), before the client's response ends.
   */
  readonly atEnd?: () => EndOfBodySettle | undefined;
}
