/**
 * Refunds (API.md `POST .../refund`, `charge.refunded`, `refund.failed`; core/refunds.ts)
 * and disputes (`charge.dispute.created` / `.closed`; core/disputes.ts): tokens and money
 * end right whoever starts them (the API, the Stripe dashboard, the card network), each
 * applied once whatever the deliveries and their order. The real `stripe` SDK against the
 * stand-in, on DynamoDB Local; the ledger invariants are checked after each test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCredits } from "../../core/credits.js";
import { consume } from "../../core/consumption.js";
import { listEvents } from "../../core/events.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder, getOrder } from "../../core/orders.js";
import { createManualProvider } from "../../core/payments/manual.js";
import { createStripeProvider } from "../../core/payments/stripe.js";
import type { StripeEvent } from "../../core/payments/stripe-webhook.js";
import { refundOrder } from "../../core/refunds.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { handleStripeEvent } from "../../core/webhooks.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

const stripe = new StripeStandIn();
const t = useIntegrationContext({ label: "refunds" });
beforeAll(async () => {
  await stripe.start();
  t.ctx.payments = createStripeProvider({ secretKey: "sk_test_standin", apiUrl: stripe.url, maxNetworkRetries: 0 });
  await upsertOffer(t.ctx, "pack", anOffer());
  await upsertOffer(t.ctx, "yen", anOffer({ prices: [{ amount: 1200, currency: "jpy" }], tokenCount: 7 }));
  await upsertOffer(t.ctx, "data-pack", anOffer({ offerGroup: "data", tokenCount: 50, prices: [{ amount: 500, currency: "usd" }] }));
  await upsertOffer(t.ctx, "sms-pack", anOffer({ offerGroup: "sms", tokenCount: 10, prices: [{ amount: 1500, currency: "usd" }] }));
  await upsertOffer(t.ctx, "bundle", anOffer({ offerGroup: "plan", tokenCount: 0, prices: [{ amount: 2000, currency: "usd" }], combinedItems: [{ offerId: "data-pack", quantity: 1 }, { offerId: "sms-pack", quantity: 1 }] }));
  await upsertOffer(t.ctx, "pro", anOffer({ offerGroup: "pro", tokenCount: 0, prices: [{ amount: 3000, currency: "usd" }] }));
});
afterAll(() => stripe.stop());

const NOW = "2026-04-10T08:00:00.000Z";
const deliver = (type: string, object: Record<string, unknown>) => handleStripeEvent(t.ctx, stripeEvent(type, object) as unknown as StripeEvent);
const balanceOf = async (userId: string, group = "calls") => (await getCredits(t.ctx, userId)).groups.find((g) => g.offerGroup === group)?.balance ?? 0;

/** A paid order of `offerId` (PaymentIntent succeeded, webhook applied); returns the order and its PaymentIntent id. */
async function paidOrder(userId: string, offerId = "pack", currency?: string) {
  t.clock.set(NOW);
  const { order, payment } = await createOrder(t.ctx, { userId, offerId, ...(currency ? { currency } : {}) });
  if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
  expect(await deliver("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId))).toMatchObject({ outcome: "applied" });
  return { order, paymentIntentId: payment.paymentIntentId };
}

const spend = (userId: string, tokens: number, offerGroup = "calls") => consume(t.ctx, { userId, offerGroup, tokens });
const refundsAt = (paymentIntentId: string) => [...stripe.refunds.values()].filter((refund) => refund.payment_intent === paymentIntentId);

describe("POST .../refund", () => {
  it("unused: removes the tokens left, ends the grant, refunds the unused share at Stripe to the minor unit, once", async () => {
    const { order, paymentIntentId } = await paidOrder("unused");
    await spend("unused", 40);

    const refunded = await refundOrder(t.ctx, { userId: "unused", orderId: order.orderId, mode: "unused", idempotency: { scope: "refunds", key: "r-1", requestHash: "h" } });

    expect(refunded).toMatchObject({ status: "refunded", refunds: [{ number: 1, amount: 600, tokens: 60, tokensShort: 0, source: "api", status: "succeeded", refundId: expect.stringMatching(/^re_/) }] });
    expect(refundsAt(paymentIntentId)).toMatchObject([{ amount: 600, metadata: { orderId: order.orderId, refundNumber: "1" } }]);
    expect(stripe.requestsTo("POST", "/v1/refunds").at(-1)!.idempotencyKey).toBe(`refund-${order.orderId}-1`);
    expect(await balanceOf("unused")).toBe(0);
    expect((await getCredits(t.ctx, "unused")).groups[0]?.grants ?? []).toEqual([]);
    const { entries } = await listLedger(t.ctx, "unused", { limit: 10 });
    expect(entries.map((e) => [e.reason, e.tokens])).toEqual([["purchase", 100], ["consume", -40], ["refund", -60]]);
    const { events } = await listEvents(t.ctx, "unused", { limit: 10 });
    expect(events.filter((e) => e.type === "order.refunded")).toMatchObject([{ amount: 600, tokens: 60 }]);

    // The same key again: the stored answer; another refund: 409.
    expect(await refundOrder(t.ctx, { userId: "unused", orderId: order.orderId, mode: "unused", idempotency: { scope: "refunds", key: "r-1", requestHash: "h" } })).toEqual(refunded);
    await expect(refundOrder(t.ctx, { userId: "unused", orderId: order.orderId, mode: "full" })).rejects.toMatchObject({ code: "conflict" });
    expect(refundsAt(paymentIntentId)).toHaveLength(1);

    // The charge.refunded our own refund causes takes nothing more.
    expect(await deliver("charge.refunded", stripe.chargeOf(paymentIntentId))).toMatchObject({ outcome: "ignored" });
    expect((await getOrder(t.ctx, "unused", order.orderId)).history.at(-1)!.message).toMatch(/made at Stripe/);
  });

  it("unused in jpy rounds down to the whole yen; full refunds the rest of the total", async () => {
    const { order, paymentIntentId } = await paidOrder("yen", "yen", "jpy");
    await spend("yen", 2);
    await refundOrder(t.ctx, { userId: "yen", orderId: order.orderId, mode: "unused" });
    expect(refundsAt(paymentIntentId)).toMatchObject([{ amount: 857, currency: "jpy" }]); // floor(1200 × 5/7)

    const full = await paidOrder("yen-full", "yen", "jpy");
    await spend("yen-full", 7);
    expect(await refundOrder(t.ctx, { userId: "yen-full", orderId: full.order.orderId, mode: "full" })).toMatchObject({ refunds: [{ amount: 1200, tokens: 0 }] });
  });

  it("a bundle: every grant in every group loses its tokens, weighted by each item's value", async () => {
    const { order, paymentIntentId } = await paidOrder("bundled", "bundle");
    await spend("bundled", 50, "data"); // the data item (worth 500) fully spent, sms (1500) untouched
    const refunded = await refundOrder(t.ctx, { userId: "bundled", orderId: order.orderId, mode: "unused" });
    expect(refundsAt(paymentIntentId)).toMatchObject([{ amount: 1500 }]); // 2000 × (500×0 + 1500×1) / 2000
    expect(refunded.refunds![0]).toMatchObject({ tokens: 10 });
    expect(await balanceOf("bundled", "sms")).toBe(0);
    expect((await getCredits(t.ctx, "bundled")).subscriptions).toEqual([]);
  });

  it("a pure subscription refunds the share of its period not yet elapsed", async () => {
    const { order, paymentIntentId } = await paidOrder("pro-user", "pro");
    const paid = await getOrder(t.ctx, "pro-user", order.orderId);
    const half = new Date((Date.parse(paid.starts!) + Date.parse(paid.expires!)) / 2);
    t.clock.set(half.toISOString());
    await refundOrder(t.ctx, { userId: "pro-user", orderId: order.orderId, mode: "unused" });
    expect(refundsAt(paymentIntentId)).toMatchObject([{ amount: 1500 }]);
    expect((await getCredits(t.ctx, "pro-user")).subscriptions).toEqual([]);
  });

  it("a manual order: tokens removed, no money moved, said so in the history", async () => {
    const manual = { ...t.ctx, payments: createManualProvider() };
    t.clock.set(NOW);
    const { order } = await createOrder(manual, { userId: "manual-refund", offerId: "pack" });
    await confirmManualOrder(manual, "manual-refund", order.orderId);
    const refunded = await refundOrder(manual, { userId: "manual-refund", orderId: order.orderId, mode: "full" });
    expect(refunded).toMatchObject({ status: "refunded", refunds: [{ amount: 1000, tokens: 100, status: "succeeded" }] });
    expect(refunded.refunds![0]!.refundId).toBeUndefined();
    expect((await getOrder(t.ctx, "manual-refund", order.orderId)).refunds[0]!.refundId).toBeNull();
    expect(refunded.history.at(-1)!.message).toMatch(/no money moved/);
    expect(await balanceOf("manual-refund")).toBe(0);
  });

  it("a Stripe failure leaves the refund pending (tokens removed); the retry finishes it with the same Stripe refund", async () => {
    const { order, paymentIntentId } = await paidOrder("retry-refund");
    stripe.failNext(1);
    await expect(refundOrder(t.ctx, { userId: "retry-refund", orderId: order.orderId, mode: "full" })).rejects.toMatchObject({ code: "payment_provider_error" });
    expect(await getOrder(t.ctx, "retry-refund", order.orderId)).toMatchObject({ status: "refunded", refunds: [{ status: "pending" }] });
    expect(await balanceOf("retry-refund")).toBe(0);

    expect(await refundOrder(t.ctx, { userId: "retry-refund", orderId: order.orderId, mode: "full" })).toMatchObject({ refunds: [{ status: "succeeded", amount: 1000 }] });
    expect(refundsAt(paymentIntentId)).toHaveLength(1);
  });
});

describe("refunds made in Stripe (charge.refunded)", () => {
  it("partial then full: tokens taken back by the running target, each refund once, the order refunded at the total", async () => {
    const { order, paymentIntentId } = await paidOrder("dashboard");
    await spend("dashboard", 40);

    const partial = stripe.dashboardRefund(paymentIntentId, 300);
    expect(await deliver("charge.refunded", partial)).toMatchObject({ outcome: "applied" });
    expect(await deliver("charge.refunded", partial)).toMatchObject({ outcome: "ignored" }); // delivered twice
    expect(await balanceOf("dashboard")).toBe(30); // target ceil(100 × 300/1000) = 30
    expect(await getOrder(t.ctx, "dashboard", order.orderId)).toMatchObject({ status: "paid", refunds: [{ source: "stripe", amount: 300, tokens: 30, tokensShort: 0 }] });

    // A later unused refund through the API counts what the dashboard returned and took.
    const refunded = await refundOrder(t.ctx, { userId: "dashboard", orderId: order.orderId, mode: "unused" });
    expect(refunded.refunds!.at(-1)).toMatchObject({ source: "api", amount: 300, tokens: 30 }); // 700 × 30/70
    expect(await deliver("charge.refunded", stripe.chargeOf(paymentIntentId))).toMatchObject({ outcome: "ignored" });
  });

  it("takes what remains and records the shortfall, then refunds the order when Stripe has refunded the total", async () => {
    const { order, paymentIntentId } = await paidOrder("short");
    await spend("short", 90);
    await deliver("charge.refunded", stripe.dashboardRefund(paymentIntentId, 500));
    expect(await getOrder(t.ctx, "short", order.orderId)).toMatchObject({ refunds: [{ tokens: 10, tokensShort: 40 }] });
    await deliver("charge.refunded", stripe.dashboardRefund(paymentIntentId));
    expect(await getOrder(t.ctx, "short", order.orderId)).toMatchObject({ status: "refunded", refunds: [{ amount: 500 }, { amount: 500, tokens: 0 }] });
    expect(await balanceOf("short")).toBe(0);
  });

  it("a refund made before the payment was applied (late webhook) takes the tokens back when the payment is applied", async () => {
    t.clock.set(NOW);
    const { order, payment } = await createOrder(t.ctx, { userId: "refunded-first", offerId: "pack" });
    if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
    const intent = stripe.succeed(payment.paymentIntentId);
    expect(await deliver("charge.refunded", stripe.dashboardRefund(payment.paymentIntentId))).toMatchObject({ outcome: "ignored" });
    expect(await getOrder(t.ctx, "refunded-first", order.orderId)).toMatchObject({ status: "pending", refunds: [] });

    await deliver("payment_intent.succeeded", intent);

    expect(await getOrder(t.ctx, "refunded-first", order.orderId)).toMatchObject({ status: "refunded", refunds: [{ source: "stripe", amount: 1000, tokens: 100 }] });
    expect(await balanceOf("refunded-first")).toBe(0);
  });

  it("a catch-up that failed after the payment was applied is done again by the redelivery", async () => {
    t.clock.set(NOW);
    const { order, payment } = await createOrder(t.ctx, { userId: "catch-up", offerId: "pack" });
    if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
    const intent = stripe.succeed(payment.paymentIntentId);
    stripe.dashboardRefund(payment.paymentIntentId, 400);
    stripe.failNext(1, undefined, 1); // the read-back goes through; the refunds' read fails
    await expect(deliver("payment_intent.succeeded", intent)).rejects.toMatchObject({ code: "payment_provider_error" });
    expect(await getOrder(t.ctx, "catch-up", order.orderId)).toMatchObject({ status: "paid", refunds: [] });

    expect(await deliver("payment_intent.succeeded", intent)).toMatchObject({ outcome: "ignored", reason: "already paid" });
    expect(await getOrder(t.ctx, "catch-up", order.orderId)).toMatchObject({ status: "paid", refunds: [{ amount: 400, tokens: 40 }] });
    expect(await balanceOf("catch-up")).toBe(60);
  });

  it("refund.failed is noted with an order.refund_failed event; the tokens stay removed", async () => {
    const { order, paymentIntentId } = await paidOrder("failed-refund");
    const refunded = await refundOrder(t.ctx, { userId: "failed-refund", orderId: order.orderId, mode: "full" });
    const failed = stripe.failRefund(refunded.refunds![0]!.refundId!);
    expect(await deliver("refund.failed", failed)).toMatchObject({ outcome: "applied" });
    expect(await deliver("refund.failed", failed)).toMatchObject({ outcome: "ignored" });
    expect(await getOrder(t.ctx, "failed-refund", order.orderId)).toMatchObject({ status: "refunded", refunds: [{ status: "failed" }] });
    expect((await listEvents(t.ctx, "failed-refund", { limit: 10 })).events.filter((e) => e.type === "order.refund_failed")).toHaveLength(1);
    expect(await balanceOf("failed-refund")).toBe(0);
    expect(refundsAt(paymentIntentId)).toHaveLength(1);
  });
});

describe("disputes", () => {
  it("created freezes the remaining tokens; won gives them back; each delivery applies once", async () => {
    const { order, paymentIntentId } = await paidOrder("won");
    await spend("won", 30);
    const dispute = stripe.openDispute(paymentIntentId);
    expect(await deliver("charge.dispute.created", dispute)).toMatchObject({ outcome: "applied" });
    expect(await deliver("charge.dispute.created", dispute)).toMatchObject({ outcome: "ignored" });
    expect(await getOrder(t.ctx, "won", order.orderId)).toMatchObject({ status: "disputed", disputes: [{ status: "open", frozen: [{ tokens: 70 }] }] });
    expect(await balanceOf("won")).toBe(0);

    const closed = stripe.closeDispute(dispute.id as string, "won");
    expect(await deliver("charge.dispute.closed", closed)).toMatchObject({ outcome: "applied" });
    expect(await deliver("charge.dispute.closed", closed)).toMatchObject({ outcome: "ignored" });
    expect(await getOrder(t.ctx, "won", order.orderId)).toMatchObject({ status: "paid", disputes: [{ status: "won" }] });
    expect(await balanceOf("won")).toBe(70);
    const types = (await listEvents(t.ctx, "won", { limit: 10 })).events.map((e) => e.type);
    expect(types.filter((type) => type.startsWith("order.dispute"))).toEqual(["order.disputed", "order.dispute_closed"]);
  });

  it("lost keeps the tokens removed, ends the grants and refunds the order", async () => {
    const { order, paymentIntentId } = await paidOrder("lost");
    const dispute = stripe.openDispute(paymentIntentId);
    await deliver("charge.dispute.created", dispute);
    await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "lost"));
    expect(await getOrder(t.ctx, "lost", order.orderId)).toMatchObject({ status: "refunded", disputes: [{ status: "lost" }] });
    expect(await balanceOf("lost")).toBe(0);
    expect((await getCredits(t.ctx, "lost")).groups[0]?.grants ?? []).toEqual([]);
  });

  it("closed delivered before created applies both at once, and the late created changes nothing", async () => {
    const { order, paymentIntentId } = await paidOrder("out-of-order");
    const dispute = stripe.openDispute(paymentIntentId);
    const closed = stripe.closeDispute(dispute.id as string, "lost");
    expect(await deliver("charge.dispute.closed", closed)).toMatchObject({ outcome: "applied" });
    expect(await deliver("charge.dispute.created", dispute)).toMatchObject({ outcome: "ignored" });
    expect(await getOrder(t.ctx, "out-of-order", order.orderId)).toMatchObject({ status: "refunded" });
    expect(await balanceOf("out-of-order")).toBe(0);
  });

  it("a dispute opened before the payment was applied (late webhook) freezes the tokens when the payment is applied", async () => {
    t.clock.set(NOW);
    const { order, payment } = await createOrder(t.ctx, { userId: "disputed-first", offerId: "pack" });
    if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
    const intent = stripe.succeed(payment.paymentIntentId);
    const dispute = stripe.openDispute(payment.paymentIntentId);
    expect(await deliver("charge.dispute.created", dispute)).toMatchObject({ outcome: "ignored" });

    await deliver("payment_intent.succeeded", intent);

    expect(await getOrder(t.ctx, "disputed-first", order.orderId)).toMatchObject({ status: "disputed", disputes: [{ disputeId: dispute.id, frozen: [{ tokens: 100 }] }] });
    expect(await balanceOf("disputed-first")).toBe(0);
    await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "lost"));
    expect(await getOrder(t.ctx, "disputed-first", order.orderId)).toMatchObject({ status: "refunded" });
  });

  it("won after the grant expired: the tokens given back expire at once; debt is repaid first", async () => {
    const { order, paymentIntentId } = await paidOrder("won-late");
    const dispute = stripe.openDispute(paymentIntentId);
    await deliver("charge.dispute.created", dispute);
    await consume(t.ctx, { userId: "won-late", offerGroup: "calls", tokens: 25, allowOverdraft: true });
    t.clock.set("2026-06-01T00:00:00.000Z"); // past the monthly grant's expiry
    await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "won"));
    expect(await getOrder(t.ctx, "won-late", order.orderId)).toMatchObject({ status: "expired", disputes: [{ status: "won" }] });
    expect((await getCredits(t.ctx, "won-late")).groups[0]).toMatchObject({ balance: 0, debt: 0 });
    const { entries } = await listLedger(t.ctx, "won-late", { limit: 10 });
    expect(entries.map((e) => [e.reason, e.tokens, e.debtRepaid ?? 0])).toEqual([
      ["purchase", 100, 0],
      ["adjust", -100, 0],
      ["consume", -25, 0],
      ["adjust", 100, 25],
      ["expire", -75, 0],
    ]);
  });

  it("won after the grant expired, with no debt: a net-zero pair is not written", async () => {
    const { order, paymentIntentId } = await paidOrder("won-later");
    const dispute = stripe.openDispute(paymentIntentId);
    await deliver("charge.dispute.created", dispute);
    t.clock.set("2026-06-01T00:00:00.000Z");
    await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "warning_closed"));
    expect(await getOrder(t.ctx, "won-later", order.orderId)).toMatchObject({ status: "expired", disputes: [{ status: "warning_closed" }] });
    const { entries } = await listLedger(t.ctx, "won-later", { limit: 10 });
    expect(entries.map((e) => [e.reason, e.tokens])).toEqual([["purchase", 100], ["adjust", -100]]);
  });
});

