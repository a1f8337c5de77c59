/**
 * The daily job (scheduled once a day, `npm run expire` locally): four passes over the
 * work index (core/day-walk.ts), never a scan of users:
 * 1. expiry: every due grant of every user expired (core/expiry.ts);
 * 2. hold expiry: the expired holds (reservations) of groups no request touched since
 *    released (core/reservations.ts `releaseExpiredHolds`; a request touching a group
 *    releases them first, the job catches the others), found by the reservations still
 *    held on the work index (core/db/reservation.ts);
 * 3. warnings: `credits.expiring` for grants expiring soon (core/expiring-warnings.ts);
 * 4. abandoned orders: orders unpaid for too long refused (core/abandoned-orders.ts).
 * The expiry pass costs, per expiry day since its last complete walk, one Query per
 * shard (empty ones cost one request each), then for each (user, offerGroup) with due
 * grants one consistent read and one transaction. The hold-expiry pass costs the same
 * Queries over the days of the hold expiries, then per group with expired holds one
 * consistent read and one transaction per {@link EXPIRED_HOLDS_PER_WRITE} holds (and one
 * more read when the last batch was full), once per run whatever the number of its
 * reservations on the index (and one BatchGetItem of their items when fewer were
 * released than seen due: see `releaseDueHolds`). Candidates from the index
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
  /**
   * Hold-expiry index entries whose reservation is still `held` on its item though its
   * group, just settled, has no such live hold: a bug (the item and the balance item are
   * written in the same transactions), each logged as an error and left as it is.
   */
  staleHoldEntries: number;
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
    staleHoldEntries: 0,
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
    summary.staleHoldEntries = holds.stale;
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

/** A (user, offerGroup) met by the hold-expiry pass: its holds released, its reservations seen due on the index. */
interface DueGroup {
  userId: string;
  offerGroup: string;
  released: number;
  due: Set<string>;
}

/**
 * The hold-expiry pass: each day from its watermark to today, each shard, each page of
 * held reservations whose hold has expired (core/rules/work-index.ts `holdExpiryKeys`, on
 * the reservation items); each (user, offerGroup) among them has its expired holds
 * released at its first entry in the run (core/reservations.ts `releaseExpiredHolds`, a
 * batch of at most {@link EXPIRED_HOLDS_PER_WRITE} per transaction, again while a full
 * batch went): that releases every hold of the group due at the run's instant, so its
 * later entries (other shards, pages) cost nothing. A released reservation leaves the
 * index in the transaction that releases it, so a continuation starts where this run
 * stopped. A reservation a request released first is not on the balance item any more:
 * `releaseExpiredHolds` does not see it (no second release), and its item left the index
 * in that request's transaction (no stale entry); the index, eventually consistent, may
 * still show it for a moment: see {@link staleHoldEntries}.
 * @returns the holds released, the stale entries found, and the walk's summary
 */
async function releaseDueHolds(
  ctx: Pick<Context, "db" | "clock" | "logger">,
  options: { deadline?: number | undefined; limit: number },
): Promise<{ released: number; stale: number; walk: DayWalkSummary }> {
  const now = ctx.clock.now();
  const groups = new Map<string, DueGroup>();
  let released = 0;
  const walk = await walkDaysSince(ctx, {
    job: HOLD_EXPIRY_PASS,
    last: utcDay(now),
    lookbackDays: HOLD_EXPIRY_LOOKBACK_DAYS,
    deadline: options.deadline,
    query: (holdExpiryBucket, cursor) =>
      ctx.db.entities.reservation.query
        .byHoldExpiry({ holdExpiryBucket })
        .lt({ holdExpirySort: sortBoundAfter(now) })
        .go({ limit: options.limit, cursor, attributes: ["userId", "offerGroup", "reservationId"] }),
    visit: async (entries) => {
      const met: DueGroup[] = [];
      for (const { userId, offerGroup, reservationId } of entries) {
        const key = `${userId}\u0000${offerGroup}`;
        let group = groups.get(key);
        if (!group) {
          group = { userId, offerGroup, released: 0, due: new Set() };
          groups.set(key, group);
          met.push(group);
        }
        group.due.add(reservationId);
      }
      for (const group of met) {
        let batch: number;
        do {
          batch = await releaseExpiredHolds(ctx, group.userId, group.offerGroup);
          group.released += batch;
        } while (batch === EXPIRED_HOLDS_PER_WRITE);
        released += group.released;
      }
    },
  });
  return { released, stale: await staleHoldEntries(ctx, groups.values()), walk };
}

/**
 * Checks the groups whose holds released in the run are fewer than their reservations
 * seen due on the index (a request, or another run, went first; or a bug): reads those
 * reservation items (consistent BatchGetItem, 100 a request). Each group was settled
 * after its entries were written, so a reservation due and still `held` on its item is
 * live on no balance item: the item and the balance item went apart (a bug). Each such
 * one is logged as an error and left as it is (nothing to release: the balance item
 * decides what is held). A group that released at least as many as it showed is not
 * read (it may release holds not seen: due since the index Query).
 * @returns how many such entries were found
 */
async function staleHoldEntries(ctx: Pick<Context, "db" | "logger">, groups: Iterable<DueGroup>): Promise<number> {
  let stale = 0;
  for (const { userId, offerGroup, released, due } of groups) {
    if (due.size <= released) continue;
    const ids = [...due];
    for (let at = 0; at < ids.length; at += 100) {
      const { data } = await ctx.db.entities.reservation
        .get(ids.slice(at, at + 100).map((reservationId) => ({ userId, reservationId })))
        .go({ consistent: true, attributes: ["reservationId", "status", "expires"] });
      for (const item of data) {
        if (item.status !== "held") continue;
        stale++;
        ctx.logger.error("hold-expiry index: reservation held on its item but not live on its balance item", { userId, offerGroup, reservationId: item.reservationId, expires: item.expires });
      }
    }
  }
  return stale;
}
