/**
 * Renewing subscriptions through the HTTP API (issue 13; API.md "Renewing subscriptions
 * and automatic top-ups"): an order of a `renewal: "auto"` offer makes a Stripe Customer
 * and Subscription (the real `stripe` SDK against the stand-in), and each paid invoice,
 * delivered as a signed `invoice.paid` webhook, credits its period once, dated as Stripe
 * dates it. The handlers run in process with one manual clock, which the stand-in's clock
 * follows (Stripe's test clocks, locally).
 */
import { describe, expect, it } from "vitest";
import { abandonOrders } from "../../core/abandoned-orders.js";
import { claimSubscription, CLAIM_LEASE_MS } from "../../core/subscriptions.js";
import { runtime } from "../../functions/runtime.js";
import { useBillingApi } from "../helpers/billing-api.js";
import { stripeEvent } from "../helpers/stripe-stand-in.js";

type Json = Record<string, any>;

const START = "2027-01-31T10:00:00.000Z";
const api = useBillingApi({
  label: "renewals",
  start: START,
  offers: {
    "pro-monthly": { name: "Pro", offerGroup: "pro", cycle: "monthly", tokenCount: 1000, prices: [{ amount: 2000, currency: "usd" }], renewal: "auto" },
    "pro-yearly": { name: "Pro yearly", offerGroup: "pro", cycle: "yearly", tokenCount: 12000, prices: [{ amount: 20000, currency: "usd" }], renewal: "auto" },
    "calls-once": { name: "Calls", offerGroup: "calls", cycle: "monthly", tokenCount: 60, prices: [{ amount: 500, currency: "usd" }] },
    "pro-extras": { name: "Pro extras", offerGroup: "extras", cycle: "monthly", tokenCount: 50, prices: [{ amount: 700, currency: "usd" }], unlockedBy: ["pro"] },
  },
});
const { clock, stripe, call, deliver } = api;

/** Stripe renews the subscription and its invoice is paid; returns that invoice. */
function renewPaid(subscriptionId: string): Json {
  const step = stripe.renew(subscriptionId, { outcome: "paid" });
  if (!("invoice" in step)) throw new Error(`subscription ${subscriptionId} was not renewed`);
  return step.invoice;
}

/** Moves the service's clock to the stand-in's (a renewal moves Stripe's clock forward). */
function follow(): void {
  clock.set(stripe.now.toISOString());
}

/** The user's grants in `group`, oldest first, with their dates and tokens. */
async function grantsOf(userId: string, group: string) {
  const credits = (await call("credits", "GET", `/users/${userId}/credits`)).body as Json;
  const found = (credits.groups as Json[]).find((g) => g.offerGroup === group);
  return ((found?.grants ?? []) as Json[]).map((g) => ({ tokens: g.tokens, starts: g.starts, expires: g.expires })).sort((a, b) => a.starts.localeCompare(b.starts));
}

/** Orders a renewing offer and pays its first invoice at the stand-in; returns the order, payment and first invoice. */
async function subscribe(userId: string, offerId = "pro-monthly", quantity = 1) {
  stripe.now = clock.now();
  const created = await call("orders", "POST", `/users/${userId}/orders`, { offerId, quantity });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { order, payment } = created.body as Json;
  const first = stripe.payFirstInvoice(payment.subscriptionId);
  return { order, payment, first };
}

