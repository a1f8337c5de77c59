/**
 * The whole pay-as-you-go loop through `npm start`'s HTTP server, as a customer's
 * backend would drive it: the real `stripe` SDK (inside the service) against the local
 * Stripe stand-in, webhook events shaped from Stripe's example objects and signed with
 * `stripe.webhooks.generateTestHeaderString`, DynamoDB Local underneath, and
 * `npm run expire` for the scheduled job.
 */
import { addMonths } from "date-fns";
import { UTCDate } from "@date-fns/utc";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runExpire, startLocalRunner, type LocalRunner } from "../helpers/local-runner.js";
import { signedDelivery, StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

const WEBHOOK_SECRET = "whsec_e2e_local_runner_secret";
const stripe = new StripeStandIn();
let api: LocalRunner;
let manual: LocalRunner;
const tableName = `e2e-${process.pid}-${Date.now().toString(36)}`;
const manualTable = `${tableName}-manual`;

beforeAll(async () => {
  await stripe.start();
  const endpoint = inject("dynamoEndpoint");
  [api, manual] = await Promise.all([
    startLocalRunner({
      DYNAMODB_ENDPOINT: endpoint,
      TABLE_NAME: tableName,
      STRIPE_SECRET_KEY: "sk_test_e2e",
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: stripe.url,
    }),
    startLocalRunner({ DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: manualTable }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([api?.stop(), manual?.stop()]);
  await stripe.stop();
});

/** Posts a signed webhook delivery of `event` (optionally as a binary body, which API Gateway base64-encodes). */
async function deliver(event: Record<string, unknown>, options: { secret?: string; tamper?: boolean; binary?: boolean } = {}) {
  const { body, signature } = signedDelivery(event, options.secret ?? WEBHOOK_SECRET);
  return api.request("POST", "/webhooks/stripe", {
    auth: false,
    raw: options.tamper ? body.replace('"amount": 1000', '"amount": 1') : body,
    headers: { "stripe-signature": signature, "content-type": options.binary ? "application/octet-stream" : "application/json; charset=utf-8" },
  });
}

const offer = (overrides: Record<string, unknown> = {}) => ({
  name: "100 tokens",
  offerGroup: "ai-tokens",
  cycle: "monthly",
  tokenCount: 100,
  prices: [{ amount: 1000, currency: "usd" }],
  ...overrides,
});

describe("npm start, with Stripe", () => {
  it("sells, takes the payment, credits, spends, refuses, and explains every movement", async () => {
    expect(api.output()).toContain("payments   stripe");
    expect((await api.request("PUT", "/offers/tokens-100", { body: offer() })).status).toBe(200);

    // Order -> PaymentIntent with the order's amount, currency and metadata.
    const created = await api.request("POST", "/users/alice@example.com/orders", { body: { offerId: "tokens-100" } });
    expect(created.status).toBe(201);
    const { order, payment } = created.body;
    expect(payment).toMatchObject({ provider: "stripe", paymentIntentId: expect.stringMatching(/^pi_/), clientSecret: expect.any(String) });
    expect(stripe.intent(payment.paymentIntentId)).toMatchObject({
      amount: 1000,
      currency: "usd",
      metadata: { orderId: order.orderId, userId: "alice@example.com" },
    });

    // The buyer pays; Stripe tells us.
    const succeeded = stripeEvent("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId));
    expect(await deliver(succeeded)).toMatchObject({ status: 200, body: { received: true, outcome: "applied" } });

    const credits = await api.request("GET", "/users/alice%40example.com/credits");
    const group = credits.body.groups[0];
    expect(group).toMatchObject({ offerGroup: "ai-tokens", balance: 100 });
    expect(group.expires).toBe(addMonths(new UTCDate(group.starts), 1).toISOString());
    expect(group.grants).toMatchObject([{ tokens: 100, remaining: 100, orderId: order.orderId }]);

    // Spend 60 (with an Idempotency-Key), then try 50.
    const spend = { offerGroup: "ai-tokens", tokens: 60, metadata: { callId: "c-1" } };
    const first = await api.request("POST", "/users/alice@example.com/consumptions", { body: spend, headers: { "idempotency-key": "spend-1" } });
    expect(first).toMatchObject({ status: 201, body: { balance: 40, entry: { tokens: -60, reason: "consume" } } });
    const refused = await api.request("POST", "/users/alice@example.com/consumptions", { body: { offerGroup: "ai-tokens", tokens: 50 } });
    expect(refused).toMatchObject({ status: 402, body: { error: { code: "insufficient_credits", details: { balance: 40 } } } });

    // Stripe delivers again, and sends another event for the same PaymentIntent.
    expect(await deliver(succeeded)).toMatchObject({ status: 200, body: { outcome: "ignored" } });
    expect(await deliver(stripeEvent("payment_intent.succeeded", stripe.intent(payment.paymentIntentId)))).toMatchObject({ status: 200 });

    // The same consumption again: the first response, nothing spent.
    const again = await api.request("POST", "/users/alice@example.com/consumptions", { body: spend, headers: { "idempotency-key": "spend-1" } });
    expect(again).toEqual(first);

    const ledger = await api.request("GET", "/users/alice@example.com/ledger");
    expect(ledger.body.entries.map((e: any) => [e.reason, e.tokens])).toEqual([
      ["purchase", 100],
      ["consume", -60],
    ]);
    expect(ledger.body.cursor).toBeNull();
    expect((await api.request("GET", "/users/alice@example.com/credits")).body.groups[0].balance).toBe(40);
    expect((await api.request("GET", "/users/alice@example.com/subscriptions/tokens-100")).body).toMatchObject({
      subscribed: true,
      order: { orderId: order.orderId, status: "paid" },
    });
  });

  it("refuses forged, tampered and unauthenticated requests with the documented 4xx, writing nothing", async () => {
    await api.request("PUT", "/offers/tokens-100", { body: offer() });
    const { body } = await api.request("POST", "/users/mallory/orders", { body: { offerId: "tokens-100" } });
    const event = stripeEvent("payment_intent.succeeded", stripe.succeed(body.payment.paymentIntentId));
    expect(await deliver(event, { secret: "whsec_not_ours" })).toMatchObject({ status: 400, body: { error: { code: "invalid_signature" } } });
    expect(await deliver(event, { tamper: true })).toMatchObject({ status: 400, body: { error: { code: "invalid_signature" } } });
    for (const [method, path, payload] of [
      ["GET", "/users/mallory/credits", undefined],
      ["POST", "/users/mallory/consumptions", { offerGroup: "ai-tokens", tokens: 1 }],
      ["POST", "/users/mallory/orders", { offerId: "tokens-100" }],
      ["PUT", "/offers/evil", offer()],
    ] as const) {
      expect(await api.request(method, path, { auth: false, ...(payload ? { body: payload } : {}) })).toMatchObject({
        status: 401,
        body: { error: { code: "unauthorized" } },
      });
    }
    expect((await api.request("GET", "/users/mallory/credits")).body.groups).toEqual([]);
    expect((await api.request("GET", "/users/mallory/orders")).body.orders).toHaveLength(1);
    expect((await api.request("GET", "/offers/evil")).status).toBe(404);
    expect(await api.request("GET", "/no/such/route")).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
  });

  it("leaves a failed payment refused and uncredited; a later success of the same PaymentIntent, delivered base64-encoded, pays it once", async () => {
    await api.request("PUT", "/offers/tokens-100", { body: offer() });
    const { body } = await api.request("POST", "/users/bob/orders", { body: { offerId: "tokens-100" } });
    const pi = body.payment.paymentIntentId;
    expect(await deliver(stripeEvent("payment_intent.payment_failed", stripe.fail(pi)))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect((await api.request("GET", `/users/bob/orders/${body.order.orderId}`)).body.status).toBe("refused");
    expect((await api.request("GET", "/users/bob/credits")).body.groups).toEqual([]);

    const success = stripeEvent("payment_intent.succeeded", stripe.succeed(pi));
    expect(await deliver(success, { binary: true })).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect(await deliver(success, { binary: true })).toMatchObject({ status: 200, body: { outcome: "ignored" } });
    expect((await api.request("GET", `/users/bob/orders/${body.order.orderId}`)).body.status).toBe("paid");
    expect((await api.request("GET", "/users/bob/credits")).body.groups[0].balance).toBe(100);
  });

  it("creates one order and one PaymentIntent for order creations repeated with the same Idempotency-Key", async () => {
    await api.request("PUT", "/offers/tokens-100", { body: offer() });
    const before = stripe.requestsTo("POST", "/v1/payment_intents").length;
    const headers = { "idempotency-key": "order-once" };
    const responses = [];
    for (let i = 0; i < 3; i++) responses.push(await api.request("POST", "/users/carol/orders", { body: { offerId: "tokens-100" }, headers }));
    expect(responses.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(responses[1]).toEqual(responses[0]);
    expect(responses[2]).toEqual(responses[0]);
    expect((await api.request("GET", "/users/carol/orders")).body.orders).toHaveLength(1);
    expect(stripe.requestsTo("POST", "/v1/payment_intents").length - before).toBe(1);
  });

  it("pays a free offer at creation", async () => {
    await api.request("PUT", "/offers/free-tier", { body: offer({ prices: [{ amount: 0, currency: "usd" }], tokenCount: 20 }) });
    const created = await api.request("POST", "/users/dave/orders", { body: { offerId: "free-tier" } });
    expect(created).toMatchObject({ status: 201, body: { payment: null, order: { status: "paid" } } });
    expect((await api.request("GET", "/users/dave/credits")).body.groups[0].balance).toBe(20);
    expect(await api.request("POST", "/users/dave/orders", { body: { offerId: "free-tier" } })).toMatchObject({
      status: 409,
      body: { error: { code: "already_subscribed" } },
    });
  });

  it("expires a custom 2-second offer with npm run expire: balance 0, one expire entry of exactly the unused tokens, once", async () => {
    await api.request("PUT", "/offers/flash", { body: offer({ cycle: "custom", customCycleSeconds: 2 }) });
    const { body } = await api.request("POST", "/users/erin/orders", { body: { offerId: "flash" } });
    await deliver(stripeEvent("payment_intent.succeeded", stripe.succeed(body.payment.paymentIntentId)));
    expect((await api.request("POST", "/users/erin/consumptions", { body: { offerGroup: "ai-tokens", tokens: 30 } })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 3000));

    const vars = { DYNAMODB_ENDPOINT: inject("dynamoEndpoint"), TABLE_NAME: tableName };
    const run = await runExpire(vars);
    expect(run.code, run.output).toBe(0);
    expect(run.summary).toMatchObject({ complete: true, grantsExpired: 1, tokensRemoved: 70 });
    const ledger = (await api.request("GET", "/users/erin/ledger")).body.entries;
    expect(ledger.map((e: any) => [e.reason, e.tokens])).toEqual([
      ["purchase", 100],
      ["consume", -30],
      ["expire", -70],
    ]);
    const balance = (await api.request("GET", "/users/erin/credits")).body.groups[0].balance;
    expect(balance).toBe(0);

    const second = await runExpire(vars);
    expect(second.summary).toMatchObject({ grantsExpired: 0, tokensRemoved: 0 });
    expect((await api.request("GET", "/users/erin/ledger")).body.entries).toHaveLength(3);
  });
});

describe("npm start, without a Stripe key", () => {
  it("uses the manual provider, says so, and pays an order by confirm", async () => {
    expect(manual.output()).toContain("payments   manual");
    await manual.request("PUT", "/offers/tokens-100", { body: offer() });
    const created = await manual.request("POST", "/users/frank/orders", { body: { offerId: "tokens-100" } });
    expect(created).toMatchObject({ status: 201, body: { payment: { provider: "manual" }, order: { status: "pending" } } });
    const confirmed = await manual.request("POST", `/users/frank/orders/${created.body.order.orderId}/confirm`);
    expect(confirmed).toMatchObject({ status: 200, body: { status: "paid" } });
    expect((await manual.request("GET", "/users/frank/credits")).body.groups[0].balance).toBe(100);
    expect((await manual.request("POST", `/users/frank/orders/${created.body.order.orderId}/confirm`)).status).toBe(409);
  });
});
