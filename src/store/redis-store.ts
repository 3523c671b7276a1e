// The production store: counters in Redis, each charge one Lua round trip.

import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type {
  AccountRecord,
  AlertEvent,
  BillingEventMark,
  BillingEventOutcome,
  ChargeContext,
  ChargeOutcome,
  CreditStore,
  GrantResult,
  IdempotencyRecord,
  RequestClaim,
  NewGrant,
  PoolCharge,
  PoolKey,
  PoolUsage,
  RefundLine,
} from './credit-store.js';
import { EVENTS_TTL_MS, REFUND_ID_TTL_MS, type RefundOptions } from './credit-store.js';
import { ChargeConnections } from './charge-connections.js';
import { defineCommands, type CreditgateCommands } from './lua-scripts.js';
import { lastConnectionError, openStoreClient, redisTarget, whenReady } from './redis-connection.js';
import { subscribeToInvalidations } from './redis-invalidations.js';
import { chargeOutcome, grantResult, idempotencyRecord, poolUsages } from './redis-replies.js';
import { RedisCalls } from './redis-calls.js';
import { escapeAccount, StoreKeys } from './store-keys.js';

type RedisClient = Redis | Cluster;

/** Top-up grant keys outlive their last grant by this much. */
const GRANT_GRACE_MS = 24 * 3600 * 1000;
/** Keys deleted per DEL when an account is removed. */
const DELETE_BATCH = 500;

export interface RedisStoreOptions {
  /** redis://, rediss://, redis+cluster://h:p,h:p or redis+sentinel://h:p?name=…; the store then owns (and closes) the client. */
  readonly url?: string;
  /** A client the caller owns; the store never closes it. */
  readonly client?: RedisClient;
  /** Key prefix; tests use their own to share one server. Default "cg". */
  readonly prefix?: string;
  /**
   * How long a store call may take (store.timeoutMs; default 50 with `url`,
   * none with `client` unless given). See store-deadline.ts for how an answer
   * read late is told from one sent late.
   */
  readonly timeoutMs?: number;
  /**
   * Connections the store opens for charges (with `url`; default 1). The
   * charges of one event-loop turn leave in one write (turn-batching.ts);
   * more connections spread them over several writes, which costs more CPU
   * in Node and in Redis than it gains (measured: docs/performance.md).
   */
  readonly connections?: number;
  readonly redisOptions?: RedisOptions;
}

export class RedisStore implements CreditStore {
  readonly client: RedisClient;
  private readonly commands: CreditgateCommands;
  /** Connections that take turns carrying charges (the first is `client`). */
  private readonly chargeConnections: ChargeConnections;
  /** Every call goes through here: deadline, offline queue, StoreError. */
  private readonly calls: RedisCalls;
  private readonly keys: StoreKeys;
  private readonly ownsClient: boolean;
  private readonly extraClients: RedisClient[] = [];
  /** store.timeoutMs; undefined: no deadline of the store's own. Also the deadline of the rate limits kept on `client` (burst-limiter.ts). */
  readonly deadlineMs: number | undefined;
  /** host:port of the URL the store opened (never its password); undefined for a caller's client. */
  readonly target: string | undefined = undefined;

  constructor(options: RedisStoreOptions) {
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else if (options.url) {
      const url = options.url;
      const open = () => openStoreClient(url, options.redisOptions);
      this.client = open();
      this.extraClients = Array.from({ length: Math.max(1, options.connections ?? 1) - 1 }, open);
      this.ownsClient = true;
      this.target = redisTarget(url);
    } else {
      throw new TypeError('RedisStore needs a url or a client');
    }
    this.deadlineMs = options.timeoutMs ?? (options.url ? 50 : undefined);
    this.calls = new RedisCalls(this.client, this.ownsClient, this.deadlineMs);
    this.keys = new StoreKeys(options.prefix ?? 'cg');
    for (const c of [this.client, ...this.extraClients]) defineCommands(c);
    this.commands = this.client as unknown as CreditgateCommands;
    this.chargeConnections = new ChargeConnections(
      [this.client, ...this.extraClients] as (RedisClient & CreditgateCommands)[],
      this.ownsClient && !this.client.isCluster && !(this.client as Redis).options.keyPrefix,
    );
  }