describe("ordering a renewing offer", () => {
  it("makes the user's Stripe Customer and a Subscription, and answers the first invoice's client secret", async () => {
    clock.set(START);
    const created = await call("orders", "POST", "/users/sub-order/orders", { offerId: "pro-monthly", quantity: 2 });
    expect(created).toMatchObject({ status: 201, body: { order: { status: "pending", renewal: "auto", quantity: 2, tokens: 2000, total: { amount: 4000, currency: "usd" } }, payment: { provider: "stripe" } } });
    const { order, payment } = created.body as Json;
    expect(payment.subscriptionId).toMatch(/^sub_/);
    expect(order.subscriptionId).toBe(payment.subscriptionId);
    const subscription = stripe.subscription(payment.subscriptionId);
    expect(subscription).toMatchObject({ status: "incomplete", metadata: { orderId: order.orderId, userId: "sub-order" } });
    expect((subscription.items as Json).data[0]).toMatchObject({ quantity: 2, price: { unit_amount: 2000, recurring: { interval: "month", interval_count: 1 }, lookup_key: "uc:pro-monthly:usd:2000:1month" } });
    expect(stripe.customer(subscription.customer as string)).toMatchObject({ metadata: { userId: "sub-order" } });
    // The client secret is the first invoice's (its confirmation_secret): its PaymentIntent's.
    expect(stripe.intent(payment.paymentIntentId)).toMatchObject({ client_secret: payment.clientSecret, amount: 4000, status: "requires_payment_method" });
  });

  it("refuses a second order of the offer while the first awaits payment or is active (409 already_subscribed), another offer or user not", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-twice");
    expect((await deliver(stripeEvent("invoice.paid", first.invoice))).status).toBe(200);
    const again = await call("orders", "POST", "/users/sub-twice/orders", { offerId: "pro-monthly" });
    expect(again).toMatchObject({ status: 409, body: { error: { code: "already_subscribed", details: { offerId: "pro-monthly", orderId: order.orderId, status: "active" } } } });
    const pending = await call("orders", "POST", "/users/sub-pending/orders", { offerId: "pro-monthly" });
    expect(pending.status).toBe(201);
    expect(await call("orders", "POST", "/users/sub-pending/orders", { offerId: "pro-monthly" })).toMatchObject({ status: 409, body: { error: { code: "already_subscribed", details: { status: "incomplete" } } } });
    expect((await call("orders", "POST", "/users/sub-twice/orders", { offerId: "pro-yearly" })).status).toBe(201);
  });

  it("through Checkout: a subscription-mode session, credited by its first invoice, not by the session's completion", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const checkout = { successUrl: "https://app.example.com/ok", cancelUrl: "https://app.example.com/cancel" };
    const created = await call("orders", "POST", "/users/sub-checkout/orders", { offerId: "pro-monthly", checkout });
    expect(created).toMatchObject({ status: 201, body: { order: { provider: "stripe_checkout", renewal: "auto", subscriptionId: null }, payment: { provider: "stripe_checkout" } } });
    const { order, payment } = created.body as Json;
    const session = stripe.session(payment.checkoutSessionId);
    expect(session).toMatchObject({ mode: "subscription", metadata: { orderId: order.orderId, userId: "sub-checkout" } });
    expect(stripe.customer(session.customer as string)).toMatchObject({ metadata: { userId: "sub-checkout" } });
    const paid = stripe.completeSubscriptionSession(payment.checkoutSessionId);
    expect(paid.subscription).toMatchObject({ metadata: { orderId: order.orderId, userId: "sub-checkout" } });
    expect((await deliver(stripeEvent("checkout.session.completed", paid.session))).status).toBe(200);
    expect((await call("orders", "GET", `/users/sub-checkout/orders/${order.orderId}`)).body).toMatchObject({ status: "pending", grantIds: [] });
    expect((await deliver(stripeEvent("invoice.paid", paid.invoice))).status).toBe(200);
    expect((await call("orders", "GET", `/users/sub-checkout/orders/${order.orderId}`)).body).toMatchObject({ status: "paid", subscriptionId: paid.subscription.id, starts: START, expires: "2027-02-28T10:00:00.000Z" });
    expect(await grantsOf("sub-checkout", "pro")).toEqual([{ tokens: 1000, starts: START, expires: "2027-02-28T10:00:00.000Z" }]);
  });

  it("two first orders of the offer at once: one subscription, the other 409 already_subscribed", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const subscriptionsBefore = stripe.requestsTo("POST", "/v1/subscriptions").length;
    const answers = await Promise.all([0, 1, 2, 3].map(() => call("orders", "POST", "/users/sub-race/orders", { offerId: "pro-monthly" })));
    expect(answers.map((answer) => answer.status).sort(), JSON.stringify(answers.map((answer) => answer.body))).toEqual([201, 409, 409, 409]);
    expect(answers.filter((answer) => answer.status === 409).every((answer) => answer.body.error.code === "already_subscribed")).toBe(true);
    expect(stripe.requestsTo("POST", "/v1/subscriptions").length - subscriptionsBefore).toBe(1);
  });

  it("a claim whose order is not written yet (a first order in flight) refuses a second order; one older than the lease (its request died) is taken over", async () => {
    clock.set(START);
    stripe.now = clock.now();
    await claimSubscription((await runtime()).core, { userId: "sub-inflight", offerId: "pro-monthly", orderId: "01KINFLIGHT000000000000000", offerGroup: "pro" });
    expect(await call("orders", "POST", "/users/sub-inflight/orders", { offerId: "pro-monthly" })).toMatchObject({
      status: 409,
      body: { error: { code: "already_subscribed", details: { orderId: "01KINFLIGHT000000000000000", status: "incomplete" } } },
    });
    clock.advance(CLAIM_LEASE_MS + 1);
    expect((await call("orders", "POST", "/users/sub-inflight/orders", { offerId: "pro-monthly" })).status).toBe(201);
  });

  it("an order whose Subscription Stripe failed to make (502, order error) frees the offer for the next order", async () => {
    clock.set(START);
    stripe.now = clock.now();
    // The user's customer (made by a card setup) and the offer's price (by another user's order) exist:
    // the order's first Stripe request is the Subscription's creation, which fails.
    expect((await call("orders", "POST", "/users/sub-502/payment-methods/setup", {})).status).toBe(201);
    expect((await call("orders", "POST", "/users/sub-502-other/orders", { offerId: "pro-yearly" })).status).toBe(201);
    const before = stripe.requests.length;
    stripe.failNext(2, { status: 500, type: "api_error", message: "stand-in failure" }); // the SDK retries once
    const failed = await call("orders", "POST", "/users/sub-502/orders", { offerId: "pro-yearly" });
    expect(failed).toMatchObject({ status: 502, body: { error: { code: "payment_provider_error" } } });
    expect(stripe.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual(["POST /v1/subscriptions", "POST /v1/subscriptions"]);
    const again = await call("orders", "POST", "/users/sub-502/orders", { offerId: "pro-yearly" });
    expect(again).toMatchObject({ status: 201, body: { order: { renewal: "auto" }, payment: { subscriptionId: expect.stringMatching(/^sub_/) } } });
  });

  it("refuses a renewing order that starts later (422 not_renewable)", async () => {
    clock.set(START);
    expect(await call("orders", "POST", "/users/sub-later/orders", { offerId: "pro-monthly", starts: "2027-03-01T00:00:00.000Z" })).toMatchObject({
      status: 422,
      body: { error: { code: "not_renewable", details: { reason: "starts" } } },
    });
  });
});

