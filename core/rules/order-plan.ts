/**
 * Order rules, pure: whether a user may order an offer, and the pending order it makes
 * (API.md `POST /users/{userId}/orders`; every rule the original skipped,
 * ORIGINAL-BEHAVIOUR.md §1 `createOrder`, §5: quantity, currency, locked offers, start
 * dates, token and amount limits; issue 9: a free order is for one unit, and a purchase
 * whose dates would fall past 9999-12-31 is refused here, never after payment). The
 * caller reads the offer, its bundle items' offers, the user's unlocked groups and, when
 * the order chains after existing grants, the user's balances first (core/orders.ts),
 * then calls {@link planOrder}.
 *
 * The order copies the offer's terms (price, tokenCount, cycle, appendDate, bundle items
 * with their offers' terms), so that editing an offer never changes orders already placed
 * (API.md "Offers").
 */
import { DomainError, NotFoundError, ValidationError } from "../errors.js";
import { MAX_TOKENS, type BalanceState } from "./balance-state.js";
import { LAST_INSTANT_MS, withinCalendar, type Cycle } from "./cycles.js";
import { created, type OrderBundleItem, type OrderProvider, type OrderRecord } from "./order-lifecycle.js";
import { planPurchase } from "./purchase-plan.js";
import { isUnlockedFor } from "./visibility.js";
import { notRenewable, RENEWAL_REFUSALS, type Renewal } from "./renewal.js";

/** The offer fields an order copies or checks (a stored offer fits). */
export interface OrderableOffer {
  offerId: string;
  name: string;
  kind: string;
  offerGroup: string;
  active: boolean;
  cycle: Cycle;
  customCycleSeconds?: number | undefined;
  appendDate: boolean;
  /** `auto`: renewed by a Stripe Subscription (absent: `none`). */
  renewal?: Renewal | undefined;
  tokenCount: number;
  prices: ReadonlyArray<{ amount: number; currency: string }>;
  quantityLimit?: number | undefined;
  unlockedBy: readonly string[];
  combinedItems: ReadonlyArray<{ offerId: string; quantity: number }>;
}

/** What the buyer asked for. */
export interface OrderRequest {
  userId: string;
  /** Integer >= 1 (default 1). */
  quantity?: number | undefined;
  /** Lowercase ISO 4217; default `defaultCurrency`. */
  currency?: string | undefined;
  /** A future ISO instant for the grant to start, or null/absent. */
  starts?: string | null | undefined;
  /** Asks for a Stripe Checkout Session instead of a PaymentIntent. */
  checkout?: { successUrl: string; cancelUrl: string } | undefined;
}

/**
 * Checks every order rule and builds the pending order (nothing is written), in this
 * order: quantity, offer active, quantity limit, currency, start, unlock, bundle items,
 * tokens per group, total (a free one: one unit), dates within 9999-12-31.
 * @param offer the offer as read, undefined when there is none
 * @param itemOffers the offers of the bundle's items, by id (missing: deleted since);
 *   their prices give each item's `value` in the order's currency
 * @param unlockedGroups the offerGroups the user's active paid grants unlock (read only
 *   for a locked offer; an empty set otherwise)
 * @param balances the user's balances, by offerGroup, read when the order chains after
 *   existing grants (an `appendDate` offer without a requested start, or a bundle); an
 *   empty map otherwise. The purchase is planned as if paid `now`, from these chain heads.
 * @param provider the configured payment provider's name, and its amount check (which
 *   throws DomainError `amount_out_of_range`)
 * @returns the order, `pending` (a total of 0 is a free order, paid by the caller)
 * @throws ValidationError (quantity), NotFoundError (unknown or inactive offer),
 *   DomainError `quantity_limit_exceeded` (also a free order for more than one unit),
 *   `currency_not_offered`, `start_in_past`, `not_renewable` (a renewing offer ordered
 *   with a start, for free, or without Stripe), `offer_locked`, `conflict` (a bundle item's
 *   offer is gone), `amount_out_of_range`, `period_out_of_range` (a start or an expiry
 *   past 9999-12-31)
 */
