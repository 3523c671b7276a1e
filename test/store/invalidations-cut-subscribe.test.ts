// The invalidation subscriber is a duplicate of the store's connection, so it
// has its options, autoResendUnfulfilledCommands: false included. Its first
// SUBSCRIBE, cut off by a broken connection after it was written, was then
// dropped on reconnect and its promise never settled: subscribeInvalidations
// never returned, and a sidecar (runtime.start() awaits it) never listened.
// A real redis-server behind a loopback TCP relay that breaks the first
// connection to carry a SUBSCRIBE, before passing it on.

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis-store.js';
import { type RelayedRedis, startRelayedRedis } from '../helpers/tcp-relay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an invalidation subscription whose first SUBSCRIBE is cut off', () => {
  let redis: RelayedRedis;
  let cut = 0;
  beforeAll(async () => {
    redis = await startRelayedRedis({
      toServer: (chunk, forward, cutConnection) => {
        if (cut === 0 && /subscribe/i.test(chunk.toString())) {
          cut++;
          cutConnection();
          return;
        }
        forward();
      },
    });
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('is subscribed after the reconnect, and its subscribe call returns', async () => {
    const store = new RedisStore({ url: redis.relayedUrl, prefix: 'cgcut', timeoutMs: 1000 });
    let unsubscribe: (() => Promise<void>) | undefined;
    try {
      expect(await store.ready()).toBe(true);
      const heard: string[] = [];
      const subscribed = store.subscribeInvalidations((a) => heard.push(a)).then((u) => (unsubscribe = u));
      const settled = await Promise.race([subscribed.then(() => 'subscribed'), sleep(3000).then(() => 'still waiting after 3 s')]);
      expect(cut).toBe(1);
      expect(settled).toBe('subscribed');
      const publisher = new Redis(redis.url);
      await publisher.publish('cgcut:invalidate', 'acme');
      publisher.disconnect();
      await sleep(100);
      expect(heard).toEqual(['acme']);
    } finally {
      await unsubscribe?.();
      await store.close();
    }
  }, 20_000);
});
