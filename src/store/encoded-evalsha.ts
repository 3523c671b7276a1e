// The charge script's call (EVAL once per connection, EVALSHA after it)
// written as one string built here. ioredis turns each of a command's 20-odd
// arguments into its own small string and joins them one by one: string
// joins, flattening and UTF-8 lengths were about a fifth of the CPU of a
// process doing nothing but charges (a perf profile). The command object,
// its queue and the reply parser stay ioredis's. Only the store's own plain
// connections use it: a Cluster needs ioredis's view of the keys to route
// the call, a client with ioredis's keyPrefix option needs it to prefix
// them, and a caller's client may be another ioredis than the Command class
// here; those keep the defined command.

import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import type { Reply } from './redis-replies.js';

/** A Lua script as the store sends it: by its source first on each connection, then by its SHA1. */
export interface EncodedScript {
  readonly sha: string;
  /** EVAL and the source, as a first call on a connection starts. */
  readonly evalHead: string;
  /** EVALSHA and the SHA1, as every later call starts. */
  readonly evalshaHead: string;
  /** Connections (their sockets) the script was sent to by its source: Redis holds it there. */
  readonly sentOn: WeakSet<object>;
}

export function encodedScript(lua: string): EncodedScript {
  const sha = createHash('sha1').update(lua).digest('hex');
  return {
    sha,
    evalHead: `$4\r\neval\r\n${bulk(lua)}`,
    evalshaHead: `$7\r\nevalsha\r\n${bulk(sha)}`,
    sentOn: new WeakSet(),
  };
}

/** A command whose wire form was built whole beforehand. */
class EncodedCommand extends Command {
  constructor(
    name: 'eval' | 'evalsha',
    private readonly wire: string,
  ) {
    // utf8: replies as strings, as the defined commands give them.
    super(name, [], { replyEncoding: 'utf8' });
  }

  override toWritable(): string {
    return this.wire;
  }
}

function bulk(value: string): string {
  return `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
}

/** EVAL or EVALSHA in RESP: the array header, `head` (the command and the source or SHA1), the key count, the keys and the arguments. */
export function encodeScriptCall(head: string, keys: readonly string[], args: readonly (string | number)[]): string {
  let wire = `*${3 + keys.length + args.length}\r\n${head}${bulk(String(keys.length))}`;
  for (const key of keys) wire += bulk(key);
  for (const arg of args) wire += bulk(typeof arg === 'string' ? arg : String(arg));
  return wire;
}

const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.includes('NOSCRIPT');

/**
 * Runs the script on `client`: the first call on a connection by its source
 * (EVAL: one round trip whether Redis holds the script or not, as ioredis
 * does), later ones by its SHA1. A call answered NOSCRIPT (Redis flushed its
 * scripts under a live connection) never ran, so it is sent again by its
 * source — unless `refused()` says the call was already refused at its
 * deadline: a refused charge is never sent afterwards.
 */
export function runEncodedScript(
  client: Redis,
  script: EncodedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  refused: () => boolean,
): Promise<Reply> {
  // No socket yet: the call is refused by the client (no offline queue) whatever it says.
  const stream = client.stream as object | undefined;
  const first = stream === undefined || !script.sentOn.has(stream);
  // Marked when sent, not when answered: the calls behind it in the same write run after it in Redis.
  if (first && stream !== undefined) script.sentOn.add(stream);
  const command = first
    ? new EncodedCommand('eval', encodeScriptCall(script.evalHead, keys, args))
    : new EncodedCommand('evalsha', encodeScriptCall(script.evalshaHead, keys, args));
  return (client.sendCommand(command) as Promise<Reply>).catch((err: unknown) => {
    if (first || stream === undefined || !isNoScript(err)) throw err;
    script.sentOn.delete(stream);
    if (refused()) throw err;
    return runEncodedScript(client, script, keys, args, refused);
  });
}
