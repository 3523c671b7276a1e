// The usage forecast: the cycle's pace, and when the pool runs out at it.

import { describe, expect, it } from 'vitest';
import { DAY_MS, daysBeforeReset, forecast, HOUR_MS } from '../../src/domain/forecast.js';

const start = Date.UTC(2026, 10, 1);
const reset = Date.UTC(2026, 11, 1);

describe('forecast', () => {
  it('half the pool used in 10 days of 30: 50/day, runs out 10 days later, 10 days before the reset', () => {
    const f = forecast({ used: 500, remaining: 500, cycleStart: start, resetsAt: reset, now: start + 10 * DAY_MS });
    expect(f.ratePerDay).toBe(50);
    expect(f.exhaustsAt).toBe(start + 20 * DAY_MS);
    expect(daysBeforeReset(f.exhaustsAt!, reset)).toBe(10);
  });

  it('has no rate in the first hour of a cycle', () => {
    expect(forecast({ used: 500, remaining: 500, cycleStart: start, resetsAt: reset, now: start + HOUR_MS - 1 })).toEqual({
      ratePerDay: null,
      exhaustsAt: null,
    });
    expect(forecast({ used: 24, remaining: 500, cycleStart: start, resetsAt: reset, now: start + HOUR_MS }).ratePerDay).toBe(576);
  });

  it('has no date when nothing is used, when the pool is unlimited, or when it lasts to the reset', () => {
    expect(forecast({ used: 0, remaining: 1000, cycleStart: start, resetsAt: reset, now: start + 5 * DAY_MS })).toEqual({ ratePerDay: 0, exhaustsAt: null });
    expect(forecast({ used: 900, remaining: null, cycleStart: start, resetsAt: reset, now: start + 5 * DAY_MS })).toEqual({
      ratePerDay: 180,
      exhaustsAt: null,
    });
    // 100 used in 10 days: 900 left lasts 90 days, past the reset.
    expect(forecast({ used: 100, remaining: 900, cycleStart: start, resetsAt: reset, now: start + 10 * DAY_MS }).exhaustsAt).toBeNull();
    // Exactly at the reset counts as lasting.
    expect(forecast({ used: 500, remaining: 1000, cycleStart: start, resetsAt: reset, now: start + 10 * DAY_MS }).exhaustsAt).toBeNull();
  });

  it('an empty pool runs out now', () => {
    const now = start + 3 * DAY_MS;
    expect(forecast({ used: 1000, remaining: 0, cycleStart: start, resetsAt: reset, now }).exhaustsAt).toBe(now);
  });
});
