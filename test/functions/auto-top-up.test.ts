/**
 * Automatic top-ups through the HTTP API (issue 13; API.md "Renewing subscriptions and
 * automatic top-ups"): a group's setting (`PUT/GET/DELETE /users/{userId}/auto-top-up/
 * {offerGroup}`), a card saved through a SetupIntent and `setup_intent.succeeded`, and
 * the consumption (or hold) that crosses the threshold writing `top_up.requested`; the
 * stream-triggered publisher (functions/publisher.ts, a DynamoDB stream batch of the
 * outbox's inserts) orders the setting's offer and pays it off-session at Stripe (the real
 * `stripe` SDK against the stand-in); the signed `payment_intent.succeeded` credits it.
 * The handlers run in process with one manual clock.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { STRIPE_NETWORK_RETRIES } from "../../core/payments/stripe.js";
import { runTopUp } from "../../core/top-ups.js";
import { runtime } from "../../functions/runtime.js";
import { localLambdaContext } from "../../scripts/local-gateway.js";
import { useBillingApi } from "../helpers/billing-api.js";
import { insertBatch, rawItems } from "../helpers/dynamo-stream.js";
import { useEventBridgeStandIn } from "../helpers/eventbridge-stand-in.js";
import { stripeEvent } from "../helpers/stripe-stand-in.js";

type Json = Record<string, any>;

const BUS = "user-credits-test-TopUps";
const START = "2027-03-10T10:00:00.000Z";
const eventBridge = useEventBridgeStandIn(BUS);
const api = useBillingApi({
  label: "top-ups",
  start: START,
  bus: () => eventBridge.bus,
  offers: {
    "calls-100": { name: "100 calls", offerGroup: "calls", cycle: "yearly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }] },
    "calls-60": { name: "60 calls", offerGroup: "calls", cycle: "yearly", tokenCount: 60, prices: [{ amount: 600, currency: "usd" }, { amount: 550, currency: "eur" }] },
    "other-60": { name: "60 other", offerGroup: "other", cycle: "yearly", tokenCount: 60, prices: [{ amount: 600, currency: "usd" }] },
    "calls-pro": { name: "Pro", offerGroup: "calls", cycle: "monthly", tokenCount: 60, prices: [{ amount: 900, currency: "usd" }], renewal: "auto" },
  },
});
const { clock, stripe, call, deliver } = api;
let publisher: (event: never, context: never) => Promise<unknown>;
beforeAll(async () => {
  publisher = (await import("../../functions/publisher.js")).handler as never;
});

/**
 * The stream-triggered publisher, woken by the user's event inserts (what the outbox holds
 * goes out). It throws when some events stay in the outbox (so that Lambda retries the
 * batch): returned as `{ threw }`.
 */
async function publish(userId: string): Promise<Json> {
  const batch = insertBatch(await rawItems(api.table.client, api.table.tableName, userId), `arn:aws:dynamodb:us-east-1:123456789012:table/${api.table.tableName}/stream/2027-01-01T00:00:00.000`);
  try {
    return (await publisher(batch as never, localLambdaContext("publisher", 60_000) as never)) as Json;
  } catch (error) {
    return { threw: (error as Error).message };
  }
}

/** The user's events, oldest first. */
async function events(userId: string): Promise<Json[]> {
  return ((await call("credits", "GET", `/users/${userId}/events?limit=100`)).body as Json).events as Json[];
}

const typesOf = (list: Json[], prefix = "top_up.") => list.map((event) => event.type as string).filter((type) => type.startsWith(prefix));

/** The group's balance. */
async function balanceOf(userId: string, group = "calls"): Promise<number> {
  const credits = (await call("credits", "GET", `/users/${userId}/credits`)).body as Json;
  return ((credits.groups as Json[]).find((g) => g.offerGroup === group)?.balance as number | undefined) ?? 0;
}

/** Buys `offerId` on-session and delivers its `payment_intent.succeeded`. */
async function buy(userId: string, offerId = "calls-100"): Promise<void> {
  const created = await call("orders", "POST", `/users/${userId}/orders`, { offerId });
  expect(created.status).toBe(201);
  const intent = stripe.succeed((created.body as Json).payment.paymentIntentId);
  expect((await deliver(stripeEvent("payment_intent.succeeded", intent))).status).toBe(200);
}

