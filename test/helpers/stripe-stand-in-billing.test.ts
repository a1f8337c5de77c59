/**
 * What the Stripe stand-in promises for Billing (test/helpers/stripe-stand-in.ts), read
 * through the real `stripe` SDK at the pinned API version (core/payments/stripe.ts
 * `createStripeClient`): customers, products, prices, subscriptions created incomplete
 * with the first invoice's client secret under `latest_invoice.confirmation_secret`,
 * renewals on the billing anchor (Jan 31 -> Feb 28 -> Mar 31 -> Apr 30), failed renewals
 * and Smart Retries, cancellation, InvoicePayments from a renewal's PaymentIntent to its
 * subscription, SetupIntents, off-session payments and their card errors, Checkout in
 * subscription and setup mode, and idempotency keys.
 */
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStripeClient } from "../../core/payments/stripe.js";
import { StripeStandIn } from "./stripe-stand-in.js";

const standIn = new StripeStandIn();
let stripe: Stripe;
beforeAll(async () => {
  await standIn.start();
  stripe = createStripeClient({ secretKey: "sk_test_billing", apiUrl: standIn.url, maxNetworkRetries: 0 });
});
afterAll(() => standIn.stop());

const at = (iso: string) => Math.floor(Date.parse(iso) / 1000);
let productCount = 0;

/** A customer and a recurring price of `unitAmount` (a new product each time). */
async function customerAndPrice(unitAmount = 1500, recurring: Stripe.PriceCreateParams.Recurring = { interval: "month" }) {
  const customer = await stripe.customers.create({ email: "ada@example.com", metadata: { userId: `user-${++productCount}` } });
  const product = await stripe.products.create({ id: `offer-${productCount}`, name: `Plan ${productCount}`, metadata: { offerId: `offer-${productCount}` } });
  const price = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: unitAmount, recurring });
  return { customer, product, price };
}

/** An incomplete subscription of `quantity` × the price, its first invoice expanded with its client secret. */
async function incompleteSubscription(quantity = 1, metadata: Record<string, string> = { orderId: "o-1" }) {
  const { customer, price } = await customerAndPrice();
  const subscription = await stripe.subscriptions.create({
    customer: customer.id,
    items: [{ price: price.id, quantity }],
    payment_behavior: "default_incomplete",
    payment_settings: { save_default_payment_method: "on_subscription" },
    metadata,
    expand: ["latest_invoice.confirmation_secret"],
  });
  return { customer, price, subscription };
}

/** Catches the SDK error a call throws. */
async function stripeError(call: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof Stripe.errors.StripeError) return error;
    throw error;
  }
  throw new Error("expected a Stripe error");
}

/** The PaymentIntent inside a card error (`error.raw.payment_intent`, which the SDK also sets as `error.payment_intent`). */
function intentIn(error: Stripe.errors.StripeError): Stripe.PaymentIntent {
  const intent = (error.raw as { payment_intent?: Stripe.PaymentIntent }).payment_intent;
  if (!intent) throw new Error("the error carries no PaymentIntent");
  expect(error.payment_intent).toEqual(intent);
  return intent;
}

