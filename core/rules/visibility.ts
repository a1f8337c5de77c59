/**
 * Which offers a user may see and buy, pure (API.md `GET /offers`; ORIGINAL-BEHAVIOUR.md
 * §1 `loadOffers`/`mergeOffers`, with its bugs fixed: offers without an
 * `overridingKey` never collide, tagged locked offers never leak, a user with no
 * history gets the regular offers, and ties are decided, not left to storage order).
 *
 * 1. Candidates: active offers that are regular (empty `unlockedBy`) or unlocked (one
 *    of their `unlockedBy` offerGroups holds an active paid grant of the user).
 * 2. Offers sharing an `overridingKey` replace each other: the highest `weight` wins;
 *    on equal weight an unlocked offer beats a regular one, then the smaller `offerId`.
 * 3. Tags: any-match, or all-match with `allTags`; an empty list filters nothing.
 * 4. Currency (optional): only offers with a price in it.
 * The result is sorted by `offerId`, so it does not depend on storage order.
 */
import { isDue, type BalanceState } from "./balance-state.js";
import { anyPeriodRunning } from "./periods.js";

/** The offer fields visibility reads. */
export interface VisibilityOffer {
  offerId: string;
  active: boolean;
  unlockedBy: readonly string[];
  overridingKey?: string | null | undefined;
  weight: number;
  tags: readonly string[];
  prices: ReadonlyArray<{ currency: string }>;
}

/**
 * The offerGroups a user's purchase history unlocks at `now`: those holding a grant from a
 * paid order (bundle items and 0-token subscription grants included, exhausted ones too)
 * that has not expired, whether it has started or not. Promotional grants (no order)
 * unlock nothing. Exhausted grants leave the balance item: their periods stay in its
 * `periods` (core/rules/periods.ts), which this reads with the grants in hand. The groups
 * of renewing subscriptions that stand (`standing`: Stripe says `active` or `past_due`,
 * core/rules/renewal.ts) are unlocked too, between a period's end and its renewal's payment.
 */
export function groupsUnlockedBy(balances: Iterable<BalanceState>, now: Date, standing: Iterable<string> = []): Set<string> {
  const groups = new Set<string>(standing);
  for (const state of balances) {
    if (anyPeriodRunning(state.periods ?? [], now) || state.grants.some((grant) => grant.orderId !== undefined && !isDue(grant, now))) groups.add(state.offerGroup);
  }
  return groups;
}

/** True when the offer needs an unlock (non-empty `unlockedBy`). */
export function isLocked(offer: Pick<VisibilityOffer, "unlockedBy">): boolean {
  return offer.unlockedBy.length > 0;
}

/** True when `unlockedGroups` (offerGroups with an active paid grant) opens the offer. */
export function isUnlockedFor(offer: Pick<VisibilityOffer, "unlockedBy">, unlockedGroups: ReadonlySet<string>): boolean {
  return offer.unlockedBy.some((group) => unlockedGroups.has(group));
}

/** Whether `a` beats `b` under the same overriding key (rule 2). */
function beats<T extends VisibilityOffer>(a: T, b: T): boolean {
  if (a.weight !== b.weight) return a.weight > b.weight;
  // Candidates that need an unlock were unlocked (they passed rule 1).
  const aUnlocked = isLocked(a);
  const bUnlocked = isLocked(b);
  if (aUnlocked !== bUnlocked) return aUnlocked;
  return a.offerId < b.offerId;
}

/**
 * The offers visible to a user holding active paid grants in `unlockedGroups` (empty
 * for an anonymous visitor or a user with no history).
 */
export function visibleOffers<T extends VisibilityOffer>(input: {
  offers: readonly T[];
  unlockedGroups: ReadonlySet<string>;
  tags?: readonly string[];
  allTags?: boolean;
  currency?: string | undefined;
}): T[] {
  const { offers, unlockedGroups, tags = [], allTags = false, currency } = input;
  const candidates = offers.filter((offer) => offer.active && (!isLocked(offer) || isUnlockedFor(offer, unlockedGroups)));

  const winners = new Map<string, T>();
  const unkeyed: T[] = [];
  for (const offer of candidates) {
    const key = offer.overridingKey;
    if (key === undefined || key === null || key === "") {
      unkeyed.push(offer);
      continue;
    }
    const current = winners.get(key);
    if (!current || beats(offer, current)) winners.set(key, offer);
  }

  return [...unkeyed, ...winners.values()]
    .filter((offer) => {
      if (tags.length === 0) return true;
      return allTags ? tags.every((tag) => offer.tags.includes(tag)) : tags.some((tag) => offer.tags.includes(tag));
    })
    .filter((offer) => currency === undefined || offer.prices.some((price) => price.currency === currency))
    .sort((a, b) => (a.offerId < b.offerId ? -1 : a.offerId > b.offerId ? 1 : 0));
}
