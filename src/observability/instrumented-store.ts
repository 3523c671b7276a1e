// A CreditStore that times every call and counts failures, around any other
// store. Keeps the stores themselves free of metrics.

import { promiseCall } from '../promise-call.js';
import { StoreFullError, type CreditStore } from '../store/credit-store.js';
import type { Metrics, STORE_OPERATIONS } from './metrics.js';

type Operation = (typeof STORE_OPERATIONS)[number];

export function instrumentStore(store: CreditStore, metrics: Metrics): CreditStore {
  const failed = (operation: Operation, err: unknown): void => {
    // A full store answered: a refusal, not a failure.
    if (err instanceof StoreFullError) metrics.storeFull.inc();
    else metrics.storeErrors.inc({ operation });
  };
  // One .then per call (no async frame, no BigInt clock): this wraps every charge.
  const timed =
    <A extends unknown[], R>(operation: Operation, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      const started = performance.now();
      return promiseCall(fn, ...args).then(
        (value) => {
          metrics.observeStore(operation, (performance.now() - started) / 1000);
          return value;
        },
        (err: unknown) => {
          failed(operation, err);
          metrics.observeStore(operation, (performance.now() - started) / 1000);
          throw err;
        },
      );
    };
  return {
    charge: timed('charge', store.charge.bind(store)),
    usage: timed('usage', store.usage.bind(store)),
    refund: timed('refund', store.refund.bind(store)),
    completeIdempotency: timed('idempotency', store.completeIdempotency.bind(store)),
    idempotencyRecord: timed('idempotency', store.idempotencyRecord.bind(store)),
    renewIdempotency: timed('idempotency', store.renewIdempotency.bind(store)),
    addGrant: timed('topup', store.addGrant.bind(store)),
    getAccount: timed('get_account', store.getAccount.bind(store)),
    putAccount: timed('put_account', store.putAccount.bind(store)),
    applyBillingEvent: timed('billing_event', store.applyBillingEvent.bind(store)),
    deleteAccount: timed('delete_account', store.deleteAccount.bind(store)),
    appendEvents: timed('append_events', store.appendEvents.bind(store)),
    listEvents: timed('list_events', store.listEvents.bind(store)),
    markExhausted: timed('exhausted', store.markExhausted.bind(store)),
    clearExhausted: timed('exhausted', store.clearExhausted.bind(store)),
    countExhausted: timed('exhausted', store.countExhausted.bind(store)),
    markAlert: timed('mark_alert', store.markAlert.bind(store)),
    publishInvalidation: timed('invalidate', store.publishInvalidation.bind(store)),
    subscribeInvalidations: (fn, onListening) => store.subscribeInvalidations(fn, onListening),
    ping: timed('ping', store.ping.bind(store)),
    close: () => store.close(),
  };
}