/** Saves a card through a SetupIntent and `setup_intent.succeeded`; returns its id. */
async function saveCard(userId: string): Promise<string> {
  const setup = (await call("orders", "POST", `/users/${userId}/payment-methods/setup`, {})).body as Json;
  const confirmed = stripe.confirmSetupIntent(setup.setupIntentId);
  expect((await deliver(stripeEvent("setup_intent.succeeded", confirmed.setupIntent))).status).toBe(200);
  return confirmed.paymentMethod.id as string;
}

/** A user with 100 calls, a saved card and a top-up of `calls-60` at `threshold`. */
async function readyUser(userId: string, setting: Json = {}): Promise<{ card: string }> {
  await buy(userId);
  const card = await saveCard(userId);
  const put = await call("orders", "PUT", `/users/${userId}/auto-top-up/calls`, { offerId: "calls-60", threshold: 30, ...setting });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  return { card };
}

const consume = (userId: string, tokens: number) => call("consumption", "POST", `/users/${userId}/consumptions`, { offerGroup: "calls", tokens });

/** The top-up's order (the user's order marked `autoTopUp`), newest first. */
async function topUpOrders(userId: string): Promise<Json[]> {
  const page = (await call("orders", "GET", `/users/${userId}/orders?limit=100`)).body as Json;
  return (page.orders as Json[]).filter((order) => order.autoTopUp === true);
}

/** Delivers `payment_intent.succeeded` for the top-up order's PaymentIntent, as Stripe sends it after an off-session payment. */
async function creditTopUp(order: Json): Promise<void> {
  expect((await deliver(stripeEvent("payment_intent.succeeded", stripe.intent(order.paymentIntentId)))).status).toBe(200);
}

const confirms = () => stripe.requests.filter((request) => request.method === "POST" && /^\/v1\/payment_intents\/[^/]+\/confirm$/.test(request.path)).length;

describe("the setting", () => {
  it("is written, read and deleted; bad ones are refused naming the field, nothing written", async () => {
    clock.set(START);
    const u = "tu-setting";
    expect(await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).toMatchObject({ status: 404 });
    const put = await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 25, maxPerMonth: 4, currency: "eur" });
    expect(put).toMatchObject({ status: 200, body: { userId: u, offerGroup: "calls", offerId: "calls-60", threshold: 25, maxPerMonth: 4, currency: "eur", enabled: true, usedThisMonth: 0 } });
    expect((await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).body).toEqual(put.body);
    // The defaults: 10 a month, the service's currency, enabled.
    expect((await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 25 })).body).toMatchObject({ maxPerMonth: 10, currency: "usd", enabled: true });

    const refused = [
      [{ offerId: "no-such", threshold: 1 }, 400, "offerId"],
      [{ offerId: "other-60", threshold: 1 }, 400, "offerId"],
      [{ offerId: "calls-pro", threshold: 1 }, 400, "offerId"],
      [{ offerId: "calls-100", threshold: 1, currency: "eur" }, 422, "currency"],
      [{ offerId: "calls-60", threshold: -1 }, 400, "threshold"],
      [{ offerId: "calls-60", threshold: 1, maxPerMonth: 0 }, 400, "maxPerMonth"],
      [{ offerId: "calls-60", threshold: 1, extra: true }, 400, "extra"],
    ] as const;
    for (const [body, status, field] of refused) {
      const answer = await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(JSON.stringify((answer.body as Json).error.details), JSON.stringify(body)).toContain(field);
    }
    expect((await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).body).toMatchObject({ offerId: "calls-60", threshold: 25 });

    expect(await call("orders", "DELETE", `/users/${u}/auto-top-up/calls`)).toMatchObject({ status: 200, body: { enabled: false, threshold: 25 } });
    expect((await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).status).toBe(404);
    expect((await call("orders", "DELETE", `/users/${u}/auto-top-up/calls`)).status).toBe(404);
    const { data: balance } = await api.table.db.entities.balance.get({ userId: u, offerGroup: "calls" }).go({ consistent: true });
    expect(balance?.topUpThreshold).toBeUndefined();
  });
});

