// Every store call a decision makes goes through here: a failure opens the
// circuit breaker and becomes StoreDown, which hands the decision to the
// outage policy; while the breaker is open no call waits out a timeout.

import { promiseCall } from '../promise-call.js';
import { StoreError } from '../store/credit-store.js';
import { StoreBreaker, type StoreBreakerOptions } from './store-breaker.js';

/** The store failed inside a decision: the outage policy decides instead. */
export class StoreDown extends Error {}

export class StoreGuard {
  private readonly breaker: StoreBreaker;

  constructor(options: StoreBreakerOptions) {
    this.breaker = new StoreBreaker(options);
  }

  /** Whether the store is considered down (requests follow the outage policy). */
  get isOpen(): boolean {
    return this.breaker.isOpen;
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.breaker.isOpen) return Promise.reject(new StoreDown());
    return promiseCall(fn).catch((err: unknown) => {
      if (err instanceof StoreError) {
        this.breaker.failure();
        throw new StoreDown(err.message);
      }
      throw err;
    });
  }

  /** A store call made outside run() failed: stop calling until a probe answers. */
  failure(): void {
    this.breaker.failure();
  }

  stop(): void {
    this.breaker.stop();
  }
}
