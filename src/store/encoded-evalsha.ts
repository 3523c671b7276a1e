// The charge script's EVALSHA written as one string built here. ioredis
// turns each of a command's 20-odd arguments into its own small string and
// joins them one by one: string joins, flattening and UTF-8 lengths were
// about a fifth of the CPU of a process doing nothing but charges (a perf
// profile). The command object, its queue and the reply parser stay
// ioredis's. Only the store's own plain connections use it: a Cluster needs
// ioredis's view of the keys to route the call, a client with ioredis's
// keyPrefix option needs it to prefix them, and a caller's client may be
// another ioredis than the Command class here; those keep the defined command.

import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import type { Reply } from './redis-replies.js';

/** A Lua script as EVALSHA names it. */
export interface EncodedScript {
  readonly sha: string;
  /** The command's name and the script's SHA1, as they start every call. */
  readonly head: string;
}

export function encodedScript(lua: string): EncodedScript {
  const sha = createHash('sha1').update(lua).digest('hex');
  return { sha, head: `$7\r\nevalsha\r\n$${sha.length}\r\n${sha}\r\n` };
}

/** A command whose wire form was built whole beforehand. */
class EncodedCommand extends Command {
  constructor(private readonly wire: string) {
    // utf8: replies as strings, as the defined commands give them.
    super('evalsha', [], { replyEncoding: 'utf8' });
  }

  override toWritable(): string {
    return this.wire;
  }
}

function bulk(value: string): string {
  return `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
}

/** EVALSHA in RESP: the array header, the command, the SHA1, the key count, the keys and the arguments. */
export function encodeEvalsha(script: EncodedScript, keys: readonly string[], args: readonly (string | number)[]): string {
  let wire = `*${3 + keys.length + args.length}\r\n${script.head}${bulk(String(keys.length))}`;
  for (const key of keys) wire += bulk(key);
  for (const arg of args) wire += bulk(typeof arg === 'string' ? arg : String(arg));
  return wire;
}

/**
 * Runs the script by its SHA1 on `client`. When Redis does not hold it
 * (NOSCRIPT: a restarted or flushed Redis), nothing ran, so `reload` sends it
 * the way ioredis does (EVAL with the source, then EVALSHA again).
 */
export function evalshaEncoded(
  client: Redis,
  script: EncodedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  reload: () => Promise<Reply>,
): Promise<Reply> {
  const command = new EncodedCommand(encodeEvalsha(script, keys, args));
  return (client.sendCommand(command) as Promise<Reply>).catch((err: unknown) => {
    if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
    return reload();
  });
}