describe("a top-up on crossing", () => {
  it("orders the offer and pays it off-session with the saved card; the webhook credits it; the next crossing tops up again", async () => {
    clock.set(START);
    const u = "tu-cross";
    const { card } = await readyUser(u);
    expect((await consume(u, 60)).status).toBe(201); // 100 -> 40: above 30, nothing
    expect(typesOf(await events(u))).toEqual([]);
    expect((await consume(u, 15)).status).toBe(201); // 40 -> 25: crosses
    expect(typesOf(await events(u))).toEqual(["top_up.requested"]);

    expect(await publish(u)).toMatchObject({ failed: 0 });
    const [order] = await topUpOrders(u);
    expect(order).toMatchObject({ offerId: "calls-60", status: "pending", total: { amount: 600, currency: "usd" } });
    const customerId = (await api.table.db.entities.billingCustomer.get({ userId: u }).go({ consistent: true })).data?.customerId;
    expect(stripe.intent(order!.paymentIntentId)).toMatchObject({ status: "succeeded", customer: customerId, payment_method: card, metadata: { orderId: order!.orderId } });
    expect((await events(u)).filter((e) => e.type === "top_up.succeeded")).toEqual([
      expect.objectContaining({ offerGroup: "calls", orderId: order!.orderId, amount: 600, currency: "usd" }),
    ]);
    await creditTopUp(order!);
    expect(await balanceOf(u)).toBe(85);
    expect((await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).body).toMatchObject({ usedThisMonth: 1 });
    // Writing the setting again keeps the month's count (written under the count as read).
    expect((await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 30, maxPerMonth: 4 })).body).toMatchObject({ usedThisMonth: 1, maxPerMonth: 4 });

    // Published again (a redelivered batch): nothing more.
    expect(await publish(u)).toMatchObject({ failed: 0 });
    expect(await topUpOrders(u)).toHaveLength(1);
    // The purchase re-armed the crossing: the next fall below 30 tops up again.
    expect((await consume(u, 60)).status).toBe(201); // 85 -> 25
    await publish(u);
    const orders = await topUpOrders(u);
    expect(orders).toHaveLength(2);
    expect(typesOf(await events(u))).toEqual(["top_up.requested", "top_up.succeeded", "top_up.requested", "top_up.succeeded"]);
    // The bus carried them too (consumers de-duplicate by eventId).
    expect(eventBridge.standIn.delivered.filter((entry) => entry.DetailType === "top_up.succeeded" && JSON.parse(entry.Detail ?? "{}").userId === u)).toHaveLength(2);
  });

  it("costs: the crossing consumption one transaction as before; the top-up a few DynamoDB and two Stripe requests", async () => {
    clock.set(START);
    const u = "tu-costs";
    await readyUser(u);
    expect((await consume(u, 10)).status).toBe(201); // warms the instance's copy of the balance
    api.table.requests.reset();
    expect((await consume(u, 65)).status).toBe(201); // 90 -> 25: crosses
    const crossing = { ...api.table.requests.byCommand };
    const [requested] = (await events(u)).filter((e) => e.type === "top_up.requested");
    api.table.requests.reset();
    const stripeBefore = stripe.requests.length;
    const { core } = await runtime();
    expect(await runTopUp(core, { userId: u, offerGroup: "calls", eventId: requested!.eventId })).toMatchObject({ outcome: "succeeded" });
    const topUp = { dynamodb: { ...api.table.requests.byCommand }, total: api.table.requests.total, stripe: stripe.requests.slice(stripeBefore).map((r) => `${r.method} ${r.path.replace(/pi_[a-z0-9]+/, "{id}")}`) };
    console.log("requests per top-up", JSON.stringify({ crossing, topUp }));
    expect(crossing).toEqual({ TransactWriteItemsCommand: 1 });
    expect(topUp.stripe).toEqual(["POST /v1/payment_intents", "POST /v1/payment_intents/{id}/confirm"]);
    expect(topUp.total).toBeLessThanOrEqual(14);
  });

  it("a threshold set after the balance was cached is seen by the next consumption (the copy's write fails and plans again)", async () => {
    clock.set(START);
    const u = "tu-cached";
    await buy(u);
    await saveCard(u);
    expect((await consume(u, 1)).status).toBe(201); // the instance now holds a copy of the balance (99), without a threshold
    expect((await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 60 })).status).toBe(200);
    expect((await consume(u, 50)).status).toBe(201); // 99 -> 49: crosses 60
    expect(typesOf(await events(u))).toEqual(["top_up.requested"]);
  });

  it("once under 20 concurrent consumptions crossing, and two publishers at once", async () => {
    clock.set(START);
    const u = "tu-concurrent";
    await readyUser(u);
    // 100 tokens, threshold 30: each of 20 consumptions takes 4; the 18th crosses (100 - 72 = 28).
    const answers = await Promise.all(Array.from({ length: 20 }, () => consume(u, 4)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(201));
    expect(typesOf(await events(u))).toEqual(["top_up.requested"]);
    // One run may find the other making the order (idempotency_in_progress): its event stays for the next pass.
    const runs = await Promise.all([publish(u), publish(u)]);
    expect(runs.filter((run) => run.threw === undefined).length).toBeGreaterThanOrEqual(1);
    await publish(u);
    expect(await topUpOrders(u)).toHaveLength(1);
    expect(confirms()).toBeGreaterThan(0);
    expect(typesOf(await events(u))).toEqual(["top_up.requested", "top_up.succeeded"]);
  });

  it("from a hold too, and holds flapping around the threshold request one top-up", async () => {
    clock.set(START);
    const u = "tu-holds";
    await readyUser(u, { enabled: true });
    const hold = await call("consumption", "POST", `/users/${u}/reservations`, { offerGroup: "calls", tokens: 75 });
    expect(hold.status).toBe(201);
    expect((await call("consumption", "POST", `/users/${u}/reservations/${(hold.body as Json).reservationId}/release`)).status).toBe(200);
    expect((await call("consumption", "POST", `/users/${u}/reservations`, { offerGroup: "calls", tokens: 75 })).status).toBe(201);
    expect(typesOf(await events(u))).toEqual(["top_up.requested"]);
  });

  it("stops at maxPerMonth (top_up.failed max_per_month), and starts again the next month", async () => {
    clock.set(START);
    const u = "tu-max";
    await readyUser(u, { maxPerMonth: 1 });
    await consume(u, 75);
    await publish(u);
    const [first] = await topUpOrders(u);
    await creditTopUp(first!);
    await consume(u, 60); // 85 -> 25: crosses again
    await publish(u);
    expect(await topUpOrders(u)).toHaveLength(1);
    expect((await events(u)).filter((e) => e.type === "top_up.failed")).toEqual([expect.objectContaining({ code: "max_per_month", offerGroup: "calls" })]);
    expect((await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).body).toMatchObject({ usedThisMonth: 1, maxPerMonth: 1 });

    clock.set("2027-04-01T00:00:00.000Z"); // a new calendar month (UTC)
    stripe.now = clock.now();
    expect((await call("orders", "GET", `/users/${u}/auto-top-up/calls`)).body).toMatchObject({ usedThisMonth: 0 });
    await buy(u); // re-arms: 25 -> 125
    await consume(u, 100); // 125 -> 25
    await publish(u);
    expect(await topUpOrders(u)).toHaveLength(2);
  });
});

