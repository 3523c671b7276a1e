// Opens the ioredis client a Redis URL names: a single server (redis://,
// rediss://), a Redis Cluster (redis+cluster://host:port,host:port), or a
// Sentinel-managed primary (redis+sentinel://host:port,host:port?name=mymaster);
// with the options the store opens its own clients with; and waits for a
// client to be ready.

import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

function hosts(list: string): { host: string; port: number }[] {
  return list.split(',').map((hp) => {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hp.trim());
    if (!m) throw new Error(`not a host:port: ${hp}`);
    return { host: m[1]!, port: m[2] ? Number(m[2]) : 6379 };
  });
}

/** Splits "scheme://[user:pass@]h1:p1,h2:p2[/db][?query]" (URL cannot parse host lists). */
function parseMultiHost(url: string): { user?: string; password?: string; hosts: string; path: string; query: URLSearchParams } {
  const m = /^[a-z+]+:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)(\/[^?]*)?(?:\?(.*))?$/.exec(url);
  if (!m) throw new Error(`cannot parse Redis URL ${url.replace(/\/\/[^@]*@/, '//***@')}`);
  return {
    ...(m[1] ? { user: decodeURIComponent(m[1]) } : {}),
    ...(m[2] ? { password: decodeURIComponent(m[2]) } : {}),
    hosts: m[3]!,
    path: m[4] ?? '',
    query: new URLSearchParams(m[5] ?? ''),
  };
}

/**
 * Where a Redis URL points, for logs: host:port (a list for Cluster and
 * Sentinel), never the user or password.
 */
export function redisTarget(url: string): string {
  try {
    if (/^rediss?\+(cluster|sentinel):\/\//.test(url)) {
      const parts = parseMultiHost(url);
      const list = hosts(parts.hosts)
        .map((h) => `${h.host}:${h.port}`)
        .join(',');
      return url.includes('+sentinel') ? `sentinels ${list}` : list;
    }
    const u = new URL(url);
    return `${u.hostname}:${u.port || 6379}`;
  } catch {
    return 'an unparsable Redis URL';
  }
}

/** Why a connection failed, in a few words: the system error code, or the message. */
export function connectionCause(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code && e.message && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? e.code ?? String(err));
}

/** A client for `url`; `options` for each connection, `cluster` for a Cluster's own queue and retries. */
export function createRedisClient(url: string, options: RedisOptions, cluster: ClusterOptions = {}): Redis | Cluster {
  if (url.startsWith('redis+cluster://') || url.startsWith('rediss+cluster://')) {
    const parts = parseMultiHost(url);
    const auth = { ...(parts.user ? { username: parts.user } : {}), ...(parts.password ? { password: parts.password } : {}) };
    return new Cluster(hosts(parts.hosts), {
      // Every key of a decision lives in one slot, on its primary.
      scaleReads: 'master',
      ...cluster,
      redisOptions: { ...options, ...auth, ...(url.startsWith('rediss') ? { tls: {} } : {}) },
    });
  }
  if (url.startsWith('redis+sentinel://') || url.startsWith('rediss+sentinel://')) {
    const parts = parseMultiHost(url);
    const name = parts.query.get('name') ?? (parts.path.replace(/^\//, '') || 'mymaster');
    return new Redis({
      ...options,
      sentinels: hosts(parts.hosts),
      name,
      ...(parts.user ? { username: parts.user } : {}),
      ...(parts.password ? { password: parts.password } : {}),
      ...(parts.query.get('sentinelPassword') ? { sentinelPassword: parts.query.get('sentinelPassword')! } : {}),
      ...(url.startsWith('rediss') ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    });
  }
  return new Redis(url, options);
}

/**
 * Waits (up to `timeoutMs`) for `client` to be ready; false if it is not. A
 * Cluster is ready once its connections to every primary are too (see
 * openStoreClient): a call for a primary still connecting would be refused
 * and retried past its deadline.
 */
export async function whenReady(client: (Redis | Cluster) & { status: string }, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  if (!(await whenOneReady(client, timeoutMs))) return false;
  if (!(client instanceof Cluster)) return true;
  const primaries = client.nodes('master');
  for (const node of primaries) if (node.status === 'wait') node.connect().catch(() => undefined);
  const all = await Promise.all(primaries.map((node) => whenOneReady(node, Math.max(0, until - performance.now()))));
  return all.every(Boolean);
}

function whenOneReady(client: (Redis | Cluster) & { status: string }, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.once('ready', onReady);
  });
}

const lastErrors = new WeakMap<Redis | Cluster, Error>();

/** Why the clients' connections are down, as far as they have said (the last error of the first that has one). */
export function lastConnectionError(clients: readonly (Redis | Cluster)[]): string | undefined {
  const err = clients.map((c) => lastErrors.get(c)).find((e) => e !== undefined);
  return err ? connectionCause(err) : undefined;
}

/** A client the store opens (and owns) for `url`. */
export function openStoreClient(url: string, redisOptions?: RedisOptions): Redis | Cluster {
  const c = createRedisClient(
    url,
    {
      // One decision is one script call, written as it is made. Under load the
      // socket already coalesces what queues behind a pending write; ioredis's
      // auto-pipelining added a Pipeline object per flush, and a proxy's flushes
      // hold one call each (the request callbacks of one poll phase each drain
      // the tick queue): 11 µs of CPU per charged request, by profile.
      enableAutoPipelining: false,
      // No commandTimeout: the store gives each call its deadline itself
      // (store-deadline.ts), so that a reply read late is not a timeout.
      maxRetriesPerRequest: 1,
      // No offline queue: a charge that timed out while Redis was away must
      // not be sent later, when Redis is back, on top of the journal replay.
      enableOfflineQueue: false,
      // Nor sent again on the next connection when the last one broke before
      // Redis answered: the request was refused already, and a script run
      // twice charges twice (test/store/reconnect-resend.test.ts).
      autoResendUnfulfilledCommands: false,
      ...redisOptions,
    },
    {
      // A Cluster has a queue and retries of its own, above its node connections:
      enableAutoPipelining: false,
      // no queue while it (re)connects, for the same reason as its connections;
      enableOfflineQueue: false,
      // and no retry of a command whose node connection broke ("Connection is
      // closed.", whether or not Redis ran it) on a new connection after its
      // deadline: a charge refused, or run twice (cluster-faults.test.ts).
      // MOVED, ASK, TRYAGAIN and CLUSTERDOWN (never run) are still retried.
      retryDelayOnFailover: 0,
    },
  );
  // Connection errors surface as failed commands (StoreError); without a
  // listener ioredis would also print each reconnect attempt. The last one is
  // kept for the log line that says Redis cannot be reached.
  c.on('error', (err: Error) => lastErrors.set(c, err));
  if (c instanceof Cluster) {
    // A Cluster connects to a node on the first command for it, and with no
    // cluster-level offline queue (above) refuses the others sent
    // there meanwhile (test/store/cluster-faults.test.ts): a charge
    // failed. Its nodes connect as soon as it knows them instead, and ready()
    // waits for its primaries.
    // After the command that made it known has gone: that one, sent while the
    // node is still 'wait', starts the connection and waits in its queue.
    c.on('+node', (node: Redis) =>
      setImmediate(() => {
        if (node.status === 'wait') node.connect().catch(() => undefined);
      }),
    );
  }
  return c;
}
