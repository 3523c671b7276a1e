// Watches what an Express app writes on a response, without holding any of
// it back: the end (for the after-response steps), the bytes (for an
// idempotency record and usage reading), and the trailers.

import type { Response } from 'express';
import { ResponseRecorder } from './stored-response.js';

/**
 * Calls `ended` once the app ends the response (right after its end() has
 * run, never holding it), with what it wrote when `recordUpTo` > 0 (null
 * when larger). Every chunk written is also shown to `tap` (usage reading),
 * and trailers added to `trailers`. Returns whether the end has happened.
 */
export function onEnd(
  res: Response,
  recordUpTo: number,
  ended: (body: Buffer | null) => void,
  tap?: (chunk: Buffer) => void,
  trailers?: Record<string, string>,
): () => boolean {
  const recorder = recordUpTo > 0 ? new ResponseRecorder(recordUpTo) : null;
  let done = false;
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => Response;
  const take = (chunk: unknown, encoding: unknown) => {
    if (!recorder && !tap) return;
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          : undefined;
    if (!bytes) return;
    recorder?.add(bytes);
    tap?.(bytes);
  };
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    take(chunk, rest[0]);
    return write(chunk, ...rest);
  }) as Response['write'];
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (done) return end(chunk, ...rest);
    done = true;
    if (chunk !== undefined && typeof chunk !== 'function') take(chunk, rest[0]);
    const result = end(chunk, ...rest);
    ended(recorder?.body() ?? null);
    return result;
  }) as Response['end'];
  if (trailers) {
    const addTrailers = res.addTrailers.bind(res);
    res.addTrailers = (headers) => {
      for (const [name, value] of Array.isArray(headers) ? headers : Object.entries(headers)) trailers[String(name).toLowerCase()] = String(value);
      addTrailers(headers);
    };
  }
  return () => done;
}