describe("each paid invoice", () => {
  it("credits the first period and three renewals once each, dated as Stripe dates them across month ends", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-renew", "pro-monthly", 3);
    // The first invoice's PaymentIntent carries no metadata of ours: its succeeded event credits nothing.
    expect(stripe.intent(order.paymentIntentId).metadata).toEqual({});
    const paidFirst = await deliver(stripeEvent("invoice.paid", first.invoice));
    expect(paidFirst.status, JSON.stringify(paidFirst.body)).toBe(200);
    const afterFirst = (await call("orders", "GET", `/users/sub-renew/orders/${order.orderId}`)).body as Json;
    expect(afterFirst).toMatchObject({ status: "paid", starts: "2027-01-31T10:00:00.000Z", expires: "2027-02-28T10:00:00.000Z" });
    const periods = [
      ["2027-01-31T10:00:00.000Z", "2027-02-28T10:00:00.000Z"],
      ["2027-02-28T10:00:00.000Z", "2027-03-31T10:00:00.000Z"],
      ["2027-03-31T10:00:00.000Z", "2027-04-30T10:00:00.000Z"],
      ["2027-04-30T10:00:00.000Z", "2027-05-31T10:00:00.000Z"],
    ];
    expect(await grantsOf("sub-renew", "pro")).toEqual([{ tokens: 3000, starts: periods[0]![0], expires: periods[0]![1] }]);
    for (const [starts, expires] of periods.slice(1)) {
      const invoice = renewPaid(order.subscriptionId);
      follow();
      expect(clock.now().toISOString()).toBe(starts);
      expect((await deliver(stripeEvent("invoice.paid", invoice))).status).toBe(200);
      // The period's grant, dated by Stripe's invoice line (the grant before it ends now).
      expect(await grantsOf("sub-renew", "pro")).toContainEqual({ tokens: 3000, starts, expires });
    }
    const ledger = ((await call("credits", "GET", "/users/sub-renew/ledger?limit=100")).body as Json).entries as Json[];
    expect(ledger.filter((entry) => entry.reason === "purchase").map((entry) => entry.tokens)).toEqual([3000, 3000, 3000, 3000]);
    const after = (await call("orders", "GET", `/users/sub-renew/orders/${order.orderId}`)).body as Json;
    expect(after).toMatchObject({ status: "paid", starts: "2027-04-30T10:00:00.000Z", expires: "2027-05-31T10:00:00.000Z" });
    expect(after.grantIds).toHaveLength(4);
    expect(after.history.filter((entry: Json) => String(entry.message).startsWith("renewed"))).toHaveLength(3);
    const events = ((await call("credits", "GET", "/users/sub-renew/events?limit=100")).body as Json).events as Json[];
    expect(events.filter((event) => event.type === "order.paid")).toHaveLength(1);
    expect(events.filter((event) => event.type === "subscription.renewed").map((event) => event.expires)).toEqual([
      "2027-03-31T10:00:00.000Z",
      "2027-04-30T10:00:00.000Z",
      "2027-05-31T10:00:00.000Z",
    ]);
  });

  it("credits one invoice once, delivered twice in a row and eight times at once (also under new event ids)", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-dup");
    const event = stripeEvent("invoice.paid", first.invoice);
    expect((await deliver(event)).status).toBe(200);
    expect((await deliver(event)).status).toBe(200);
    const invoice = renewPaid(order.subscriptionId);
    follow();
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => deliver(i % 2 === 0 ? stripeEvent("invoice.paid", invoice) : stripeEvent("invoice.paid", invoice, { id: "evt_same_renewal" }))));
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200));
    expect(await grantsOf("sub-dup", "pro")).toContainEqual({ tokens: 1000, starts: "2027-02-28T10:00:00.000Z", expires: "2027-03-31T10:00:00.000Z" });
    const ledger = ((await call("credits", "GET", "/users/sub-dup/ledger?limit=100")).body as Json).entries as Json[];
    expect(ledger.filter((entry) => entry.reason === "purchase").map((entry) => entry.tokens)).toEqual([1000, 1000]);
    const order1 = (await call("orders", "GET", `/users/sub-dup/orders/${order.orderId}`)).body as Json;
    expect(order1.grantIds).toHaveLength(2);
    expect(order1.history.filter((entry: Json) => String(entry.message).startsWith("renewed"))).toHaveLength(1);
  });

  it("is not credited while unpaid, nor from a subscription-mode checkout.session.completed", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const created = (await call("orders", "POST", "/users/sub-unpaid/orders", { offerId: "pro-monthly" })).body as Json;
    const open = stripe.invoice(stripe.subscription(created.payment.subscriptionId).latest_invoice as string);
    expect(await deliver(stripeEvent("invoice.paid", open))).toMatchObject({ status: 200 });
    expect(await deliver(stripeEvent("checkout.session.completed", { id: "cs_test_x", object: "checkout.session", mode: "subscription", payment_status: "paid", payment_intent: null, metadata: { orderId: created.order.orderId, userId: "sub-unpaid" } }))).toMatchObject({ status: 200 });
    expect((await call("orders", "GET", `/users/sub-unpaid/orders/${created.order.orderId}`)).body).toMatchObject({ status: "pending", grantIds: [] });
    expect(await grantsOf("sub-unpaid", "pro")).toEqual([]);
  });
});