describe("transaction size", () => {
  it("a 30-item bundle over 30 groups refunds, is disputed and won back after expiry, each in one transaction under DynamoDB's 100 actions", async () => {
    const items = Array.from({ length: 30 }, (_, i) => `item-${i}`);
    for (const [i, offerId] of items.entries()) {
      await upsertOffer(t.ctx, offerId, anOffer({ offerGroup: `g${i}`, tokenCount: 10, prices: [{ amount: 100, currency: "usd" }] }));
    }
    await upsertOffer(t.ctx, "big-bundle", anOffer({ offerGroup: "big", tokenCount: 5, prices: [{ amount: 5000, currency: "usd" }], combinedItems: items.map((offerId) => ({ offerId, quantity: 1 })) }));

    const refunded = await paidOrder("big-refund", "big-bundle");
    t.requests.reset();
    const order = await refundOrder(t.ctx, { userId: "big-refund", orderId: refunded.order.orderId, mode: "unused", idempotency: { scope: "refunds", key: "big", requestHash: "h" } });
    console.log("requests: refund of a 31-grant bundle", { ...t.requests.byCommand });
    expect(order.refunds![0]).toMatchObject({ amount: 5000, tokens: 305 });
    expect((await getCredits(t.ctx, "big-refund")).groups.every((group) => group.balance === 0)).toBe(true);

    const disputed = await paidOrder("big-dispute", "big-bundle");
    const dispute = stripe.openDispute(disputed.paymentIntentId);
    t.requests.reset();
    await deliver("charge.dispute.created", dispute);
    console.log("requests: dispute of a 31-grant bundle", { ...t.requests.byCommand });
    t.clock.set("2026-06-01T00:00:00.000Z");
    await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "won"));
    expect(await getOrder(t.ctx, "big-dispute", disputed.order.orderId)).toMatchObject({ status: "expired" });
  });

  it("costs a few DynamoDB requests: a refund and a dispute", async () => {
    const { order, paymentIntentId } = await paidOrder("counted");
    t.requests.reset();
    await refundOrder(t.ctx, { userId: "counted", orderId: order.orderId, mode: "full" });
    const refund = { ...t.requests.byCommand };
    const other = await paidOrder("counted-dispute");
    const dispute = stripe.openDispute(other.paymentIntentId);
    t.requests.reset();
    await deliver("charge.dispute.created", dispute);
    const opened = { ...t.requests.byCommand };
    console.log("requests: refund", refund, "dispute opened", opened);
    // Refund: read the order, its grants (BatchGet) and balances (Query); one transaction; then record the Stripe refund (read-free guarded put).
    expect(refund).toEqual({ GetItemCommand: 1, BatchGetItemCommand: 1, QueryCommand: 1, TransactWriteItemsCommand: 1, PutItemCommand: 1 });
    expect(opened).toEqual({ GetItemCommand: 1, BatchGetItemCommand: 1, QueryCommand: 1, TransactWriteItemsCommand: 1 });
    expect(refundsAt(paymentIntentId)).toHaveLength(1);
  });
});

