// Tells every replica to forget what it cached about an account, and hears
// the others. A change whose outcome is unknown (the store timed out) is
// announced as if it had happened; an announcement the store could not carry
// is retried until it goes through, so no replica keeps refusing from memory
// after the reason is gone. Too many waiting, and one "forget everything"
// replaces them.

import type { CreditStore } from '../store/credit-store.js';
import type { AccountStateCache } from './local-cache.js';

/** The message that tells every replica to forget every account (never an account id: ids are not empty). */
export const FORGET_EVERYTHING = '';
const RETRY_MS = 500;
const MAX_WAITING = 10_000;

export class Invalidations {
  private readonly waiting = new Set<string>();
  private retry: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private resubscribe: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly store: CreditStore,
    private readonly cache: AccountStateCache,
  ) {}

  /** Listens to every replica's announcements; caching is on only while they are heard. */
  async listen(): Promise<void> {
    try {
      this.unsubscribe = await this.store.subscribeInvalidations(
        (account) => (account === FORGET_EVERYTHING ? this.cache.clear() : this.cache.forget(account)),
        (listening) => this.cache.setEnabled(listening),
      );
    } catch {
      // Not heard, not cached: try again shortly.
      if (this.closed) return;
      this.resubscribe = setTimeout(() => void this.listen(), 5000);
      this.resubscribe.unref();
    }
  }

  /** This replica forgets the account now; every replica hears of it as soon as the store carries the message. */
  async announce(account: string): Promise<void> {
    this.cache.forget(account);
    try {
      await this.store.publishInvalidation(account);
    } catch {
      this.wait(account);
    }
  }

  /** Messages still to send (for tests and diagnostics). */
  get pending(): number {
    return this.waiting.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.resubscribe);
    await this.unsubscribe?.();
  }

  private wait(account: string): void {
    if (this.waiting.size >= MAX_WAITING) {
      this.waiting.clear();
      this.waiting.add(FORGET_EVERYTHING);
    } else if (!this.waiting.has(FORGET_EVERYTHING)) {
      this.waiting.add(account);
    }
    if (!this.retry && !this.closed) {
      this.retry = setTimeout(() => void this.flush(), RETRY_MS);
      this.retry.unref();
    }
  }

  private async flush(): Promise<void> {
    this.retry = undefined;
    for (const account of [...this.waiting]) {
      try {
        await this.store.publishInvalidation(account);
        this.waiting.delete(account);
      } catch {
        break;
      }
    }
    if (this.waiting.size > 0 && !this.closed) {
      this.retry = setTimeout(() => void this.flush(), RETRY_MS);
      this.retry.unref();
    }
  }
}