describe("the subscription's life", () => {
  /** The user's subscription check of `offerId`. */
  const check = async (userId: string, offerId = "pro-monthly") => (await call("credits", "GET", `/users/${userId}/subscriptions/${offerId}`)).body as Json;
  const eventsOf = async (userId: string) => (((await call("credits", "GET", `/users/${userId}/events?limit=100`)).body as Json).events as Json[]).map((event) => event.type);

  it("a failed renewal raises subscription.payment_failed and credits nothing; the customer stays subscribed while past due; the paid retry credits the period once", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-fail");
    await deliver(stripeEvent("invoice.paid", first.invoice));
    expect(await check("sub-fail")).toMatchObject({ subscribed: true, renews: true, currentPeriodEnd: "2027-02-28T10:00:00.000Z", cancelAtPeriodEnd: false });
    const failed = stripe.renew(order.subscriptionId, { outcome: "failed" }) as Json;
    follow();
    clock.advance(3_600_000); // an hour into the unpaid period: the first period's grant has ended
    expect((await deliver(stripeEvent("invoice.payment_failed", failed.invoice))).status).toBe(200);
    expect((await deliver(stripeEvent("customer.subscription.updated", failed.subscription))).status).toBe(200);
    expect((await deliver(stripeEvent("invoice.paid", failed.invoice))).status).toBe(200); // not paid: ignored
    expect(await grantsOf("sub-fail", "pro")).toEqual([]);
    expect(await check("sub-fail")).toMatchObject({ subscribed: true, order: { orderId: order.orderId }, renews: true });
    // (The first period's grant has expired meanwhile: credits.expired.)
    expect(await eventsOf("sub-fail")).toEqual(["order.paid", "subscription.payment_failed", "credits.expired"]);
    const retried = stripe.retryInvoice(failed.invoice.id as string, { outcome: "paid" });
    follow();
    const retryPaid = await deliver(stripeEvent("invoice.paid", retried.invoice));
    expect(retryPaid.status).toBe(200);
    await deliver(stripeEvent("invoice.paid", retried.invoice));
    expect(await grantsOf("sub-fail", "pro")).toEqual([{ tokens: 1000, starts: "2027-02-28T10:00:00.000Z", expires: "2027-03-31T10:00:00.000Z" }]);
    expect(await eventsOf("sub-fail")).toEqual(["order.paid", "subscription.payment_failed", "credits.expired", "subscription.renewed"]);
  });

  it("what the plan unlocks (unlockedBy) stays unlocked while Stripe says active or past due, though its period's grant has ended; not once canceled", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-unlock");
    await deliver(stripeEvent("invoice.paid", first.invoice));
    const visible = async () => (((await call("offers", "GET", "/offers?userId=sub-unlock")).body as Json).offers as Json[]).map((offer) => offer.offerId);
    expect(await visible()).toContain("pro-extras");
    const failed = stripe.renew(order.subscriptionId, { outcome: "failed" }) as Json;
    follow();
    clock.advance(2 * 3_600_000);
    await deliver(stripeEvent("customer.subscription.updated", failed.subscription));
    expect(await grantsOf("sub-unlock", "pro")).toEqual([]);
    expect(await visible()).toContain("pro-extras");
    expect((await call("orders", "POST", "/users/sub-unlock/orders", { offerId: "pro-extras" })).status).toBe(201);
    const canceled = await call("orders", "DELETE", "/users/sub-unlock/subscriptions/pro-monthly", { atPeriodEnd: false });
    expect(canceled.body).toMatchObject({ status: "canceled" });
    expect(await visible()).not.toContain("pro-extras");
    expect(await call("orders", "POST", "/users/sub-unlock/orders", { offerId: "pro-extras" })).toMatchObject({ status: 422, body: { error: { code: "offer_locked" } } });
  });

  it("DELETE cancels at period end by default: it renews no more, the paid period keeps its tokens, and its end raises subscription.canceled once", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-end");
    await deliver(stripeEvent("invoice.paid", first.invoice));
    const canceled = await call("orders", "DELETE", "/users/sub-end/subscriptions/pro-monthly");
    expect(canceled).toMatchObject({ status: 200, body: { offerId: "pro-monthly", orderId: order.orderId, subscriptionId: order.subscriptionId, status: "active", renews: false, cancelAtPeriodEnd: true, currentPeriodEnd: "2027-02-28T10:00:00.000Z" } });
    expect(stripe.subscription(order.subscriptionId)).toMatchObject({ cancel_at_period_end: true, status: "active" });
    expect(await check("sub-end")).toMatchObject({ subscribed: true, renews: false, cancelAtPeriodEnd: true });
    expect(await grantsOf("sub-end", "pro")).toEqual([{ tokens: 1000, starts: START, expires: "2027-02-28T10:00:00.000Z" }]);
    const ended = stripe.renew(order.subscriptionId);
    expect("invoice" in ended).toBe(false);
    follow();
    const deleted = stripeEvent("customer.subscription.deleted", ended.subscription);
    expect((await deliver(deleted)).status).toBe(200);
    expect((await deliver(deleted)).status).toBe(200);
    expect((await deliver(stripeEvent("customer.subscription.deleted", ended.subscription))).status).toBe(200);
    expect(await check("sub-end")).toMatchObject({ subscribed: false, renews: false });
    expect((await eventsOf("sub-end")).filter((type) => type === "subscription.canceled")).toHaveLength(1);
    // Free again: a new order of the offer is taken.
    expect((await call("orders", "POST", "/users/sub-end/orders", { offerId: "pro-monthly" })).status).toBe(201);
  });

  it("DELETE with atPeriodEnd false cancels at once (subscription.canceled); a second DELETE or none to cancel -> 404", async () => {
    clock.set(START);
    const { first } = await subscribe("sub-now");
    await deliver(stripeEvent("invoice.paid", first.invoice));
    const canceled = await call("orders", "DELETE", "/users/sub-now/subscriptions/pro-monthly", { atPeriodEnd: false });
    expect(canceled).toMatchObject({ status: 200, body: { status: "canceled", renews: false } });
    expect(await eventsOf("sub-now")).toEqual(["order.paid", "subscription.canceled"]);
    // Stripe's own event arrives after: nothing more.
    const subscriptionId = canceled.body.subscriptionId as string;
    expect((await deliver(stripeEvent("customer.subscription.deleted", stripe.subscription(subscriptionId)))).status).toBe(200);
    expect(await eventsOf("sub-now")).toEqual(["order.paid", "subscription.canceled"]);
    // The period paid keeps its tokens until it expires.
    expect(await grantsOf("sub-now", "pro")).toEqual([{ tokens: 1000, starts: START, expires: "2027-02-28T10:00:00.000Z" }]);
    expect(await call("orders", "DELETE", "/users/sub-now/subscriptions/pro-monthly", {})).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(await call("orders", "DELETE", "/users/sub-nobody/subscriptions/pro-monthly", {})).toMatchObject({ status: 404 });
    expect(await call("orders", "DELETE", "/users/sub-nobody/subscriptions/pro-monthly", { atPeriodEnd: "yes" })).toMatchObject({ status: 400, body: { error: { details: { atPeriodEnd: expect.any(String) } } } });
  });
});

