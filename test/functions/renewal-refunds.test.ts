/**
 * Refunds and disputes of a renewing order's periods (issue 13; API.md "Renewing
 * subscriptions and automatic top-ups", "Refunds and disputes started in Stripe"): a
 * renewing order is paid invoice by invoice, so
 * - `POST .../refund` refunds its latest paid period: that period's grants and that
 *   invoice's amount, the Stripe Refund made on that invoice's PaymentIntent; the order
 *   keeps its status (its subscription goes on until cancelled);
 * - a refund or dispute made in Stripe on a renewal invoice's charge (whose PaymentIntent
 *   carries no `metadata.orderId`) finds the order through its invoice's subscription, and
 *   takes back, freezes or ends that period's tokens only, once per Stripe id.
 * Same setup as renewals.test.ts (test/helpers/billing-api.ts): in-process handlers, one manual clock the stand-in
 * follows, the real `stripe` SDK against the stand-in, signed webhook deliveries.
 */
import { describe, expect, it } from "vitest";
import { useBillingApi } from "../helpers/billing-api.js";
import { stripeEvent } from "../helpers/stripe-stand-in.js";

type Json = Record<string, any>;

const START = "2027-01-31T10:00:00.000Z";
const HOUR_MS = 3_600_000;
const api = useBillingApi({
  label: "renewal-refunds",
  start: START,
  offers: { "pro-monthly": { name: "Pro", offerGroup: "pro", cycle: "monthly", tokenCount: 1000, prices: [{ amount: 2000, currency: "usd" }], renewal: "auto" } },
});
const { clock, stripe, call } = api;

/** Posts `event` to the webhook as Stripe does (signed, at the service's time); it must answer 200. */
async function deliver(event: Json) {
  const answer = await api.deliver(event);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer;
}

/** The PaymentIntent that paid `invoiceId`, as the stand-in keeps its InvoicePayment. */
function intentOfInvoice(invoiceId: string): string {
  const row = [...stripe.invoicePayments.values()].find((candidate) => candidate.invoice === invoiceId && candidate.status === "paid");
  if (!row) throw new Error(`invoice ${invoiceId} has no paid InvoicePayment`);
  return (row.payment as Json).payment_intent as string;
}

/** A period paid at the stand-in and credited through `invoice.paid`: its invoice, PaymentIntent and grant. */
interface PaidPeriod {
  invoiceId: string;
  paymentIntentId: string;
  grantId: string;
}

/**
 * Orders the renewing offer, pays its first invoice and `renewals` renewals (each
 * delivered as `invoice.paid`, the clock following Stripe's), then moves an hour into the
 * last period; returns the order and its periods, oldest first.
 */
async function subscribeAndRenew(userId: string, renewals: number): Promise<{ order: Json; periods: PaidPeriod[] }> {
  clock.set(START);
  stripe.now = clock.now();
  const created = await call("orders", "POST", `/users/${userId}/orders`, { offerId: "pro-monthly" });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const order = (created.body as Json).order as Json;
  const invoices = [stripe.payFirstInvoice(order.subscriptionId).invoice];
  await deliver(stripeEvent("invoice.paid", invoices[0]!));
  for (let n = 0; n < renewals; n++) {
    const step = stripe.renew(order.subscriptionId, { outcome: "paid" });
    if (!("invoice" in step)) throw new Error("not renewed");
    clock.set(stripe.now.toISOString());
    await deliver(stripeEvent("invoice.paid", step.invoice));
    invoices.push(step.invoice);
  }
  clock.advance(HOUR_MS);
  const paid = await orderOf(userId, order.orderId);
  expect(paid.grantIds).toHaveLength(renewals + 1);
  const periods = invoices.map((invoice, index) => ({ invoiceId: invoice.id as string, paymentIntentId: intentOfInvoice(invoice.id as string), grantId: paid.grantIds[index] as string }));
  return { order: paid, periods };
}

async function orderOf(userId: string, orderId: string): Promise<Json> {
  return (await call("orders", "GET", `/users/${userId}/orders/${orderId}`)).body as Json;
}

async function consume(userId: string, tokens: number): Promise<void> {
  const consumed = await call("consumption", "POST", `/users/${userId}/consumptions`, { offerGroup: "pro", tokens });
  expect(consumed.status, JSON.stringify(consumed.body)).toBe(201);
}

