// Which header fields cross the proxy. Hop-by-hop fields (RFC 9110 §7.6.1)
// stay on their own hop; everything else passes through untouched.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node's server already answered the client's 100-continue; the upstream
  // gets the body without waiting (the upstream client refuses the field).
  'expect',
]);

/** The fields a Connection header names, or null when it names none (the usual case: no allocation). */
function namedByConnection(connection: string | string[] | undefined): Set<string> | null {
  if (connection === undefined) return null;
  const list = String(connection);
  if (list === '' || list === 'keep-alive' || list === 'close') return null;
  const named = new Set(
    list
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  return named.size > 0 ? named : null;
}

/**
 * One pass over a message's headers: hop-by-hop fields (and those its
 * Connection header names) dropped; with `ownToo`, creditgate-* fields as well
 * (a client's are never trusted upstream) and the `drop` list.
 */
export function forwardable(headers: IncomingHttpHeaders, ownToo: boolean, drop?: readonly string[]): OutgoingHttpHeaders {
  const named = namedByConnection(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (named?.has(name)) continue;
    if (ownToo && (name.startsWith('creditgate-') || (drop !== undefined && drop.length > 0 && drop.includes(name)))) continue;
    out[name] = value;
  }
  return out;
}
