/**
 * The daily job (scheduled once a day, `npm run expire` locally): four passes over the
 * work index (core/day-walk.ts), never a scan of users:
 * 1. expiry: every due grant of every user expired (core/expiry.ts);
 * 2. hold expiry: the expired holds (reservations) of groups no request touched since
 *    released (core/reservations.ts `releaseExpiredHolds`; a request touching a group
 *    releases them first, the job catches the others);
 * 3. warnings: `credits.expiring` for grants expiring soon (core/expiring-warnings.ts);
 * 4. abandoned orders: orders unpaid for too long refused (core/abandoned-orders.ts).
 * The expiry pass costs, per expiry day since its last complete walk, one Query per
 * shard (empty ones cost one request each), then for each (user, offerGroup) with due
 * grants one consistent read and one transaction. The hold-expiry pass costs the same
 * Queries over the days of the earliest hold expiries, then per group with expired holds
 * one consistent read and one transaction per {@link EXPIRED_HOLDS_PER_WRITE} holds
 * (and one more read when the last batch was full). Candidates from the index
 * (eventually consistent) are re-read before acting, each grant expires once and each
 * hold ends once (conditional writes), so the job can run twice, overlap itself or a
 * request, or die half-way.
 *
 * A grant (a hold) is due when `expires <= now`: one expiring exactly at the run's
 * instant is expired (released) by that run.
 */
import type { Context } from "./context.js";
import { abandonOrders } from "./abandoned-orders.js";
import { walkDaysSince, type DayWalkSummary } from "./day-walk.js";
import { expireGroup } from "./expiry.js";
import { EXPIRED_HOLDS_PER_WRITE, releaseExpiredHolds } from "./reservations.js";
import { warnExpiringGrants } from "./expiring-warnings.js";
import { utcDay } from "./rules/time.js";
import { sortBoundAfter } from "./rules/work-index.js";

/** Name of the expiry pass's watermark (a job-state item). */
export const EXPIRY_PASS = "expiry";

/** Name of the hold-expiry pass's watermark (a job-state item). */
export const HOLD_EXPIRY_PASS = "hold-expiry";

/**
 * Days the hold-expiry pass's first run looks back. A hold lives at most a day
 * (core/rules/holds.ts `MAX_HOLD_SECONDS`) and is indexed from this code's deployment, which
 * the first scheduled run follows within a day: a week leaves room for failed runs, at 64
 * index Queries instead of the 288 of core/day-walk.ts `FIRST_RUN_LOOKBACK_DAYS`. A hold
 * older than that is still released by the next request touching its group.
 */
export const HOLD_EXPIRY_LOOKBACK_DAYS = 7;

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
  /** Expired holds released (status `expired`) by the hold-expiry pass. */
  holdsReleased: number;
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
 * Runs the daily job once at the clock's instant: the expiry pass, then, each only if the
 * one before completed, the hold-expiry pass, the warnings pass and the abandoned-order
 * pass.
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
    holdsReleased: 0,
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

  // B. Expired holds of groups nobody touched.
  if (summary.complete) {
    const holds = await releaseDueHolds(ctx, { deadline: options.deadline, limit });
    summary.holdsReleased = holds.released;
    summary.pages += holds.walk.pages;
    summary.candidates += holds.walk.candidates;
    summary.complete = holds.walk.complete;
  }

  // C. Warnings about grants expiring soon, then orders whose payment never came.
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

/**
 * The hold-expiry pass: each day from its watermark to today, each shard, each page of
 * balance items whose earliest live hold has expired (core/rules/work-index.ts
 * `holdExpiryKeys`); each group's expired holds released, a batch of at most
 * {@link EXPIRED_HOLDS_PER_WRITE} per transaction, again while a full batch went. A
 * group whose holds a request released first costs one read and no write. Released
 * groups leave the index (or move to their next hold's expiry, after `now`), so a
 * continuation starts where this run stopped.
 * @returns the holds released and the walk's summary
 */
async function releaseDueHolds(
  ctx: Pick<Context, "db" | "clock">,
  options: { deadline?: number | undefined; limit: number },
): Promise<{ released: number; walk: DayWalkSummary }> {
  const now = ctx.clock.now();
  let released = 0;
  const walk = await walkDaysSince(ctx, {
    job: HOLD_EXPIRY_PASS,
    last: utcDay(now),
    lookbackDays: HOLD_EXPIRY_LOOKBACK_DAYS,
    deadline: options.deadline,
    query: (holdExpiryBucket, cursor) =>
      ctx.db.entities.balance.query
        .byHoldExpiry({ holdExpiryBucket })
        .lt({ holdExpirySort: sortBoundAfter(now) })
        .go({ limit: options.limit, cursor, attributes: ["userId", "offerGroup"] }),
    visit: async (entries) => {
      for (const { userId, offerGroup } of entries) {
        let batch: number;
        do {
          batch = await releaseExpiredHolds(ctx, userId, offerGroup);
          released += batch;
        } while (batch === EXPIRED_HOLDS_PER_WRITE);
      }
    },
  });
  return { released, walk };
}
