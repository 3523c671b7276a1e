// Billing-cycle math (DESIGN.md rule 2): pure functions, no clock, no I/O.
//
// Cycle k starts at the anchor plus k months, at the anchor's wall-clock time
// of day, on day min(anchorDay, daysInMonth). The anchor's own UTC offset is
// kept, so an anchor written as "2025-01-31T00:30:00+02:00" resets on the last
// day of each month at 00:30 in that offset, as its author meant. Cycles also
// run backwards from the anchor (k < 0), so every instant lies in exactly one
// cycle even when the anchor is in the future.
//
// Anchors are whole seconds: fractional seconds are dropped when an anchor is
// parsed (truncated, never rounded), so every cycle starts on a whole second.
// Redis keys a counter by its cycle start in whole seconds; with whole-second
// anchors every store sees the same cycle for the same anchor, and moving an
// anchor by less than a second does not start a new one anywhere.

export interface BillingAnchor {
  /** The anchor as written (ISO 8601 with offset), without fractional seconds. */
  readonly iso: string;
  readonly year: number;
  /** 0-based month, as Date uses. */
  readonly month: number;
  readonly day: number;
  /** Milliseconds since local midnight, in the anchor's offset: always whole seconds. */
  readonly msOfDay: number;
  readonly offsetMinutes: number;
}

export interface BillingCycle {
  /** k: cycles since the anchor (negative before it). */
  readonly index: number;
  /** Epoch milliseconds, inclusive. */
  readonly start: number;
  /** Epoch milliseconds, exclusive: the reset time. */
  readonly end: number;
}

const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})$/;

export class InvalidAnchorError extends Error {
  readonly code = 'invalid_anchor';
}

/** Calendar-month cycles for accounts with no record (DESIGN.md: the 1st, 00:00 UTC). */
export const CALENDAR_MONTH_ANCHOR_ISO = '2000-01-01T00:00:00Z';

export function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** An ISO 8601 instant in parts, to the millisecond (sub-millisecond digits are dropped). */
function parseIso(iso: string): BillingAnchor {
  const m = ISO_INSTANT.exec(iso);
  if (!m) {
    throw new InvalidAnchorError(`expected an ISO 8601 instant with a UTC offset, e.g. 2025-01-31T09:00:00Z, got ${JSON.stringify(iso)}`);
  }
  const [, y, mo, d, h, mi, s = '0', frac = '', off = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo) - 1;
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  // Sub-millisecond digits cannot be represented by epoch ms; truncate them.
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  if (year < 1970 || month < 0 || month > 11 || day < 1 || day > daysInMonth(year, month)) {
    throw new InvalidAnchorError(`not a calendar date: ${JSON.stringify(iso)}`);
  }
  if (hour > 23 || minute > 59 || second > 59) {
    throw new InvalidAnchorError(`not a time of day: ${JSON.stringify(iso)}`);
  }
  let offsetMinutes = 0;
  if (off !== 'Z' && off !== 'z') {
    const sign = off.startsWith('-') ? -1 : 1;
    const digits = off.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    if (oh > 23 || om > 59) throw new InvalidAnchorError(`not a UTC offset: ${JSON.stringify(iso)}`);
    offsetMinutes = sign * (oh * 60 + om);
  }
  return {
    iso,
    year,
    month,
    day,
    msOfDay: ((hour * 60 + minute) * 60 + second) * 1000 + ms,
    offsetMinutes,
  };
}

/**
 * The anchor text without fractional seconds ("2025-01-31T09:00:00.750+02:00"
 * → "2025-01-31T09:00:00+02:00"): what an account record keeps, so that what
 * is read back is the anchor in use. Any other text is returned unchanged.
 */
export function truncateAnchorIso(iso: string): string {
  return iso.replace(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.\d+(?=Z|z|[+-])/, '$1');
}

// Every request resolves its account's anchor and the cycle it falls in; both
// are pure, so the last answers are kept (bounded) rather than recomputed.
const MAX_PARSED_ANCHORS = 10_000;
const parsedAnchors = new Map<string, BillingAnchor>();
const lastCycle = new WeakMap<BillingAnchor, BillingCycle>();

/** A billing anchor, truncated to the whole second (see the top of this file). */
export function parseAnchor(iso: string): BillingAnchor {
  const known = parsedAnchors.get(iso);
  if (known !== undefined) return known;
  const parsed = parseIso(iso);
  const anchor = { ...parsed, iso: truncateAnchorIso(iso), msOfDay: parsed.msOfDay - (parsed.msOfDay % 1000) };
  if (parsedAnchors.size >= MAX_PARSED_ANCHORS) parsedAnchors.clear();
  parsedAnchors.set(iso, anchor);
  return anchor;
}

/** Epoch ms at which cycle k of this anchor starts. Strictly increasing in k. */
export function cycleStartAt(anchor: BillingAnchor, k: number): number {
  const totalMonths = anchor.month + k;
  const year = anchor.year + Math.floor(totalMonths / 12);
  const month = ((totalMonths % 12) + 12) % 12;
  const day = Math.min(anchor.day, daysInMonth(year, month));
  return Date.UTC(year, month, day) + anchor.msOfDay - anchor.offsetMinutes * 60_000;
}

/** The cycle that contains the instant `at` (epoch ms). */
export function cycleContaining(anchor: BillingAnchor, at: number): BillingCycle {
  const last = lastCycle.get(anchor);
  if (last !== undefined && at >= last.start && at < last.end) return last;
  // Estimate k from the month difference in the anchor's offset, then step:
  // the estimate is off by at most one because clamping moves a start only
  // within its own month.
  const local = new Date(at + anchor.offsetMinutes * 60_000);
  let k = (local.getUTCFullYear() - anchor.year) * 12 + (local.getUTCMonth() - anchor.month);
  while (cycleStartAt(anchor, k) > at) k -= 1;
  while (cycleStartAt(anchor, k + 1) <= at) k += 1;
  const cycle = { index: k, start: cycleStartAt(anchor, k), end: cycleStartAt(anchor, k + 1) };
  lastCycle.set(anchor, cycle);
  return cycle;
}

/** Epoch ms of an ISO 8601 instant with offset (the same strict syntax as anchors), to the millisecond. */
export function parseInstant(iso: string): number {
  return cycleStartAt(parseIso(iso), 0);
}
