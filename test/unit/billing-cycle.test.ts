import { describe, expect, it } from 'vitest';
import {
  cycleContaining,
  cycleStartAt,
  daysInMonth,
  InvalidAnchorError,
  parseAnchor,
  parseInstant,
  truncateAnchorIso,
} from '../../src/domain/billing-cycle.js';

const iso = (ms: number) => new Date(ms).toISOString();
const at = (s: string) => Date.parse(s);

function starts(anchorIso: string, from: number, count: number): string[] {
  const a = parseAnchor(anchorIso);
  return Array.from({ length: count }, (_, i) => iso(cycleStartAt(a, from + i)));
}

describe('billing cycles: clamped anniversary days', () => {
  it('an anchor on the 31st resets on the last day of short months and returns to the 31st', () => {
    expect(starts('2025-01-31T00:00:00Z', 0, 5)).toEqual([
      '2025-01-31T00:00:00.000Z',
      '2025-02-28T00:00:00.000Z',
      '2025-03-31T00:00:00.000Z',
      '2025-04-30T00:00:00.000Z',
      '2025-05-31T00:00:00.000Z',
    ]);
  });

  it('uses Feb 29 in leap years', () => {
    expect(starts('2024-01-31T09:15:00Z', 1, 1)).toEqual(['2024-02-29T09:15:00.000Z']);
    expect(starts('2023-12-30T00:00:00Z', 2, 1)).toEqual(['2024-02-29T00:00:00.000Z']);
  });

  it('an anchor on Feb 29 resets on the 29th elsewhere and on Feb 28 in non-leap years', () => {
    const a = parseAnchor('2024-02-29T12:00:00Z');
    expect(iso(cycleStartAt(a, 1))).toBe('2024-03-29T12:00:00.000Z');
    expect(iso(cycleStartAt(a, 12))).toBe('2025-02-28T12:00:00.000Z');
    expect(iso(cycleStartAt(a, 13))).toBe('2025-03-29T12:00:00.000Z');
    expect(iso(cycleStartAt(a, 48))).toBe('2028-02-29T12:00:00.000Z');
  });

  it.each([
    ['2025-01-28T00:00:00Z', '2025-02-28T00:00:00.000Z', '2025-03-28T00:00:00.000Z'],
    ['2025-01-29T00:00:00Z', '2025-02-28T00:00:00.000Z', '2025-03-29T00:00:00.000Z'],
    ['2025-01-30T00:00:00Z', '2025-02-28T00:00:00.000Z', '2025-03-30T00:00:00.000Z'],
    ['2025-01-31T00:00:00Z', '2025-02-28T00:00:00.000Z', '2025-03-31T00:00:00.000Z'],
  ])('anchor %s: February cycle starts %s, March cycle %s (no drift)', (anchor, feb, mar) => {
    expect(starts(anchor, 1, 2)).toEqual([feb, mar]);
  });

  it('crosses year boundaries forwards and backwards', () => {
    expect(starts('2025-12-15T08:00:00Z', 0, 2)).toEqual(['2025-12-15T08:00:00.000Z', '2026-01-15T08:00:00.000Z']);
    expect(starts('2026-01-31T00:00:00Z', -2, 2)).toEqual(['2025-11-30T00:00:00.000Z', '2025-12-31T00:00:00.000Z']);
  });

  it('keeps the anchor offset: a +02:00 anchor on the 31st resets at local midnight-thirty on the last day', () => {
    const a = parseAnchor('2025-01-31T00:30:00+02:00');
    expect(iso(cycleStartAt(a, 0))).toBe('2025-01-30T22:30:00.000Z');
    expect(iso(cycleStartAt(a, 1))).toBe('2025-02-27T22:30:00.000Z');
    expect(iso(cycleStartAt(a, 2))).toBe('2025-03-30T22:30:00.000Z');
  });
});