describe("a renewing order's first payment, found without its webhook", () => {
  it("sync credits the invoice it paid, with Stripe's period, and the late invoice.paid credits nothing more", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-sync");
    const synced = await call("orders", "POST", `/users/sub-sync/orders/${order.orderId}/sync`, {});
    expect(synced).toMatchObject({ status: 200, body: { status: "paid", starts: START, expires: "2027-02-28T10:00:00.000Z" } });
    expect((await deliver(stripeEvent("invoice.paid", first.invoice))).status).toBe(200);
    const ledger = ((await call("credits", "GET", "/users/sub-sync/ledger?limit=100")).body as Json).entries as Json[];
    expect(ledger.filter((entry) => entry.reason === "purchase").map((entry) => entry.tokens)).toEqual([1000]);
    // The next period is still a renewal of the same order.
    const next = renewPaid(order.subscriptionId);
    follow();
    await deliver(stripeEvent("invoice.paid", next));
    expect(await grantsOf("sub-sync", "pro")).toContainEqual({ tokens: 1000, starts: "2027-02-28T10:00:00.000Z", expires: "2027-03-31T10:00:00.000Z" });
  });

  it("the abandoned-order pass cancels an unpaid one's subscription (its invoice voided) and refuses it; one paid meanwhile is credited by its invoice", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const unpaid = (await call("orders", "POST", "/users/sub-abandon/orders", { offerId: "pro-monthly" })).body as Json;
    const { order: paidLate } = await subscribe("sub-abandon", "pro-yearly");
    clock.advance(8 * 86_400_000);
    const summary = await abandonOrders((await runtime()).core);
    // (The other tests' unpaid orders in this file's table are abandoned too.)
    expect(summary).toMatchObject({ paid: 1, complete: true });
    expect(summary.abandoned).toBeGreaterThanOrEqual(1);
    expect(stripe.subscription(unpaid.payment.subscriptionId)).toMatchObject({ status: "canceled" });
    expect((await call("orders", "GET", `/users/sub-abandon/orders/${unpaid.order.orderId}`)).body).toMatchObject({ status: "refused" });
    expect((await call("orders", "GET", `/users/sub-abandon/orders/${paidLate.orderId}`)).body).toMatchObject({ status: "paid", starts: START, expires: "2028-01-31T10:00:00.000Z" });
    // The refused order no longer holds the offer: it can be ordered again.
    expect((await call("orders", "POST", "/users/sub-abandon/orders", { offerId: "pro-monthly" })).status).toBe(201);
  });
});

