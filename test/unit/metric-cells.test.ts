// Counters and histograms observed through cells print what plain
// prom-client metrics print for the same observations: prom-client itself is
// the oracle, on a registry each.

import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CellCounter, CellHistogram } from '../../src/observability/metric-cells.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** Our metric and prom-client's, each on a registry of its own. */
function pair<O, T>(makeOurs: (registers: Registry[]) => O, makeTheirs: (registers: Registry[]) => T) {
  const a = new Registry();
  const b = new Registry();
  return {
    ours: makeOurs([a]),
    theirs: makeTheirs([b]),
    oursText: () => a.metrics(),
    theirsText: () => b.metrics(),
    reset: () => {
      a.resetMetrics();
      b.resetMetrics();
    },
  };
}

describe('CellCounter', () => {
  const config = (registers: Registry[]) => ({ name: 'cg_test_total', help: 'A test counter.', labelNames: ['route', 'outcome'] as const, registers });

  it('prints what a plain Counter prints, read after read, zeroed label sets included', async () => {
    const registry = new Registry();
    const ours = new CellCounter(config([registry]));
    const theirRegistry = new Registry();
    const theirs = new Counter(config([theirRegistry]));
    for (const c of [ours, theirs]) c.inc({ route: 'ai', outcome: 'allowed' }, 0);
    const allowed = ours.cell({ route: 'ai', outcome: 'allowed' });
    const exhausted = ours.cell({ route: 'ai', outcome: 'exhausted' });
    for (let i = 0; i < 5; i++) {
      allowed.inc();
      theirs.inc({ route: 'ai', outcome: 'allowed' });
    }
    exhausted.inc(2.5);
    theirs.inc({ route: 'ai', outcome: 'exhausted' }, 2.5);
    expect(await registry.metrics()).toBe(await theirRegistry.metrics());
    // A second read adds nothing twice; later counts add to what was read.
    expect(await registry.metrics()).toBe(await theirRegistry.metrics());
    allowed.inc(3);
    theirs.inc({ route: 'ai', outcome: 'allowed' }, 3);
    expect(await registry.metrics()).toContain('cg_test_total{route="ai",outcome="allowed"} 8');
    expect(await registry.metrics()).toBe(await theirRegistry.metrics());
    expect(await ours.get()).toStrictEqual(await theirs.get());
  });

  it('refuses what prom-client refuses, where the value is given, and counts what it counts (a 0 makes a series, a NaN is kept)', async () => {
    for (const amount of [-1, Number.NaN, Number.POSITIVE_INFINITY, 0]) {
      const { ours, theirs, oursText, theirsText } = pair(
        (registers) => new CellCounter(config(registers)),
        (registers) => new Counter(config(registers)),
      );
      const threw = (f: () => void) => {
        try {
          f();
          return false;
        } catch {
          return true;
        }
      };
      expect(threw(() => ours.cell({ route: 'ai', outcome: 'allowed' }).inc(amount))).toBe(
        threw(() => theirs.inc({ route: 'ai', outcome: 'allowed' }, amount)),
      );
      expect(await oursText()).toBe(await theirsText());
    }
  });

  it('a reset forgets what the cells had not handed over yet', async () => {
    const { ours, theirs, oursText, theirsText, reset } = pair(
      (registers) => new CellCounter(config(registers)),
      (registers) => new Counter(config(registers)),
    );
    ours.cell({ route: 'ai', outcome: 'allowed' }).inc(4);
    theirs.inc({ route: 'ai', outcome: 'allowed' }, 4);
    reset();
    expect(await oursText()).toBe(await theirsText());
    expect(await oursText()).not.toContain('allowed');
  });
});

describe('CellHistogram', () => {
  const config = (registers: Registry[]) => ({
    name: 'cg_test_seconds',
    help: 'A test histogram.',
    labelNames: ['operation'] as const,
    buckets: BUCKETS,
    registers,
  });
  // On a bound, between bounds, above every bound, zero, and a long tail.
  const observations: [string, number][] = [
    ['charge', 0.001],
    ['charge', 0.0004],
    ['charge', 0.05],
    ['charge', 0.1],
    ['charge', 7],
    ['refund', 0],
    ['refund', 0.2],
    ['charge', 0.00999],
  ];

  it('prints what a plain Histogram prints for the same observations, through the registry and through get()', async () => {
    const { ours, theirs, oursText, theirsText } = pair(
      (registers) => new CellHistogram(config(registers)),
      (registers) => new Histogram(config(registers)),
    );
    const cells = new Map([...new Set(observations.map(([op]) => op))].map((op) => [op, ours.cell({ operation: op })]));
    for (const [op, v] of observations) {
      cells.get(op)!.observe(v);
      theirs.observe({ operation: op }, v);
    }
    expect(await oursText()).toBe(await theirsText());
    expect(await oursText()).toContain('cg_test_seconds_bucket{le="0.01",operation="charge"} 3');
    const plain = (vs: { labels: object; value: number; metricName?: string }[]) => vs.map(({ labels, value, metricName }) => ({ labels, value, metricName }));
    expect(plain((await ours.get()).values)).toEqual(plain((await theirs.get()).values));
    expect(await ours.get()).toStrictEqual(await theirs.get());
  });

  it('a label set with a cell but no observation is not printed, as with prom-client; a reset clears the cells', async () => {
    const { ours, theirs, oursText, theirsText, reset } = pair(
      (registers) => new CellHistogram(config(registers)),
      (registers) => new Histogram(config(registers)),
    );
    ours.cell({ operation: 'usage' });
    const charge = ours.cell({ operation: 'charge' });
    charge.observe(0.02);
    theirs.observe({ operation: 'charge' }, 0.02);
    expect(await oursText()).toBe(await theirsText());
    expect(await oursText()).not.toContain('usage');
    reset();
    expect(await oursText()).toBe(await theirsText());
    expect(await oursText()).not.toContain('charge');
    expect(() => charge.observe(Number.NaN)).toThrow(TypeError);
  });
});
