/**
 * Payment attempts never double-charge (API.md "Payment attempts never double-charge";
 * core/payment-attempts.ts): whoever looks at an order's attempts (the webhook,
 * `POST .../pay`, `POST .../sync`, the daily job's abandoned-order pass), money that
 * reached Stripe for an order ends in exactly one credit; a further payment is refunded.
 * The real `stripe` SDK against the local stand-in, on DynamoDB Local; each defect of
 * issue 9 that these fix has its test here.
 */
import Stripe from "stripe";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { abandonOrders } from "../../core/abandoned-orders.js";
import { getCredits } from "../../core/credits.js";
import { listEvents } from "../../core/events.js";
import { upsertOffer } from "../../core/offers.js";
import { createOrder, getOrder, retryPayment } from "../../core/orders.js";
import { syncOrder } from "../../core/payment-attempts.js";
import { createStripeClient, createStripeProvider, STRIPE_NETWORK_RETRIES, STRIPE_TIMEOUT_MS } from "../../core/payments/stripe.js";
import type { StripeEvent } from "../../core/payments/stripe-webhook.js";
import { handleStripeEvent } from "../../core/webhooks.js";
import { injectFaults, type FaultInjector } from "../helpers/faults.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

const stripe = new StripeStandIn();
const t = useIntegrationContext({ label: "attempts" });
let faults: FaultInjector;
/** The SDK as another integration (or an attacker with our key) would use it: a payment made outside the service. */
let outside: Stripe;
beforeAll(async () => {
  await stripe.start();
  faults = injectFaults(t.client);
  t.ctx.payments = createStripeProvider({ secretKey: "sk_test_standin", apiUrl: stripe.url, maxNetworkRetries: 0 });
  outside = createStripeClient({ secretKey: "sk_test_standin", apiUrl: stripe.url, maxNetworkRetries: 0 });
  await upsertOffer(t.ctx, "pack", anOffer());
});
afterEach(() => faults.clear());
afterAll(() => stripe.stop());

const NOW = "2026-04-10T08:00:00.000Z";
const asEvent = (value: Record<string, unknown>) => value as unknown as StripeEvent;
const deliver = (type: string, object: Record<string, unknown>) => handleStripeEvent(t.ctx, asEvent(stripeEvent(type, object)));
const balanceOf = async (userId: string) => (await getCredits(t.ctx, userId)).groups[0]?.balance ?? 0;
const intentsCreated = () => stripe.requestsTo("POST", "/v1/payment_intents").length;

async function pendingOrder(userId: string, checkout = false) {
  t.clock.set(NOW);
  const { order, payment } = await createOrder(t.ctx, {
    userId,
    offerId: "pack",
    ...(checkout ? { checkout: { successUrl: "https://shop.example/ok", cancelUrl: "https://shop.example/cancel" } } : {}),
  });
  return { order, payment: payment! };
}

/** A PaymentIntent for the order made outside the service, with the order's metadata, paid. */
async function outsidePayment(order: { orderId: string; userId: string }, amount = 1000) {
  const intent = await outside.paymentIntents.create({ amount, currency: "usd", metadata: { orderId: order.orderId, userId: order.userId } });
  return stripe.succeed(intent.id);
}