describe("grants in an overflow item (a long history)", () => {
  /** A paid order whose grant is pushed out of the balance item by 12 grants that drain before it. */
  async function spilledOrder(userId: string) {
    const paid = await paidOrder(userId);
    for (let i = 0; i < 12; i++) await createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens: 10, expires: "2026-04-17T08:00:00.000Z" });
    const { data } = await t.ctx.db.entities.balance.get({ userId, offerGroup: "calls" }).go({ consistent: true });
    expect(data!.grants.map((grant) => grant.grantId)).not.toContain(paid.order.grantIds[0]); // spilled
    return paid;
  }

  it("a refund takes the tokens of a grant that sits in an overflow item", async () => {
    const { order } = await spilledOrder("spilled-refund");
    const refunded = await refundOrder(t.ctx, { userId: "spilled-refund", orderId: order.orderId, mode: "unused" });
    expect(refunded.refunds![0]).toMatchObject({ amount: 1000, tokens: 100 });
    expect(await balanceOf("spilled-refund")).toBe(120);
    expect((await getCredits(t.ctx, "spilled-refund")).subscriptions).toEqual([]);
  });

  it("a dispute freezes and gives back the tokens of a grant in an overflow item", async () => {
    const { order, paymentIntentId } = await spilledOrder("spilled-dispute");
    const dispute = stripe.openDispute(paymentIntentId);
    await deliver("charge.dispute.created", dispute);
    expect(await balanceOf("spilled-dispute")).toBe(120);
    await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "won"));
    expect(await balanceOf("spilled-dispute")).toBe(220);
    expect(await getOrder(t.ctx, "spilled-dispute", order.orderId)).toMatchObject({ status: "paid" });
  });

  it("a refunded order whose grant was spent no longer counts as subscribed", async () => {
    const { order } = await paidOrder("spent-refund");
    await spend("spent-refund", 100);
    await refundOrder(t.ctx, { userId: "spent-refund", orderId: order.orderId, mode: "full" });
    expect((await getCredits(t.ctx, "spent-refund")).subscriptions).toEqual([]);
  });
});
