/**
 * Faults (issue "Money safety"): any DynamoDB call made to fail at a chosen point
 * (throttling, network error, transaction cancellation; before it applied, or after
 * with its response lost), and Stripe failing (5xx, card error, timeout). After the
 * failure and a retry of the same request or event, nothing is credited twice or lost,
 * and the ledger invariants hold (checked after every test).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { hashRequest } from "../../core/idempotency.js";
import { listLedger } from "../../core/ledger.js";
import { runDailyJob } from "../../core/daily-job.js";
import { upsertOffer } from "../../core/offers.js";
import { ConflictError, isTransient, PaymentProviderError } from "../../core/errors.js";
import { createOrder, getOrder, listOrders, retryPayment } from "../../core/orders.js";
import { createStripeProvider } from "../../core/payments/stripe.js";
import type { StripeEvent } from "../../core/payments/stripe-webhook.js";
import { retryStats } from "../../core/retry.js";
import { handleStripeEvent } from "../../core/webhooks.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { injectFaults, type FaultInjector } from "../helpers/faults.js";
import { StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

const stripe = new StripeStandIn();
const t = useIntegrationContext({ label: "faults" });
let faults: FaultInjector;
const NOW = "2026-08-01T10:00:00.000Z";

beforeAll(async () => {
  await stripe.start();
  faults = injectFaults(t.client);
  t.ctx.payments = createStripeProvider({ secretKey: "sk_test_faults", apiUrl: stripe.url, maxNetworkRetries: 0, timeoutMs: 1000 });
  await upsertOffer(t.ctx, "pack", anOffer());
});
afterEach(() => faults.clear());
afterAll(() => stripe.stop());

const key = (k: string, body: unknown, scope = "consumptions") => ({ scope, key: k, requestHash: hashRequest(body) });
const balanceOf = async (userId: string) => (await getCredits(t.ctx, userId)).groups[0]?.balance ?? 0;
const asEvent = (value: Record<string, unknown>) => value as unknown as StripeEvent;

describe("a consumption", () => {
  it("that fails before applying (throttled read) changes nothing, and its retry applies once", async () => {
    t.clock.set(NOW);
    await createPromotionalGrant(t.ctx, { userId: "c-throttle", offerGroup: "calls", tokens: 10, expires: null });
    const body = { offerGroup: "calls", tokens: 3 };
    faults.fail({ command: "BatchGetItemCommand", fault: "throttle" });
    await expect(consume(t.ctx, { userId: "c-throttle", ...body, idempotency: key("k", body) })).rejects.toMatchObject({
      name: "ProvisionedThroughputExceededException",
    });
    expect(await balanceOf("c-throttle")).toBe(10);
    await consume(t.ctx, { userId: "c-throttle", ...body, idempotency: key("k", body) });
    expect(await balanceOf("c-throttle")).toBe(7);
  });

  it("whose transaction applied but whose response was lost is not applied again by its retry with the same key", async () => {
    t.clock.set(NOW);
    await createPromotionalGrant(t.ctx, { userId: "c-lost", offerGroup: "calls", tokens: 10, expires: null });
    const body = { offerGroup: "calls", tokens: 4 };
    faults.fail({ command: "TransactWriteItemsCommand", fault: "network", after: true });
    await expect(consume(t.ctx, { userId: "c-lost", ...body, idempotency: key("k", body) })).rejects.toMatchObject({ cause: { code: "ECONNRESET" } });
    expect(await balanceOf("c-lost")).toBe(6);
    const retried = await consume(t.ctx, { userId: "c-lost", ...body, idempotency: key("k", body) });
    expect(retried.balance).toBe(6);
    expect(await balanceOf("c-lost")).toBe(6);
    expect((await listLedger(t.ctx, "c-lost", { limit: 10 })).entries.filter((e) => e.reason === "consume")).toHaveLength(1);
  });

  it("whose transaction is cancelled by a conflict is retried with backoff and applies once", async () => {
    t.clock.set(NOW);
    await createPromotionalGrant(t.ctx, { userId: "c-conflict", offerGroup: "calls", tokens: 10, expires: null });
    const before = retryStats.conflicts;
    faults.fail({ command: "TransactWriteItemsCommand", fault: "conflict", times: 3 });
    const result = await consume(t.ctx, { userId: "c-conflict", offerGroup: "calls", tokens: 2 });
    expect(result.balance).toBe(8);
    expect(retryStats.conflicts - before).toBe(3);
    expect(faults.raised.filter((f) => f.fault === "conflict").length).toBeGreaterThanOrEqual(3);
  });
});

describe("a Stripe payment", () => {
  async function paidIntent(userId: string) {
    t.clock.set(NOW);
    const { order, payment } = await createOrder(t.ctx, { userId, offerId: "pack" });
    if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
    return { order, event: stripeEvent("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId)) };
  }

  it("whose credit fails after Stripe confirmed it is applied once by the redelivery", async () => {
    const { event } = await paidIntent("w-before");
    faults.fail({ command: "TransactWriteItemsCommand", fault: "throttle" });
    await expect(handleStripeEvent(t.ctx, asEvent(event))).rejects.toThrow();
    expect(await balanceOf("w-before")).toBe(0);
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "applied" });
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "ignored" });
    expect(await balanceOf("w-before")).toBe(100);
  });

  it("credited but whose answer to Stripe was lost is not credited again by the redelivery", async () => {
    const { event } = await paidIntent("w-after");
    faults.fail({ command: "TransactWriteItemsCommand", fault: "network", after: true });
    await expect(handleStripeEvent(t.ctx, asEvent(event))).rejects.toThrow();
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "ignored", reason: "already paid" });
    expect(await balanceOf("w-after")).toBe(100);
  });

  it("whose order read fails, or whose confirmation at Stripe fails, is applied once by the redelivery", async () => {
    const { event } = await paidIntent("w-read");
    faults.fail({ command: "GetItemCommand", fault: "network" });
    await expect(handleStripeEvent(t.ctx, asEvent(event))).rejects.toThrow();
    stripe.failNext(1);
    await expect(handleStripeEvent(t.ctx, asEvent(event))).rejects.toMatchObject({ code: "payment_provider_error" });
    expect(await handleStripeEvent(t.ctx, asEvent(event))).toMatchObject({ outcome: "applied" });
    expect(await balanceOf("w-read")).toBe(100);
  });
});

describe("an order creation", () => {
  const body = { offerId: "pack" };

  it("that fails after Stripe created the PaymentIntent is completed by its retry: one order, one PaymentIntent", async () => {
    t.clock.set(NOW);
    const before = stripe.requestsTo("POST", "/v1/payment_intents").length;
    faults.fail({ command: "TransactWriteItemsCommand", fault: "throttle" });
    await expect(createOrder(t.ctx, { userId: "o-final", ...body, idempotency: key("k", body, "orders") })).rejects.toThrow();
    const retried = await createOrder(t.ctx, { userId: "o-final", ...body, idempotency: key("k", body, "orders") });
    const again = await createOrder(t.ctx, { userId: "o-final", ...body, idempotency: key("k", body, "orders") });
    expect(again).toEqual(retried);
    expect((await listOrders(t.ctx, "o-final", { limit: 10 })).orders).toHaveLength(1);
    const created = stripe.requestsTo("POST", "/v1/payment_intents").slice(before);
    expect(new Set(created.map((r) => r.idempotencyKey)).size).toBe(1);
    expect(stripe.paymentIntents.size).toBeGreaterThan(0);
    expect(retried.order.paymentIntentId).toMatch(/^pi_/);
  });

  it("whose answer was lost after it completed replays the stored outcome", async () => {
    t.clock.set(NOW);
    faults.fail({ command: "TransactWriteItemsCommand", fault: "network", after: true });
    await expect(createOrder(t.ctx, { userId: "o-lost", ...body, idempotency: key("k", body, "orders") })).rejects.toThrow();
    const retried = await createOrder(t.ctx, { userId: "o-lost", ...body, idempotency: key("k", body, "orders") });
    expect(retried.order.status).toBe("pending");
    expect((await listOrders(t.ctx, "o-lost", { limit: 10 })).orders).toHaveLength(1);
  });

  it("refused by Stripe (5xx, card error, timeout) answers 502 and leaves the order unpaid with a history entry; the retry pays a new attempt", async () => {
    t.clock.set(NOW);
    const failures = [
      () => stripe.failNext(1, { status: 500, type: "api_error", message: "Stripe is down" }),
      () => stripe.failNext(1, { status: 402, type: "card_error", code: "card_declined", message: "Your card was declined." }),
      () => stripe.delayNext(1, 2500),
    ];
    for (const [i, fail] of failures.entries()) {
      fail();
      const userId = `o-stripe-${i}`;
      const error = await createOrder(t.ctx, { userId, ...body, idempotency: key("k", body, "orders") }).catch((e) => e);
      expect(error).toMatchObject({ code: "payment_provider_error" });
      const [order] = (await listOrders(t.ctx, userId, { limit: 10 })).orders;
      expect(order).toMatchObject({ status: "error", paymentIntentId: null });
      expect(order!.history.at(-1)!.message).toMatch(/^Stripe failed to create the payment/);

      const retried = await createOrder(t.ctx, { userId, ...body, idempotency: key("k", body, "orders") });
      expect(retried.order).toMatchObject({ orderId: order!.orderId, status: "pending", paymentIntentId: expect.stringMatching(/^pi_/) });
      expect(retried.order.history.at(-1)!.message).toBe("payment attempt 2");
      const after = await getOrder(t.ctx, userId, order!.orderId);
      expect(after.paymentIntentId).toBe(retried.order.paymentIntentId);
    }
    await new Promise((r) => setTimeout(r, 1600)); // let the delayed stand-in answer drain
  });

  it("while the first request with the key is still running answers 409 idempotency_in_progress", async () => {
    t.clock.set(NOW);
    stripe.delayNext(1, 400);
    const first = createOrder(t.ctx, { userId: "o-busy", ...body, idempotency: key("k", body, "orders") });
    await new Promise((r) => setTimeout(r, 150));
    await expect(createOrder(t.ctx, { userId: "o-busy", ...body, idempotency: key("k", body, "orders") })).rejects.toMatchObject({
      code: "idempotency_in_progress",
    });
    const done = await first;
    expect(await createOrder(t.ctx, { userId: "o-busy", ...body, idempotency: key("k", body, "orders") })).toEqual(done);
  });

  it("keeps a key's outcome 24 hours, after which the key is free again", async () => {
    t.clock.set(NOW);
    const first = await createOrder(t.ctx, { userId: "o-ttl", ...body, idempotency: key("k", body, "orders") });
    const { data } = await t.db.entities.idempotencyRecord.get({ userId: "o-ttl", scope: "orders", key: "k" }).go();
    expect(data!.ttl).toBeGreaterThanOrEqual(Date.parse(NOW) / 1000 + 24 * 3600);
    t.clock.set("2026-08-02T09:59:59.000Z");
    expect(await createOrder(t.ctx, { userId: "o-ttl", ...body, idempotency: key("k", body, "orders") })).toEqual(first);
    t.clock.set("2026-08-02T10:00:01.000Z");
    const other = { offerId: "pack", quantity: 2 };
    const fresh = await createOrder(t.ctx, { userId: "o-ttl", ...other, idempotency: key("k", other, "orders") });
    expect(fresh.order.orderId).not.toBe(first.order.orderId);
  });
});

describe("recording a payment attempt's failure on its order", () => {
  const body = { offerId: "pack" };

  it("when throttled answers 503 (the client retries) instead of a 502 that left the order without its error; its retry goes on with the same order", async () => {
    t.clock.set(NOW);
    stripe.failNext(1, { status: 500, type: "api_error", message: "Stripe is down" });
    faults.fail({ command: "PutItemCommand", fault: "throttle", skip: 2 }); // the key's lease and the order's creation go through
    const error = await createOrder(t.ctx, { userId: "o-record-throttled", ...body, idempotency: key("k", body, "orders") }).catch((e) => e);
    expect(error).not.toBeInstanceOf(PaymentProviderError);
    expect(isTransient(error)).toBe(true);
    const retried = await createOrder(t.ctx, { userId: "o-record-throttled", ...body, idempotency: key("k", body, "orders") });
    expect(retried.order).toMatchObject({ status: "pending", paymentIntentId: expect.stringMatching(/^pi_/) });
    expect((await listOrders(t.ctx, "o-record-throttled", { limit: 10 })).orders).toHaveLength(1);
  });

  it("when refused for another reason answers the provider's 502 and logs why the order was not marked", async () => {
    t.clock.set(NOW);
    const logged: Array<{ message: string; extra: unknown[] }> = [];
    const logger = t.ctx.logger;
    t.ctx.logger = { ...logger, error: (message: string, ...extra: unknown[]) => void logged.push({ message, extra }) };
    try {
      stripe.failNext(1, { status: 500, type: "api_error", message: "Stripe is down" });
      faults.fail({ command: "PutItemCommand", fault: "invalid", skip: 1 }); // the order's creation goes through
      const error = await createOrder(t.ctx, { userId: "o-record-invalid", ...body }).catch((e) => e);
      expect(error).toMatchObject({ code: "payment_provider_error" });
      expect(logged).toMatchObject([{ message: "could not record a payment error on its order", extra: [{ orderId: expect.any(String) }] }]);
    } finally {
      t.ctx.logger = logger;
    }
  });
});

describe("a new payment attempt (POST .../pay)", () => {
  it("whose order write is throttled answers 503 (transient), not 409; its retry makes the attempt", async () => {
    t.clock.set(NOW);
    const { order } = await createOrder(t.ctx, { userId: "pay-throttled", offerId: "pack" });
    faults.fail({ command: "PutItemCommand", fault: "throttle" });
    const error = await retryPayment(t.ctx, "pay-throttled", order.orderId).catch((e) => e);
    expect(error).not.toBeInstanceOf(ConflictError);
    expect(isTransient(error)).toBe(true);
    const retried = await retryPayment(t.ctx, "pay-throttled", order.orderId);
    expect(retried.order).toMatchObject({ status: "pending", paymentIntentId: expect.stringMatching(/^pi_/) });
    expect(retried.order.paymentIntentId).not.toBe(order.paymentIntentId);
  });

  it("on an order that changed while Stripe answered still answers 409 conflict, writing nothing", async () => {
    t.clock.set(NOW);
    const { order } = await createOrder(t.ctx, { userId: "pay-raced", offerId: "pack" });
    stripe.delayNext(1, 600);
    const attempt = retryPayment(t.ctx, "pay-raced", order.orderId).catch((e) => e);
    await new Promise((r) => setTimeout(r, 200));
    const current = (await t.db.entities.order.get({ userId: "pay-raced", orderId: order.orderId }).go({ consistent: true })).data!;
    const changed = { ...current, updatedAt: "2026-08-01T10:00:00.001Z" };
    await t.db.entities.order.put(changed).go();
    expect(await attempt).toBeInstanceOf(ConflictError);
    expect((await t.db.entities.order.get({ userId: "pay-raced", orderId: order.orderId }).go({ consistent: true })).data).toEqual(changed);
  });
});

describe("the daily job", () => {
  it("that fails half-way is completed exactly once by the next run", async () => {
    t.clock.set("2026-08-10T00:00:00.000Z");
    for (let i = 0; i < 4; i++) await createPromotionalGrant(t.ctx, { userId: `x-${i}`, offerGroup: "calls", tokens: 10 + i, expires: "2026-08-11T00:00:00.000Z" });
    t.clock.set("2026-08-12T00:00:00.000Z");
    faults.fail({ command: "TransactWriteItemsCommand", fault: "network", skip: 1 });
    await expect(runDailyJob(t.ctx)).rejects.toThrow();
    const finished = await runDailyJob(t.ctx);
    expect(finished.complete).toBe(true);
    for (let i = 0; i < 4; i++) {
      expect(await balanceOf(`x-${i}`)).toBe(0);
      expect((await listLedger(t.ctx, `x-${i}`, { limit: 10 })).entries.filter((e) => e.reason === "expire")).toMatchObject([{ tokens: -(10 + i) }]);
    }
  });
});

describe("the HTTP edge", () => {
  it("answers 503 service_unavailable (JSON, no detail leaked) when DynamoDB fails, 5xx on the webhook so that Stripe retries", async () => {
    const { buildRuntime, setRuntime } = await import("../../functions/runtime.js");
    const { invoke } = await import("../helpers/gateway.js");
    const { signedDelivery } = await import("../helpers/stripe-stand-in.js");
    const secret = "whsec_faults_edge";
    setRuntime(
      buildRuntime(
        { apiKeys: ["k"], stripeSecretKey: "sk_test_faults", stripeApiUrl: stripe.url, stripeWebhookSecret: secret, defaultCurrency: "usd", tableName: t.tableName },
        t.clock,
        t.client,
      ),
    );
    try {
      t.clock.set(NOW);
      const consumption = await import("../../functions/consumption.js");
      faults.fail({ command: "BatchGetItemCommand", fault: "throttle" });
      const response = await invoke(consumption.handler, {
        method: "POST",
        path: "/users/edge/consumptions",
        headers: { authorization: "Bearer k" },
        body: { offerGroup: "calls", tokens: 1 },
      });
      expect(response).toEqual({
        status: 503,
        headers: expect.anything(),
        body: { error: { code: "service_unavailable", message: "A dependency is temporarily unavailable; retry later." } },
      });

      const { order, payment } = await createOrder(t.ctx, { userId: "edge", offerId: "pack" });
      if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
      const delivery = signedDelivery(stripeEvent("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId)), secret);
      const webhook = await import("../../functions/webhook.js");
      const deliver = () =>
        invoke(webhook.handler, { method: "POST", path: "/webhooks/stripe", headers: { "stripe-signature": delivery.signature, "content-type": "application/json" }, body: delivery.body });
      faults.fail({ command: "TransactWriteItemsCommand", fault: "throttle" });
      expect((await deliver()).status).toBe(503);
      expect(await deliver()).toMatchObject({ status: 200, body: { outcome: "applied" } });
      expect((await getOrder(t.ctx, "edge", order.orderId)).status).toBe("paid");
    } finally {
      setRuntime(undefined);
    }
  });
});
