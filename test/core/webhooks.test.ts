/**
 * Stripe payments end to end in core (core/orders.ts, core/webhooks.ts,
 * core/payments/stripe.ts): the real `stripe` SDK against the local stand-in, events
 * shaped from Stripe's example objects, applied on DynamoDB Local.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCredits } from "../../core/credits.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { createOrder, getOrder, retryPayment } from "../../core/orders.js";
import { createStripeProvider, STRIPE_API_VERSION } from "../../core/payments/stripe.js";
import type { StripeEvent } from "../../core/payments/stripe-webhook.js";
import { handleStripeEvent } from "../../core/webhooks.js";
import { STRIPE_WEBHOOK_EVENTS } from "../../core/payments/stripe-events.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

const stripe = new StripeStandIn();
const t = useIntegrationContext({ label: "webhooks" });
beforeAll(async () => {
  await stripe.start();
  t.ctx.payments = createStripeProvider({ secretKey: "sk_test_standin", apiUrl: stripe.url, maxNetworkRetries: 0 });
  await upsertOffer(t.ctx, "pack", anOffer());
});
afterAll(() => stripe.stop());

const NOW = "2026-04-10T08:00:00.000Z";
const asEvent = (value: Record<string, unknown>) => value as unknown as StripeEvent;

async function pendingOrder(userId: string) {
  t.clock.set(NOW);
  const { order, payment } = await createOrder(t.ctx, { userId, offerId: "pack" });
  if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
  return { order, paymentIntentId: payment.paymentIntentId, clientSecret: payment.clientSecret };
}

describe("order creation with Stripe", () => {
  it("creates a PaymentIntent with the order's amount, currency and metadata, under an idempotency key per attempt", async () => {
    const { order, paymentIntentId, clientSecret } = await pendingOrder("pi-shape");
    const [request] = stripe.requestsTo("POST", "/v1/payment_intents").slice(-1);
    expect(request).toMatchObject({
      params: { amount: "1000", currency: "usd", metadata: { orderId: order.orderId, userId: "pi-shape", offerId: "pack", attempt: "1" } },
      idempotencyKey: `order-${order.orderId}-attempt-1`,
      stripeVersion: STRIPE_API_VERSION,
    });
    expect(clientSecret).toMatch(new RegExp(`^${paymentIntentId}_secret_`));
    expect(order).toMatchObject({ status: "pending", paymentIntentId, provider: "stripe" });
  });

  it("refuses totals Stripe cannot charge with 422 amount_out_of_range", async () => {
    await upsertOffer(t.ctx, "cent", anOffer({ prices: [{ amount: 1, currency: "usd" }] }));
    await expect(createOrder(t.ctx, { userId: "tiny", offerId: "cent" })).rejects.toMatchObject({ code: "amount_out_of_range" });
  });

  it("answers 502 when Stripe fails, leaving the order unpaid with a history entry", async () => {
    t.clock.set(NOW);
    stripe.failNext(1);
    const error = await createOrder(t.ctx, { userId: "stripe-down", offerId: "pack" }).catch((e) => e);
    expect(error).toMatchObject({ code: "payment_provider_error" });
    const { orders } = await import("../../core/orders.js").then((m) => m.listOrders(t.ctx, "stripe-down", { limit: 5 }));
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ status: "error" });
    expect(orders[0]!.history.at(-1)!.message).toMatch(/Stripe failed/);
  });
});

describe("the events to enable on the endpoint", () => {
  it("are each handled (the list the deploy prints is the list the code handles)", async () => {
    for (const type of STRIPE_WEBHOOK_EVENTS) {
      const outcome = await handleStripeEvent(t.ctx, asEvent(stripeEvent(type, { object: "unknown" })));
      expect(outcome.reason, type).not.toMatch(/is not handled/);
    }
    expect(await handleStripeEvent(t.ctx, asEvent(stripeEvent("customer.created", {})))).toMatchObject({ reason: expect.stringMatching(/is not handled/) });
  });
});

describe("payment_intent.succeeded", () => {
  it("pays the order once, however often the event or another one for the same PaymentIntent arrives", async () => {
    const { order, paymentIntentId } = await pendingOrder("paid-once");
    const event = stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId));
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "applied", orderId: order.orderId });
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "ignored" });
    const second = stripeEvent("payment_intent.succeeded", stripe.intent(paymentIntentId));
    expect(await handleStripeEvent(t.ctx, asEvent(second))).toMatchObject({ outcome: "ignored", reason: "already paid" });
    const concurrent = await Promise.all(
      Array.from({ length: 4 }, () => handleStripeEvent(t.ctx, asEvent(stripeEvent("payment_intent.succeeded", stripe.intent(paymentIntentId))))),
    );
    expect(concurrent.every((o) => o.outcome === "ignored")).toBe(true);
    expect((await getCredits(t.ctx, "paid-once")).groups[0]!.balance).toBe(100);
    expect((await listLedger(t.ctx, "paid-once", { limit: 10 })).entries).toHaveLength(1);
  });

  it("credits once when the same event is delivered concurrently", async () => {
    const { paymentIntentId } = await pendingOrder("paid-concurrently");
    const event = stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId));
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => handleStripeEvent(t.ctx, asEvent(event))));
    expect(outcomes.filter((o) => o.outcome === "applied")).toHaveLength(1);
    expect((await getCredits(t.ctx, "paid-concurrently")).groups[0]!.balance).toBe(100);
  });

  it("ignores a stale event whose PaymentIntent Stripe does not report as succeeded", async () => {
    const { paymentIntentId } = await pendingOrder("stale");
    const forged = stripeEvent("payment_intent.succeeded", { ...stripe.intent(paymentIntentId), status: "succeeded" });
    expect(await handleStripeEvent(t.ctx, asEvent(forged))).toMatchObject({ outcome: "ignored", reason: "PaymentIntent is requires_payment_method, not succeeded" });
    expect((await getCredits(t.ctx, "stale")).groups).toEqual([]);
  });

  it("does not credit an amount or currency that differs from the order, and says why in its history", async () => {
    const { order, paymentIntentId } = await pendingOrder("short-paid");
    const event = stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId, { amountReceived: 999 }));
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "ignored" });
    const after = await getOrder(t.ctx, "short-paid", order.orderId);
    expect(after.status).toBe("pending");
    expect(after.history.at(-1)!.message).toBe("inconsistent payment, not credited: amount received 999 differs from the order's total 1000");
    expect((await getCredits(t.ctx, "short-paid")).groups).toEqual([]);
  });

  it("does not credit a payment in another currency than the order's", async () => {
    const { order, paymentIntentId } = await pendingOrder("other-currency");
    const event = stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId, { currency: "eur" }));
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "ignored", reason: "currency eur differs from the order's usd" });
    expect((await getOrder(t.ctx, "other-currency", order.orderId)).history.at(-1)!.message).toMatch(/^inconsistent payment, not credited: currency eur/);
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "ignored" });
    expect((await getOrder(t.ctx, "other-currency", order.orderId)).history.filter((h) => h.message.startsWith("inconsistent"))).toHaveLength(1);
    expect((await getCredits(t.ctx, "other-currency")).groups).toEqual([]);
  });

  it("ignores events for unknown orders and PaymentIntents that are not the order's", async () => {
    const { paymentIntentId } = await pendingOrder("other-pi");
    const stranger = stripe.succeed(paymentIntentId);
    const unknownOrder = stripeEvent("payment_intent.succeeded", { ...stranger, metadata: { orderId: "01KF0HJ080FP66SJD5SJKZ765Q", userId: "other-pi" } });
    expect(await handleStripeEvent(t.ctx, asEvent(unknownOrder))).toMatchObject({ outcome: "ignored", reason: "unknown order" });
    const noMetadata = stripeEvent("payment_intent.succeeded", { ...stranger, metadata: {} });
    expect(await handleStripeEvent(t.ctx, asEvent(noMetadata))).toMatchObject({ outcome: "ignored" });
    const mine = await pendingOrder("pi-thief");
    const foreign = stripeEvent("payment_intent.succeeded", { ...stranger, metadata: { orderId: mine.order.orderId, userId: "pi-thief" } });
    expect(await handleStripeEvent(t.ctx, asEvent(foreign))).toMatchObject({ outcome: "ignored", reason: `PaymentIntent ${paymentIntentId} is not one of this order's` });
  });

  it("costs three DynamoDB requests and one Stripe read to fulfil", async () => {
    const { paymentIntentId } = await pendingOrder("counted");
    const event = stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId));
    const stripeReads = stripe.requestsTo("GET", `/v1/payment_intents/${paymentIntentId}`).length;
    t.requests.reset();
    await handleStripeEvent(t.ctx, asEvent(event));
    console.log("requests: webhook fulfilment", t.requests.byCommand);
    expect(t.requests.byCommand).toEqual({ GetItemCommand: 1, QueryCommand: 1, TransactWriteItemsCommand: 1 });
    expect(stripe.requestsTo("GET", `/v1/payment_intents/${paymentIntentId}`).length - stripeReads).toBe(1);
  });
});

describe("failed payments", () => {
  it("refuse the order without credit; a later success of the same PaymentIntent pays it once", async () => {
    const { order, paymentIntentId } = await pendingOrder("declined");
    const failed = stripeEvent("payment_intent.payment_failed", stripe.fail(paymentIntentId));
    expect(await handleStripeEvent(t.ctx, asEvent(failed))).toMatchObject({ outcome: "applied", reason: "order refused" });
    const refused = await getOrder(t.ctx, "declined", order.orderId);
    expect(refused.status).toBe("refused");
    expect(refused.history.at(-1)!.message).toBe("payment failed: Your card was declined.");
    expect((await getCredits(t.ctx, "declined")).groups).toEqual([]);

    const succeeded = stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId));
    expect(await handleStripeEvent(t.ctx, asEvent(succeeded))).toMatchObject({ outcome: "applied" });
    expect(await handleStripeEvent(t.ctx, asEvent(failed))).toMatchObject({ outcome: "ignored" });
    expect((await getOrder(t.ctx, "declined", order.orderId)).status).toBe("paid");
    expect((await getCredits(t.ctx, "declined")).groups[0]!.balance).toBe(100);
  });

  it("leave a paid order paid when the failure arrives after the success", async () => {
    const { order, paymentIntentId } = await pendingOrder("late-failure");
    const failure = stripeEvent("payment_intent.payment_failed", stripe.fail(paymentIntentId));
    await handleStripeEvent(t.ctx, asEvent(stripeEvent("payment_intent.succeeded", stripe.succeed(paymentIntentId))));
    expect(await handleStripeEvent(t.ctx, asEvent(failure))).toMatchObject({ outcome: "ignored", reason: "order is paid" });
    expect((await getOrder(t.ctx, "late-failure", order.orderId)).status).toBe("paid");
  });

  it("can be retried with a new PaymentIntent; the old one is cancelled and a success of either pays once", async () => {
    const { order, paymentIntentId } = await pendingOrder("retry");
    await handleStripeEvent(t.ctx, asEvent(stripeEvent("payment_intent.payment_failed", stripe.fail(paymentIntentId))));
    const retried = await retryPayment(t.ctx, "retry", order.orderId);
    if (retried.payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
    expect(retried.payment.paymentIntentId).not.toBe(paymentIntentId);
    expect(stripe.intent(paymentIntentId).status).toBe("canceled");
    const canceled = stripeEvent("payment_intent.canceled", stripe.intent(paymentIntentId));
    expect(await handleStripeEvent(t.ctx, asEvent(canceled))).toMatchObject({ outcome: "ignored", reason: expect.stringMatching(/not the order's current attempt/) });
    expect((await getOrder(t.ctx, "retry", order.orderId)).status).toBe("pending");
    expect(stripe.requestsTo("POST", "/v1/payment_intents").at(-1)!.idempotencyKey).toBe(`order-${order.orderId}-attempt-2`);
    await handleStripeEvent(t.ctx, asEvent(stripeEvent("payment_intent.succeeded", stripe.succeed(retried.payment.paymentIntentId))));
    expect((await getOrder(t.ctx, "retry", order.orderId)).status).toBe("paid");
    expect((await getCredits(t.ctx, "retry")).groups[0]!.balance).toBe(100);
  });
});

describe("Checkout Sessions", () => {
  it("are created with the order's metadata, and checkout.session.completed pays the order", async () => {
    t.clock.set(NOW);
    const { order, payment } = await createOrder(t.ctx, {
      userId: "checkout",
      offerId: "pack",
      checkout: { successUrl: "https://app.example/ok", cancelUrl: "https://app.example/cancel" },
    });
    if (payment?.provider !== "stripe_checkout") throw new Error("expected a Checkout Session");
    expect(payment.url).toMatch(/^https:\/\/checkout\.stripe\.com\//);
    const session = stripe.checkoutSessions.get(payment.checkoutSessionId)!;
    expect(session.metadata).toEqual({ orderId: order.orderId, userId: "checkout", offerId: "pack", attempt: "1" });
    stripe.succeed(session.payment_intent as string);
    const completed = stripeEvent("checkout.session.completed", { ...session, payment_status: "paid", status: "complete" });
    expect(await handleStripeEvent(t.ctx, asEvent(completed))).toMatchObject({ outcome: "applied" });
    const duplicateViaIntent = stripeEvent("payment_intent.succeeded", stripe.intent(session.payment_intent as string));
    expect(await handleStripeEvent(t.ctx, asEvent(duplicateViaIntent))).toMatchObject({ outcome: "ignored", reason: "already paid" });
    expect((await getCredits(t.ctx, "checkout")).groups[0]!.balance).toBe(100);
  });
});