/** The grant item's status and what it still holds in the balance (0 once it has left it). */
async function grantOf(userId: string, grantId: string): Promise<{ status: string; remaining: number }> {
  const { data } = await api.table.db.entities.grant.get({ userId, grantId }).go({ consistent: true });
  const credits = (await call("credits", "GET", `/users/${userId}/credits`)).body as Json;
  const live = ((credits.groups as Json[]).flatMap((group) => group.grants as Json[]) ?? []).find((grant) => grant.grantId === grantId);
  return { status: data!.status, remaining: live?.remaining ?? 0 };
}

async function ledgerOf(userId: string, reason: string): Promise<Json[]> {
  const entries = ((await call("credits", "GET", `/users/${userId}/ledger?limit=100`)).body as Json).entries as Json[];
  return entries.filter((entry) => entry.reason === reason).map((entry) => ({ grantId: entry.grantId, tokens: entry.tokens }));
}

async function eventsOf(userId: string): Promise<string[]> {
  return (((await call("credits", "GET", `/users/${userId}/events?limit=100`)).body as Json).events as Json[]).map((event) => event.type);
}

const refundRequestsOn = (paymentIntentId: string) => stripe.requestsTo("POST", "/v1/refunds").filter((request) => request.params.payment_intent === paymentIntentId);

describe("POST .../refund of a renewing order", () => {
  it("refunds its latest period only: that period's unused share on that invoice's PaymentIntent, that period's grant ended, the order still paid and renewing", async () => {
    const userId = "rr-api";
    const { order, periods } = await subscribeAndRenew(userId, 2);
    const [first, second, latest] = periods as [PaidPeriod, PaidPeriod, PaidPeriod];
    await consume(userId, 250);
    expect(await grantOf(userId, latest.grantId)).toEqual({ status: "active", remaining: 750 });

    const refunded = await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode: "unused", reason: "asked" });
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(200);
    // 750 of the period's 1000 tokens unused: floor(2000 × 750 / 1000) of that invoice's 2000.
    expect(refunded.body).toMatchObject({
      status: "paid",
      refunds: [{ number: 1, amount: 1500, tokens: 750, tokensShort: 0, source: "api", status: "succeeded", invoiceId: latest.invoiceId, refundId: expect.stringMatching(/^re_/), reason: "asked" }],
    });
    const [made] = refundRequestsOn(latest.paymentIntentId);
    expect(made).toMatchObject({ idempotencyKey: `refund-${order.orderId}-1`, params: { amount: "1500", metadata: { orderId: order.orderId, userId, refundNumber: "1", invoiceId: latest.invoiceId } } });
    expect(stripe.chargeOf(latest.paymentIntentId)).toMatchObject({ amount_refunded: 1500 });
    for (const earlier of [first, second]) {
      expect(refundRequestsOn(earlier.paymentIntentId)).toEqual([]);
      expect((await grantOf(userId, earlier.grantId)).status).not.toBe("refunded");
    }
    expect(await grantOf(userId, latest.grantId)).toEqual({ status: "refunded", remaining: 0 });
    expect(await ledgerOf(userId, "refund")).toEqual([{ grantId: latest.grantId, tokens: -750 }]);
    expect((await eventsOf(userId)).filter((type) => type === "order.refunded")).toHaveLength(1);

    // The charge.refunded it causes is recognised: nothing more is taken, however often delivered.
    const charge = stripe.chargeOf(latest.paymentIntentId);
    await deliver(stripeEvent("charge.refunded", charge));
    await deliver(stripeEvent("charge.refunded", charge));
    expect(await ledgerOf(userId, "refund")).toEqual([{ grantId: latest.grantId, tokens: -750 }]);
    expect((await orderOf(userId, order.orderId)).refunds).toHaveLength(1);

    // The period is refunded: again, in either mode -> 409, nothing moves.
    for (const mode of ["unused", "full"]) {
      const again = await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode });
      expect(again).toMatchObject({ status: 409, body: { error: { code: "conflict", details: { invoiceId: latest.invoiceId } } } });
      expect(again.body.error.message).toMatch(/already refunded/);
    }
    expect(refundRequestsOn(latest.paymentIntentId)).toHaveLength(1);

    // The subscription goes on: the next invoice is credited, and is the latest period now.
    const next = stripe.renew(order.subscriptionId, { outcome: "paid" });
    if (!("invoice" in next)) throw new Error("not renewed");
    clock.set(stripe.now.toISOString());
    await deliver(stripeEvent("invoice.paid", next.invoice));
    const renewed = await orderOf(userId, order.orderId);
    expect(renewed).toMatchObject({ status: "paid", expires: "2027-05-31T10:00:00.000Z" });
    expect(await grantOf(userId, renewed.grantIds.at(-1))).toEqual({ status: "active", remaining: 1000 });
    const full = await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode: "full" });
    expect(full).toMatchObject({ status: 200, body: { status: "paid", refunds: [{ invoiceId: latest.invoiceId }, { number: 2, amount: 2000, tokens: 1000, invoiceId: next.invoice.id }] } });
    expect(refundRequestsOn(intentOfInvoice(next.invoice.id as string))).toMatchObject([{ idempotencyKey: `refund-${order.orderId}-2`, params: { amount: "2000" } }]);
  });

  it("a renewing order with no paid period -> 409, Stripe not asked", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const created = (await call("orders", "POST", "/users/rr-unpaid/orders", { offerId: "pro-monthly" })).body as Json;
    const before = stripe.requestsTo("POST", "/v1/refunds").length;
    expect(await call("orders", "POST", `/users/rr-unpaid/orders/${created.order.orderId}/refund`, { mode: "full" })).toMatchObject({ status: 409, body: { error: { code: "conflict" } } });
    expect(stripe.requestsTo("POST", "/v1/refunds")).toHaveLength(before);
  });
});