describe("customers, products and prices", () => {
  it("creates and updates a customer; a product id is taken once; a lookup key moves only with transfer_lookup_key", async () => {
    const customer = await stripe.customers.create({ email: "grace@example.com", name: "Grace", metadata: { userId: "grace" } });
    expect(customer).toMatchObject({ object: "customer", email: "grace@example.com", name: "Grace", metadata: { userId: "grace" }, invoice_settings: { default_payment_method: null } });
    expect(customer.id).toMatch(/^cus_/);
    const updated = await stripe.customers.update(customer.id, { metadata: { plan: "pro" } });
    expect(updated.metadata).toEqual({ userId: "grace", plan: "pro" });
    expect((await stripe.customers.retrieve(customer.id)) as Stripe.Customer).toMatchObject({ id: customer.id, metadata: { plan: "pro" } });

    const product = await stripe.products.create({ id: "offer-lookup", name: "Lookup plan", metadata: { offerId: "lookup" } });
    expect(product).toMatchObject({ id: "offer-lookup", object: "product", name: "Lookup plan", active: true });
    const again = await stripeError(stripe.products.create({ id: "offer-lookup", name: "Lookup plan" }));
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again).toMatchObject({ statusCode: 400, code: "resource_already_exists" });
    expect(await stripeError(stripe.products.retrieve("offer-none"))).toMatchObject({ statusCode: 404, code: "resource_missing" });

    const first = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 900, recurring: { interval: "month", interval_count: 3 }, lookup_key: "lookup-usd", metadata: { offerId: "lookup" } });
    expect(String(first.unit_amount_decimal)).toBe("900"); // the SDK reads decimal strings as its Decimal
    expect(first).toMatchObject({ type: "recurring", unit_amount: 900, recurring: { interval: "month", interval_count: 3, usage_type: "licensed" }, lookup_key: "lookup-usd" });
    expect(await stripeError(stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 1000, recurring: { interval: "month" }, lookup_key: "lookup-usd" }))).toMatchObject({ statusCode: 400, param: "lookup_key" });
    const second = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 1000, recurring: { interval: "month" }, lookup_key: "lookup-usd", transfer_lookup_key: true });
    const found = await stripe.prices.list({ lookup_keys: ["lookup-usd"], active: true });
    expect(found.data.map((price) => price.id)).toEqual([second.id]);
    expect((await stripe.prices.retrieve(first.id)).lookup_key).toBeNull();
  });
});