describe("POST .../pay reads the current attempt first", () => {
  it("pays the order through a PaymentIntent that already succeeded (late webhook) and answers 409, never creating a second one", async () => {
    const { order, payment } = await pendingOrder("late-webhook");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    stripe.succeed(payment.paymentIntentId); // the buyer paid; the webhook has not arrived yet
    const before = intentsCreated();

    await expect(retryPayment(t.ctx, "late-webhook", order.orderId)).rejects.toMatchObject({ code: "conflict", details: { status: "paid" } });

    expect(intentsCreated()).toBe(before);
    expect(await getOrder(t.ctx, "late-webhook", order.orderId)).toMatchObject({ status: "paid" });
    expect(await balanceOf("late-webhook")).toBe(100);
    // The late webhook then changes nothing.
    expect(await deliver("payment_intent.succeeded", stripe.intent(payment.paymentIntentId))).toMatchObject({ outcome: "ignored", reason: "already paid" });
    expect(await balanceOf("late-webhook")).toBe(100);
  });

  it("expires the previous Checkout Session before the new attempt, so it can no longer be paid", async () => {
    const { order, payment } = await pendingOrder("checkout-retry", true);
    if (payment.provider !== "stripe_checkout") throw new Error("expected a Checkout Session");

    const retried = await retryPayment(t.ctx, "checkout-retry", order.orderId);

    expect(stripe.session(payment.checkoutSessionId)).toMatchObject({ status: "expired" });
    expect(stripe.requestsTo("POST", `/v1/checkout/sessions/${payment.checkoutSessionId}/expire`)).toHaveLength(1);
    expect(retried.payment).toMatchObject({ provider: "stripe", paymentIntentId: expect.stringMatching(/^pi_/) });
    expect(retried.order).toMatchObject({ status: "pending" });
  });

  it("pays a Checkout order whose session completed (late webhook) and answers 409", async () => {
    const { order, payment } = await pendingOrder("checkout-late", true);
    if (payment.provider !== "stripe_checkout") throw new Error("expected a Checkout Session");
    stripe.completeSession(payment.checkoutSessionId);
    const before = intentsCreated();

    await expect(retryPayment(t.ctx, "checkout-late", order.orderId)).rejects.toMatchObject({ code: "conflict" });

    expect(intentsCreated()).toBe(before);
    expect(await getOrder(t.ctx, "checkout-late", order.orderId)).toMatchObject({ status: "paid" });
    expect(await balanceOf("checkout-late")).toBe(100);
  });

  it("answers 409 while the current payment is processing, starting nothing", async () => {
    const { order, payment } = await pendingOrder("processing");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    stripe.intent(payment.paymentIntentId).status = "processing";
    const before = intentsCreated();
    await expect(retryPayment(t.ctx, "processing", order.orderId)).rejects.toMatchObject({ code: "conflict" });
    expect(intentsCreated()).toBe(before);
    expect(stripe.intent(payment.paymentIntentId).status).toBe("processing");
  });
});

describe("an attempt is recorded on its order before Stripe is called", () => {
  it("finds a PaymentIntent whose recording failed, so that the next attempt cancels it", async () => {
    t.clock.set(NOW);
    // The write that follows Stripe's answer fails (whichever request it is).
    faults.fail({ command: "UpdateItemCommand", fault: "throttle" });
    faults.fail({ command: "TransactWriteItemsCommand", fault: "throttle" });
    await expect(createOrder(t.ctx, { userId: "lost-answer", offerId: "pack" })).rejects.toBeDefined();
    faults.clear();
    const [created] = stripe.requestsTo("POST", "/v1/payment_intents").slice(-1);
    const orderId = (created!.params.metadata as Record<string, string>).orderId!;
    const lost = [...stripe.paymentIntents.values()].find((intent) => (intent.metadata as Record<string, string>).orderId === orderId)!;

    const retried = await retryPayment(t.ctx, "lost-answer", orderId);

    expect(stripe.intent(lost.id as string)).toMatchObject({ status: "canceled" });
    const order = await getOrder(t.ctx, "lost-answer", orderId);
    expect(order.paymentIntentId).toBe(retried.payment && "paymentIntentId" in retried.payment ? retried.payment.paymentIntentId : undefined);
    expect(order.history.map((h) => h.message)).toContain("payment attempt 2");
  });
});

describe("the abandoned-order pass reads each attempt", () => {
  it("pays an order whose PaymentIntent succeeded without its webhook, instead of refusing it", async () => {
    const { order, payment } = await pendingOrder("abandon-paid");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    stripe.succeed(payment.paymentIntentId); // the endpoint was down past Stripe's retries
    t.clock.set("2026-04-18T09:00:00.000Z");

    const summary = await abandonOrders(t.ctx);

    expect(summary.paid).toBe(1);
    expect(await getOrder(t.ctx, "abandon-paid", order.orderId)).toMatchObject({ status: "paid" });
    expect(await balanceOf("abandon-paid")).toBe(100);
  });

  it("expires an abandoned Checkout order's open session before refusing the order", async () => {
    const { order, payment } = await pendingOrder("abandon-checkout", true);
    if (payment.provider !== "stripe_checkout") throw new Error("expected a Checkout Session");
    t.clock.set("2026-04-18T09:00:00.000Z");
    await abandonOrders(t.ctx);
    expect(stripe.session(payment.checkoutSessionId)).toMatchObject({ status: "expired" });
    expect(await getOrder(t.ctx, "abandon-checkout", order.orderId)).toMatchObject({ status: "refused" });
  });
});

