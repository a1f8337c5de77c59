/**
 * What renewing subscriptions need at the payment provider, found or created when an
 * order first needs it (issue 13; API.md "Renewing subscriptions and automatic top-ups"):
 * the user's customer, and the recurring price of a renewing offer in a currency. Both
 * are kept in the table, so a later order reads one item instead of asking the provider.
 * Offers never reach the provider when written (`PUT /offers` keeps Stripe out of the
 * offers function): a price is made for the first order that needs it.
 */
import type { Context } from "./context.js";
import type { OfferItem } from "./db/service.js";
import { DomainError } from "./errors.js";
import type { BillingProvider } from "./payments/provider.js";
import { notRenewable, priceLookupKey, RENEWAL_REFUSALS, stripeRecurring } from "./rules/renewal.js";

/** What the billing paths need of the context. */
export type BillingContext = Pick<Context, "db" | "clock" | "payments">;

/**
 * The provider's billing half.
 * @throws DomainError `not_renewable` when the provider cannot renew (the `manual` provider)
 */
export function billingOf(ctx: Pick<Context, "payments">): BillingProvider {
  const billing = ctx.payments.billing;
  if (!billing) throw new DomainError("not_renewable", `The ${ctx.payments.name} payment provider cannot renew subscriptions.`, { provider: ctx.payments.name });
  return billing;
}

/**
 * The user's customer id at the provider, created on first need. Two concurrent first
 * calls make one customer: both ask the provider with the same idempotency key
 * (`customer-<userId>`, which returns the same customer), and both write the same item,
 * the second write being refused and the stored id read back.
 * @throws DomainError `not_renewable` without a billing provider; PaymentProviderError when the provider fails
 */
export async function customerOf(ctx: BillingContext, userId: string): Promise<string> {
  const stored = await ctx.db.entities.billingCustomer.get({ userId }).go({ consistent: true });
  if (stored.data) return stored.data.customerId;
  const { customerId } = await billingOf(ctx).createCustomer({ userId, idempotencyKey: `customer-${userId}` });
  try {
    await ctx.db.entities.billingCustomer.create({ userId, customerId, createdAt: ctx.clock.now().toISOString() }).go();
    return customerId;
  } catch (error) {
    const again = await ctx.db.entities.billingCustomer.get({ userId }).go({ consistent: true });
    if (again.data) return again.data.customerId;
    throw error;
  }
}

/** A renewing offer's price at the provider, in one currency. */
export interface RenewingPrice {
  priceId: string;
  productId: string;
  lookupKey: string;
  /** Integer, minor units per period. */
  amount: number;
  currency: string;
}

/**
 * The provider's recurring price of `offer` in `currency` (its amount and cycle today),
 * found by lookup key in the table, else at the provider (created there when missing)
 * and then kept in the table.
 * @throws DomainError `not_renewable` when the offer cannot renew or the provider cannot;
 *   `currency_not_offered` when the offer has no price in `currency`; PaymentProviderError
 *   when the provider fails
 */
export async function renewingPrice(ctx: BillingContext, offer: OfferItem, currency: string): Promise<RenewingPrice> {
  const reason = notRenewable(offer);
  const recurring = stripeRecurring(offer.cycle);
  if (reason || !recurring) {
    throw new DomainError("not_renewable", `Offer ${offer.offerId} cannot renew: ${RENEWAL_REFUSALS[reason ?? "cycle"]}.`, { offerId: offer.offerId, reason: reason ?? "cycle" });
  }
  const price = offer.prices.find((p) => p.currency === currency);
  if (!price) throw new DomainError("currency_not_offered", `Offer ${offer.offerId} has no price in ${currency}.`, { currency, offered: offer.prices.map((p) => p.currency) });
  const lookupKey = priceLookupKey({ offerId: offer.offerId, currency, amount: price.amount, recurring });
  const stored = await ctx.db.entities.providerPrice.get({ lookupKey }).go();
  if (stored.data) return { priceId: stored.data.priceId, productId: stored.data.productId, lookupKey, amount: price.amount, currency };
  const made = await billingOf(ctx).recurringPrice({ offerId: offer.offerId, offerName: offer.name, currency, amount: price.amount, recurring, lookupKey });
  // Concurrent orders find or make the same price (one lookup key, one idempotency key): the same item.
  await ctx.db.entities.providerPrice.put({ lookupKey, offerId: offer.offerId, ...made, createdAt: ctx.clock.now().toISOString() }).go();
  return { ...made, lookupKey, amount: price.amount, currency };
}
