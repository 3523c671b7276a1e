// The charge's EVAL/EVALSHA built as one string (encoded-evalsha.ts): byte
// for byte what ioredis writes for the same call, charges that land where a
// defined command's would, and a charge refused at its deadline never sent
// afterwards — against real redis-servers.

import { Command, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolCharge } from '../../src/store/credit-store.js';
import { encodedScript, encodeScriptCall } from '../../src/store/encoded-evalsha.js';
import { LUA } from '../../src/store/lua-scripts.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { type RelayedRedis, startRelayedRedis } from '../helpers/tcp-relay.js';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const pool = (amount: number): PoolCharge => ({
  creditType: 'ai',
  op: 'charge',
  amount,
  limit: 100,
  cycleStart: 0,
  expireAt: Date.now() + 60_000,
  extras: true,
});
const NO_ALERTS = { now: Date.now(), thresholds: [] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The commands `client` is given from now on, as sent (an encoded call carries no separate arguments), with when. */
function watchCommands(client: Redis): { command: Command; at: number }[] {
  const seen: { command: Command; at: number }[] = [];
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: Command, stream?: never) => {
    seen.push({ command, at: performance.now() });
    return send(command, stream);
  }) as typeof client.sendCommand;
  return seen;
}
const scriptCalls = (seen: { command: Command }[]) => seen.map((s) => s.command).filter((c) => c.name === 'evalsha' || c.name === 'eval');

describe('encodeScriptCall', () => {
  const script = encodedScript(LUA.charge);

  it.each([
    { name: 'ASCII keys, numbers and empty strings', keys: ['cg:{a1}:keys', 'cg:{a1}:ik:-'], args: [1_767_225_600_000, '', 0, 'c', 1, -1, 0.8] },
    // A bulk string's length is its UTF-8 byte count, not its length in JS.
    { name: 'multi-byte characters', keys: ['cg:{zoë-€-🙂}:u:ai:0'], args: ['naïve', '€', 12.5, -3] },
    { name: 'no keys, no arguments', keys: [], args: [] },
  ])('writes what ioredis writes for the same EVALSHA and EVAL: $name', ({ keys, args }) => {
    expect(encodeScriptCall(script.evalshaHead, keys, args)).toBe(new Command('evalsha', [script.sha, keys.length, ...keys, ...args]).toWritable({}));
    expect(encodeScriptCall(script.evalHead, keys, args)).toBe(new Command('eval', [LUA.charge, keys.length, ...keys, ...args]).toWritable({}));
  });
});

describe('RedisStore charges through the encoded script call', () => {
  const clients: Redis[] = [];
  afterAll(() => {
    for (const c of clients) c.disconnect();
  });

  it('a connection sends the source with its first charge and the SHA1 after; a multi-byte account id is charged under its own key', async () => {
    // The store's own connection (a URL): the one that sends encoded calls.
    const store = new RedisStore({ url: redisUrl(), prefix: uniquePrefix('encoded'), timeoutMs: 5000 });
    try {
      await store.ready();
      const seen = watchCommands(store.client as Redis);
      const account = 'zoë-€-🙂';
      expect((await store.charge(account, [pool(3)], NO_ALERTS)).ok).toBe(true);
      expect((await store.charge(account, [pool(4)], NO_ALERTS)).pools[0]!.planUsed).toBe(7);
      expect(scriptCalls(seen).map((c) => [c.name, c.args.length])).toEqual([
        ['eval', 0],
        ['evalsha', 0],
      ]);
      const [usage] = await store.usage(account, [{ creditType: 'ai', cycleStart: 0 }], Date.now());
      expect(usage?.planUsed).toBe(7);
      // Not some other account's counter: a neighbour with the same ASCII letters is untouched.
      const [other] = await store.usage('zo-', [{ creditType: 'ai', cycleStart: 0 }], Date.now());
      expect(other?.planUsed).toBe(0);
    } finally {
      await store.close();
    }
  });

  it("a caller's client (here with ioredis's keyPrefix) keeps the defined command: every key carries the prefix", async () => {
    const prefix = uniquePrefix('kp');
    const client = new Redis(redisUrl(), { keyPrefix: 'outer:' });
    const admin = new Redis(redisUrl());
    clients.push(client, admin);
    const store = new RedisStore({ client, prefix, timeoutMs: 5000 });
    await store.ready();
    const seen = watchCommands(client);
    expect((await store.charge('acct', [pool(2)], NO_ALERTS)).pools[0]!.planUsed).toBe(2);
    expect(scriptCalls(seen).at(-1)?.args.length).toBeGreaterThan(0);
    const keys = await admin.keys(`*${prefix}:{acct}*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith(`outer:${prefix}:`))).toBe(true);
    const [usage] = await store.usage('acct', [{ creditType: 'ai', cycleStart: 0 }], Date.now());
    expect(usage?.planUsed).toBe(2);
  });

  it("the store's own connection with ioredis's keyPrefix (redisOptions) keeps the defined command too", async () => {
    const prefix = uniquePrefix('kp-own');
    const admin = new Redis(redisUrl());
    clients.push(admin);
    const store = new RedisStore({ url: redisUrl(), prefix, timeoutMs: 5000, redisOptions: { keyPrefix: 'own:' } });
    try {
      await store.ready();
      expect((await store.charge('acct', [pool(5)], NO_ALERTS)).pools[0]!.planUsed).toBe(5);
      const keys = await admin.keys(`*${prefix}:{acct}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`own:${prefix}:`))).toBe(true);
    } finally {
      await store.close();
    }
  });
});