  async charge(account: string, pools: readonly PoolCharge[], context: ChargeContext): Promise<ChargeOutcome> {
    const idem = context.idempotency;
    const keys: string[] = [this.keys.index(account), this.keys.requestIdempotency(account, idem?.key ?? '-'), this.keys.requestIdempotencyIndex(account)];
    const args: (string | number)[] = [
      context.now,
      idem?.fingerprint ?? '',
      idem?.pendingTtlMs ?? 0,
      idem?.claim ?? '',
      context.thresholds.length,
      ...context.thresholds,
    ];
    for (const p of pools) {
      keys.push(
        this.keys.usage(account, p.creditType, p.cycleStart),
        this.keys.grants(account, p.creditType),
        this.keys.grantExpiry(account, p.creditType),
        this.keys.alerts(account, p.creditType, p.cycleStart),
      );
      args.push(
        p.op === 'charge' ? 'c' : 'r',
        p.amount,
        p.limit === null ? -1 : p.limit,
        p.expireAt,
        p.extras ? '1' : '0',
        p.shadow ? '1' : '0',
        p.minAmount ?? p.amount,
      );
    }
    let refused = false;
    const reply = await this.calls.run(
      'charge',
      () => this.chargeConnections.send(keys, args, () => refused),
      () => {
        refused = true;
      },
    );
    return chargeOutcome(reply, pools);
  }

  async refund(account: string, lines: readonly RefundLine[], options: RefundOptions = {}): Promise<boolean> {
    const keys = [
      this.keys.requestIdempotency(account, options.idempotency?.key ?? '-'),
      this.keys.refundMarker(account, options.refundId ?? '-'),
      this.keys.requestIdempotencyIndex(account),
    ];
    const args: (string | number)[] = [options.idempotency?.claim ?? '', options.refundId ?? '', REFUND_ID_TTL_MS, Date.now()];
    for (const line of lines) {
      keys.push(this.keys.usage(account, line.creditType, line.cycleStart), this.keys.grants(account, line.creditType));
      args.push(line.planDelta, line.draws.length, ...line.draws.flatMap((d) => [d.grantId, d.amount]));
    }
    const applied = await this.calls.run('refund', () => this.commands.creditgateRefund(keys.length, ...keys, ...args));
    return Number(applied) === 1;
  }

  async completeIdempotency(account: string, claim: RequestClaim, ttlMs: number, response?: string): Promise<boolean> {
    return this.claimStep(account, claim, 'complete', ttlMs, response ?? '');
  }

  async renewIdempotency(account: string, claim: RequestClaim, leaseMs: number): Promise<boolean> {
    return this.claimStep(account, claim, 'renew', leaseMs, '');
  }

  private async claimStep(account: string, claim: RequestClaim, step: 'renew' | 'complete', ttlMs: number, response: string): Promise<boolean> {
    const keys = [this.keys.requestIdempotencyIndex(account), this.keys.requestIdempotency(account, claim.key)];
    const held = await this.calls.run('idempotency', () =>
      this.commands.creditgateIdempotency(keys.length, ...keys, step, claim.claim, ttlMs, Date.now(), response),
    );
    return held === 1;
  }

  async idempotencyRecord(account: string, key: string): Promise<IdempotencyRecord | null> {
    const [state, fingerprint, response] = await this.calls.run('idempotency', () =>
      this.client.hmget(this.keys.requestIdempotency(account, key), 's', 'f', 'r'),
    );
    return state === null || state === undefined ? null : idempotencyRecord(state, fingerprint, response);
  }

  async usage(account: string, pools: readonly PoolKey[], now: number): Promise<PoolUsage[]> {
    if (pools.length === 0) return [];
    const keys = pools.flatMap((p) => [
      this.keys.usage(account, p.creditType, p.cycleStart),
      this.keys.grants(account, p.creditType),
      this.keys.grantExpiry(account, p.creditType),
    ]);
    const reply = await this.calls.run('usage', () => this.commands.creditgateUsage(keys.length, ...keys, now));
    return poolUsages(reply, pools);
  }

  async addGrant(account: string, grant: NewGrant, options: { now: number; idempotencyKey?: string; idempotencyTtlMs: number }): Promise<GrantResult> {
    const keys = [
      this.keys.index(account),
      this.keys.grants(account, grant.creditType),
      this.keys.grantExpiry(account, grant.creditType),
      this.keys.topUpIdempotency(account, options.idempotencyKey ?? '-'),
    ];
    const args = [
      grant.id,
      grant.amount,
      grant.expiresAt,
      grant.createdAt,
      options.now,
      options.idempotencyKey === undefined ? '0' : '1',
      options.idempotencyTtlMs,
      grant.expiresAt + GRANT_GRACE_MS,
      grant.creditType,
    ];
    return grantResult(await this.calls.run('topup', () => this.commands.creditgateTopup(keys.length, ...keys, ...args)));
  }

  async getAccount(account: string): Promise<AccountRecord | null> {
    const raw = await this.calls.run('get_account', () => this.client.get(this.keys.account(account)));
    return raw === null ? null : (JSON.parse(raw) as AccountRecord);
  }

  async putAccount(account: string, record: AccountRecord): Promise<void> {
    await this.calls.run('put_account', () => this.client.set(this.keys.account(account), JSON.stringify(record)));
  }

