// Reads and parses a JSON request body for routes whose cost comes from it,
// within a byte limit, keeping the raw bytes so they can be forwarded as is.

import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { problem, type Problem } from './problem-details.js';

export type BodyRead =
  | { readonly ok: true; readonly raw: Buffer; readonly value: unknown }
  | { readonly ok: false; readonly problem: Problem };

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** A body the gate may read as JSON: declared JSON, or no declared type. */
export function jsonContentTypeProblem(headers: IncomingHttpHeaders): Problem | null {
  const type = headers['content-type'];
  if (type === undefined || type === '' || JSON_TYPE.test(type)) return null;
  return problem('unsupported-media-type', `this route reads its cost from a JSON body; got content-type ${type}`);
}

export function parseJsonBody(raw: Buffer): BodyRead {
  if (raw.length === 0) return { ok: true, raw, value: undefined };
  try {
    return { ok: true, raw, value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, problem: problem('invalid-body', `request body is not valid JSON: ${(err as Error).message}`) };
  }
}

export async function readJsonBody(stream: Readable, headers: IncomingHttpHeaders, limitBytes: number): Promise<BodyRead> {
  const typeProblem = jsonContentTypeProblem(headers);
  if (typeProblem) return { ok: false, problem: typeProblem };
  const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (declared !== undefined && declared > limitBytes) return { ok: false, problem: tooLarge(limitBytes) };
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limitBytes) return { ok: false, problem: tooLarge(limitBytes) };
    chunks.push(buf);
  }
  return parseJsonBody(Buffer.concat(chunks, size));
}

function tooLarge(limitBytes: number): Problem {
  return problem('body-too-large', `this route reads at most ${limitBytes} bytes of body`, {
    extensions: { limitBytes },
  });
}
