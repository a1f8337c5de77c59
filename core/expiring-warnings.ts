/**
 * `credits.expiring` (API.md "Events"): once per grant, when the daily job finds it
 * expiring within its group's `expiryWarningDays` (default 7; core/rules/warnings.ts).
 * Candidates come from the work index (grants expiring between now and the widest
 * window, core/day-walk.ts), so the cost grows with the grants expiring soon, not with
 * all grants; those already warned are skipped from the index entry itself. Each warning
 * is one transaction: the grant marked warned (conditional on it being active and not
 * yet warned) and the event, so a grant is warned once however often the job runs.
 */
import type { Context } from "./context.js";
import { readBalance } from "./balances.js";
import { walkDays } from "./day-walk.js";
import { commit, transactWrite } from "./db/transact.js";
import { eventWrite } from "./events.js";
import { listOfferGroups } from "./offer-groups.js";
import { daysBetween, utcDay } from "./rules/time.js";
import { DEFAULT_EXPIRY_WARNING_DAYS, isExpiringSoon, widestWindowEnd } from "./rules/warnings.js";
import { sortBoundAfter } from "./rules/work-index.js";

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
  const end = widestWindowEnd(settings.values(), now);
  let warned = 0;
  const walk = await walkDays({
    days: daysBetween(utcDay(now), utcDay(end)),
    deadline: options.deadline,
    query: (expiryBucket, cursor) =>
      ctx.db.entities.grant.query
        .byExpiry({ expiryBucket })
        .between({ expirySort: sortBoundAfter(now) }, { expirySort: sortBoundAfter(end) })
        .go({ limit: options.pageSize ?? 100, cursor, attributes: ["userId", "grantId", "offerGroup", "orderId", "expires", "expiringWarnedAt"] }),
    visit: async (grants) => {
      for (const grant of grants) {
        if (grant.expiringWarnedAt || !grant.expires) continue;
        if (!isExpiringSoon(grant.expires, now, windowDays(grant.offerGroup))) continue;
        if (await warnGrant(ctx, { ...grant, expires: grant.expires }, now)) warned++;
      }
    },
  });
  return { warned, candidates: walk.candidates, complete: walk.complete };
}

/** Marks the grant warned and writes its event, once. @returns whether this call did it */
async function warnGrant(
  ctx: Pick<Context, "db">,
  grant: { userId: string; grantId: string; offerGroup: string; orderId?: string | undefined; expires: string },
  now: Date,
): Promise<boolean> {
  const { balance } = await readBalance(ctx, grant.userId, grant.offerGroup);
  const written = await transactWrite(ctx.db, {
    grant: commit(
      ctx.db.entities.grant
        .patch({ userId: grant.userId, grantId: grant.grantId })
        .set({ expiringWarnedAt: now.toISOString() })
        .where((attr, op) => `${op.eq(attr.status, "active")} AND ${op.notExists(attr.expiringWarnedAt)}`),
    ),
    event: eventWrite(
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
  });
  return written.committed;
}
