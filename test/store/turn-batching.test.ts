// The charges of one event-loop turn leave the process in one write: counted
// at the connection's socket, against the test's real redis-server.

import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis-store.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

/** Counts the writes the socket hands to the OS (one per _write or _writev). */
function countWrites(socket: Socket): () => number {
  let writes = 0;
  const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void };
  const write = s._write.bind(socket);
  const writev = s._writev?.bind(socket);
  s._write = (...a) => {
    writes += 1;
    write(...a);
  };
  if (writev)
    s._writev = (...a) => {
      writes += 1;
      writev(...a);
    };
  return () => writes;
}

describe('RedisStore: one write per event-loop turn', () => {
  it('50 charges started in one turn leave in one write, and each is counted exactly', async () => {
    const store = new RedisStore({ url: redisUrl(), prefix: uniquePrefix('turn'), timeoutMs: 2000 });
    try {
      await store.ready();
      const pool = { creditType: 'ai', op: 'charge' as const, amount: 1, limit: 1000, cycleStart: 0, expireAt: 0, extras: false };
      // Loads the script first (an EVALSHA answered NOSCRIPT is sent again).
      await store.charge('warm', [pool], { now: Date.now(), thresholds: [] });
      const writes = countWrites((store.client as unknown as { stream: Socket }).stream);
      const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => store.charge(`acct-${i % 5}`, [pool], { now: Date.now(), thresholds: [] })));
      expect(writes()).toBe(1);
      expect(outcomes.every((o) => o.ok)).toBe(true);
      for (let a = 0; a < 5; a++) {
        const [usage] = await store.usage(`acct-${a}`, [{ creditType: 'ai', cycleStart: 0 }], Date.now());
        expect(usage?.planUsed).toBe(10);
      }
    } finally {
      await store.close();
    }
  });
});
