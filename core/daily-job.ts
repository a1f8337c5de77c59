/**
 * The daily job (scheduled once a day, `npm run expire` locally): three passes over the
 * work index (core/day-walk.ts), never a scan of users:
 * 1. expiry: every due grant of every user expired (core/expiry.ts);
 * 2. warnings: `credits.expiring` for grants expiring soon (core/expiring-warnings.ts);
 * 3. abandoned orders: orders unpaid for too long refused (core/abandoned-orders.ts).
 * The expiry pass costs, per expiry day since its last complete walk, one Query per
 * shard (empty ones cost one request each), then for each (user, offerGroup) with due
 * grants one consistent read and one transaction. Candidates from the index (eventually
 * consistent) are re-read before acting, and each grant expires once (conditional
 * write), so the job can run twice, overlap itself, or die half-way.
 *
 * A grant is due when `expires <= now`: a grant expiring exactly at the run's instant
 * is expired by that run.
 */
import type { Context } from "./context.js";
import { abandonOrders } from "./abandoned-orders.js";
import { walkDaysSince } from "./day-walk.js";
import { expireGroup } from "./expiry.js";
import { warnExpiringGrants } from "./expiring-warnings.js";
import { utcDay } from "./rules/time.js";
import { sortBoundAfter } from "./rules/work-index.js";

/** Name of the expiry pass's watermark (a job-state item). */
export const EXPIRY_PASS = "expiry";

/** What a run did (logged as structured JSON and returned). */
export interface DailyJobSummary {
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
 * Runs the daily job once at the clock's instant: the expiry pass, then, if it completed,
 * the warnings pass, then, if that completed, the abandoned-order pass.
 * @param options.deadline epoch ms after which no new index page is started (a Lambda's
 *   remaining time); default none
 * @param options.pageSize index entries per Query page (default 100)
 * @param options.abandonAfterMs age of an unpaid order that is abandoned (default 7 days)
 */
export async function runDailyJob(
  ctx: Pick<Context, "db" | "clock" | "logger" | "payments">,
  options: { deadline?: number; pageSize?: number; abandonAfterMs?: number } = {},
): Promise<DailyJobSummary> {
  const started = Date.now();
  const now = ctx.clock.now();
  const limit = options.pageSize ?? 100;
  const summary: DailyJobSummary = {
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

  // A. Expiry: each day from the watermark to today, each shard, each page of due
  //    entries; each (user, offerGroup) of a page settled once.
  const walk = await walkDaysSince(ctx, {
    job: EXPIRY_PASS,
    last: utcDay(now),
    deadline: options.deadline,
    query: (expiryBucket, cursor) =>
      ctx.db.entities.grant.query
        .byExpiry({ expiryBucket })
        .lt({ expirySort: sortBoundAfter(now) })
        .go({ limit, cursor, attributes: ["userId", "offerGroup"] }),
    visit: async (entries) => {
      const pairs = new Map(entries.map((entry) => [`${entry.userId}\u0000${entry.offerGroup}`, entry]));
      for (const { userId, offerGroup } of pairs.values()) {
        const expired = await expireGroup(ctx, userId, offerGroup);
        summary.groupsSettled++;
        summary.grantsExpired += expired.length;
        summary.tokensRemoved += expired.reduce((total, grant) => total + grant.expiredTokens, 0);
      }
    },
  });
  Object.assign(summary, { days: walk.days, pages: walk.pages, candidates: walk.candidates, complete: walk.complete });

  // B. Warnings about grants expiring soon, then orders whose payment never came.
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
  ctx.logger.info("daily job", { ...summary, days: summary.days.length });
  return summary;
}