describe('billing cycles: the cycle containing an instant', () => {
  const anchor = parseAnchor('2025-01-31T10:00:00Z');

  it('an instant exactly on a boundary belongs to the cycle that starts there', () => {
    const c = cycleContaining(anchor, at('2025-02-28T10:00:00Z'));
    expect(iso(c.start)).toBe('2025-02-28T10:00:00.000Z');
    expect(iso(c.end)).toBe('2025-03-31T10:00:00.000Z');
    expect(c.index).toBe(1);
  });

  it('one millisecond before a boundary is still the previous cycle', () => {
    const c = cycleContaining(anchor, at('2025-02-28T09:59:59.999Z'));
    expect(iso(c.start)).toBe('2025-01-31T10:00:00.000Z');
    expect(iso(c.end)).toBe('2025-02-28T10:00:00.000Z');
  });

  it('an anchor in the future: cycles run backwards from it and the current one ends at the anchor', () => {
    const future = parseAnchor('2027-03-31T00:00:00Z');
    const c = cycleContaining(future, at('2027-03-15T12:00:00Z'));
    expect(c.index).toBe(-1);
    expect(iso(c.start)).toBe('2027-02-28T00:00:00.000Z');
    expect(iso(c.end)).toBe('2027-03-31T00:00:00.000Z');
    const far = cycleContaining(future, at('2026-07-01T00:00:00Z'));
    expect(iso(far.start)).toBe('2026-06-30T00:00:00.000Z');
    expect(far.index).toBe(-9);
  });

  it('sub-day anchors: an anchor with seconds resets to the second; its milliseconds are truncated', () => {
    const a = parseAnchor('2026-11-25T14:40:03.250Z');
    const before = cycleContaining(a, at('2026-11-25T14:40:02.999Z'));
    const after = cycleContaining(a, at('2026-11-25T14:40:03.000Z'));
    expect(iso(before.end)).toBe('2026-11-25T14:40:03.000Z');
    expect(iso(before.start)).toBe('2026-10-25T14:40:03.000Z');
    expect(iso(after.start)).toBe('2026-11-25T14:40:03.000Z');
    expect(iso(after.end)).toBe('2026-12-25T14:40:03.000Z');
  });

  it('anchors that differ by less than a second give the same cycles (what Redis keys them by)', () => {
    const t = at('2026-02-10T00:00:00Z');
    const cycles = ['2026-01-31T09:00:00Z', '2026-01-31T09:00:00.001Z', '2026-01-31T09:00:00.5Z', '2026-01-31T09:00:00.999999Z'].map((s) =>
      cycleContaining(parseAnchor(s), t),
    );
    for (const c of cycles) expect(c).toEqual(cycles[0]);
    expect(cycles[0]!.start % 1000).toBe(0);
    // A whole second apart is another anchor.
    expect(cycleContaining(parseAnchor('2026-01-31T09:00:01Z'), t).start).toBe(cycles[0]!.start + 1000);
  });

  it('calendar-month anchor gives calendar months', () => {
    const c = cycleContaining(parseAnchor('2000-01-01T00:00:00Z'), at('2026-02-14T23:00:00Z'));
    expect([iso(c.start), iso(c.end)]).toEqual(['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
  });

  it('exhaustively: for every anchor day and many instants, the cycle contains the instant and starts on the clamped day', () => {
    const step = 37 * 3600 * 1000 + 13 * 60 * 1000 + 7000; // an odd stride hits every hour and day
    for (let day = 1; day <= 31; day++) {
      const a = parseAnchor(`2024-01-${String(day).padStart(2, '0')}T07:30:15Z`);
      for (let t = at('2023-06-01T00:00:00Z'); t < at('2026-06-01T00:00:00Z'); t += step) {
        const c = cycleContaining(a, t);
        expect(c.start).toBeLessThanOrEqual(t);
        expect(c.end).toBeGreaterThan(t);
        const s = new Date(c.start);
        expect(s.getUTCDate()).toBe(Math.min(day, daysInMonth(s.getUTCFullYear(), s.getUTCMonth())));
        expect(s.getUTCHours() * 60 + s.getUTCMinutes()).toBe(7 * 60 + 30);
        expect(cycleContaining(a, c.end).start).toBe(c.end);
      }
    }
  });
});

describe('billing anchors: parsing', () => {
  it.each([
    ['2025-01-31', 'no time'],
    ['2025-01-31T00:00:00', 'no offset'],
    ['2025-02-30T00:00:00Z', 'no such day'],
    ['2025-13-01T00:00:00Z', 'no such month'],
    ['2025-01-01T24:00:00Z', 'no such hour'],
    ['yesterday', 'not ISO'],
    ['1969-12-31T00:00:00Z', 'before 1970'],
  ])('refuses %s (%s)', (value) => {
    expect(() => parseAnchor(value)).toThrow(InvalidAnchorError);
  });

  it('accepts offsets with and without a colon, and fractional seconds, which it truncates', () => {
    expect(parseAnchor('2025-01-31T00:00:00-0530').offsetMinutes).toBe(-330);
    expect(parseAnchor('2025-01-31T00:00:00.5+01:00').msOfDay).toBe(0);
    expect(parseAnchor('2025-01-31T07:08:09.999Z').msOfDay).toBe((7 * 3600 + 8 * 60 + 9) * 1000);
    expect(parseAnchor('2025-01-31T07:08:09.999+01:00').iso).toBe('2025-01-31T07:08:09+01:00');
  });

  it('truncates, never rounds, and keeps the offset as written', () => {
    expect(truncateAnchorIso('2025-01-31T09:00:00.999Z')).toBe('2025-01-31T09:00:00Z');
    expect(truncateAnchorIso('2025-01-31T09:00:59.9z')).toBe('2025-01-31T09:00:59z');
    expect(truncateAnchorIso('2025-01-31T09:00:00.123456789-05:30')).toBe('2025-01-31T09:00:00-05:30');
    expect(truncateAnchorIso('2025-01-31T09:00:00.5+0100')).toBe('2025-01-31T09:00:00+0100');
    // Nothing to drop: unchanged.
    for (const s of ['2025-01-31T09:00:00Z', '2025-01-31T09:00Z', '2025-01-31T09:00:00+02:00', 'tomorrow']) expect(truncateAnchorIso(s)).toBe(s);
    // The text and the parsed anchor agree.
    const a = parseAnchor('2024-02-29T23:59:59.999+14:00');
    expect(parseAnchor(a.iso)).toEqual(a);
  });

  it('only anchors are truncated: an instant (enforceFrom, a top-up expiry) keeps its milliseconds', () => {
    expect(parseInstant('2025-01-31T09:00:00.750Z')).toBe(at('2025-01-31T09:00:00.750Z'));
    expect(cycleStartAt(parseAnchor('2025-01-31T09:00:00.750Z'), 0)).toBe(at('2025-01-31T09:00:00Z'));
  });
});
