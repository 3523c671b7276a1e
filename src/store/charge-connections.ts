// The connections that carry charges: taken in turn, the charges of one
// event-loop turn in one write (turn-batching.ts), and on the store's own
// plain connections each charge sent as one pre-encoded script call
// (encoded-evalsha.ts).

import type { Cluster, Redis } from 'ioredis';
import { encodedScript, runEncodedScript } from './encoded-evalsha.js';
import { LUA, type CreditgateCommands } from './lua-scripts.js';
import type { Reply } from './redis-replies.js';
import { batchWritesThisTurn } from './turn-batching.js';

const CHARGE = encodedScript(LUA.charge);

export class ChargeConnections {
  private turn = 0;

  constructor(
    private readonly clients: readonly ((Redis | Cluster) & CreditgateCommands)[],
    /**
     * Pre-encoded calls: only on the store's own non-Cluster connections
     * without ioredis's keyPrefix (a caller's client may be another ioredis,
     * 6 with RESP3, than the Command class built here).
     */
    private readonly encoded: boolean,
  ) {}

  /** Sends one charge; `refused` says whether its deadline already refused it (no resend after that). */
  send(keys: readonly string[], args: readonly (string | number)[], refused: () => boolean): Promise<Reply> {
    const conn = this.clients[this.turn++ % this.clients.length]!;
    batchWritesThisTurn(conn);
    return this.encoded ? runEncodedScript(conn as Redis, CHARGE, keys, args, refused) : conn.creditgateCharge(keys.length, ...keys, ...args);
  }
}
