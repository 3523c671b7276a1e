// Keeps the idempotency claims of requests still in flight alive. A claim is
// a lease: it lapses unless renewed, so a replica that dies mid-request frees
// its keys within one lease; a long request (a stream, a slow handler) keeps
// its key as long as it runs, however long that is.

import type { CreditStore, RequestClaim } from '../store/credit-store.js';

/** How long a claim holds its key without renewal. */
export const IDEMPOTENCY_LEASE_MS = 60_000;

export class IdempotencyLeases {
  private readonly timers = new Map<RequestClaim, NodeJS.Timeout>();

  constructor(
    private readonly store: CreditStore,
    private readonly leaseMs: number = IDEMPOTENCY_LEASE_MS,
  ) {}

  /** Renews the claim every third of a lease, for at most `maxMs`, until stopped. */
  start(account: string, claim: RequestClaim, maxMs: number): void {
    const until = Date.now() + maxMs;
    const timer = setInterval(() => {
      if (Date.now() >= until) return this.stop(claim);
      this.store.renewIdempotency(account, claim, this.leaseMs).then(
        (held) => held || this.stop(claim),
        // The store is away: the claim may lapse, and a retry is then charged anew (never free).
        () => undefined,
      );
    }, this.leaseMs / 3);
    timer.unref();
    this.timers.set(claim, timer);
  }

  stop(claim: RequestClaim): void {
    clearInterval(this.timers.get(claim));
    this.timers.delete(claim);
  }

  get size(): number {
    return this.timers.size;
  }

  close(): void {
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
  }
}