  async applyBillingEvent(account: string, event: BillingEventMark, record: AccountRecord | null): Promise<BillingEventOutcome> {
    const k = this.keys;
    const keys = [k.account(account), k.billingLast(account), k.billingEvent(account, event.id), k.requestIdempotencyIndex(account)];
    const args = [event.created, event.now, event.ttlMs, record === null ? '' : JSON.stringify(record)];
    return (await this.calls.run('billing_event', () => this.commands.creditgateBilling(keys.length, ...keys, ...args))) as BillingEventOutcome;
  }

  async deleteAccount(account: string): Promise<boolean> {
    const index = this.keys.index(account);
    const requests = this.keys.requestIdempotencyIndex(account);
    const [members, requestKeys] = await this.calls.run('delete_account', () =>
      Promise.all([this.client.smembers(index), this.client.zrange(requests, 0, -1)]),
    );
    const all = [index, requests, this.keys.account(account), this.keys.events(account), ...members, ...requestKeys];
    let removed = 0;
    // In slices: a busy account may list many keys, and one huge DEL would stall Redis.
    for (let i = 0; i < all.length; i += DELETE_BATCH) {
      const slice = all.slice(i, i + DELETE_BATCH);
      removed += await this.calls.run('delete_account', () => this.client.del(...slice));
    }
    // The exhausted sets live outside the account's slot; a stale member would
    // only age out at its reset, so remove it now.
    const types = new Set(members.map((k) => /:(?:u|al):([a-z][a-z0-9_]*):\d+$/.exec(k)?.[1]).filter((t): t is string => !!t));
    if (types.size > 0) {
      await this.calls.run('exhausted', () => Promise.all([...types].map((t) => this.client.zrem(this.keys.exhausted(t), escapeAccount(account)))));
    }
    return removed > 0;
  }

  async appendEvents(account: string, events: readonly AlertEvent[], keep: number): Promise<void> {
    if (events.length === 0) return;
    const key = this.keys.events(account);
    await this.calls.run('append_events', () =>
      this.client
        .multi()
        .lpush(key, ...events.map((e) => JSON.stringify(e)))
        .ltrim(key, 0, keep - 1)
        .pexpire(key, EVENTS_TTL_MS)
        .exec(),
    );
  }

  async listEvents(account: string, limit: number): Promise<AlertEvent[]> {
    const raw = await this.calls.run('list_events', () => this.client.lrange(this.keys.events(account), 0, limit - 1));
    return raw.map((r) => JSON.parse(r) as AlertEvent);
  }

  async markExhausted(account: string, creditType: string, until: number): Promise<void> {
    await this.calls.run('exhausted', () => this.client.zadd(this.keys.exhausted(creditType), until, escapeAccount(account)));
  }

  async clearExhausted(account: string, creditType: string, cycleStart: number): Promise<void> {
    await this.calls.run('exhausted', () =>
      Promise.all([
        this.client.zrem(this.keys.exhausted(creditType), escapeAccount(account)),
        this.client.hdel(this.keys.alerts(account, creditType, cycleStart), 'empty'),
      ]),
    );
  }

  async markAlert(account: string, creditType: string, cycleStart: number, mark: string, expireAt: number, now: number): Promise<boolean> {
    const set = await this.calls.run('mark_alert', () =>
      this.commands.creditgateMark(2, this.keys.index(account), this.keys.alerts(account, creditType, cycleStart), mark, now, expireAt),
    );
    return set === 1;
  }

  async countExhausted(creditTypes: readonly string[], now: number): Promise<Map<string, number>> {
    const counts = await this.calls.run('exhausted', () =>
      Promise.all(
        creditTypes.map(async (t) => {
          const key = this.keys.exhausted(t);
          // Marks past their reset no longer count; prune them as we go.
          await this.client.zremrangebyscore(key, '-inf', now);
          return [t, await this.client.zcard(key)] as const;
        }),
      ),
    );
    return new Map(counts);
  }

  async publishInvalidation(account: string): Promise<void> {
    await this.calls.run('invalidate', () => this.client.publish(this.keys.invalidations(), account));
  }

  // Over a connection of its own: redis-invalidations.ts.
  async subscribeInvalidations(onAccount: (account: string) => void, onListening?: (listening: boolean) => void): Promise<() => Promise<void>> {
    return subscribeToInvalidations(this.client, this.keys.invalidations(), onAccount, onListening);
  }

  /** Waits (up to `timeoutMs`) for the connection to be ready; false if it is not. */
  async ready(timeoutMs = 5000): Promise<boolean> {
    const all = await Promise.all([this.client, ...this.extraClients].map((c) => whenReady(c as Redis & { status: string }, timeoutMs)));
    return all.every(Boolean);
  }

  /** Why the connection is down, as far as the client has said. */
  connectionError(): string | undefined {
    return lastConnectionError([this.client, ...this.extraClients]);
  }

  async ping(): Promise<void> {
    await this.calls.run('ping', () => this.client.ping());
  }

  async close(): Promise<void> {
    if (this.ownsClient) {
      await Promise.all([this.client, ...this.extraClients].map((c) => c.quit().catch(() => c.disconnect())));
    }
  }
}