export function planOrder(input: {
  request: OrderRequest;
  offerId: string;
  offer: OrderableOffer | undefined;
  itemOffers: ReadonlyMap<string, Pick<OrderableOffer, "offerGroup" | "tokenCount" | "appendDate" | "prices">>;
  unlockedGroups: ReadonlySet<string>;
  balances: ReadonlyMap<string, BalanceState>;
  orderId: string;
  defaultCurrency: string;
  provider: { name: "stripe" | "manual"; checkAmount(amount: number, currency: string): void };
  now: Date;
}): OrderRecord {
  const { request, offer, now } = input;
  const quantity = request.quantity ?? 1;
  if (!Number.isInteger(quantity) || quantity < 1) throw new ValidationError({ quantity: "must be an integer >= 1" });

  // A. The offer, active.
  if (!offer || !offer.active) throw new NotFoundError("offer", input.offerId);

  // B. Quantity, currency, start.
  if (offer.quantityLimit !== undefined && quantity > offer.quantityLimit) {
    throw new DomainError("quantity_limit_exceeded", `At most ${offer.quantityLimit} per order.`, {
      quantity,
      quantityLimit: offer.quantityLimit,
    });
  }
  const currency = request.currency ?? input.defaultCurrency;
  const price = offer.prices.find((p) => p.currency === currency);
  if (!price) {
    throw new DomainError("currency_not_offered", `The offer has no price in ${currency}.`, {
      currency,
      offered: offer.prices.map((p) => p.currency),
    });
  }
  if (request.starts && Date.parse(request.starts) <= now.getTime()) {
    throw new DomainError("start_in_past", "starts must be in the future.", { starts: request.starts });
  }
  // A renewing offer is bought as a Stripe Subscription: it starts when paid, bills an
  // amount, and only Stripe renews it (core/rules/renewal.ts).
  const renews = offer.renewal === "auto";
  if (renews) {
    const reason = notRenewable(offer, request.starts, now) ?? (price.amount === 0 ? "free" : input.provider.name !== "stripe" ? "provider" : undefined);
    if (reason) throw new DomainError("not_renewable", `Offer ${offer.offerId} cannot be ordered as a renewing subscription: ${RENEWAL_REFUSALS[reason]}.`, { offerId: offer.offerId, reason });
  }

  // C. Locked offers need an unlocking grant.
  if (offer.unlockedBy.length > 0 && !isUnlockedFor(offer, input.unlockedGroups)) {
    throw new DomainError("offer_locked", "This offer is unlocked by a subscription the user does not hold.", {
      offerId: offer.offerId,
      unlockedBy: offer.unlockedBy,
    });
  }

  // D. Bundle items, with their offers' terms copied, and their value in the order's
  //    currency (what refunds weigh them by; absent without a price in it).
  const combinedItems = offer.combinedItems.map((item): OrderBundleItem => {
    const itemOffer = input.itemOffers.get(item.offerId);
    if (!itemOffer) throw new DomainError("conflict", `Bundle item ${item.offerId} no longer exists.`, { offerId: item.offerId });
    const itemPrice = itemOffer.prices.find((p) => p.currency === currency);
    const value = itemPrice ? itemPrice.amount * item.quantity * quantity : undefined;
    return {
      offerId: item.offerId,
      offerGroup: itemOffer.offerGroup,
      quantity: item.quantity,
      tokenCount: itemOffer.tokenCount,
      tokens: item.quantity * quantity * itemOffer.tokenCount,
      appendDate: itemOffer.appendDate,
      ...(value !== undefined && Number.isSafeInteger(value) ? { value } : {}),
    };
  });

  // E. Tokens stay within what one grant may hold.
  const largest = Math.max(offer.tokenCount * quantity, ...combinedItems.map((item) => item.tokens));
  if (largest > MAX_TOKENS) {
    throw new DomainError("quantity_limit_exceeded", `One order may grant at most ${MAX_TOKENS} tokens per offerGroup.`, {
      quantity,
      tokens: largest,
      maximum: MAX_TOKENS,
    });
  }

  // F. Total, in minor units. A free order is for exactly one unit.
  const amount = price.amount * quantity;
  if (!Number.isSafeInteger(amount)) throw new DomainError("amount_out_of_range", "The total is too large.", { amount });
  if (amount === 0 && quantity !== 1) {
    throw new DomainError("quantity_limit_exceeded", "A free order is for exactly one unit (quantity 1).", { quantity, quantityLimit: 1 });
  }
  if (amount > 0) input.provider.checkAmount(amount, currency);

  const provider: OrderProvider =
    amount === 0 ? "free" : request.checkout && input.provider.name === "stripe" ? "stripe_checkout" : input.provider.name;
  const order: OrderRecord = {
    userId: request.userId,
    orderId: input.orderId,
    offerId: offer.offerId,
    offerName: offer.name,
    offerGroup: offer.offerGroup,
    kind: offer.kind,
    quantity,
    total: { amount, currency },
    tokenCount: offer.tokenCount,
    tokens: offer.tokenCount * quantity,
    cycle: offer.cycle,
    appendDate: offer.appendDate,
    ...(renews ? { renewal: "auto" as const } : {}),
    combinedItems,
    provider,
    paymentIntentIds: [],
    attempt: amount === 0 ? 0 : 1,
    grantIds: [],
    ...created({ userId: request.userId, orderId: input.orderId, now }),
    ...(offer.customCycleSeconds !== undefined ? { customCycleSeconds: offer.customCycleSeconds } : {}),
    ...(request.starts ? { requestedStarts: new Date(request.starts).toISOString() } : {}),
  };

  // G. Dates within 9999-12-31: the start asked for, and every grant's expiry as if paid
  //    now, from the chain heads read (fulfilment clamps what time or a grown chain adds
  //    later, core/rules/purchase-plan.ts).
  const latest = new Date(LAST_INSTANT_MS).toISOString();
  const outOfRange = (offerGroup: string) =>
    new DomainError("period_out_of_range", `The order's dates would fall past ${latest}.`, {
      quantity,
      cycle: offer.cycle,
      offerGroup,
      latest,
      ...(request.starts ? { starts: request.starts } : {}),
    });
  if (request.starts && !withinCalendar(new Date(request.starts))) throw outOfRange(offer.offerGroup);
  // A renewing order's periods are Stripe's, one at a time (quantity multiplies tokens, not time).
  if (renews) return order;
  const clamped = planPurchase({ order, balances: input.balances, now, newGrantId: () => "planned" }).clamped[0];
  if (clamped) throw outOfRange(clamped.offerGroup);
  return order;
}