describe("subscriptions", () => {
  it("starts incomplete: the first invoice is open, its client secret under latest_invoice.confirmation_secret, shapes of 2026-10-28.endive", async () => {
    standIn.now = new Date("2026-03-05T12:00:00Z");
    const { customer, price, subscription } = await incompleteSubscription(2, { orderId: "o-first" });
    expect(subscription).toMatchObject({ status: "incomplete", customer: customer.id, billing_cycle_anchor: at("2026-03-05T12:00:00Z"), metadata: { orderId: "o-first" } });
    expect(subscription).not.toHaveProperty("current_period_end");
    expect(subscription.items.data[0]).toMatchObject({ quantity: 2, price: { id: price.id }, current_period_start: at("2026-03-05T12:00:00Z"), current_period_end: at("2026-04-05T12:00:00Z") });

    const invoice = subscription.latest_invoice as Stripe.Invoice;
    expect(invoice).toMatchObject({ object: "invoice", status: "open", billing_reason: "subscription_create", amount_due: 3000, amount_paid: 0, customer: customer.id });
    expect(invoice.parent).toEqual({ quote_details: null, subscription_details: { metadata: { orderId: "o-first" }, subscription: subscription.id }, type: "subscription_details" });
    expect(invoice.lines.data).toHaveLength(1);
    expect(invoice.lines.data[0]).toMatchObject({ amount: 3000, quantity: 2, period: { start: at("2026-03-05T12:00:00Z"), end: at("2026-04-05T12:00:00Z") } });
    for (const gone of ["subscription", "payment_intent", "charge", "paid"]) expect(invoice).not.toHaveProperty(gone);

    const [payment] = (await stripe.invoicePayments.list({ invoice: invoice.id })).data;
    const intent = await stripe.paymentIntents.retrieve(payment!.payment.payment_intent as string);
    expect(intent).toMatchObject({ status: "requires_payment_method", amount: 3000, currency: "usd", customer: customer.id, metadata: {} });
    expect(invoice.confirmation_secret).toEqual({ client_secret: intent.client_secret, type: "payment_intent" });

    // Without expand: ids, and no includable confirmation_secret.
    const plain = await stripe.subscriptions.retrieve(subscription.id);
    expect(plain.latest_invoice).toBe(invoice.id);
    expect(await stripe.invoices.retrieve(invoice.id)).not.toHaveProperty("confirmation_secret");
    expect((await stripe.invoices.retrieve(invoice.id, { expand: ["confirmation_secret"] })).confirmation_secret?.client_secret).toBe(intent.client_secret);
    expect(await stripeError(stripe.subscriptions.retrieve(subscription.id, { expand: ["latest_invoice.payment_intent"] }))).toMatchObject({ statusCode: 400 });

    // An incomplete subscription takes only metadata (Subscription.status docs).
    expect(await stripeError(stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true }))).toMatchObject({ statusCode: 400 });
  });

  it("first invoice paid, then three renewals on the anchor day: Jan 31 -> Feb 28 -> Mar 31 -> Apr 30", async () => {
    standIn.now = new Date("2026-01-31T10:00:00Z");
    const { customer, subscription } = await incompleteSubscription();
    const first = standIn.payFirstInvoice(subscription.id);
    expect(first.subscription).toMatchObject({ status: "active" });
    expect(first.subscription.default_payment_method).toMatch(/^pm_/);
    expect(first.invoice).toMatchObject({ status: "paid", amount_paid: 1500, amount_remaining: 0, billing_reason: "subscription_create" });
    expect(first.paymentIntent).toMatchObject({ status: "succeeded", payment_method: first.subscription.default_payment_method, metadata: {} });
    expect((await stripe.paymentMethods.retrieve(first.subscription.default_payment_method as string)).customer).toBe(customer.id);

    const periods = [
      ["2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z", "2026-03-31T10:00:00Z"],
      ["2026-02-28T10:00:00Z", "2026-03-31T10:00:00Z", "2026-04-30T10:00:00Z"],
      ["2026-03-31T10:00:00Z", "2026-04-30T10:00:00Z", "2026-05-31T10:00:00Z"],
    ] as const;
    const invoiceIds = new Set([first.invoice.id]);
    for (const [endedStart, start, end] of periods) {
      const renewal = standIn.renew(subscription.id, { outcome: "paid" });
      if (!("invoice" in renewal)) throw new Error("expected a renewal invoice");
      invoiceIds.add(renewal.invoice.id);
      expect(standIn.now.toISOString()).toBe(new Date(start).toISOString());
      const invoice = await stripe.invoices.retrieve(renewal.invoice.id as string);
      expect(invoice).toMatchObject({ status: "paid", billing_reason: "subscription_cycle", amount_paid: 1500, created: at(start), period_start: at(endedStart), period_end: at(start) });
      expect(invoice.lines.data[0]!.period).toEqual({ start: at(start), end: at(end) });
      expect(invoice.parent?.subscription_details?.subscription).toBe(subscription.id);
      const current = await stripe.subscriptions.retrieve(subscription.id);
      expect(current).toMatchObject({ status: "active", latest_invoice: invoice.id, billing_cycle_anchor: at("2026-01-31T10:00:00Z") });
      expect(current.items.data[0]).toMatchObject({ current_period_start: at(start), current_period_end: at(end) });
      expect(renewal.paymentIntent).toMatchObject({ status: "succeeded", customer: customer.id, payment_method: first.subscription.default_payment_method, metadata: {} });
    }
    expect(invoiceIds.size).toBe(4);
    expect((await stripe.invoices.list({ subscription: subscription.id })).data).toHaveLength(4);
  });

  it("a renewal's charge (no metadata of ours) leads to its invoice and subscription through InvoicePayments", async () => {
    standIn.now = new Date("2026-06-01T09:00:00Z");
    const { subscription } = await incompleteSubscription(1, { orderId: "o-refund" });
    standIn.payFirstInvoice(subscription.id);
    const renewal = standIn.renew(subscription.id, { outcome: "paid" });
    if (!("paymentIntent" in renewal)) throw new Error("expected a renewal payment");
    const charge = standIn.dashboardRefund(renewal.paymentIntent.id as string, 500);
    expect(charge.metadata).toEqual({});

    const payments = await stripe.invoicePayments.list({ payment: { type: "payment_intent", payment_intent: charge.payment_intent as string } });
    expect(payments.data).toHaveLength(1);
    expect(payments.data[0]).toMatchObject({ object: "invoice_payment", status: "paid", amount_paid: 1500, is_default: true, invoice: renewal.invoice.id, payment: { type: "payment_intent", payment_intent: renewal.paymentIntent.id } });
    const invoice = await stripe.invoices.retrieve(payments.data[0]!.invoice as string);
    expect(invoice.parent?.subscription_details).toEqual({ metadata: { orderId: "o-refund" }, subscription: subscription.id });
    expect(invoice.lines.data[0]!.period).toEqual({ start: at("2026-07-01T09:00:00Z"), end: at("2026-08-01T09:00:00Z") });
    const expanded = await stripe.invoicePayments.list({ invoice: invoice.id, expand: ["data.payment.payment_intent"] });
    expect((expanded.data[0]!.payment.payment_intent as Stripe.PaymentIntent).latest_charge).toBe(charge.id);
  });

  it("a failed renewal leaves the invoice open and the subscription past_due; a Smart Retry pays it", async () => {
    standIn.now = new Date("2026-01-15T08:00:00Z");
    const { subscription } = await incompleteSubscription();
    const card = standIn.payFirstInvoice(subscription.id).subscription.default_payment_method as string;
    standIn.declineCard(card, { code: "card_declined", declineCode: "insufficient_funds" });
    const failed = standIn.renew(subscription.id);
    if (!("invoice" in failed)) throw new Error("expected a renewal invoice");
    expect(failed.subscription.status).toBe("past_due");
    expect(failed.invoice).toMatchObject({ status: "open", attempted: true, attempt_count: 1, amount_paid: 0, next_payment_attempt: at("2026-02-16T08:00:00Z") });
    expect(failed.paymentIntent).toMatchObject({ status: "requires_payment_method", last_payment_error: { type: "card_error", code: "card_declined", decline_code: "insufficient_funds" } });
    expect((await stripe.subscriptions.retrieve(subscription.id)).status).toBe("past_due");

    const again = standIn.retryInvoice(failed.invoice.id as string);
    expect(again.invoice).toMatchObject({ status: "open", attempt_count: 2 });
    expect(again.subscription.status).toBe("past_due");

    standIn.acceptCard(card);
    const paid = standIn.retryInvoice(failed.invoice.id as string, { outcome: "paid" });
    expect(paid.invoice).toMatchObject({ status: "paid", attempt_count: 3, amount_paid: 1500, next_payment_attempt: null });
    expect(paid.paymentIntent).toMatchObject({ id: failed.paymentIntent.id, status: "succeeded" });
    expect((await stripe.subscriptions.retrieve(subscription.id)).status).toBe("active");
  });

  it("cancel at period end: still active, then renew ends it; a canceled subscription is listed only on request", async () => {
    standIn.now = new Date("2026-02-10T00:00:00Z");
    const { customer, subscription } = await incompleteSubscription();
    standIn.payFirstInvoice(subscription.id);
    standIn.now = new Date("2026-02-20T00:00:00Z");
    const updated = await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    expect(updated).toMatchObject({ status: "active", cancel_at_period_end: true, cancel_at: at("2026-03-10T00:00:00Z"), canceled_at: at("2026-02-20T00:00:00Z"), ended_at: null });

    const ended = standIn.renew(subscription.id);
    expect(ended).not.toHaveProperty("invoice");
    expect(ended.subscription).toMatchObject({ status: "canceled", ended_at: at("2026-03-10T00:00:00Z"), canceled_at: at("2026-02-20T00:00:00Z"), cancellation_details: { reason: "cancellation_requested" } });
    expect((await stripe.invoices.list({ subscription: subscription.id })).data).toHaveLength(1);
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toHaveLength(0);
    expect((await stripe.subscriptions.list({ customer: customer.id, status: "canceled" })).data.map((s) => s.id)).toEqual([subscription.id]);
    expect(await stripeError(stripe.subscriptions.update(subscription.id, { metadata: { x: "y" } }))).toMatchObject({ statusCode: 400 });
    expect(await stripeError(stripe.subscriptions.cancel(subscription.id))).toMatchObject({ statusCode: 404, code: "resource_missing" });
    expect(() => standIn.renew(subscription.id)).toThrow(/canceled/);
  });

  it("cancels immediately; undoes a cancel at period end", async () => {
    standIn.now = new Date("2026-05-01T00:00:00Z");
    const { customer, subscription } = await incompleteSubscription();
    standIn.payFirstInvoice(subscription.id);
    await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    const kept = await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: false });
    expect(kept).toMatchObject({ cancel_at_period_end: false, cancel_at: null, canceled_at: null });

    standIn.now = new Date("2026-05-03T04:05:06Z");
    const canceled = await stripe.subscriptions.cancel(subscription.id);
    expect(canceled).toMatchObject({ status: "canceled", canceled_at: at("2026-05-03T04:05:06Z"), ended_at: at("2026-05-03T04:05:06Z") });
    expect((await stripe.subscriptions.list({ customer: customer.id, status: "all" })).data[0]).toMatchObject({ id: subscription.id, status: "canceled" });
  });

  it("yearly and weekly prices keep their anchor (Feb 29 -> Feb 28; every 2 weeks)", async () => {
    standIn.now = new Date("2028-02-29T00:00:00Z");
    const yearly = await customerAndPrice(12000, { interval: "year" });
    const a = await stripe.subscriptions.create({ customer: yearly.customer.id, items: [{ price: yearly.price.id }], payment_behavior: "default_incomplete", payment_settings: { save_default_payment_method: "on_subscription" } });
    expect(a.items.data[0]!.current_period_end).toBe(at("2029-02-28T00:00:00Z"));
    const weekly = await customerAndPrice(300, { interval: "week", interval_count: 2 });
    const b = await stripe.subscriptions.create({ customer: weekly.customer.id, items: [{ price: weekly.price.id }], payment_behavior: "default_incomplete", payment_settings: { save_default_payment_method: "on_subscription" } });
    standIn.payFirstInvoice(b.id);
    const renewal = standIn.renew(b.id, { outcome: "paid" });
    if (!("invoice" in renewal)) throw new Error("expected a renewal invoice");
    expect((renewal.invoice.lines as { data: Array<{ period: unknown }> }).data[0]!.period).toEqual({ start: at("2028-03-14T00:00:00Z"), end: at("2028-03-28T00:00:00Z") });
  });
});