describe("a top-up that fails", () => {
  it("a declined card: top_up.failed with Stripe's decline code, the order left pending, not retried", async () => {
    clock.set(START);
    const u = "tu-declined";
    const { card } = await readyUser(u);
    stripe.declineCard(card, { code: "card_declined", declineCode: "insufficient_funds" });
    await consume(u, 75);
    const before = confirms();
    await publish(u);
    const [order] = await topUpOrders(u);
    expect(order).toMatchObject({ status: "pending" });
    expect(stripe.intent(order!.paymentIntentId)).toMatchObject({ status: "requires_payment_method", last_payment_error: { decline_code: "insufficient_funds" } });
    expect((await events(u)).filter((e) => e.type.startsWith("top_up."))).toEqual([
      expect.objectContaining({ type: "top_up.requested" }),
      expect.objectContaining({ type: "top_up.failed", code: "insufficient_funds", orderId: order!.orderId }),
    ]);
    await publish(u);
    expect(confirms() - before).toBe(1);
    expect(await balanceOf(u)).toBe(25);
    stripe.acceptCard(card);
  });

  it("a card that needs the customer's authentication: top_up.failed authentication_required, never asked again off-session", async () => {
    clock.set(START);
    const u = "tu-sca";
    const { card } = await readyUser(u);
    stripe.declineCard(card, { code: "authentication_required" });
    await consume(u, 75);
    const before = confirms();
    await publish(u);
    await publish(u);
    expect(confirms() - before).toBe(1);
    const [order] = await topUpOrders(u);
    expect((await events(u)).filter((e) => e.type === "top_up.failed")).toEqual([expect.objectContaining({ code: "authentication_required", orderId: order!.orderId })]);
    // The customer can still pay that order on-session: its PaymentIntent awaits a payment method.
    expect(stripe.intent(order!.paymentIntentId)).toMatchObject({ status: "requires_payment_method" });
    stripe.acceptCard(card);
  });

  it("no card saved through the service: the customer's default payment method at Stripe pays", async () => {
    clock.set(START);
    const u = "tu-default-card";
    await buy(u);
    const setup = (await call("orders", "POST", `/users/${u}/payment-methods/setup`, {})).body as Json;
    const { paymentMethod } = stripe.confirmSetupIntent(setup.setupIntentId); // its setup_intent.succeeded never arrives
    const customer = stripe.customer(stripe.setupIntent(setup.setupIntentId).customer as string);
    (customer.invoice_settings as Json).default_payment_method = paymentMethod.id; // set in the Dashboard
    expect((await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 30 })).status).toBe(200);
    await consume(u, 75);
    await publish(u);
    const [order] = await topUpOrders(u);
    expect(stripe.intent(order!.paymentIntentId)).toMatchObject({ status: "succeeded", payment_method: paymentMethod.id });
  });

  it("no saved card: top_up.failed no_payment_method, no order", async () => {
    clock.set(START);
    const u = "tu-no-card";
    await buy(u);
    expect((await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 30 })).status).toBe(200);
    await consume(u, 75);
    await publish(u);
    expect(await topUpOrders(u)).toEqual([]);
    expect((await events(u)).filter((e) => e.type === "top_up.failed")).toEqual([expect.objectContaining({ code: "no_payment_method" })]);
  });

  it("Stripe failing: the request stays in the outbox and the next pass pays once", async () => {
    clock.set(START);
    const u = "tu-flaky";
    await readyUser(u);
    await consume(u, 75);
    // Failing longer than the SDK's own retries (core/payments/stripe.ts STRIPE_NETWORK_RETRIES).
    stripe.failNext(STRIPE_NETWORK_RETRIES + 1, { status: 500, type: "api_error", message: "stand-in outage" });
    expect(await publish(u)).toEqual({ threw: expect.stringContaining("1 event(s) were not published") });
    expect(typesOf(await events(u))).toEqual(["top_up.requested"]);
    await publish(u);
    const orders = await topUpOrders(u);
    expect(orders).toHaveLength(1);
    expect(stripe.intent(orders[0]!.paymentIntentId)).toMatchObject({ status: "succeeded" });
    expect(typesOf(await events(u))).toEqual(["top_up.requested", "top_up.succeeded"]);
  });

  it("a disabled or deleted setting: the crossing requests nothing", async () => {
    clock.set(START);
    const u = "tu-disabled";
    await readyUser(u, { enabled: false });
    await consume(u, 75);
    expect(typesOf(await events(u))).toEqual([]);
    expect((await call("orders", "PUT", `/users/${u}/auto-top-up/calls`, { offerId: "calls-60", threshold: 10 })).status).toBe(200);
    expect((await call("orders", "DELETE", `/users/${u}/auto-top-up/calls`)).status).toBe(200);
    await consume(u, 20);
    expect(typesOf(await events(u))).toEqual([]);
  });
});
