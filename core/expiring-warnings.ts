/**
 * `credits.expiring` (API.md "Events"): once per grant, when the daily job finds it
 * expiring within its group's `expiryWarningDays` (default 7). Candidates come from the
 * sparse expiry index (grants expiring between now and the widest window), so the cost
 * grows with the grants expiring soon, not with all grants; those already warned are
 * skipped from the index entry itself. Each warning is one transaction: the grant marked
 * warned (conditional on it being active and not yet warned) and the event, so a grant
 * is warned once however often the job runs.
 */
import type { Context } from "./context.js";
import { readBalance } from "./balances.js";
import { commit, transactWrite } from "./db/transact.js";
import { eventWrite } from "./events.js";
import { daysBetween, EXPIRY_SHARDS, expiryBucket, utcDay } from "./rules/work-index.js";
import { DEFAULT_EXPIRY_WARNING_DAYS, listOfferGroups } from "./offer-groups.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/** What a warning pass did. */
export interface ExpiringSummary {
  /** `credits.expiring` events raised. */
  warned: number;
  /** Index entries read. */
  candidates: number;
  /** False when the deadline stopped it early. */
  complete: boolean;
}

/**
 * Raises `credits.expiring` for every active grant expiring within its group's window
 * after `now` that was not warned about yet.
 * @param options.deadline epoch ms after which no new page is started
 */
export async function warnExpiringGrants(
  ctx: Pick<Context, "db" | "clock">,
  options: { deadline?: number; pageSize?: number } = {},
): Promise<ExpiringSummary> {
  const now = ctx.clock.now();
  const settings = await listOfferGroups(ctx);
  const windowDays = (offerGroup: string) => settings.get(offerGroup)?.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS;
  const widest = Math.max(DEFAULT_EXPIRY_WARNING_DAYS, ...[...settings.values()].map((s) => s.expiryWarningDays));
  const end = new Date(now.getTime() + widest * DAY_MS);
  const summary: ExpiringSummary = { warned: 0, candidates: 0, complete: true };

  for (const day of daysBetween(utcDay(now), utcDay(end))) {
    for (let shard = 0; shard < EXPIRY_SHARDS; shard++) {
      let cursor: string | null = null;
      do {
        if (options.deadline !== undefined && Date.now() > options.deadline) return { ...summary, complete: false };
        const page: { data: Array<{ userId: string; grantId: string; offerGroup: string; orderId?: string; expires?: string; expiringWarnedAt?: string }>; cursor: string | null } =
          await ctx.db.entities.grant.query
            .byExpiry({ expiryBucket: expiryBucket(day, shard) })
            .between({ expirySort: `${now.toISOString()}$` }, { expirySort: `${end.toISOString()}$` })
            .go({ limit: options.pageSize ?? 100, cursor, attributes: ["userId", "grantId", "offerGroup", "orderId", "expires", "expiringWarnedAt"] });
        summary.candidates += page.data.length;
        for (const grant of page.data) {
          if (grant.expiringWarnedAt || !grant.expires) continue;
          if (Date.parse(grant.expires) - now.getTime() > windowDays(grant.offerGroup) * DAY_MS) continue;
          if (await warnGrant(ctx, grant as typeof grant & { expires: string }, now)) summary.warned++;
        }
        cursor = page.cursor;
      } while (cursor);
    }
  }
  return summary;
}

/** Marks the grant warned and writes its event, once. @returns whether this call did it */
async function warnGrant(
  ctx: Pick<Context, "db">,
  grant: { userId: string; grantId: string; offerGroup: string; orderId?: string; expires: string },
  now: Date,
): Promise<boolean> {
  const { balance } = await readBalance(ctx, grant.userId, grant.offerGroup);
  const written = await transactWrite(ctx.db, [
    commit(
      ctx.db.entities.grant
        .patch({ userId: grant.userId, grantId: grant.grantId })
        .set({ expiringWarnedAt: now.toISOString() })
        .where((attr, op) => `${op.eq(attr.status, "active")} AND ${op.notExists(attr.expiringWarnedAt)}`),
    ),
    eventWrite(
      ctx.db,
      {
        type: "credits.expiring",
        userId: grant.userId,
        offerGroup: grant.offerGroup,
        grantId: grant.grantId,
        ...(grant.orderId ? { orderId: grant.orderId } : {}),
        balance,
        expires: grant.expires,
      },
      now,
    ).item,
  ]);
  return written.committed;
}
