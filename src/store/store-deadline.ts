// How long a store call may take (store.timeoutMs), judged by when Redis
// answered rather than by when this process got round to reading the answer.
//
// A busy replica must not blame Redis for its own delays. The event loop of a
// saturated replica turns slowly (one poll phase serving hundreds of requests
// can take longer than the whole timeout), and two of its delays used to count
// against Redis: the charges of a turn leave in one write at the end of the
// turn (turn-batching.ts), long after the first of them was made; and a timer
// fires in the timers phase, before the poll phase that would read a reply
// already sitting in the socket. The call was then refused with 503 although
// Redis had applied the charge in time, and the client paid for a request it
// never got. So the deadline starts in the check phase of the turn the call
// was made in (after that turn's write), and an expired deadline is decided
// after the next poll phase (setImmediate runs right after it): a reply that
// arrived in time is read first and wins. A Redis that is slow, or gone, still
// fails the call, at most a loop turn or two later than `ms`.

/** Why a store call failed at its deadline. */
export class DeadlineExceeded extends Error {}

/**
 * `work`, or a DeadlineExceeded rejection once `ms` have passed since this
 * turn's writes and a poll phase has read what had arrived. `onExpire` runs
 * when the deadline wins: a caller that could still send something for this
 * call (a retry) learns that it must not.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onExpire?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const expire = () => {
      if (settled) return;
      settled = true;
      onExpire?.();
      reject(new DeadlineExceeded(`no answer within ${ms} ms`));
    };
    setImmediate(() => {
      if (!settled) timer = setTimeout(() => setImmediate(expire), ms);
    });
    work.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
