// The charge's EVALSHA built as one string (encoded-evalsha.ts): byte for
// byte what ioredis writes for the same call, and charges that land where a
// defined command's would, against the run's real redis-server.

import { Command, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { PoolCharge } from '../../src/store/credit-store.js';
import { encodedScript, encodeEvalsha } from '../../src/store/encoded-evalsha.js';
import { LUA } from '../../src/store/lua-scripts.js';
import { RedisStore } from '../../src/store/redis-store.js';
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

/** The commands `client` is given from now on, as sent (an encoded EVALSHA carries no separate arguments). */
function watchCommands(client: Redis): Command[] {
  const seen: Command[] = [];
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: Command, stream?: never) => {
    seen.push(command);
    return send(command, stream);
  }) as typeof client.sendCommand;
  return seen;
}
const charges = (seen: Command[]) => seen.filter((c) => c.name === 'evalsha' || c.name === 'eval');

describe('encodeEvalsha', () => {
  const script = encodedScript(LUA.charge);

  it.each([
    { name: 'ASCII keys, numbers and empty strings', keys: ['cg:{a1}:keys', 'cg:{a1}:ik:-'], args: [1_767_225_600_000, '', 0, 'c', 1, -1, 0.8] },
    // A bulk string's length is its UTF-8 byte count, not its length in JS.
    { name: 'multi-byte characters', keys: ['cg:{zoë-€-🙂}:u:ai:0'], args: ['naïve', '€', 12.5, -3] },
    { name: 'no keys, no arguments', keys: [], args: [] },
  ])('writes what ioredis writes for the same EVALSHA: $name', ({ keys, args }) => {
    const theirs = new Command('evalsha', [script.sha, keys.length, ...keys, ...args]).toWritable({});
    expect(encodeEvalsha(script, keys, args)).toBe(theirs);
  });
});

describe('RedisStore charges through the encoded EVALSHA', () => {
  const clients: Redis[] = [];
  afterAll(() => {
    for (const c of clients) c.disconnect();
  });

  it('an account id with multi-byte characters is charged under its own key, and read back by usage', async () => {
    // The store's own connection (a URL): the one that sends the encoded EVALSHA.
    const prefix = uniquePrefix('encoded');
    const store = new RedisStore({ url: redisUrl(), prefix, timeoutMs: 5000 });
    try {
      await store.ready();
      const seen = watchCommands(store.client as Redis);
      const account = 'zoë-€-🙂';
      expect((await store.charge(account, [pool(3)], NO_ALERTS)).ok).toBe(true);
      expect((await store.charge(account, [pool(4)], NO_ALERTS)).pools[0]!.planUsed).toBe(7);
      // Sent whole (a Redis without the script yet answers NOSCRIPT, and the defined command loads it in between).
      expect(charges(seen)[0]?.args).toEqual([]);
      expect(charges(seen).at(-1)?.args).toEqual([]);
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
    expect(charges(seen).at(-1)?.args.length).toBeGreaterThan(0);
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