describe("saved cards and off-session payments", () => {
  it("a confirmed SetupIntent saves a card; off-session payments succeed, are declined, or need authentication", async () => {
    standIn.now = new Date("2026-04-01T00:00:00Z");
    const customer = await stripe.customers.create({ metadata: { userId: "topper" } });
    const setup = await stripe.setupIntents.create({ customer: customer.id, usage: "off_session", automatic_payment_methods: { enabled: true }, metadata: { userId: "topper" } });
    expect(setup).toMatchObject({ object: "setup_intent", status: "requires_payment_method", usage: "off_session", customer: customer.id, payment_method: null, metadata: { userId: "topper" } });
    expect(setup.client_secret).toMatch(new RegExp(`^${setup.id}_secret_`));

    const { setupIntent, paymentMethod } = standIn.confirmSetupIntent(setup.id);
    expect(setupIntent).toMatchObject({ status: "succeeded", payment_method: paymentMethod.id });
    expect(paymentMethod).toMatchObject({ object: "payment_method", type: "card", customer: customer.id, card: { last4: "4242" } });
    expect((await stripe.setupIntents.retrieve(setup.id)).status).toBe("succeeded");
    const card = paymentMethod.id as string;
    expect((await stripe.customers.listPaymentMethods(customer.id)).data.map((pm) => pm.id)).toEqual([card]);
    const withDefault = await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: card } });
    expect(withDefault.invoice_settings.default_payment_method).toBe(card);
    expect(await stripeError(stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: "pm_unknown" } }))).toMatchObject({ statusCode: 400 });

    const topUp = { amount: 2000, currency: "usd", customer: customer.id, payment_method: card, off_session: true, confirm: true, metadata: { orderId: "top-1" } };
    const paid = await stripe.paymentIntents.create(topUp);
    expect(paid).toMatchObject({ status: "succeeded", amount_received: 2000, customer: customer.id, payment_method: card, metadata: { orderId: "top-1" } });
    expect(standIn.chargeOf(paid.id)).toMatchObject({ status: "succeeded", amount: 2000, metadata: { orderId: "top-1" }, payment_method: card });

    standIn.declineCard(card, { code: "card_declined", declineCode: "insufficient_funds", message: "Your card has insufficient funds." });
    const declined = await stripeError(stripe.paymentIntents.create({ ...topUp, metadata: { orderId: "top-2" } }));
    expect(declined).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(declined).toMatchObject({ statusCode: 402, code: "card_declined", decline_code: "insufficient_funds", message: "Your card has insufficient funds." });
    const declinedIntent = intentIn(declined);
    expect(declinedIntent).toMatchObject({ status: "requires_payment_method", metadata: { orderId: "top-2" }, last_payment_error: { code: "card_declined", decline_code: "insufficient_funds" } });
    expect((await stripe.paymentIntents.retrieve(declinedIntent.id)).status).toBe("requires_payment_method");

    standIn.declineCard(card, { code: "authentication_required" });
    const needsAuth = await stripeError(stripe.paymentIntents.create({ ...topUp, metadata: { orderId: "top-3" } }));
    expect(needsAuth).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(needsAuth).toMatchObject({ code: "authentication_required", decline_code: "authentication_required" });
    expect(intentIn(needsAuth).status).toBe("requires_payment_method");

    standIn.acceptCard(card);
    expect((await stripe.paymentIntents.create({ ...topUp, metadata: { orderId: "top-4" } })).status).toBe("succeeded");
  });

  it("idempotency keys replay subscriptions and declines as today", async () => {
    const { customer, price } = await customerAndPrice();
    const params: Stripe.SubscriptionCreateParams = { customer: customer.id, items: [{ price: price.id }], payment_behavior: "default_incomplete", metadata: { orderId: "o-idem" } };
    const one = await stripe.subscriptions.create(params, { idempotencyKey: "sub-o-idem" });
    const two = await stripe.subscriptions.create(params, { idempotencyKey: "sub-o-idem" });
    expect(two.id).toBe(one.id);
    expect([...standIn.subscriptions.values()].filter((s) => (s.metadata as Record<string, string>).orderId === "o-idem")).toHaveLength(1);
    expect(await stripeError(stripe.subscriptions.create({ ...params, metadata: { orderId: "other" } }, { idempotencyKey: "sub-o-idem" }))).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);

    const { setupIntent, paymentMethod } = standIn.confirmSetupIntent((await stripe.setupIntents.create({ customer: customer.id })).id);
    expect(setupIntent.status).toBe("succeeded");
    standIn.declineCard(paymentMethod.id as string, { code: "card_declined" });
    const charge = { amount: 700, currency: "usd", customer: customer.id, payment_method: paymentMethod.id as string, off_session: true, confirm: true };
    const first = await stripeError(stripe.paymentIntents.create(charge, { idempotencyKey: "top-up-evt-1" }));
    const replay = await stripeError(stripe.paymentIntents.create(charge, { idempotencyKey: "top-up-evt-1" }));
    expect(intentIn(replay).id).toBe(intentIn(first).id);
    expect(replay.decline_code).toBe("generic_decline");
  });
});

