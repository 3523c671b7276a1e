// The quantile the latency steps report: the sample at that rank of an
// ascending list, in ms to the microsecond.

/** The `q` quantile (0..1) of `sorted` (ascending), rounded to 3 decimals. */
export const quantile = (sorted, q) => Number(sorted[Math.floor(q * (sorted.length - 1))].toFixed(3));