// A Redis without the script (restarted, failed over, flushed), replies held
// back by a relay: a charge is answered, or refused and never sent after.
describe('the encoded script call against a Redis that lost its scripts, replies delayed', () => {
  let redis: RelayedRedis;
  let admin: Redis;
  let delayMs = 0;

  beforeAll(async () => {
    redis = await startRelayedRedis({
      toClient: (_chunk, forward) => {
        if (delayMs === 0) forward();
        else setTimeout(forward, delayMs);
      },
    });
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await redis.stop();
  });

  /** A store of its own through the relay, ready, closed after `body` (and the replies no longer held back). */
  async function throughRelay(timeoutMs: number, body: (store: RedisStore) => Promise<void>): Promise<void> {
    const store = new RedisStore({ url: redis.relayedUrl, timeoutMs });
    try {
      await store.ready();
      await body(store);
    } finally {
      delayMs = 0;
      await store.close();
    }
  }
  const used = async (account: string) => Number((await admin.get(`cg:{${account}}:u:ai:0`)) ?? 0);

  it('a fresh connection to a Redis without the script charges in one round trip (EVAL), inside a deadline of under two', async () => {
    await admin.script('FLUSH');
    delayMs = 60;
    await throughRelay(100, async (store) => {
      const outcome = await store.charge('fresh', [pool(1)], NO_ALERTS);
      expect(outcome.ok).toBe(true);
      expect(await used('fresh')).toBe(1);
    });
  });

  it('a charge answered NOSCRIPT after its deadline refused it is not sent again: nothing is charged', async () => {
    await throughRelay(50, async (store) => {
      expect((await store.charge('warm', [pool(1)], NO_ALERTS)).ok).toBe(true); // the connection now sends the SHA1
      await admin.script('FLUSH');
      delayMs = 200;
      const seen = watchCommands(store.client as Redis);
      let refusedAt = 0;
      await expect(
        store.charge('late', [pool(1)], NO_ALERTS).finally(() => {
          refusedAt = performance.now();
        }),
      ).rejects.toMatchObject({ name: 'StoreError' });
      await sleep(400); // the NOSCRIPT reply arrives at 200 ms
      expect(seen.filter((s) => s.at > refusedAt).map((s) => s.command.name)).toEqual([]);
      expect(await used('late')).toBe(0);
    });
  });

  it('a charge answered NOSCRIPT in time is sent again by its source and charged once', async () => {
    await throughRelay(2000, async (store) => {
      expect((await store.charge('again', [pool(1)], NO_ALERTS)).ok).toBe(true);
      await admin.script('FLUSH');
      const seen = watchCommands(store.client as Redis);
      expect((await store.charge('again', [pool(2)], NO_ALERTS)).pools[0]!.planUsed).toBe(3);
      expect(scriptCalls(seen).map((c) => c.name)).toEqual(['evalsha', 'eval']);
      expect(await used('again')).toBe(3);
    });
  });
});
