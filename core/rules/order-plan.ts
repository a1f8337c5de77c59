/**
 * Order rules, pure: whether a user may order an offer, and the pending order it makes
 * (API.md `POST /users/{userId}/orders`; every rule the original skipped,
 * ORIGINAL-BEHAVIOUR.md §1 `createOrder`, §5: quantity, currency, locked offers, start
 * dates, token and amount limits). The caller reads the offer, its bundle items' offers
 * and the user's unlocked groups first (core/orders.ts), then calls {@link planOrder}.
 *
 * The order copies the offer's terms (price, tokenCount, cycle, appendDate, bundle items
 * with their offers' terms), so that editing an offer never changes orders already placed
 * (API.md "Offers").
 */
import { DomainError, NotFoundError, ValidationError } from "../errors.js";
import { MAX_TOKENS } from "./balance-state.js";
import type { Cycle } from "./cycles.js";
import { created, type OrderProvider, type OrderRecord } from "./order-lifecycle.js";
import { isUnlockedFor } from "./visibility.js";

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
 * tokens per group, total.
 * @param offer the offer as read, undefined when there is none
 * @param itemOffers the offers of the bundle's items, by id (missing: deleted since)
 * @param unlockedGroups the offerGroups the user's active paid grants unlock (read only
 *   for a locked offer; an empty set otherwise)
 * @param provider the configured payment provider's name, and its amount check (which
 *   throws DomainError `amount_out_of_range`)
 * @returns the order, `pending` (a total of 0 is a free order, paid by the caller)
 * @throws ValidationError (quantity), NotFoundError (unknown or inactive offer),
 *   DomainError `quantity_limit_exceeded`, `currency_not_offered`, `start_in_past`,
 *   `offer_locked`, `conflict` (a bundle item's offer is gone), `amount_out_of_range`
 */
export function planOrder(input: {
  request: OrderRequest;
  offerId: string;
  offer: OrderableOffer | undefined;
  itemOffers: ReadonlyMap<string, Pick<OrderableOffer, "offerGroup" | "tokenCount" | "appendDate">>;
  unlockedGroups: ReadonlySet<string>;
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

  // C. Locked offers need an unlocking grant.
  if (offer.unlockedBy.length > 0 && !isUnlockedFor(offer, input.unlockedGroups)) {
    throw new DomainError("offer_locked", "This offer is unlocked by a subscription the user does not hold.", {
      offerId: offer.offerId,
      unlockedBy: offer.unlockedBy,
    });
  }

  // D. Bundle items, with their offers' terms copied.
  const combinedItems = offer.combinedItems.map((item) => {
    const itemOffer = input.itemOffers.get(item.offerId);
    if (!itemOffer) throw new DomainError("conflict", `Bundle item ${item.offerId} no longer exists.`, { offerId: item.offerId });
    return {
      offerId: item.offerId,
      offerGroup: itemOffer.offerGroup,
      quantity: item.quantity,
      tokenCount: itemOffer.tokenCount,
      tokens: item.quantity * quantity * itemOffer.tokenCount,
      appendDate: itemOffer.appendDate,
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

  // F. Total, in minor units.
  const amount = price.amount * quantity;
  if (!Number.isSafeInteger(amount)) throw new DomainError("amount_out_of_range", "The total is too large.", { amount });
  if (amount > 0) input.provider.checkAmount(amount, currency);

  const provider: OrderProvider =
    amount === 0 ? "free" : request.checkout && input.provider.name === "stripe" ? "stripe_checkout" : input.provider.name;
  return {
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
    combinedItems,
    provider,
    paymentIntentIds: [],
    attempt: amount === 0 ? 0 : 1,
    grantIds: [],
    ...created({ userId: request.userId, orderId: input.orderId, now }),
    ...(offer.customCycleSeconds !== undefined ? { customCycleSeconds: offer.customCycleSeconds } : {}),
    ...(request.starts ? { requestedStarts: new Date(request.starts).toISOString() } : {}),
  };
}
