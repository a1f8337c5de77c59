/**
 * Paid periods, pure: what a group's paid grants say about subscriptions, kept on its
 * balance item so that the grants themselves may leave it once exhausted (DESIGN.md
 * "The balance item stays small, whatever the history"; issue 9).
 *
 * Three reads depended on every paid grant staying in the balance item until its expiry:
 * - visibility (core/rules/visibility.ts): a group unlocks offers while it holds a paid
 *   grant that is not past its expiry;
 * - `GET /users/{userId}/subscriptions/{offerId}` (core/credits.ts): subscribed while a
 *   paid grant of an order of that offer is not past its expiry, and the order of the one
 *   that starts first among them (the current period);
 * - a free offer may not be taken again while a root grant of it is not past its expiry
 *   (core/orders.ts `createFreeOrder`).
 * A period is what those reads need of one paid grant: the offer of its order, the order,
 * its start and expiry, and whether it is the order's root grant. The balance item keeps
 * the periods of its paid grants that are *not in its map* (emptied by a consumption,
 * emptied on arrival by debt, or spilled to overflow items); the grants in the map give
 * theirs directly, so a grant taken out of the map (a refund ends it) takes its period with
 * it. The readers above read both. The list of periods is a *front*: a period is dropped when another of the same offer and kind starts no later
 * and ends no earlier (it is then never the answer of any read above, at any instant), and
 * when it is past its expiry. Purchases of one offer that never expire leave one period;
 * a subscription leaves its current and next periods. A front longer than
 * {@link PERIODS_KEPT} keeps its first periods and its last (the one that ends last), so
 * "is there one" stays exact always, and "which order is current" is exact while no more
 * than that many periods of one offer overlap (documented limit; today's item held them all).
 *
 * Instants are ISO 8601 strings (UTC); a period without `expires` never ends.
 */

/** One paid grant's period, as the balance item keeps it (core/db/balance.ts stores this shape). */
export interface PaidPeriod {
  /** The offer of the order (a bundle's root offer, also for its items' grants). */
  offerId: string;
  orderId: string;
  starts: string;
  /** Absent: never ends (`once`). */
  expires?: string | undefined;
  /** True for the order's root grant (its own offer), false for a bundle item's grant. */
  root: boolean;
}

/** Most periods kept per (offer, kind) in one group: the first ones and the one that ends last. */
export const PERIODS_KEPT = 4;

function endOf(period: Pick<PaidPeriod, "expires">): number {
  return period.expires === undefined ? Number.POSITIVE_INFINITY : Date.parse(period.expires);
}

/** True when the period has ended at `now` (its expiry is at or before it). */
export function periodEnded(period: Pick<PaidPeriod, "expires">, now: Date): boolean {
  return endOf(period) <= now.getTime();
}

/** True when `a` makes `b` useless: same offer and kind, starts no later, ends no earlier. */
function dominates(a: PaidPeriod, b: PaidPeriod): boolean {
  return a.offerId === b.offerId && a.root === b.root && Date.parse(a.starts) <= Date.parse(b.starts) && endOf(a) >= endOf(b);
}

/**
 * The front after adding `period` (when given) at `now`: ended periods and dominated ones
 * dropped, at most {@link PERIODS_KEPT} per (offer, kind), sorted by offer, kind, start.
 * A period equal to one already kept is not added twice.
 */
export function addPeriod(periods: readonly PaidPeriod[], period: PaidPeriod | undefined, now: Date): PaidPeriod[] {
  const live = periods.filter((kept) => !periodEnded(kept, now));
  const all = period && !periodEnded(period, now) ? [...live, period] : live;
  // A period survives unless another one dominates it; of equal ones, the first listed stays.
  const front = all.filter((candidate, index) =>
    !all.some((other, otherIndex) => otherIndex !== index && dominates(other, candidate) && (!dominates(candidate, other) || otherIndex < index)),
  );
  front.sort((a, b) =>
    a.offerId !== b.offerId ? (a.offerId < b.offerId ? -1 : 1) : a.root !== b.root ? (a.root ? -1 : 1) : Date.parse(a.starts) - Date.parse(b.starts) || (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0),
  );
  const kept: PaidPeriod[] = [];
  for (let start = 0; start < front.length; ) {
    let end = start;
    while (end < front.length && front[end]!.offerId === front[start]!.offerId && front[end]!.root === front[start]!.root) end++;
    const run = front.slice(start, end);
    kept.push(...(run.length <= PERIODS_KEPT ? run : [...run.slice(0, PERIODS_KEPT - 1), run[run.length - 1]!]));
    start = end;
  }
  return kept;
}

/** The period a grant adds: undefined for a promotional grant (no order). */
export function periodOf(grant: { orderId?: string | undefined; orderOfferId?: string | undefined; offerId?: string | undefined; starts: string; expires?: string | undefined }): PaidPeriod | undefined {
  if (grant.orderId === undefined) return undefined;
  const offerId = grant.orderOfferId ?? grant.offerId;
  if (offerId === undefined) return undefined;
  return {
    offerId,
    orderId: grant.orderId,
    starts: grant.starts,
    ...(grant.expires !== undefined ? { expires: grant.expires } : {}),
    root: grant.offerId === undefined || grant.offerId === offerId,
  };
}

/**
 * The stored front: `periods` pruned at `now` and with the periods of `mapGrants` left out
 * (a grant in the map gives its period itself).
 */
export function periodsBesides(periods: readonly PaidPeriod[], mapGrants: Iterable<Parameters<typeof periodOf>[0]>, now: Date): PaidPeriod[] {
  const inMap = new Set<string>();
  for (const grant of mapGrants) {
    const period = periodOf(grant);
    if (period) inMap.add(periodKey(period));
  }
  return addPeriod(periods, undefined, now).filter((period) => !inMap.has(periodKey(period)));
}

function periodKey(period: PaidPeriod): string {
  return `${period.offerId}|${period.orderId}|${period.starts}|${period.expires ?? ""}|${period.root}`;
}

/** True when some period has not ended at `now` (the group unlocks offers). */
export function anyPeriodRunning(periods: readonly PaidPeriod[], now: Date): boolean {
  return periods.some((period) => !periodEnded(period, now));
}

/**
 * The current period of `offerId` at `now`: of the periods of its orders that have not
 * ended (started or not), the one that starts first; undefined when none.
 */
export function currentPeriod(periods: Iterable<PaidPeriod>, offerId: string, now: Date): PaidPeriod | undefined {
  let best: PaidPeriod | undefined;
  for (const period of periods) {
    if (period.offerId !== offerId || periodEnded(period, now)) continue;
    if (!best || Date.parse(period.starts) < Date.parse(best.starts)) best = period;
  }
  return best;
}

/** True when a root grant of an order of `offerId` has not ended at `now` (a free offer is still active). */
export function rootRunning(periods: readonly PaidPeriod[], offerId: string, now: Date): boolean {
  return periods.some((period) => period.offerId === offerId && period.root && !periodEnded(period, now));
}