describe("a refund made in Stripe of a renewal invoice's charge", () => {
  it("finds the order through the invoice's subscription and takes that period's tokens back once; the API then refunds only what is left", async () => {
    const userId = "rr-stripe";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [first, latest] = periods as [PaidPeriod, PaidPeriod];
    expect(stripe.intent(latest.paymentIntentId).metadata).toEqual({});
    await consume(userId, 100);

    // Half the invoice refunded in the dashboard: ceil(1000 × 1000 / 2000) = 500 tokens of that period.
    const charge = stripe.dashboardRefund(latest.paymentIntentId, 1000);
    await deliver(stripeEvent("charge.refunded", charge));
    await deliver(stripeEvent("charge.refunded", charge));
    expect(await ledgerOf(userId, "refund")).toEqual([{ grantId: latest.grantId, tokens: -500 }]);
    expect(await grantOf(userId, latest.grantId)).toEqual({ status: "active", remaining: 400 });
    expect((await grantOf(userId, first.grantId)).status).not.toBe("refunded");
    const afterStripe = await orderOf(userId, order.orderId);
    expect(afterStripe).toMatchObject({ status: "paid", refunds: [{ number: 1, amount: 1000, tokens: 500, tokensShort: 0, source: "stripe", status: "succeeded", invoiceId: latest.invoiceId }] });

    // The rest through the API: `full` is what Stripe refunds left of that invoice.
    const rest = await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode: "full" });
    expect(rest).toMatchObject({ status: 200, body: { status: "paid", refunds: [{ number: 1 }, { number: 2, amount: 1000, tokens: 400, source: "api", invoiceId: latest.invoiceId }] } });
    expect(refundRequestsOn(latest.paymentIntentId).map((request) => request.params.amount)).toEqual(["1000"]);
    expect(stripe.chargeOf(latest.paymentIntentId)).toMatchObject({ amount_refunded: 2000, refunded: true });
    expect(await grantOf(userId, latest.grantId)).toEqual({ status: "refunded", remaining: 0 });
    await deliver(stripeEvent("charge.refunded", stripe.chargeOf(latest.paymentIntentId)));
    expect(await ledgerOf(userId, "refund")).toEqual([
      { grantId: latest.grantId, tokens: -500 },
      { grantId: latest.grantId, tokens: -400 },
    ]);
    expect((await orderOf(userId, order.orderId)).refunds).toHaveLength(2);
  });

  it("a full refund in Stripe of the latest invoice ends that period's grant; the order stays paid, an API refund then -> 409", async () => {
    const userId = "rr-stripe-full";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [first, latest] = periods as [PaidPeriod, PaidPeriod];
    await deliver(stripeEvent("charge.refunded", stripe.dashboardRefund(latest.paymentIntentId)));
    expect(await grantOf(userId, latest.grantId)).toEqual({ status: "refunded", remaining: 0 });
    expect((await grantOf(userId, first.grantId)).status).not.toBe("refunded");
    expect(await orderOf(userId, order.orderId)).toMatchObject({ status: "paid", refunds: [{ amount: 2000, tokens: 1000, source: "stripe", invoiceId: latest.invoiceId }] });
    expect(await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode: "full" })).toMatchObject({ status: 409 });
  });

  it("of an invoice whose invoice.paid has not arrived yet: the period is credited first, then taken back; the late invoice.paid credits nothing more", async () => {
    const userId = "rr-stripe-early";
    const { order, periods } = await subscribeAndRenew(userId, 0);
    const step = stripe.renew(order.subscriptionId, { outcome: "paid" });
    if (!("invoice" in step)) throw new Error("not renewed");
    clock.set(stripe.now.toISOString());
    const paymentIntentId = intentOfInvoice(step.invoice.id as string);
    await deliver(stripeEvent("charge.refunded", stripe.dashboardRefund(paymentIntentId)));
    const refunded = await orderOf(userId, order.orderId);
    expect(refunded).toMatchObject({ status: "paid", refunds: [{ amount: 2000, tokens: 1000, source: "stripe", invoiceId: step.invoice.id }] });
    expect(refunded.grantIds).toHaveLength(2);
    expect(await grantOf(userId, refunded.grantIds[1])).toEqual({ status: "refunded", remaining: 0 });
    await deliver(stripeEvent("invoice.paid", step.invoice));
    expect(await ledgerOf(userId, "purchase")).toEqual([
      { grantId: periods[0]!.grantId, tokens: 1000 },
      { grantId: refunded.grantIds[1], tokens: 1000 },
    ]);
  });
});

