/**
 * Credits: what a user holds now, per offerGroup, and whether they hold an offer's
 * subscription (API.md `GET /users/{userId}/credits`, `GET
 * /users/{userId}/subscriptions/{offerId}`; the original's `loadUserCredits` and
 * `isUserAlreadySubscribed`, which ignored expiry).
 *
 * A read first expires any grant already past its instant (so the balance shown is
 * what can be spent) and releases any hold past its expiry (status `expired`, one
 * transaction per group that has some); then it is one Query of the user's balance items, and, for a group
 * with grants spilled to overflow items, one Query of those (core/balances.ts).
 *
 * Grants listed: those still holding tokens and the 0-token periods; a grant a
 * consumption emptied has left the balance item (its grant item and the ledger keep it),
 * and its period stays among `subscriptions` while it runs, unless its order has been
 * refunded since (the order says so: one BatchGetItem of those orders). A group's
 * `expires` is its appendDate chain head (the latest expiry of its unexpired grants,
 * exhausted ones included).
 */
import type { Context } from "./context.js";
import { chainHead, type BalanceState } from "./rules/balance-state.js";
import { currentPeriod, periodEnded, periodOf, type PaidPeriod } from "./rules/periods.js";
import { readBalances, withAllGrants } from "./balances.js";
import { expireUser, hasExpiryWork } from "./expiry.js";
import { EXPIRED_HOLDS_PER_WRITE, hasExpiredHolds, releaseExpiredHolds } from "./reservations.js";
import { heldTokens } from "./rules/holds.js";
import { getOrder, type Order } from "./orders.js";
import { findRenewal, toRenewalView } from "./subscriptions.js";
import { STANDING_STATUSES } from "./rules/renewal.js";

/** The orders among `orderIds` that have been refunded (read consistently, in one BatchGetItem per 100). */
async function refundedOrders(ctx: Pick<Context, "db">, userId: string, orderIds: Iterable<string>): Promise<Set<string>> {
  const ids = [...new Set(orderIds)];
  const refunded = new Set<string>();
  for (let at = 0; at < ids.length; at += 100) {
    const { data } = await ctx.db.entities.order.get(ids.slice(at, at + 100).map((orderId) => ({ userId, orderId }))).go({ consistent: true, attributes: ["orderId", "status"] });
    for (const order of data) if (order.status === "refunded") refunded.add(order.orderId);
  }
  return refunded;
}

/** One grant in the credits view. */
export interface GrantView {
  grantId: string;
  orderId: string | null;
  offerId: string | null;
  tokens: number;
  remaining: number;
  starts: string;
  expires: string | null;
}

/** One offerGroup in the credits view. */
export interface GroupCredits {
  offerGroup: string;
  /** Σ remaining − debt (spendable now, live holds not counted); negative with debt. */
  balance: number;
  /** Tokens in the group's live reservations (core/reservations.ts): Σ of their holds. */
  held: number;
  debt: number;
  /** Earliest start of its active grants, or null without any. */
  starts: string | null;
  /** Latest expiry of its active grants, or null if none expires. */
  expires: string | null;
  grants: GrantView[];
}

/** An active grant from a paid order (a subscription period). */
export interface SubscriptionView {
  orderId: string;
  offerId: string;
  offerGroup: string;
  status: "paid";
  starts: string;
  expires: string | null;
}

/** The credits view (API.md). */
export interface Credits {
  userId: string;
  groups: GroupCredits[];
  subscriptions: SubscriptionView[];
}

/** The user's balances with nothing due, each with all its grants in hand. */
async function settledBalances(ctx: Pick<Context, "db" | "clock">, userId: string): Promise<BalanceState[]> {
  const now = ctx.clock.now();
  let balances = await readBalances(ctx, userId);
  if ([...balances.values()].some((state) => hasExpiryWork(state, now))) {
    await expireUser(ctx, userId);
    balances = await readBalances(ctx, userId);
  }
  // Holds past their expiry go back first (core/reservations.ts), so that `held` counts live ones only.
  const expiredHolds = [...balances.values()].filter((state) => hasExpiredHolds(state, now));
  if (expiredHolds.length > 0) {
    for (const state of expiredHolds) {
      // At most EXPIRED_HOLDS_PER_WRITE per transaction: again while a full batch went.
      let released: number;
      do released = await releaseExpiredHolds(ctx, userId, state.offerGroup);
      while (released === EXPIRED_HOLDS_PER_WRITE);
    }
    balances = await readBalances(ctx, userId);
  }
  return Promise.all([...balances.values()].map((state) => withAllGrants(ctx, state)));
}

function groupView(state: BalanceState, now: Date): GroupCredits {
  const grants = [...state.grants].sort((a, b) => (a.starts < b.starts ? -1 : a.starts > b.starts ? 1 : a.grantId < b.grantId ? -1 : 1));
  const starts = grants.length > 0 ? grants[0]!.starts : null;
  const head = chainHead(state, now);
  return {
    offerGroup: state.offerGroup,
    balance: state.balance,
    held: heldTokens(state.holds ?? []),
    debt: state.debt,
    starts,
    expires: head ? head.toISOString() : null,
    grants: grants.map((grant) => ({
      grantId: grant.grantId,
      orderId: grant.orderId ?? null,
      offerId: grant.offerId ?? null,
      tokens: grant.tokens,
      remaining: grant.remaining,
      starts: grant.starts,
      expires: grant.expires ?? null,
    })),
  };
}

