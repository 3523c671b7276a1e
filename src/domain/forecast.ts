// When a pool runs out at the pace of the current cycle: what the billing tab
// and the forecast alert say. Pure: figures and instants in, a forecast out.

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export interface Forecast {
  /** Credits used per day so far this cycle; null in the cycle's first hour (too little to go on). */
  readonly ratePerDay: number | null;
  /**
   * Epoch ms at which `remaining` reaches 0 at that rate; null when that is
   * at or after the reset, nothing is used, the rate is unknown or the pool
   * is unlimited. A pool already empty runs out "now".
   */
  readonly exhaustsAt: number | null;
}

export interface ForecastInput {
  readonly used: number;
  /** null: unlimited. */
  readonly remaining: number | null;
  readonly cycleStart: number;
  readonly resetsAt: number;
  readonly now: number;
}

export function forecast({ used, remaining, cycleStart, resetsAt, now }: ForecastInput): Forecast {
  const elapsed = now - cycleStart;
  // An hour's usage extrapolated to a month says more about the hour than the month.
  if (elapsed < HOUR_MS) return { ratePerDay: null, exhaustsAt: null };
  const ratePerDay = (used * DAY_MS) / elapsed;
  if (remaining === null || used <= 0) return { ratePerDay, exhaustsAt: null };
  const exhaustsAt = remaining <= 0 ? now : now + Math.ceil((remaining / ratePerDay) * DAY_MS);
  return { ratePerDay, exhaustsAt: exhaustsAt >= resetsAt ? null : exhaustsAt };
}

/** Whole days from `exhaustsAt` to `resetsAt`, rounded down: "9 days before it resets". */
export function daysBeforeReset(exhaustsAt: number, resetsAt: number): number {
  return Math.floor((resetsAt - exhaustsAt) / DAY_MS);
}
