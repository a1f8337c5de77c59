/**
 * The benchmark's pure helpers: percentiles and medians, the order of interleaved rounds,
 * the closed-loop load generator, what DynamoDB's per-partition write limit allows, and
 * the Markdown tables `npm run bench` prints. Nothing here touches DynamoDB.
 */

/** The median of `values` (the mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * The `p`-th percentile (0 < p <= 100) of `values` by the nearest-rank method: the smallest
 * value such that at least p% of the values are at or below it. NaN for no values.
 * @throws RangeError for p outside (0, 100]
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
}

/**
 * The order of `items` in round `round` (0-based): rotated left by `round`, so that over as
 * many rounds as items each item runs once in each position (first, second, ...), and
 * the machine's drift (JIT warm-up, a busy neighbour, a growing table) weighs on all alike.
 */
export function rotation<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const shift = ((round % items.length) + items.length) % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** What a closed-loop run measured. */
export interface LoadResult<O extends string> {
  /** Operations completed (whatever their outcome). */
  ops: number;
  /** Wall time from the first start to the last completion, ms. */
  ms: number;
  /** Operations per second: `ops / ms * 1000`. */
  opsPerSecond: number;
  /** Latency of each operation, ms, in completion order. */
  latencies: number[];
  /** Operations per outcome (what `op` returned, e.g. an HTTP status). */
  outcomes: Partial<Record<O, number>>;
  /** Operations that threw, and the first few messages. */
  errors: number;
  errorSamples: string[];
}

/**
 * Runs `op` from `concurrency` workers in a closed loop (each starts its next operation
 * when the previous one ends) until `durationMs` has passed since the start, or until
 * `maxOps` operations have been started. `op` receives the worker's index and a sequence
 * number unique within the run, and returns its outcome's name.
 * @returns counts, latencies (ms, `performance.now()`) and throughput
 */
export async function closedLoop<O extends string>(
  concurrency: number,
  durationMs: number,
  op: (worker: number, sequence: number) => Promise<O>,
  maxOps = Number.POSITIVE_INFINITY,
): Promise<LoadResult<O>> {
  const latencies: number[] = [];
  const outcomes: Partial<Record<O, number>> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  let started = 0;
  const begin = performance.now();
  const deadline = begin + durationMs;
  const worker = async (index: number) => {
    while (performance.now() < deadline && started < maxOps) {
      const sequence = started++;
      const t0 = performance.now();
      try {
        const outcome = await op(index, sequence);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      } catch (error) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const ms = performance.now() - begin;
  return { ops: latencies.length, ms, opsPerSecond: (latencies.length / ms) * 1000, latencies, outcomes, errors, errorSamples };
}

/**
 * DynamoDB's throughput limit per partition: "up to 3,000 read capacity units and 1,000
 * write capacity units per second" (DynamoDB developer guide, "Partitions and data
 * distribution" / "Best practices for designing and using partition keys effectively").
 * One item (one partition key value here: the balance item of a (user, offerGroup)) never
 * spreads over more than one partition.
 */
export const PARTITION_WRITE_UNITS_PER_SECOND = 1000;

/**
 * The most operations per second one partition takes when each writes `writeUnits` to it:
 * `1000 / writeUnits`, rounded down.
 * @throws RangeError for writeUnits <= 0
 */
export function partitionCeiling(writeUnits: number, limit = PARTITION_WRITE_UNITS_PER_SECOND): number {
  if (!(writeUnits > 0)) throw new RangeError(`write units must be > 0, got ${writeUnits}`);
  return Math.floor(limit / writeUnits);
}

/** `value` with thousands separators and `digits` decimals (`1234.5` -> `1,234.5`). */
export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "-";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A Markdown table of `rows` under `header` (cells as given; none may hold a line break). */
export function markdownTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  for (const row of rows) if (row.length !== header.length) throw new RangeError(`a row has ${row.length} cells, the header ${header.length}`);
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** `value` rounded to `digits` decimals (for the JSON file). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
