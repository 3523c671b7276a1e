// Key layout shared by every store. All keys of one account carry the
// account in one hash tag ({…}) so a multi-key Lua script runs on one Redis
// Cluster slot.
//
//   <prefix>:{<account>}:acct                       account record (JSON)
//   <prefix>:{<account>}:keys                       index of the account's keys (for DELETE)
//   <prefix>:{<account>}:u:<type>:<cycleStart>      credits used from the plan in one cycle
//   <prefix>:{<account>}:g:<type>                   top-up grants (hash id -> JSON)
//   <prefix>:{<account>}:gx:<type>                  grant expiry index (zset)
//   <prefix>:{<account>}:al:<type>:<cycleStart>     thresholds already alerted this cycle
//   <prefix>:{<account>}:ti:<idempotency key>       top-up idempotency record
//   <prefix>:{<account>}:ik:<key>                   request idempotency record (hash: state, fingerprint, claim, response)
//   <prefix>:{<account>}:rf:<refund id>             a refund applied once (replays of it do nothing)
//   <prefix>:{<account>}:be:<event id>              a billing event applied once (redeliveries do nothing)
//   <prefix>:{<account>}:bl                         `created` of the last billing event applied (older ones are stale)
//   <prefix>:{<account>}:iks                        live idempotency records, refund and billing markers (zset key -> expiry ms)
//   <prefix>:{<account>}:ev                         alert events, newest first (list)
//   <prefix>:exhausted:<type>                       accounts whose pool is empty (zset, score = reset)
//
// The exhausted sets are the only keys not tagged by account: one per credit
// type, read by the metrics scrape, written once per account-pool-cycle.
//
// Account ids may contain any visible ASCII, including { } : and %, so they are
// escaped: otherwise "a}" would end the hash tag early, and "a:u:x" could
// collide with another account's counter.

const NEEDS_ESCAPE = /[%{}:]/;

/**
 * A cycle as counter keys name it: its start in whole seconds. Every store
 * keys plan counters and alert marks by it, so cycle starts within one
 * second are one cycle on every store (the engine's cycles start on whole
 * seconds anyway: anchors are truncated to the second).
 */
export function cycleSecond(cycleStart: number): number {
  return Math.floor(cycleStart / 1000);
}

export function escapeAccount(account: string): string {
  // Most ids need nothing: skip the replace on the hot path.
  if (!NEEDS_ESCAPE.test(account)) return account;
  return account.replace(/[%{}:]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export class StoreKeys {
  constructor(readonly prefix: string = 'cg') {}

  private lastAccount: string | undefined;
  private lastTag = '';

  // One decision builds several keys of one account: escape it once.
  tag(account: string): string {
    if (account !== this.lastAccount) {
      this.lastTag = `${this.prefix}:{${escapeAccount(account)}}`;
      this.lastAccount = account;
    }
    return this.lastTag;
  }

  account(account: string): string {
    return `${this.tag(account)}:acct`;
  }

  index(account: string): string {
    return `${this.tag(account)}:keys`;
  }

  usage(account: string, creditType: string, cycleStart: number): string {
    return `${this.tag(account)}:u:${creditType}:${cycleSecond(cycleStart)}`;
  }

  grants(account: string, creditType: string): string {
    return `${this.tag(account)}:g:${creditType}`;
  }

  grantExpiry(account: string, creditType: string): string {
    return `${this.tag(account)}:gx:${creditType}`;
  }

  alerts(account: string, creditType: string, cycleStart: number): string {
    return `${this.tag(account)}:al:${creditType}:${cycleSecond(cycleStart)}`;
  }

  topUpIdempotency(account: string, key: string): string {
    return `${this.tag(account)}:ti:${key}`;
  }

  requestIdempotency(account: string, key: string): string {
    return `${this.tag(account)}:ik:${key}`;
  }

  /** Marks a refund id as applied (refunds replayed after an unknown outcome apply once). */
  refundMarker(account: string, refundId: string): string {
    return `${this.tag(account)}:rf:${refundId}`;
  }

  /** Marks a billing event id as applied. */
  billingEvent(account: string, eventId: string): string {
    return `${this.tag(account)}:be:${eventId}`;
  }

  /** The `created` time of the account's last applied billing event. */
  billingLast(account: string): string {
    return `${this.tag(account)}:bl`;
  }

  /** The account's live idempotency records and refund markers (zset key -> expiry), for DELETE; pruned as it grows. */
  requestIdempotencyIndex(account: string): string {
    return `${this.tag(account)}:iks`;
  }

  events(account: string): string {
    return `${this.tag(account)}:ev`;
  }

  /** The pub/sub channel on which replicas tell each other to drop cached account state. */
  invalidations(): string {
    return `${this.prefix}:invalidate`;
  }

  exhausted(creditType: string): string {
    return `${this.prefix}:exhausted:${creditType}`;
  }
}
