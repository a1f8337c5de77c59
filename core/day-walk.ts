/**
 * Walking the work index day by day (core/rules/work-index.ts), written once for the
 * daily job's passes: expiring grants (core/expiry.ts), grants to warn about
 * (core/expiring-warnings.ts) and pending orders to abandon (core/abandoned-orders.ts).
 *
 * A walk reads, for each day of a range and each of its {@link DAY_SHARDS} shards, the
 * pages of one index Query, and hands each page to the pass. It stops starting pages
 * after a deadline (the Lambda's time), so a pass says whether it covered everything.
 * A pass that must not look at the same days again keeps a watermark (a job-state item:
 * every day before it holds no more work), moved only after a complete walk; its cost
 * then grows with the work to do, not with the days since deployment.
 */
import type { Context } from "./context.js";
import { DAY_SHARDS, dayBucket } from "./rules/work-index.js";
import { daysBetween, utcDayPlus } from "./rules/time.js";

/** Days a first walk with a watermark looks back (work is indexed after deployment). */
export const FIRST_RUN_LOOKBACK_DAYS = 35;

/** One page of an index Query. */
export interface IndexPage<T> {
  data: T[];
  cursor: string | null;
}

/** What a walk did. */
export interface DayWalkSummary {
  /** The days walked (YYYY-MM-DD). */
  days: string[];
  /** Index pages read. */
  pages: number;
  /** Index entries read. */
  candidates: number;
  /** False when the deadline stopped the walk, or a page left work for the next run. */
  complete: boolean;
}

/**
 * Walks `days`, each over every shard, page by page.
 * @param query reads one page of a day partition (`<day>#<shard>`) from `cursor`
 * @param visit handles a page's entries; returns `"left work"` when some must be tried
 *   again later (the walk goes on, but is not complete)
 * @param deadline epoch ms after which no new page is started
 */
export async function walkDays<T>(input: {
  days: Iterable<string>;
  query: (bucket: string, cursor: string | null) => Promise<IndexPage<T>>;
  visit: (entries: T[]) => Promise<void | "left work">;
  deadline?: number | undefined;
}): Promise<DayWalkSummary> {
  const summary: DayWalkSummary = { days: [...input.days], pages: 0, candidates: 0, complete: true };
  for (const day of summary.days) {
    for (let shard = 0; shard < DAY_SHARDS; shard++) {
      let cursor: string | null = null;
      do {
        if (input.deadline !== undefined && Date.now() > input.deadline) return { ...summary, complete: false };
        const page: IndexPage<T> = await input.query(dayBucket(day, shard), cursor);
        summary.pages++;
        summary.candidates += page.data.length;
        if ((await input.visit(page.data)) === "left work") summary.complete = false;
        cursor = page.cursor;
      } while (cursor);
    }
  }
  return summary;
}

/**
 * Walks the days from the watermark of `job` (or `lookbackDays`, default
 * {@link FIRST_RUN_LOOKBACK_DAYS}, before `last` on a first run) to `last`, and moves the
 * watermark to `last` when the walk is complete (`last` itself stays to walk: later work
 * of that day may still come). A pass whose work is short-lived may look back less.
 */
export async function walkDaysSince<T>(
  ctx: Pick<Context, "db" | "clock">,
  input: { job: string; last: string; lookbackDays?: number } & Omit<Parameters<typeof walkDays<T>>[0], "days">,
): Promise<DayWalkSummary> {
  const { job, last, lookbackDays = FIRST_RUN_LOOKBACK_DAYS, ...walk } = input;
  const state = await ctx.db.entities.jobState.get({ job }).go({ consistent: true });
  const first = state.data?.doneBefore ?? utcDayPlus(last, -lookbackDays);
  const summary = await walkDays({ ...walk, days: daysBetween(first, last) });
  if (summary.complete) {
    await ctx.db.entities.jobState.put({ job, doneBefore: last, updatedAt: ctx.clock.now().toISOString() }).go();
  }
  return summary;
}
