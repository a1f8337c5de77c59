/**
 * Credits: what a user holds now, per offerGroup, and whether they hold an offer's
 * subscription (API.md `GET /users/{userId}/credits`, `GET
 * /users/{userId}/subscriptions/{offerId}`; the original's `loadUserCredits` and
 * `isUserAlreadySubscribed`, which ignored expiry).
 *
 * A read first expires any grant already past its instant (so the balance shown is
 * what can be spent); then it is one Query of the user's balance items.
 */
import type { Context } from "./context.js";
import { isDue, type BalanceState } from "./rules/balance-state.js";
import { readBalances } from "./balances.js";
import { expireUser } from "./expiry.js";
import { getOrder, type Order } from "./orders.js";

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
  /** Σ remaining − debt; negative with debt. */
  balance: number;
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

async function settledBalances(ctx: Pick<Context, "db" | "clock">, userId: string): Promise<Map<string, BalanceState>> {
  const now = ctx.clock.now();
  const balances = await readBalances(ctx, userId);
  const anyDue = [...balances.values()].some((state) => state.grants.some((grant) => isDue(grant, now)));
  if (!anyDue) return balances;
  await expireUser(ctx, userId);
  return readBalances(ctx, userId);
}

function groupView(state: BalanceState): GroupCredits {
  const grants = [...state.grants].sort((a, b) => (a.starts < b.starts ? -1 : a.starts > b.starts ? 1 : a.grantId < b.grantId ? -1 : 1));
  const starts = grants.length > 0 ? grants[0]!.starts : null;
  const expiries = grants.map((grant) => grant.expires).filter((at): at is string => at !== undefined).sort();
  return {
    offerGroup: state.offerGroup,
    balance: state.balance,
    debt: state.debt,
    starts,
    expires: expiries.length > 0 ? expiries[expiries.length - 1]! : null,
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

/** The user's credits now: every group they ever had, with its active grants. */
export async function getCredits(ctx: Pick<Context, "db" | "clock">, userId: string): Promise<Credits> {
  const balances = await settledBalances(ctx, userId);
  const groups = [...balances.values()].sort((a, b) => (a.offerGroup < b.offerGroup ? -1 : 1)).map(groupView);
  const subscriptions: SubscriptionView[] = [];
  for (const group of groups) {
    for (const grant of group.grants) {
      if (grant.orderId === null || grant.offerId === null) continue;
      subscriptions.push({
        orderId: grant.orderId,
        offerId: grant.offerId,
        offerGroup: group.offerGroup,
        status: "paid",
        starts: grant.starts,
        expires: grant.expires,
      });
    }
  }
  return { userId, groups, subscriptions };
}

/**
 * Whether the user holds an active grant (started or future, not expired) from a paid
 * order of `offerId`, and that order (the current period's when there are several).
 */
export async function checkSubscription(ctx: Context, userId: string, offerId: string): Promise<{ subscribed: boolean; order: Order | null }> {
  const now = ctx.clock.now();
  const balances = await readBalances(ctx, userId);
  const grants = [...balances.values()]
    .flatMap((state) => state.grants)
    .filter((grant) => grant.orderOfferId === offerId && grant.orderId !== undefined && !isDue(grant, now))
    .sort((a, b) => (a.starts < b.starts ? -1 : 1));
  if (grants.length === 0) return { subscribed: false, order: null };
  return { subscribed: true, order: await getOrder(ctx, userId, grants[0]!.orderId!) };
}