/**
 * The user's credits now: every group they ever had, with the grants it holds (tokens
 * left, or a 0-token period), and the running paid periods as subscriptions (those of
 * the grants listed, then those of exhausted grants, from the group's `periods`).
 */
export async function getCredits(ctx: Pick<Context, "db" | "clock">, userId: string): Promise<Credits> {
  const now = ctx.clock.now();
  const balances = (await settledBalances(ctx, userId)).sort((a, b) => (a.offerGroup < b.offerGroup ? -1 : 1));
  const groups = balances.map((state) => groupView(state, now));
  const subscriptions: SubscriptionView[] = [];
  const fromPeriods: SubscriptionView[] = [];
  balances.forEach((state, index) => {
    const group = groups[index]!;
    const listed = new Set<string>();
    for (const grant of group.grants) {
      if (grant.orderId === null || grant.offerId === null) continue;
      listed.add(`${grant.orderId}|${grant.starts}|${grant.expires}`);
      subscriptions.push({ orderId: grant.orderId, offerId: grant.offerId, offerGroup: group.offerGroup, status: "paid", starts: grant.starts, expires: grant.expires });
    }
    for (const period of state.periods ?? []) {
      const expires = period.expires ?? null;
      if (periodEnded(period, now) || listed.has(`${period.orderId}|${period.starts}|${expires}`)) continue;
      fromPeriods.push({ orderId: period.orderId, offerId: period.offerId, offerGroup: group.offerGroup, status: "paid", starts: period.starts, expires });
    }
  });
  const refunded = fromPeriods.length > 0 ? await refundedOrders(ctx, userId, fromPeriods.map((view) => view.orderId)) : new Set<string>();
  subscriptions.push(...fromPeriods.filter((view) => !refunded.has(view.orderId)));
  return { userId, groups, subscriptions };
}

/** What the subscription check answers (API.md `GET /users/{userId}/subscriptions/{offerId}`). */
export interface SubscriptionCheck {
  subscribed: boolean;
  order: Order | null;
  /** Renewing offers only (core/subscriptions.ts): it will renew, its paid period's end, and whether it ends with it. */
  renews?: boolean;
  currentPeriodEnd?: string | null;
  cancelAtPeriodEnd?: boolean;
}

/**
 * Whether the user holds an active grant (started or future, not expired, exhausted or
 * not) from a paid order of `offerId`, and that order (the current period's when there
 * are several: the one that starts first). Reads the balance items' `periods` (which keep
 * exhausted grants' periods, core/rules/periods.ts) and the grants in their maps: one
 * Query, then the order (an order refunded since its grants left the map is passed over).
 * A renewing offer (one GetItem of its subscription item, read alongside) also counts
 * while its Stripe subscription is `active` or `past_due` (issue 13): between a period's
 * end and its renewal invoice being paid (about an hour, Stripe's invoice finalization
 * delay, longer during Smart Retries) the customer keeps what the plan unlocks, though the
 * new period's tokens arrive only with the payment.
 */
export async function checkSubscription(ctx: Context, userId: string, offerId: string): Promise<SubscriptionCheck> {
  const [found, renewal] = await Promise.all([periodCheck(ctx, userId, offerId), findRenewal(ctx, userId, offerId)]);
  if (!renewal) return found;
  const view = toRenewalView(renewal);
  const extra = { renews: view.renews, currentPeriodEnd: view.currentPeriodEnd, cancelAtPeriodEnd: view.cancelAtPeriodEnd };
  if (found.subscribed || !STANDING_STATUSES.has(renewal.status)) return { ...found, ...extra };
  return { subscribed: true, order: await getOrder(ctx, userId, renewal.orderId), ...extra };
}

/** {@link checkSubscription} from the paid periods alone. */
async function periodCheck(ctx: Context, userId: string, offerId: string): Promise<SubscriptionCheck> {
  const now = ctx.clock.now();
  const balances = await readBalances(ctx, userId);
  const periods: PaidPeriod[] = [];
  for (const state of balances.values()) {
    periods.push(...(state.periods ?? []));
    for (const grant of state.grants) {
      const period = periodOf(grant);
      if (period) periods.push(period);
    }
  }
  // The current period's order; one refunded since its grants left the map no longer counts.
  for (;;) {
    const current = currentPeriod(periods, offerId, now);
    if (!current) return { subscribed: false, order: null };
    const order = await getOrder(ctx, userId, current.orderId);
    if (order.status !== "refunded") return { subscribed: true, order };
    for (let i = periods.length - 1; i >= 0; i--) if (periods[i]!.orderId === current.orderId) periods.splice(i, 1);
  }
}
