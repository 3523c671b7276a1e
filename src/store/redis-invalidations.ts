// Cache invalidations over Redis pub/sub: each replica hears which account
// changed elsewhere, and whether it is listening at all.

import { Cluster, type Redis } from 'ioredis';

/**
 * Listens on `channel` over a connection of its own, a duplicate of `client`
 * (pub/sub needs one: a subscribed connection can do nothing else). The
 * answer stops listening.
 */
export async function subscribeToInvalidations(
  client: Redis | Cluster,
  channel: string,
  onAccount: (account: string) => void,
  onListening?: (listening: boolean) => void,
): Promise<() => Promise<void>> {
  // Its own connection, with an offline queue: ioredis resubscribes it after every reconnect.
  // And resending what a broken connection left unanswered (a duplicate has the
  // store's autoResendUnfulfilledCommands: false): a SUBSCRIBE cut off before its
  // reply would otherwise be dropped, its promise never settled, and the start
  // that awaits it would hang (test/store/invalidations-cut-subscribe.test.ts).
  // A SUBSCRIBE sent twice is harmless. (A Cluster subscribes on a connection of
  // its own, made without the store's options; a SUBSCRIBE it could not send
  // is retried after ioredis's usual failover delay, which the store's
  // Cluster turns off for its calls: redis-connection.ts.)
  const sub =
    client instanceof Cluster
      ? client.duplicate(undefined, { enableOfflineQueue: true, retryDelayOnFailover: 100 })
      : client.duplicate({ enableOfflineQueue: true, autoResendUnfulfilledCommands: true });
  sub.on('error', () => {});
  sub.on('message', (ch: string, message: string) => {
    if (ch === channel) onAccount(message);
  });
  // While disconnected, messages are lost: the cache must not be trusted.
  sub.on('close', () => onListening?.(false));
  await sub.subscribe(channel);
  onListening?.(true);
  sub.on('ready', () => {
    // ioredis resubscribes on reconnect; listening again from here on.
    void sub.subscribe(channel).then(
      () => onListening?.(true),
      () => undefined,
    );
  });
  return async () => {
    await sub.quit().catch(() => sub.disconnect());
  };
}
