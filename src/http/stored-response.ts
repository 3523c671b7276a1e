// The first response to a request with an Idempotency-Key, kept so that a
// replay is answered without reaching the upstream again. Encoded as one
// string for the store; decoded only on a replay.

import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** A response as it went out to the client. */
export interface SentResponse {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}

export interface StoredResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
}

// Headers that describe the first exchange, not the answer: a replay gets its
// own request id, date and framing, and no stale RateLimit fields.
const NOT_REPLAYED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after']);

export function encodeResponse(status: number, headers: OutgoingHttpHeaders, body: Buffer): string {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || NOT_REPLAYED.has(lower)) continue;
    kept[lower] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return JSON.stringify({ s: status, h: kept, b: body.toString('base64') });
}

/** null when the stored text is not a response this version wrote. */
export function decodeResponse(text: string): StoredResponse | null {
  try {
    const raw = JSON.parse(text) as { s?: unknown; h?: unknown; b?: unknown };
    if (typeof raw.s !== 'number' || typeof raw.b !== 'string' || typeof raw.h !== 'object' || raw.h === null) return null;
    return { status: raw.s, headers: raw.h as Record<string, string | string[]>, body: Buffer.from(raw.b, 'base64') };
  } catch {
    return null;
  }
}

const STREAM_TYPES = /^(text\/event-stream|application\/x-ndjson)\b/i;

/** Whether a body is a stream of events (SSE, NDJSON): sent on as it comes, never kept. */
export function isStreamed(contentType: unknown): boolean {
  return typeof contentType === 'string' && STREAM_TYPES.test(contentType);
}

/** Whether a response may be kept at all: not a stream, not declared larger than the limit. */
export function keepable(headers: OutgoingHttpHeaders, maxBytes: number): boolean {
  if (isStreamed(headers['content-type'])) return false;
  const length = Number(headers['content-length']);
  return !(Number.isFinite(length) && length > maxBytes);
}

/**
 * Collects a response body as it is sent, up to `maxBytes`; past that it
 * gives up (the response is sent all the same, only not kept).
 */
export class ResponseRecorder {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;

  constructor(private readonly maxBytes: number) {}

  add(chunk: Buffer | string, encoding?: BufferEncoding): void {
    if (this.overflowed) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : chunk;
    this.size += buf.length;
    if (this.size > this.maxBytes) {
      this.overflowed = true;
      this.chunks.length = 0;
      return;
    }
    this.chunks.push(buf);
  }

  /** The whole body, or null when it was larger than the limit. */
  body(): Buffer | null {
    return this.overflowed ? null : Buffer.concat(this.chunks, this.size);
  }
}

/** Answers a replay with the first response, marked as a replay. */
export function sendReplay(res: ServerResponse, response: StoredResponse): void {
  const headers: Record<string, string | string[]> = { ...response.headers, 'idempotent-replayed': 'true' };
  // The first framing was dropped; a stored length stands (a HEAD's body is empty, its length is not).
  const bodiless = res.req?.method === 'HEAD' || response.status === 204 || response.status === 304;
  if (headers['content-length'] === undefined && !bodiless) headers['content-length'] = String(response.body.length);
  res.writeHead(response.status, headers);
  res.end(response.body);
}
