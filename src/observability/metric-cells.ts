// Counters and histograms whose per-request observations skip prom-client's
// per-call work. A prom-client child still joins its label values into a
// string and looks that string up on every inc() or observe(): with three
// observations, a fifth of the gate's own CPU in process (measured:
// docs/performance.md). A cell is bound to one label set once; an
// observation only adds to its numbers. A counter hands what its cells
// gathered to prom-client when it is read (a scrape), so its exposition is
// prom-client's own; a histogram's cells are written out in prom-client's
// histogram form, and a test holds both to what plain prom-client metrics
// print for the same observations.

import { Counter, Histogram, type HistogramConfiguration, type LabelValues } from 'prom-client';

/** One label set of a CellCounter. */
export class CounterCell {
  /** Counted since the counter was last read. */
  pending = 0;
  /** Counted at all since then (a 0 still makes the label set a series, as with prom-client). */
  touched = false;

  constructor(readonly labels: LabelValues<string>) {}

  inc(amount = 1): void {
    // prom-client's own checks, made where the value comes from rather than
    // at the scrape (NaN passes them, there as here).
    if (amount && !Number.isFinite(amount)) throw new TypeError(`Value is not a valid number: ${amount}`);
    if (amount < 0) throw new Error('It is not possible to decrease a counter');
    this.pending += amount;
    this.touched = true;
  }
}

export class CellCounter<T extends string> extends Counter<T> {
  private readonly cells: CounterCell[] = [];

  /** The cell of one label set (make one per label set and keep it). */
  cell(labels: LabelValues<T>): CounterCell {
    const cell = new CounterCell(labels);
    this.cells.push(cell);
    return cell;
  }

  override async get(): ReturnType<Counter<T>['get']> {
    for (const cell of this.cells) {
      if (!cell.touched) continue;
      const amount = cell.pending;
      cell.pending = 0;
      cell.touched = false;
      this.inc(cell.labels as LabelValues<T>, amount);
    }
    return super.get();
  }

  override reset(): void {
    // Also called by prom-client's constructor, before this class's fields exist.
    for (const cell of this.cells ?? []) {
      cell.pending = 0;
      cell.touched = false;
    }
    super.reset();
  }
}

/** One label set of a CellHistogram. */
export class HistogramCell {
  /** Observations per bucket, not cumulative; one above the last bound is only in count (the +Inf bucket). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: LabelValues<string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    this.sum += value;
    this.count += 1;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]! += 1;
        return;
      }
    }
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

type HistogramValue = {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string | number>;
  value: number;
  metricName: string;
  // prom-client's own shape: null for a bucket, absent (undefined) for the sum and count.
  exemplar: null | undefined;
};

/**
 * A histogram observed through cells only: its label sets must not also be
 * observed through prom-client's own observe() (they would be printed twice).
 */
export class CellHistogram<T extends string> extends Histogram<T> {
  private readonly cells: HistogramCell[] = [];
  private readonly bounds: readonly number[];
  private readonly metricName: string;

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.bounds = [...config.buckets];
    this.metricName = config.name;
  }

  cell(labels: LabelValues<T>): HistogramCell {
    const cell = new HistogramCell(labels, this.bounds);
    this.cells.push(cell);
    return cell;
  }

  /**
   * What prom-client's Registry prints a histogram from, and its get()
   * reads (not in its types): each label set apart from `le`, as
   * prom-client's own histogram gives it.
   */
  async getForPromString(): Promise<{ values: HistogramValue[] }> {
    const own = (Histogram.prototype as unknown as { getForPromString: () => Promise<{ values: HistogramValue[] }> }).getForPromString;
    const data = await own.call(this);
    data.values.push(...this.cellValues());
    return data;
  }

  override reset(): void {
    // Also called by prom-client's constructor, before this class's fields exist.
    for (const cell of this.cells ?? []) cell.clear();
    super.reset();
  }

  /** Each observed cell as prom-client writes a label set out: cumulative buckets, +Inf, sum, count. */
  private cellValues(): HistogramValue[] {
    const values: HistogramValue[] = [];
    const bucket = `${this.metricName}_bucket`;
    for (const cell of this.cells) {
      if (cell.count === 0) continue;
      const sharedLabels = cell.labels as Record<string, string | number>;
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += cell.counts[i]!;
        values.push({ labels: { le: bound }, sharedLabels, value: cumulative, metricName: bucket, exemplar: null });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: cell.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels, value: cell.sum, metricName: `${this.metricName}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels, value: cell.count, metricName: `${this.metricName}_count`, exemplar: undefined });
    }
    return values;
  }
}
