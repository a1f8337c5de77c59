/**
 * What renewing subscriptions need at the payment provider, found or created when an
 * order first needs it (issue 13; API.md "Renewing subscriptions and automatic top-ups"):
 * the user's customer, and the recurring price of a renewing offer in a currency. Both
 * are kept in the table, so a later order reads one item instead of asking the provider.
 * Offers never reach the provider when written (`PUT /offers` keeps Stripe out of the
 * offers function): a price is made for the first order that needs it.
 */
import type { Context } from "./context.js";
import type { OrderItem } from "./db/service.js";
import { DomainError } from "./errors.js";
import type { BillingProvider } from "./payments/provider.js";
import type { Cycle } from "./rules/cycles.js";
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

/** What a renewing price is made of: the offer's identity and cycle, a unit amount in a currency. */
export interface RenewingTerms {
  offerId: string;
  /** Shown to the buyer as the Stripe Product's name. */
  offerName: string;
  cycle: Cycle;
  appendDate: boolean;
  /** Integer, minor units per unit and period. */
  amount: number;
  /** Lowercase ISO 4217. */
  currency: string;
}

/**
 * The provider's recurring price for `terms` (a renewing order's unit price, copied from
 * its offer when the order was made), found by lookup key in the table, else at the
 * provider (created there when missing) and then kept in the table.
 * @throws DomainError `not_renewable` when the terms cannot renew or the provider cannot;
 *   PaymentProviderError when the provider fails
 */
export async function renewingPrice(ctx: BillingContext, terms: RenewingTerms): Promise<RenewingPrice> {
  const reason = notRenewable(terms);
  const recurring = stripeRecurring(terms.cycle);
  if (reason || !recurring) {
    throw new DomainError("not_renewable", `Offer ${terms.offerId} cannot renew: ${RENEWAL_REFUSALS[reason ?? "cycle"]}.`, { offerId: terms.offerId, reason: reason ?? "cycle" });
  }
  const { offerId, currency, amount } = terms;
  const lookupKey = priceLookupKey({ offerId, currency, amount, recurring });
  const stored = await ctx.db.entities.providerPrice.get({ lookupKey }).go();
  if (stored.data) return { priceId: stored.data.priceId, productId: stored.data.productId, lookupKey, amount, currency };
  const made = await billingOf(ctx).recurringPrice({ offerId, offerName: terms.offerName, currency, amount, recurring, lookupKey });
  // Concurrent orders find or make the same price (one lookup key, one idempotency key): the same item.
  await ctx.db.entities.providerPrice.put({ lookupKey, offerId, ...made, createdAt: ctx.clock.now().toISOString() }).go();
  return { ...made, lookupKey, amount, currency };
}

/**
 * The `renewing` part of a renewing order's payment request: the user's customer and the
 * order's recurring price (unit price = total / quantity), made on first need.
 * @throws as {@link customerOf} and {@link renewingPrice}
 */
export async function renewingPayment(ctx: BillingContext, order: OrderItem): Promise<{ customerId: string; priceId: string; quantity: number }> {
  const [customerId, price] = await Promise.all([
    customerOf(ctx, order.userId),
    renewingPrice(ctx, {
      offerId: order.offerId,
      offerName: order.offerName,
      cycle: order.cycle,
      appendDate: order.appendDate,
      amount: order.total.amount / order.quantity,
      currency: order.total.currency,
    }),
  ]);
  return { customerId, priceId: price.priceId, quantity: order.quantity };
}
