// Reads and parses a JSON request body for routes whose cost comes from it,
// within a byte limit, keeping the raw bytes so they can be forwarded as is.

import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { problem, type Problem } from './problem-details.js';

export type BodyRead = { readonly ok: true; readonly raw: Buffer; readonly value: unknown } | { readonly ok: false; readonly problem: Problem };

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** A body the gate may read as JSON: declared JSON, or no declared type. */
export function jsonContentTypeProblem(headers: IncomingHttpHeaders): Problem | null {
  const type = headers['content-type'];
  if (type === undefined || type === '' || JSON_TYPE.test(type)) return null;
  return problem('unsupported-media-type', `this route reads its cost from a JSON body; got content-type ${type}`);
}

/**
 * How deeply a JSON text nests, found by scanning (outside strings) before
 * parsing, so that a hostile body is refused without building it.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return max;
}

export function parseJsonBody(raw: Buffer, maxDepth = 32): BodyRead {
  if (raw.length === 0) return { ok: true, raw, value: undefined };
  const text = raw.toString('utf8');
  if (jsonDepth(text) > maxDepth) {
    return { ok: false, problem: problem('invalid-body', `request body nests deeper than ${maxDepth} levels`) };
  }
  try {
    return { ok: true, raw, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, problem: problem('invalid-body', `request body is not valid JSON: ${(err as Error).message}`) };
  }
}

export async function readJsonBody(stream: Readable, headers: IncomingHttpHeaders, limitBytes: number, maxDepth = 32): Promise<BodyRead> {
  const typeProblem = jsonContentTypeProblem(headers);
  if (typeProblem) return { ok: false, problem: typeProblem };
  const read = await readRawBody(stream, headers, limitBytes, 'this route reads');
  return read.ok ? parseJsonBody(read.raw, maxDepth) : read;
}

/**
 * Reads a body whole, of any type, within a byte limit (`why` says who
 * reads it, for the 413). The value is left undefined.
 */
export async function readRawBody(stream: Readable, headers: IncomingHttpHeaders, limitBytes: number, why: string): Promise<BodyRead> {
  const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (declared !== undefined && declared > limitBytes) return { ok: false, problem: tooLarge(limitBytes, why) };
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limitBytes) return { ok: false, problem: tooLarge(limitBytes, why) };
    chunks.push(buf);
  }
  return { ok: true, raw: Buffer.concat(chunks, size), value: undefined };
}

function tooLarge(limitBytes: number, why: string): Problem {
  return problem('body-too-large', `${why} at most ${limitBytes} bytes of body`, {
    extensions: { limitBytes },
  });
}
