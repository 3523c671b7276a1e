// Properties of billing-cycle math over random anchors and instants.
// A fixed seed unless FC_SEED is set; the seed is printed for a replay.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cycleContaining, cycleStartAt, daysInMonth, parseAnchor } from '../../src/domain/billing-cycle.js';
import { fcSeed } from '../helpers/fc-seed.js';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

const anchorIso = fc
  .record({
    year: fc.integer({ min: 1990, max: 2090 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 31 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    ms: fc.integer({ min: 0, max: 999 }),
    offset: fc.integer({ min: -12 * 60, max: 14 * 60 }),
  })
  .map(({ year, month, day, hour, minute, second, ms, offset }) => {
    const d = Math.min(day, daysInMonth(year, month - 1));
    const sign = offset < 0 ? '-' : '+';
    const off = offset === 0 ? 'Z' : `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
    return `${year}-${pad(month)}-${pad(d)}T${pad(hour)}:${pad(minute)}:${pad(second)}.${pad(ms, 3)}${off}`;
  });

const instant = fc.integer({ min: Date.UTC(1980, 0, 1), max: Date.UTC(2100, 0, 1) });
const params = { numRuns: 2000, seed: fcSeed('billing cycles', 20261125) };

describe('billing cycles (property-based)', () => {
  it('every instant lies in exactly one cycle, which contains it', () => {
    fc.assert(
      fc.property(anchorIso, instant, (iso, at) => {
        const a = parseAnchor(iso);
        const c = cycleContaining(a, at);
        expect(c.start).toBeLessThanOrEqual(at);
        expect(c.end).toBeGreaterThan(at);
        // Neighbours do not contain it.
        expect(cycleStartAt(a, c.index - 1)).toBeLessThan(c.start);
        expect(cycleStartAt(a, c.index + 2)).toBeGreaterThan(c.end);
      }),
      params,
    );
  });

  it('cycles tile time: each ends where the next starts, with no gap or overlap', () => {
    fc.assert(
      fc.property(anchorIso, fc.integer({ min: -600, max: 600 }), (iso, k) => {
        const a = parseAnchor(iso);
        const here = cycleContaining(a, cycleStartAt(a, k));
        const next = cycleContaining(a, here.end);
        expect(here.index).toBe(k);
        expect(next.index).toBe(k + 1);
        expect(next.start).toBe(here.end);
        const lastMs = cycleContaining(a, here.end - 1);
        expect(lastMs.index).toBe(k);
      }),
      params,
    );
  });

  it("every cycle starts on a whole second, and the anchor's fractional seconds change no cycle", () => {
    fc.assert(
      fc.property(anchorIso, instant, (iso, at) => {
        const c = cycleContaining(parseAnchor(iso), at);
        expect(c.start % 1000).toBe(0);
        expect(c.end % 1000).toBe(0);
        // The same anchor written without its fraction: the same cycle.
        expect(cycleContaining(parseAnchor(iso.replace(/\.\d+/, '')), at)).toEqual(c);
      }),
      params,
    );
  });

  it("each cycle starts on the anchor's day clamped to the month, at the anchor's time of day, in the anchor's offset", () => {
    fc.assert(
      fc.property(anchorIso, fc.integer({ min: -300, max: 300 }), (iso, k) => {
        const a = parseAnchor(iso);
        const local = new Date(cycleStartAt(a, k) + a.offsetMinutes * 60_000);
        const y = local.getUTCFullYear();
        const m = local.getUTCMonth();
        expect(local.getUTCDate()).toBe(Math.min(a.day, daysInMonth(y, m)));
        const msOfDay = ((local.getUTCHours() * 60 + local.getUTCMinutes()) * 60 + local.getUTCSeconds()) * 1000 + local.getUTCMilliseconds();
        expect(msOfDay).toBe(a.msOfDay);
        expect((y - a.year) * 12 + (m - a.month)).toBe(k);
      }),
      params,
    );
  });
});