describe("cost", () => {
  it("a renewal is 1 Stripe request (the invoice read back) and 5 DynamoDB requests", async () => {
    clock.set(START);
    const { order, first } = await subscribe("sub-cost");
    await deliver(stripeEvent("invoice.paid", first.invoice));
    const invoice = renewPaid(order.subscriptionId);
    follow();
    const stripeBefore = stripe.requests.length;
    api.table.requests.reset();
    expect((await deliver(stripeEvent("invoice.paid", invoice))).status).toBe(200);
    const stripeRequests = stripe.requests.slice(stripeBefore).map((r) => `${r.method} ${r.path.replace(/in_[0-9a-f]+/, "{invoice}")}`);
    const dynamo = { ...api.table.requests.byCommand };
    console.log("a renewal's requests:", { stripe: stripeRequests, dynamo });
    expect(stripeRequests).toEqual(["GET /v1/invoices/{invoice}"]);
    // The order and the invoice's record (read together), the user's balances, the
    // crediting transaction (grants, ledger entries, balance, order, invoice record, event,
    // webhook event record), the subscription item's state.
    expect(dynamo).toEqual({ GetItemCommand: 2, QueryCommand: 1, TransactWriteItemsCommand: 1, UpdateItemCommand: 1 });
  });
});

describe("a saved payment method", () => {
  it("a SetupIntent (off_session) for the user's customer; setup_intent.succeeded saves its card, read back from Stripe; a stranger's is ignored", async () => {
    clock.set(START);
    const setup = await call("orders", "POST", "/users/sub-card/payment-methods/setup", {});
    expect(setup).toMatchObject({ status: 201, body: { provider: "stripe", setupIntentId: expect.stringMatching(/^seti_/), clientSecret: expect.any(String) } });
    const intent = stripe.setupIntent(setup.body.setupIntentId);
    expect(intent).toMatchObject({ usage: "off_session", metadata: { userId: "sub-card" }, status: "requires_payment_method" });
    const { data: customer } = await api.table.db.entities.billingCustomer.get({ userId: "sub-card" }).go({ consistent: true });
    expect(intent.customer).toBe(customer?.customerId);
    // Forged early: the SetupIntent read back has not succeeded, nothing saved.
    expect((await deliver(stripeEvent("setup_intent.succeeded", { ...intent, status: "succeeded", payment_method: "pm_forged" }))).status).toBe(200);
    expect((await api.table.db.entities.billingCustomer.get({ userId: "sub-card" }).go({ consistent: true })).data?.paymentMethodId).toBeUndefined();
    const confirmed = stripe.confirmSetupIntent(setup.body.setupIntentId);
    expect((await deliver(stripeEvent("setup_intent.succeeded", confirmed.setupIntent))).status).toBe(200);
    expect((await api.table.db.entities.billingCustomer.get({ userId: "sub-card" }).go({ consistent: true })).data?.paymentMethodId).toBe(confirmed.paymentMethod.id);
    // Another user's SetupIntent naming this user in its metadata is not this user's customer's.
    const stranger = (await call("orders", "POST", "/users/sub-stranger/payment-methods/setup", {})).body as Json;
    const theirs = stripe.confirmSetupIntent(stranger.setupIntentId);
    stripe.setupIntent(stranger.setupIntentId).metadata = { userId: "sub-card" };
    expect((await deliver(stripeEvent("setup_intent.succeeded", theirs.setupIntent))).status).toBe(200);
    expect((await api.table.db.entities.billingCustomer.get({ userId: "sub-card" }).go({ consistent: true })).data?.paymentMethodId).toBe(confirmed.paymentMethod.id);
  });

  it("or a setup-mode Checkout Session for the user's customer", async () => {
    clock.set(START);
    const setup = await call("orders", "POST", "/users/sub-card-checkout/payment-methods/setup", { checkout: { successUrl: "https://app.example.com/ok", cancelUrl: "https://app.example.com/no" } });
    expect(setup).toMatchObject({ status: 201, body: { provider: "stripe_checkout", url: expect.stringMatching(/^https:/) } });
    const session = stripe.session(setup.body.checkoutSessionId);
    expect(session).toMatchObject({ mode: "setup", metadata: { userId: "sub-card-checkout" }, currency: "usd" });
    const done = stripe.completeSetupSession(setup.body.checkoutSessionId);
    expect((await deliver(stripeEvent("setup_intent.succeeded", done.setupIntent))).status).toBe(200);
    expect((await api.table.db.entities.billingCustomer.get({ userId: "sub-card-checkout" }).go({ consistent: true })).data?.paymentMethodId).toBe(done.paymentMethod.id);
  });
});
