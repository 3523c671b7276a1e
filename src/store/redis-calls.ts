// How the store makes a Redis call: never into a caller's client's offline
// queue, under the store's own deadline (store-deadline.ts), and failing as
// a StoreError, whatever the call.

import type { Cluster, Redis } from 'ioredis';
import { promiseCall } from '../promise-call.js';
import { StoreError } from './credit-store.js';
import { withDeadline } from './store-deadline.js';

export class RedisCalls {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly ownsClient: boolean,
    /** store.timeoutMs; undefined: no deadline of the store's own. */
    private readonly deadlineMs: number | undefined,
  ) {}

  /** `fn` under the store's deadline; `onRefused` runs if the deadline refuses the call first. */
  run<T>(operation: string, fn: () => Promise<T>, onRefused?: () => void): Promise<T> {
    const offline = this.wouldQueue();
    if (offline !== undefined) return Promise.reject(new StoreError(`redis ${operation} failed: ${offline}`));
    const work = promiseCall(fn);
    return (this.deadlineMs === undefined ? work : withDeadline(work, this.deadlineMs, onRefused)).catch((err: unknown) => {
      throw new StoreError(`redis ${operation} failed: ${(err as Error).message}`, { cause: err });
    });
  }

  /**
   * Why a call on a caller's client must not be made now: the client is not
   * connected and has an offline queue (ioredis's default), so the call would
   * wait there past its deadline and be sent when Redis is back — a charge
   * refused (503, or counted by the outage journal) and applied after all.
   * The store's own clients have no offline queue (redis-connection.ts).
   */
  private wouldQueue(): string | undefined {
    if (this.ownsClient || this.deadlineMs === undefined) return undefined;
    const c = this.client as { status?: string; options?: { enableOfflineQueue?: boolean } };
    if (c.status === 'ready' || c.options?.enableOfflineQueue === false) return undefined;
    // A lazyConnect client connects on its first command: this one starts it.
    if (c.status === 'wait') this.client.connect().catch(() => undefined);
    return `not connected (${c.status ?? 'unknown'})`;
  }
}
