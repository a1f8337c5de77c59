/**
 * The scheduled daily job: every due grant of every user expired, found through the
 * sparse work index (DESIGN.md), never by scanning users; then `credits.expiring`
 * warnings, then abandoned orders. Its cost grows with the number of
 * due grants: per expiry day since the last complete run, one Query per shard (empty
 * ones cost one request each), then for each (user, offerGroup) with due grants one
 * consistent read and one transaction (core/expiry.ts). Candidates from the index
 * (eventually consistent) are re-read before acting, and each grant expires once
 * (conditional write), so the job can run twice, overlap itself, or die half-way.
 *
 * A grant is due when `expires <= now`: a grant expiring exactly at the run's instant
 * is expired by that run.
 */
import type { Context } from "./context.js";
import { daysBetween, EXPIRY_SHARDS, expiryBucket, utcDay, utcDayPlus } from "./rules/work-index.js";
import { abandonOrders } from "./abandoned-orders.js";
import { expireGroup } from "./expiry.js";
import { warnExpiringGrants } from "./expiring-warnings.js";

/** Name of the job's state item. */
export const EXPIRY_JOB = "expiry";

/** Days a first run looks back (grants expire after they are created, so after deployment). */
export const FIRST_RUN_LOOKBACK_DAYS = 35;

/** What a run did (logged as structured JSON and returned). */
export interface ExpiryJobSummary {
  /** The run's instant. */
  now: string;
  /** Expiry days looked at. */
  days: string[];
  grantsExpired: number;
  tokensRemoved: number;
  /** (user, offerGroup) pairs settled. */
  groupsSettled: number;
  /** Index pages read. */
  pages: number;
  /** Index entries read. */
  candidates: number;
  /** `credits.expiring` events raised (core/expiring-warnings.ts). */
  expiringWarned: number;
  /** Orders given up after their payment never came (core/abandoned-orders.ts). */
  ordersAbandoned: number;
  /** False when the deadline stopped it early (the next run, or a continuation, completes it). */
  complete: boolean;
  durationMs: number;
}

/**
 * Runs the job once at the clock's instant.
 * @param options.deadline epoch ms after which no new page is started (a Lambda's
 *   remaining time); default none
 * @param options.pageSize index entries per Query page (default 100)
 */
export async function runExpiryJob(
  ctx: Pick<Context, "db" | "clock" | "logger" | "payments">,
  options: { deadline?: number; pageSize?: number; abandonAfterMs?: number } = {},
): Promise<ExpiryJobSummary> {
  const started = Date.now();
  const now = ctx.clock.now();
  const today = utcDay(now);
  const pageSize = options.pageSize ?? 100;
  const summary: ExpiryJobSummary = {
    now: now.toISOString(),
    days: [],
    grantsExpired: 0,
    tokensRemoved: 0,
    groupsSettled: 0,
    pages: 0,
    candidates: 0,
    expiringWarned: 0,
    ordersAbandoned: 0,
    complete: true,
    durationMs: 0,
  };

  // A. Days to look at: from the first day that may still hold due grants, to today.
  const state = await ctx.db.entities.jobState.get({ job: EXPIRY_JOB }).go({ consistent: true });
  summary.days = [...daysBetween(state.data?.doneBefore ?? utcDayPlus(now, -FIRST_RUN_LOOKBACK_DAYS), today)];

  // B. Each day and shard: page through due entries, settle each (user, offerGroup) once.
  const bound = `${now.toISOString()}$`; // sorts after every `<expires>#...` with expires <= now
  outer: for (const d of summary.days) {
    for (let shard = 0; shard < EXPIRY_SHARDS; shard++) {
      let cursor: string | null = null;
      do {
        if (options.deadline !== undefined && Date.now() > options.deadline) {
          summary.complete = false;
          break outer;
        }
        const page: { data: Array<{ userId: string; offerGroup: string }>; cursor: string | null } = await ctx.db.entities.grant.query
          .byExpiry({ expiryBucket: expiryBucket(d, shard) })
          .lt({ expirySort: bound })
          .go({ limit: pageSize, cursor, attributes: ["userId", "offerGroup"] });
        summary.pages++;
        summary.candidates += page.data.length;
        const pairs = new Map(page.data.map((entry) => [`${entry.userId}\u0000${entry.offerGroup}`, entry]));
        for (const { userId, offerGroup } of pairs.values()) {
          const expired = await expireGroup(ctx, userId, offerGroup);
          summary.groupsSettled++;
          summary.grantsExpired += expired.length;
          summary.tokensRemoved += expired.reduce((total, grant) => total + grant.expiredTokens, 0);
        }
        cursor = page.cursor;
      } while (cursor);
    }
  }

  // C. A complete pass moves the watermark to today (later grants of today stay indexed).
  if (summary.complete) {
    await ctx.db.entities.jobState.put({ job: EXPIRY_JOB, doneBefore: today, updatedAt: now.toISOString() }).go();
  }

  // D. Warnings about grants expiring soon, then orders whose payment never came.
  if (summary.complete) {
    const warnings = await warnExpiringGrants(ctx, options);
    summary.expiringWarned = warnings.warned;
    summary.candidates += warnings.candidates;
    summary.complete = warnings.complete;
  }
  if (summary.complete) {
    const abandoned = await abandonOrders(ctx, options);
    summary.ordersAbandoned = abandoned.abandoned;
    summary.candidates += abandoned.candidates;
    summary.complete = abandoned.complete;
  }
  summary.durationMs = Date.now() - started;
  ctx.logger.info("expiry job", { ...summary, days: summary.days.length });
  return summary;
}