describe("a dispute of a renewal invoice's charge", () => {
  it("freezes that period's tokens once, lets later periods be credited meanwhile, and a lost dispute keeps them removed, later periods untouched", async () => {
    const userId = "rr-dispute";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [, disputed] = periods as [PaidPeriod, PaidPeriod];
    await consume(userId, 100);
    const dispute = stripe.openDispute(disputed.paymentIntentId);
    await deliver(stripeEvent("charge.dispute.created", dispute));
    await deliver(stripeEvent("charge.dispute.created", dispute));
    expect(await ledgerOf(userId, "adjust")).toEqual([{ grantId: disputed.grantId, tokens: -900 }]);
    expect(await orderOf(userId, order.orderId)).toMatchObject({ status: "paid", disputes: [{ disputeId: dispute.id, status: "open", frozen: [{ grantId: disputed.grantId, tokens: 900 }], invoiceId: disputed.invoiceId }] });

    // The subscription goes on meanwhile: the next invoice is credited.
    const next = stripe.renew(order.subscriptionId, { outcome: "paid" });
    if (!("invoice" in next)) throw new Error("not renewed");
    clock.set(stripe.now.toISOString());
    await deliver(stripeEvent("invoice.paid", next.invoice));
    const renewed = await orderOf(userId, order.orderId);
    const nextGrant = renewed.grantIds.at(-1) as string;
    expect(await grantOf(userId, nextGrant)).toEqual({ status: "active", remaining: 1000 });

    await deliver(stripeEvent("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "lost")));
    await deliver(stripeEvent("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "lost")));
    // (Its period ended when the next began: the grant has expired, with nothing given back.)
    expect(await grantOf(userId, disputed.grantId)).toEqual({ status: "expired", remaining: 0 });
    expect(await ledgerOf(userId, "adjust")).toEqual([{ grantId: disputed.grantId, tokens: -900 }]);
    expect(await grantOf(userId, nextGrant)).toEqual({ status: "active", remaining: 1000 });
    expect(await orderOf(userId, order.orderId)).toMatchObject({ status: "paid", disputes: [{ disputeId: dispute.id, status: "lost", closedAt: expect.any(String) }] });
    const events = await eventsOf(userId);
    expect(events.filter((type) => type === "order.disputed")).toHaveLength(1);
    expect(events.filter((type) => type === "order.dispute_closed")).toHaveLength(1);
  });

  it("a won dispute gives the frozen tokens back to that period's grant", async () => {
    const userId = "rr-dispute-won";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [first, disputed] = periods as [PaidPeriod, PaidPeriod];
    await consume(userId, 100);
    const dispute = stripe.openDispute(disputed.paymentIntentId);
    await deliver(stripeEvent("charge.dispute.created", dispute));
    expect(await grantOf(userId, disputed.grantId)).toEqual({ status: "active", remaining: 0 });
    await deliver(stripeEvent("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "won")));
    expect(await grantOf(userId, disputed.grantId)).toEqual({ status: "active", remaining: 900 });
    expect((await grantOf(userId, first.grantId)).status).not.toBe("refunded");
    expect(await ledgerOf(userId, "adjust")).toEqual([
      { grantId: disputed.grantId, tokens: -900 },
      { grantId: disputed.grantId, tokens: 900 },
    ]);
    expect(await orderOf(userId, order.orderId)).toMatchObject({ status: "paid", disputes: [{ status: "won" }] });
  });

  it("lost within its period: that period's grant ends; while open, an API refund of that period -> 409", async () => {
    const userId = "rr-dispute-lost";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [first, disputed] = periods as [PaidPeriod, PaidPeriod];
    const dispute = stripe.openDispute(disputed.paymentIntentId);
    await deliver(stripeEvent("charge.dispute.created", dispute));
    expect(await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode: "full" })).toMatchObject({ status: 409, body: { error: { details: { invoiceId: disputed.invoiceId } } } });
    await deliver(stripeEvent("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "lost")));
    expect(await grantOf(userId, disputed.grantId)).toEqual({ status: "refunded", remaining: 0 });
    expect((await grantOf(userId, first.grantId)).status).not.toBe("refunded");
    expect(await orderOf(userId, order.orderId)).toMatchObject({ status: "paid", disputes: [{ status: "lost", invoiceId: disputed.invoiceId }] });
    expect((await eventsOf(userId)).filter((type) => type.startsWith("order."))).toEqual(["order.paid", "order.disputed", "order.dispute_closed"]);
  });
});

describe("tokens given back to a period that was refunded or is disputed", () => {
  /** Holds `tokens` of the group; returns the reservation id. */
  async function hold(userId: string, tokens: number): Promise<string> {
    const held = await call("consumption", "POST", `/users/${userId}/reservations`, { offerGroup: "pro", tokens });
    expect(held.status, JSON.stringify(held.body)).toBe(201);
    return (held.body as Json).reservationId as string;
  }
  const balanceOf = async (userId: string) => (((await call("credits", "GET", `/users/${userId}/credits`)).body as Json).groups as Json[]).find((g) => g.offerGroup === "pro")?.balance ?? 0;

  it("a hold released after its period was refunded gives nothing back to the refunded grant, while the order's other periods live", async () => {
    const userId = "rr-hold-refund";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [, latest] = periods as [PaidPeriod, PaidPeriod];
    const reservationId = await hold(userId, 1000);
    const refunded = await call("orders", "POST", `/users/${userId}/orders/${order.orderId}/refund`, { mode: "full" });
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(200);
    // The next period is paid meanwhile: the order has a live grant again.
    const next = stripe.renew(order.subscriptionId, { outcome: "paid" });
    if (!("invoice" in next)) throw new Error("not renewed");
    clock.set(stripe.now.toISOString());
    await deliver(stripeEvent("invoice.paid", next.invoice));
    expect(await balanceOf(userId)).toBe(1000);
    const released = await call("consumption", "POST", `/users/${userId}/reservations/${reservationId}/release`);
    expect(released.status, JSON.stringify(released.body)).toBe(200);
    expect(await grantOf(userId, latest.grantId)).toEqual({ status: "refunded", remaining: 0 });
    expect(await balanceOf(userId)).toBe(1000);
  });

  it("a hold released while its period's dispute is open gives nothing back to the frozen grant", async () => {
    const userId = "rr-hold-dispute";
    const { order, periods } = await subscribeAndRenew(userId, 1);
    const [, latest] = periods as [PaidPeriod, PaidPeriod];
    const reservationId = await hold(userId, 400);
    const dispute = stripe.openDispute(latest.paymentIntentId);
    await deliver(stripeEvent("charge.dispute.created", dispute));
    expect(await orderOf(userId, order.orderId)).toMatchObject({ status: "paid", disputes: [{ status: "open", invoiceId: latest.invoiceId }] });
    expect(await balanceOf(userId)).toBe(0);
    expect((await call("consumption", "POST", `/users/${userId}/reservations/${reservationId}/release`)).status).toBe(200);
    expect(await balanceOf(userId)).toBe(0);
  });
});