describe("Checkout in subscription and setup mode", () => {
  it("a subscription-mode session makes the customer, the subscription and its paid first invoice once the buyer pays", async () => {
    standIn.now = new Date("2026-08-31T15:00:00Z");
    const { price } = await customerAndPrice(2500);
    const session = await stripe.checkout.sessions.create({
      mode: "subscription",
      line_items: [{ price: price.id, quantity: 2 }],
      customer_email: "new@example.com",
      subscription_data: { metadata: { orderId: "o-checkout" } },
      metadata: { orderId: "o-checkout" },
      success_url: "https://example.com/ok",
      cancel_url: "https://example.com/cancel",
    });
    expect(session).toMatchObject({ mode: "subscription", status: "open", payment_status: "unpaid", amount_total: 5000, subscription: null, invoice: null, payment_intent: null });

    const done = standIn.completeSubscriptionSession(session.id);
    expect(done.session).toMatchObject({ status: "complete", payment_status: "paid", customer: done.customer.id, subscription: done.subscription.id, invoice: done.invoice.id });
    expect(done.customer).toMatchObject({ email: "new@example.com" });
    expect(done.subscription).toMatchObject({ status: "active", metadata: { orderId: "o-checkout" } });
    expect(done.subscription.default_payment_method).toMatch(/^pm_/);
    expect(done.invoice).toMatchObject({ status: "paid", billing_reason: "subscription_create", amount_paid: 5000, parent: { subscription_details: { subscription: done.subscription.id, metadata: { orderId: "o-checkout" } } } });
    const retrieved = await stripe.checkout.sessions.retrieve(session.id, { expand: ["subscription"] });
    expect((retrieved.subscription as Stripe.Subscription).items.data[0]).toMatchObject({ current_period_start: at("2026-08-31T15:00:00Z"), current_period_end: at("2026-09-30T15:00:00Z") });
    expect((await stripe.checkout.sessions.retrieve(session.id)).subscription).toBe(done.subscription.id);
  });

  it("a setup-mode session saves a card for the customer; currency is required", async () => {
    const customer = await stripe.customers.create({ metadata: { userId: "saver" } });
    const base = { mode: "setup" as const, customer: customer.id, success_url: "https://example.com/ok", cancel_url: "https://example.com/cancel" };
    expect(await stripeError(stripe.checkout.sessions.create(base))).toMatchObject({ statusCode: 400, param: "currency" });
    const session = await stripe.checkout.sessions.create({ ...base, currency: "usd", setup_intent_data: { metadata: { userId: "saver" } }, metadata: { purpose: "auto-top-up" } });
    expect(session).toMatchObject({ mode: "setup", status: "open", payment_status: "no_payment_required", customer: customer.id, payment_intent: null });
    const done = standIn.completeSetupSession(session.id);
    expect(done.session).toMatchObject({ status: "complete", setup_intent: session.setup_intent });
    expect(done.setupIntent).toMatchObject({ status: "succeeded", customer: customer.id, usage: "off_session", metadata: { userId: "saver" }, payment_method: done.paymentMethod.id });
    expect((await stripe.paymentMethods.retrieve(done.paymentMethod.id as string)).customer).toBe(customer.id);
  });

  it("payment mode is unchanged", async () => {
    const session = await stripe.checkout.sessions.create({
      mode: "payment",
      line_items: [{ price_data: { currency: "usd", unit_amount: 800, product_data: { name: "Pack" } }, quantity: 1 }],
      payment_intent_data: { metadata: { orderId: "o-pay" } },
      success_url: "https://example.com/ok",
    });
    expect(session).toMatchObject({ mode: "payment", amount_total: 800, status: "open" });
    expect(standIn.completeSession(session.id)).toMatchObject({ status: "complete", payment_status: "paid" });
  });
});
