// The store breaker: opens on a failure, probes until the store answers,
// and never stops probing — also when the store fails again while the
// journal replay (onClose) is still running.

import { describe, expect, it } from 'vitest';
import { StoreBreaker } from '../../src/engine/store-breaker.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('StoreBreaker', () => {
  it('a failure during the replay that follows a recovery reopens it, and it closes again once the store answers', async () => {
    let up = true;
    let closes = 0;
    let breaker: StoreBreaker | undefined;
    breaker = new StoreBreaker({
      probeIntervalMs: 5,
      probe: async () => {
        if (!up) throw new Error('down');
      },
      onClose: async () => {
        closes += 1;
        if (closes === 1) {
          // The store fails again while the replay runs.
          breaker!.failure();
          await sleep(30);
        }
      },
    });
    breaker.failure();
    for (let i = 0; i < 200 && closes < 2; i++) await sleep(5);
    expect(closes).toBe(2);
    expect(breaker.isOpen).toBe(false);
    up = false;
    breaker.failure();
    await sleep(30);
    expect(breaker.isOpen).toBe(true);
    up = true;
    for (let i = 0; i < 200 && breaker.isOpen; i++) await sleep(5);
    expect(breaker.isOpen).toBe(false);
    breaker.stop();
  });
});
