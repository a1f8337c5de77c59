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
import { isConditionFailure } from "./db/transact.js";
import { DomainError, ignoreUnknown } from "./errors.js";
import type { BillingProvider, PaymentMethodSetup } from "./payments/provider.js";
import type { Cycle } from "./rules/cycles.js";
import { notRenewable, priceLookupKey, RENEWAL_REFUSALS, stripeRecurring } from "./rules/renewal.js";

/** What the billing paths need of the context. */
export type BillingContext = Pick<Context, "db" | "clock" | "payments">;

/**
 * The provider's billing half.
 * @throws DomainError `not_renewable` when the provider has no billing half (the `manual`
 *   provider: it cannot renew, save cards or pay off-session)
 */
export function billingOf(ctx: Pick<Context, "payments">): BillingProvider {
  const billing = ctx.payments.billing;
  if (!billing) {
    throw new DomainError("not_renewable", `The ${ctx.payments.name} payment provider has no Stripe Billing: no renewing subscriptions, saved cards or automatic top-ups.`, {
      provider: ctx.payments.name,
    });
  }
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
    // Written meanwhile by a concurrent first need (the same customer: one idempotency key).
    if (!isConditionFailure(error)) throw error;
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

/**
 * Starts saving a payment method for the user's off-session payments (automatic
 * top-ups, issue 13): the user's customer (made on first need), then a SetupIntent
 * (`usage=off_session`) or a setup-mode Checkout Session. The card is known once
 * `setup_intent.succeeded` arrives ({@link savePaymentMethod}).
 * @param currency the Checkout Session's currency (the service's default)
 * @throws DomainError `not_renewable` without a billing provider (the manual one); PaymentProviderError
 */
export async function setupPaymentMethod(
  ctx: BillingContext,
  input: { userId: string; currency: string; checkout?: { successUrl: string; cancelUrl: string } | undefined },
): Promise<PaymentMethodSetup> {
  const customerId = await customerOf(ctx, input.userId);
  return billingOf(ctx).createSetup({ userId: input.userId, customerId, currency: input.currency, checkout: input.checkout });
}

/** What applying `setup_intent.succeeded` did. */
export interface SetupOutcome {
  outcome: "applied" | "ignored";
  reason: string;
}

/**
 * Applies `setup_intent.succeeded`: the SetupIntent is read back from Stripe (events can
 * be stale or forged) and, when it succeeded for the user's own customer, its payment
 * method becomes the user's saved one (the latest saved wins).
 * @throws PaymentProviderError when Stripe fails; database errors
 */
export async function savePaymentMethod(ctx: BillingContext, setupIntentId: string): Promise<SetupOutcome> {
  const intent = await billingOf(ctx).retrieveSetupIntent(setupIntentId).catch(ignoreUnknown);
  if (!intent) return { outcome: "ignored", reason: `Stripe does not know SetupIntent ${setupIntentId}` };
  const userId = intent.metadata.userId;
  if (intent.status !== "succeeded" || !intent.paymentMethodId) return { outcome: "ignored", reason: `SetupIntent is ${intent.status}` };
  if (!userId) return { outcome: "ignored", reason: "a SetupIntent of no user of ours" };
  const { data: customer } = await ctx.db.entities.billingCustomer.get({ userId }).go({ consistent: true });
  if (!customer || customer.customerId !== intent.customerId) return { outcome: "ignored", reason: "the SetupIntent's customer is not the user's" };
  await ctx.db.entities.billingCustomer
    .patch({ userId })
    .set({ paymentMethodId: intent.paymentMethodId, updatedAt: ctx.clock.now().toISOString() })
    .go();
  return { outcome: "applied", reason: "payment method saved" };
}
