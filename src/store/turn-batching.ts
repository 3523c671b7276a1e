// Charges made in one event-loop turn leave in one write. A proxy starts each
// request's charge from its own socket callback, and the tick queue drains
// between callbacks, so a flush per tick (ioredis auto-pipelining) writes one
// call at a time; corking the connection until the turn's check phase
// (setImmediate: right after the poll phase, no timer, no wait) lets the
// socket write them together, and Redis read them together.

import type { Socket } from 'node:net';

function uncork(stream: Socket): void {
  stream.uncork();
}

/** Holds `client`'s writes until the end of this event-loop turn (a no-op for a Cluster or a closed connection). */
export function batchWritesThisTurn(client: object): void {
  const stream = (client as { stream?: Socket }).stream;
  if (stream === undefined || stream.writableCorked > 0 || !stream.writable) return;
  stream.cork();
  setImmediate(uncork, stream);
}