describe("money for an order ends in exactly one credit", () => {
  it("a foreign PaymentIntent with the order's metadata pays it, and the order's own attempt is cancelled", async () => {
    const { order, payment } = await pendingOrder("foreign");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    const foreign = await outsidePayment(order);

    expect(await deliver("payment_intent.succeeded", foreign)).toMatchObject({ outcome: "applied", reason: "order paid" });

    expect(stripe.intent(payment.paymentIntentId)).toMatchObject({ status: "canceled" });
    expect(await getOrder(t.ctx, "foreign", order.orderId)).toMatchObject({ status: "paid" });
    expect(await balanceOf("foreign")).toBe(100);
  });

  it("a second succeeded payment for a paid order is refunded at Stripe, once, with a history entry and an order.refunded event", async () => {
    const { order, payment } = await pendingOrder("twice");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    await deliver("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId));
    const second = await outsidePayment(order);

    expect(await deliver("payment_intent.succeeded", second)).toMatchObject({ outcome: "applied", reason: "duplicate payment refunded" });
    expect(await deliver("payment_intent.succeeded", second)).toMatchObject({ outcome: "ignored" });
    expect(await deliver("payment_intent.succeeded", stripe.intent(second.id as string))).toMatchObject({ outcome: "ignored" });

    const refunds = [...stripe.refunds.values()].filter((refund) => refund.payment_intent === second.id);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ amount: 1000, reason: "duplicate", metadata: { orderId: order.orderId, duplicate: "true" } });
    const [request] = stripe.requestsTo("POST", "/v1/refunds").filter((r) => r.params.payment_intent === second.id);
    expect(request!.idempotencyKey).toBe(`duplicate-${order.orderId}-${second.id}`);
    const stored = await getOrder(t.ctx, "twice", order.orderId);
    expect(stored.status).toBe("paid");
    expect(stored.history.at(-1)!.message).toMatch(/second payment .* refunded/);
    expect(await balanceOf("twice")).toBe(100);
    const { events } = await listEvents(t.ctx, "twice", { limit: 10 });
    expect(events.filter((e) => e.type === "order.refunded")).toMatchObject([{ orderId: order.orderId, amount: 1000, duplicate: true }]);
  });

  it("ignores (200) an event for a PaymentIntent Stripe does not know, instead of failing it for days", async () => {
    const { order } = await pendingOrder("unknown-pi");
    const forged = { ...stripe.succeed((await outsidePayment(order)).id as string), id: "pi_does_not_exist" };
    await expect(deliver("payment_intent.succeeded", forged)).resolves.toMatchObject({ outcome: "ignored", reason: expect.stringMatching(/does not know/) });
    expect(await getOrder(t.ctx, "unknown-pi", order.orderId)).toMatchObject({ status: "pending" });
  });

  it("still answers a Stripe failure (5xx) with an error, so that Stripe delivers again", async () => {
    const { payment } = await pendingOrder("stripe-5xx");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    const event = stripe.succeed(payment.paymentIntentId);
    stripe.failNext(1);
    await expect(deliver("payment_intent.succeeded", event)).rejects.toMatchObject({ code: "payment_provider_error" });
  });
});

describe("POST .../sync", () => {
  it("applies what Stripe says of every attempt exactly as the webhook would: one credit, the extra payment refunded", async () => {
    const { order, payment } = await pendingOrder("synced");
    if (payment.provider !== "stripe") throw new Error("expected a PaymentIntent");
    stripe.succeed(payment.paymentIntentId);

    expect(await syncOrder(t.ctx, "synced", order.orderId)).toMatchObject({ status: "paid", paidPaymentIntentId: payment.paymentIntentId });
    expect(await syncOrder(t.ctx, "synced", order.orderId)).toMatchObject({ status: "paid" });
    expect(await balanceOf("synced")).toBe(100);
    expect(stripe.requestsTo("POST", "/v1/refunds").filter((r) => r.params.payment_intent === payment.paymentIntentId)).toHaveLength(0);
  });

  it("refuses a manual order (nothing at Stripe) with 409", async () => {
    const manualCtx = { ...t.ctx, payments: (await import("../../core/payments/manual.js")).createManualProvider() };
    t.clock.set(NOW);
    const { order } = await createOrder(manualCtx, { userId: "manual-sync", offerId: "pack" });
    await expect(syncOrder(t.ctx, "manual-sync", order.orderId)).rejects.toMatchObject({ code: "conflict" });
  });
});

describe("Stripe calls end inside the function's time", () => {
  it("times out after 5 s with one retry (a call is bounded near 10 s in a 25 s function)", () => {
    const client = createStripeClient({ secretKey: "sk_test_bounds" });
    expect([STRIPE_TIMEOUT_MS, STRIPE_NETWORK_RETRIES]).toEqual([5_000, 1]);
    expect(client.getApiField("timeout")).toBe(5_000);
    expect(client.getMaxNetworkRetries()).toBe(1);
  });
});
