/**
 * Metric storage for the request path: one `Series` per distinct label set, holding plain numbers, exported
 * through prom-client metric objects so the registry formats them exactly as prom-client's own.
 *
 * Why not prom-client's own storage: in prom-client 15 every `inc`/`observe`, including on a cached
 * `.labels(...)` child, validates every label name and rebuilds a hash string of all label values, and a
 * histogram observe also turns the bucket bound into a property name. With Istio's 20 labels and four
 * metrics per request that was most of the metrics cost. Here a request builds one key string and does one
 * Map lookup; the numbers are added to a Float64Array.
 */
import { Counter, Histogram } from 'prom-client';
import type { CounterConfiguration, HistogramConfiguration } from 'prom-client';

/** One label set's numbers. `values` is laid out by whoever records into the table. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly values: Float64Array;
  /** Set on every use after the first and cleared by the eviction sweep (CLOCK: a used series gets a second chance). */
  used: boolean;
}

/**
 * A bounded map from a label-set key to its series. Label values can come from peers (principals, response
 * codes), so the table never holds more than `maxSeries`: adding one more evicts the oldest series not used
 * again since it was added or last swept. An evicted series disappears from the scrape, and restarts from zero if it comes
 * back, which Prometheus reads as a counter reset (as with Istio's metric expiry).
 */
export interface SeriesTable {
  readonly maxSeries: number;
  /** The series for `key`, marked used; undefined when there is none. */
  get(key: string): Series | undefined;
  /** Adds a series for `key` (absent) with `labels` and `slots` zeroed numbers, evicting one when full. */
  add(key: string, labels: Readonly<Record<string, string>>, slots: number): Series;
  series(): IterableIterator<Series>;
  readonly size: number;
  /** Series evicted so far. */
  readonly evicted: number;
}

export function createSeriesTable(maxSeries: number): SeriesTable {
  if (!Number.isInteger(maxSeries) || maxSeries < 1) throw new RangeError(`maxSeries: must be a positive integer (got ${maxSeries})`);
  const map = new Map<string, Series>();
  let evicted = 0;

  function evictOne(): void {
    // Each used series seen is cleared and moved to the back, so this ends within size + 1 steps.
    for (const [key, s] of map) {
      map.delete(key);
      if (s.used) {
        s.used = false;
        map.set(key, s);
        continue;
      }
      evicted++;
      return;
    }
  }

  return {
    maxSeries,
    get(key) {
      const s = map.get(key);
      if (s !== undefined) s.used = true;
      return s;
    },
    add(key, labels, slots) {
      if (map.size >= maxSeries) evictOne();
      // Not marked used: a label set seen once is the first to go, one seen again gets a second chance.
      const s: Series = { labels, values: new Float64Array(slots), used: false };
      map.set(key, s);
      return s;
    },
    series: () => map.values(),
    get size() {
      return map.size;
    },
    get evicted() {
      return evicted;
    },
  };
}

/**
 * One value's part of a series key. The length prefix keeps the key unambiguous whatever characters the
 * values hold, with no escaping.
 */
export function keyPart(value: string): string {
  return value.length + ':' + value;
}

/**
 * A prom-client Counter whose values are `values[slot]` of each series in `table`. The recorder writes the
 * table directly; `inc` on this object is not used. A series with 0 is not exported, as prom-client shows
 * a label set only once it was incremented.
 */
export class TableCounter extends Counter<string> {
  constructor(
    config: CounterConfiguration<string>,
    private readonly table: SeriesTable,
    private readonly slot: number,
  ) {
    super(config);
  }

  override get(): ReturnType<Counter<string>['get']> {
    const self = this as unknown as { name: string; help: string; aggregator: 'sum' };
    const values = [];
    for (const s of this.table.series()) {
      const value = s.values[this.slot]!;
      if (value > 0) values.push({ value, labels: s.labels });
    }
    // prom-client's typings ask for `collect`, which its own get() does not return either.
    const data = { help: self.help, name: self.name, type: 'counter', values, aggregator: self.aggregator };
    return Promise.resolve(data as unknown as Awaited<ReturnType<Counter<string>['get']>>);
  }

  override reset(): void {
    // prom-client's constructor calls reset() before our fields are set.
    const table = this.table as SeriesTable | undefined;
    if (table) for (const s of table.series()) s.values[this.slot] = 0;
  }
}

/** Slots a histogram takes in a series: one per bucket, one above the last bound, then sum and count. */
export function histogramSlots(buckets: readonly number[]): number {
  return buckets.length + 3;
}

/** Records `value` into the histogram laid out at `offset`; non-finite values are ignored. */
export function observeInto(values: Float64Array, offset: number, buckets: readonly number[], value: number): void {
  if (!Number.isFinite(value)) return;
  let i = 0;
  while (i < buckets.length && value > buckets[i]!) i++;
  const n = buckets.length;
  values[offset + i]!++;
  values[offset + n + 1]! += value;
  values[offset + n + 2]!++;
}

/** One exported sample, shaped as prom-client's histogram hands them to the registry. */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar?: null;
}

/**
 * A prom-client Histogram whose data is the histogram at `offset` in each series of `table`. It produces
 * the same value list prom-client's histogram hands the registry (cumulative `_bucket` with `le`, `+Inf`,
 * `_sum`, `_count`), so the text is the same. A series never observed is not exported.
 */
export class TableHistogram extends Histogram<string> {
  private readonly bounds: readonly number[];

  constructor(
    config: HistogramConfiguration<string> & { buckets: number[] },
    private readonly table: SeriesTable,
    private readonly offset: number,
  ) {
    super(config);
    this.bounds = [...config.buckets];
  }

  /** What the registry formats: bucket labels with the series labels shared, as prom-client's own. */
  getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: ExportedValue[]; aggregator: 'sum' }> {
    const self = this as unknown as { name: string; help: string; aggregator: 'sum' };
    const bucket = `${self.name}_bucket`;
    const n = this.bounds.length;
    const values: ExportedValue[] = [];
    for (const s of this.table.series()) {
      const v = s.values;
      const count = v[this.offset + n + 2]!;
      if (count === 0) continue;
      let acc = 0;
      for (let i = 0; i < n; i++) {
        acc += v[this.offset + i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: s.labels, value: v[this.offset + n + 1]!, metricName: `${self.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: s.labels, value: count, metricName: `${self.name}_count`, exemplar: undefined });
    }
    return Promise.resolve({ name: self.name, help: self.help, type: 'histogram', values, aggregator: self.aggregator });
  }

  override async get(): ReturnType<Histogram<string>['get']> {
    const data = await this.getForPromString();
    const values = data.values.map(({ labels, sharedLabels, value, metricName, exemplar }) => ({ value, metricName, exemplar, labels: { ...labels, ...sharedLabels } }));
    return { ...data, values } as unknown as Awaited<ReturnType<Histogram<string>['get']>>;
  }

  override reset(): void {
    // prom-client's constructor calls reset() before our fields are set.
    const table = this.table as SeriesTable | undefined;
    if (table) for (const s of table.series()) s.values.fill(0, this.offset, this.offset + histogramSlots(this.bounds));
  }
}
