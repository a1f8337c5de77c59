/**
 * Least privilege, checked against what the code does: each function's handler is driven
 * in-process over its routes and paths (successes, and the error paths that write:
 * idempotent replays, 402, 404, 409, refunds, webhook fulfilments and disputes, the daily
 * job abandoning orders at Stripe, continuing and publishing, the publisher with a stream
 * batch, users whose grants overflow the balance item), with the runtime built from the
 * environment the infra declares for that function (evaluated under the Pulumi mocks,
 * test/helpers/infra-program.ts), against DynamoDB Local, the Stripe stand-in, the
 * EventBridge stand-in and an SQS stand-in, every AWS request going through a recording
 * proxy (test/helpers/aws-recorder.ts). For each function:
 * - the IAM actions its requests need (action + resource ARN) must equal the statements
 *   the infra grants its role, less the grants SST and Lambda need for themselves
 *   (`SERVICE_GRANTS`, infra/permissions.ts): used but not granted would be AccessDenied in
 *   the cloud; granted but never used is more than it needs;
 * - the secrets it uses must equal its links: `StripeSecretKey` when it sent a request to
 *   Stripe, `ApiKey` when its routes refuse a request without the key (401),
 *   `StripeWebhookSecret` when it refuses a delivery signed with another secret (400
 *   `invalid_signature`) and accepts one signed with the configured secret.
 * All secrets are configured while recording, so what a function uses does not depend on
 * what the infra links: the two sides are measured apart.
 */
import { createHash } from "node:crypto";
import type { DynamoDBStreamEvent, SQSEvent } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { ManualClock } from "../core/clock.js";
import { silentLogger, type Context } from "../core/context.js";
import { createDynamoClient } from "../core/db/client.js";
import { createDb } from "../core/db/service.js";
import { consume } from "../core/consumption.js";
import { putAutoTopUp } from "../core/auto-top-up.js";
import { savePaymentMethod, setupPaymentMethod } from "../core/billing.js";
import { listEvents } from "../core/events.js";
import { mintPortalToken } from "../core/portal-sessions.js";
import { createPromotionalGrant } from "../core/grants.js";
import { upsertOffer } from "../core/offers.js";
import { createOrder } from "../core/orders.js";
import { createStripeProvider } from "../core/payments/stripe.js";
import { DEFAULT_ROUTE, HTTP_FUNCTIONS, ROUTES, type HttpFunctionName } from "../functions/routes.js";
import type * as RuntimeModule from "../functions/runtime.js";
import { SERVICE_GRANTS, statementsOf, type FunctionName, type SecretName } from "../infra/permissions.js";
import { localLambdaContext } from "../scripts/local-gateway.js";
import { ensureTable } from "../scripts/dynamodb-local.js";
import { insertBatch, rawItems } from "./helpers/dynamo-stream.js";
import scheduled from "./fixtures/eventbridge-scheduled.json" with { type: "json" };
import sqsSample from "./fixtures/sqs-event.json" with { type: "json" };
import { AwsRecorder, iamActionsOf, type ResourceRef } from "./helpers/aws-recorder.js";
import { EventBridgeStandIn } from "./helpers/eventbridge-stand-in.js";
import { anOffer } from "./helpers/factories.js";
import { invoke, type ApiRequest, type ApiResponse } from "./helpers/gateway.js";
import { arnsOf, disposeInfra, evaluateInfra, PLATFORM_INSTALLED, resourceNamesOf, type InfraProgram } from "./helpers/infra-program.js";
import { invariantViolations } from "./helpers/invariants.js";
import { seedHistory } from "./helpers/seed.js";
import { SqsStandIn } from "./helpers/sqs-stand-in.js";
import { signedDelivery, StripeStandIn, stripeEvent } from "./helpers/stripe-stand-in.js";

type Json = Record<string, any>;

/** The secrets' values while recording (every function gets all three; see the file's comment). */
const SECRETS = {
  API_KEY: "perm-api-key-0123456789",
  STRIPE_SECRET_KEY: "sk_test_permissions",
  STRIPE_WEBHOOK_SECRET: "whsec_permissions",
  PORTAL_SIGNING_SECRET: "perm-portal-signing-secret-0123456789abcdef",
};
const DAY = 24 * 60 * 60 * 1000;

const recorder = new AwsRecorder();
/** The functions' calls to Stripe go through a recording proxy too (the scenes' own set-up calls the stand-in directly). */
const stripeCalls = new AwsRecorder();
const stripe = new StripeStandIn();
const eventBridge = new EventBridgeStandIn();
const sqs = new SqsStandIn();
const clock = new ManualClock("2026-11-02T10:00:00.000Z");
let program: InfraProgram;
/** The endpoints the runtime is pointed at: the recording proxies. */
const endpoints = { dynamo: "", eventBridge: "", sqs: "", stripe: "" };
/** Unrecorded access to the table, for setting scenes up (a core context on its own client, paying at the stand-in). */
let seed: Context;
let tableName = "";
/** What each function used: its AWS requests are in `recorder`; its Stripe calls and secrets here. */
const used = new Map<FunctionName, Set<SecretName>>();

/** The handler modules, by function, and the runtime module they share (imported after the infra's evaluation, which resets the module registry). */
const handlers: Record<string, (event: any, context?: any) => Promise<any>> = {};
let runtimeModule: typeof RuntimeModule;

beforeAll(async () => {
  if (!PLATFORM_INSTALLED) return;
  program = await evaluateInfra();
  await Promise.all([stripe.start(), eventBridge.start(), sqs.start()]);
  const dynamoEndpoint = inject("dynamoEndpoint");
  endpoints.dynamo = await recorder.proxy(dynamoEndpoint);
  endpoints.eventBridge = await recorder.proxy(eventBridge.url);
  endpoints.sqs = await recorder.proxy(sqs.url);
  endpoints.stripe = await stripeCalls.proxy(stripe.url);

  // The table as the infra names it (TABLE_NAME), so that the functions' environment is used as declared.
  tableName = resourceNamesOf(program).table;
  const client = createDynamoClient({ endpoint: dynamoEndpoint });
  await ensureTable(client, tableName);
  seed = {
    db: createDb(client, tableName),
    clock,
    payments: createStripeProvider({ secretKey: "sk_test_seeding", apiUrl: stripe.url }),
    config: { defaultCurrency: "usd" },
    logger: silentLogger,
  };
  runtimeModule = await import("../functions/runtime.js");
  for (const [name, path] of Object.entries(HTTP_FUNCTIONS)) handlers[name] = (await import(`../functions/${path.split(".")[0]!.replace("functions/", "")}.ts`)).handler;
  handlers.dailyJob = handlers.dailyJobContinuations = (await import("../functions/daily-job.js")).handler;
  handlers.publisher = (await import("../functions/publisher.js")).handler;

  await upsertOffer(seed, "perm-pack", anOffer());
  await upsertOffer(seed, "perm-pro", anOffer({ name: "pro", kind: "subscription", offerGroup: "perm-pro", tokenCount: 0, prices: [{ amount: 3000, currency: "usd" }] }));
}, 120_000);

afterEach(async () => {
  if (!PLATFORM_INSTALLED) return;
  runtimeModule.setRuntime(undefined);
  expect(await invariantViolations(seed.db.client, tableName)).toEqual([]);
});

afterAll(async () => {
  await Promise.all([recorder.stop(), stripeCalls.stop(), stripe.stop(), eventBridge.stop(), sqs.stop()]);
  await disposeInfra();
});

// --- driving a function ---------------------------------------------------------------------

/**
 * Records `scene` as `name`'s: the runtime built from `name`'s declared environment (its
 * SST variables left out), the secrets, and the recording endpoints; every AWS request
 * and Stripe call in the meantime is `name`'s.
 */
async function recordAs(name: FunctionName, scene: () => Promise<void>): Promise<void> {
  const declared = program.functions.get(name);
  if (!declared) throw new Error(`the infra declares no function ${name}`);
  const environment = Object.fromEntries(Object.entries(declared.environment).filter(([key]) => !key.startsWith("SST_")));
  const { buildRuntime, readConfig, setRuntime } = runtimeModule;
  const config = await readConfig({
    ...environment,
    ...SECRETS,
    STRIPE_API_URL: endpoints.stripe,
    DYNAMODB_ENDPOINT: endpoints.dynamo,
    EVENTBRIDGE_ENDPOINT: endpoints.eventBridge,
    SQS_ENDPOINT: endpoints.sqs,
  });
  setRuntime(buildRuntime(config, clock));
  recorder.label = stripeCalls.label = name;
  try {
    await scene();
  } finally {
    recorder.label = stripeCalls.label = "";
  }
  if (stripeCalls.of(name).length > 0) use(name, "StripeSecretKey");
}

function use(name: FunctionName, secret: SecretName): void {
  if (!used.has(name)) used.set(name, new Set());
  used.get(name)!.add(secret);
}

const auth = { authorization: `Bearer ${SECRETS.API_KEY}` };

/** Calls HTTP function `name` with `request` (the API key unless `headers` says otherwise). */
function http(name: HttpFunctionName, request: ApiRequest): Promise<ApiResponse> {
  return invoke(handlers[name] as never, { ...request, headers: { ...auth, ...request.headers } });
}

/** A signed delivery of `event` to the webhook (signed at the clock's instant, as Stripe signs at sending). */
function deliver(event: Json): Promise<ApiResponse> {
  const { body, signature } = signedDelivery(event, SECRETS.STRIPE_WEBHOOK_SECRET, Math.floor(clock.now().getTime() / 1000));
  return invoke(handlers.webhook as never, {
    method: "POST",
    path: "/webhooks/stripe",
    headers: { "stripe-signature": signature, "content-type": "application/json; charset=utf-8" },
    body,
  });
}

/** A concrete path of a route key (`GET /users/{userId}/orders/{orderId}` -> `/users/probe/orders/01J...`). */
function samplePath(path: string): string {
  return path.replace(/\{(\w+)\}/g, (_, param: string) => (param === "orderId" ? "01JB0000000000000000000000" : `probe-${param}`));
}

/**
 * The secret probes of HTTP function `name`, over each of its routes (`$default`: a path
 * no route has): without the API key, 401 means the function checks it; a delivery
 * signed with another secret refused with 400 `invalid_signature`, and one signed with
 * the configured secret not, means it verifies Stripe's signature with it.
 */
async function probeSecrets(name: HttpFunctionName): Promise<void> {
  const routes = [...ROUTES, DEFAULT_ROUTE].filter((route) => route.fn === name).map(({ route }) => (route === "$default" ? "GET /no-such-route" : route));
  expect(routes.length, `routes of ${name}`).toBeGreaterThan(0);
  const refusals = new Set<boolean>();
  for (const route of routes) {
    const [method, path] = route.split(" ") as [string, string];
    const answer = await invoke(handlers[name] as never, { method, path: samplePath(path), ...(method === "GET" ? {} : { body: {} }) });
    refusals.add(answer.status === 401);
    if (method === "POST") {
      const event = stripeEvent("customer.created", { id: "cus_probe", object: "customer" });
      const headers = (secret: string) => {
        const { signature } = signedDelivery(event, secret, Math.floor(clock.now().getTime() / 1000));
        return { "stripe-signature": signature, "content-type": "application/json" };
      };
      const body = JSON.stringify(event, null, 2);
      const forged = await invoke(handlers[name] as never, { method, path: samplePath(path), headers: headers("whsec_another"), body });
      const signed = await invoke(handlers[name] as never, { method, path: samplePath(path), headers: headers(SECRETS.STRIPE_WEBHOOK_SECRET), body });
      if (forged.status === 400 && forged.body?.error?.code === "invalid_signature" && signed.body?.error?.code !== "invalid_signature") {
        use(name, "StripeWebhookSecret");
      }
    }
  }
  expect([...refusals], `${name}: every route refuses a request without the key, or none does`).toHaveLength(1);
  if (refusals.has(true)) use(name, "ApiKey");
}

/** The SQS event Lambda delivers for one message: AWS's sample (test/fixtures/sqs-event.json) with the message laid over its record. */
function sqsEvent(body: string, queueArn: string): SQSEvent {
  const event = structuredClone(sqsSample) as unknown as SQSEvent;
  Object.assign(event.Records[0]!, { body, md5OfBody: createHash("md5").update(body).digest("hex"), eventSourceARN: queueArn, awsRegion: "us-east-1" });
  return event;
}

/**
 * The stream batch of `userId`'s event items, as DynamoDB Streams sends their inserts:
 * AWS's sample record (test/fixtures/dynamodb-event.json) with each item, read back in its
 * wire format, as `Keys`/`NewImage` (`NEW_IMAGE`, as infra/table.ts sets the stream).
 */
async function streamBatch(userId: string): Promise<DynamoDBStreamEvent> {
  return insertBatch(await rawItems(seed.db.client, tableName, userId), arnsOf(program).tableStream);
}

/** A user whose `count` grants of 1 token (no expiry unless `expires`) overflow the balance item. */
async function heavyUser(userId: string, offerGroup: string, count = 40, expires: string | null = null): Promise<void> {
  await seedHistory(seed, userId, offerGroup, Array.from({ length: count }, () => ({ tokens: 1, expires, spent: 0 })));
}

/** A paid Stripe order of `perm-pack` for `userId` (made and paid outside the recording). */
async function paidOrder(userId: string): Promise<{ orderId: string; paymentIntentId: string }> {
  const { order, payment } = await createOrder(seed, { userId, offerId: "perm-pack" });
  if (payment?.provider !== "stripe") throw new Error("expected a Stripe payment");
  stripe.succeed(payment.paymentIntentId);
  const { handleStripeEvent } = await import("../core/webhooks.js");
  await handleStripeEvent(seed, stripeEvent("payment_intent.succeeded", stripe.intent(payment.paymentIntentId)) as never);
  return { orderId: order.orderId, paymentIntentId: payment.paymentIntentId };
}

const at = (iso: string) => clock.set(iso);

// --- the scenes: each function over its routes and paths ------------------------------------

const scenes: Partial<Record<FunctionName, () => Promise<void>>> = {
  async offers() {
    at("2026-11-02T10:00:00.000Z");
    const body = { name: "30 calls", offerGroup: "perm-calls", cycle: "monthly", tokenCount: 30, prices: [{ amount: 300, currency: "usd" }] };
    expect(await http("offers", { method: "PUT", path: "/offers/perm-30", body })).toMatchObject({ status: 200 });
    expect(await http("offers", { method: "PUT", path: "/offers/perm-30", body: { ...body, tokenCount: 31 } })).toMatchObject({ status: 200 });
    expect(await http("offers", { method: "GET", path: "/offers/perm-30" })).toMatchObject({ status: 200, body: { tokenCount: 31 } });
    expect(await http("offers", { method: "GET", path: "/offers/perm-none" })).toMatchObject({ status: 404 });
    expect(await http("offers", { method: "GET", path: "/offers?all=true" })).toMatchObject({ status: 200 });
    expect(await http("offers", { method: "GET", path: "/offers?userId=perm-offers-user&currency=usd" })).toMatchObject({ status: 200 });
    expect(await http("offers", { method: "PUT", path: "/offer-groups/perm-calls", body: { lowBalanceThreshold: 5, expiryWarningDays: 3 } })).toMatchObject({ status: 200 });
    expect(await http("offers", { method: "GET", path: "/offer-groups/perm-calls" })).toMatchObject({ status: 200 });
    expect((await http("offers", { method: "GET", path: "/offer-groups/perm-unset" })).status).toBeLessThan(500);
  },

  async orders() {
    at("2026-11-03T10:00:00.000Z");
    const u = "perm-orders";
    const key = { "idempotency-key": "perm-order-1" };
    const created = await http("orders", { method: "POST", path: `/users/${u}/orders`, headers: key, body: { offerId: "perm-pack" } });
    expect(created).toMatchObject({ status: 201, body: { payment: { provider: "stripe" } } });
    const { orderId } = created.body.order;
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders`, headers: key, body: { offerId: "perm-pack" } })).toEqual(created);
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders`, headers: key, body: { offerId: "perm-pro" } })).toMatchObject({ status: 409 });
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders`, body: { offerId: "perm-pack", quantity: 0 } })).toMatchObject({ status: 400 });
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders`, body: { offerId: "perm-none" } })).toMatchObject({ status: 404 });
    expect(await http("orders", { method: "GET", path: `/users/${u}/orders` })).toMatchObject({ status: 200 });
    expect(await http("orders", { method: "GET", path: `/users/${u}/orders/${orderId}` })).toMatchObject({ status: 200 });
    expect(await http("orders", { method: "GET", path: `/users/${u}/orders/01JB0000000000000000000000` })).toMatchObject({ status: 404 });
    // A manual confirmation of a Stripe order: refused.
    expect((await http("orders", { method: "POST", path: `/users/${u}/orders/${orderId}/confirm`, body: {} })).status).toBe(409);
    // Checkout, then a new attempt (the session expires at Stripe).
    const checkout = await http("orders", {
      method: "POST",
      path: `/users/${u}/orders`,
      body: { offerId: "perm-pack", checkout: { successUrl: "https://shop.example/ok", cancelUrl: "https://shop.example/cancel" } },
    });
    expect(checkout).toMatchObject({ status: 201, body: { payment: { provider: "stripe_checkout" } } });
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders/${checkout.body.order.orderId}/pay`, body: {} })).toMatchObject({ status: 200 });
    // Paid without its webhook: sync pays it; /pay on a paid order is 409.
    stripe.succeed(created.body.payment.paymentIntentId);
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders/${orderId}/sync`, body: {} })).toMatchObject({ status: 200, body: { status: "paid" } });
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders/${orderId}/pay`, body: {} })).toMatchObject({ status: 409 });
    // Refunds: one, its replay, another (409).
    const refundKey = { "idempotency-key": "perm-refund-1" };
    const refunded = await http("orders", { method: "POST", path: `/users/${u}/orders/${orderId}/refund`, headers: refundKey, body: { mode: "unused" } });
    expect(refunded).toMatchObject({ status: 200, body: { status: "refunded" } });
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders/${orderId}/refund`, headers: refundKey, body: { mode: "unused" } })).toEqual(refunded);
    expect(await http("orders", { method: "POST", path: `/users/${u}/orders/${orderId}/refund`, body: { mode: "full" } })).toMatchObject({ status: 409 });
    // A user whose grants overflow the balance item: an order paid through sync, then refunded in full.
    const heavy = "perm-orders-heavy";
    await heavyUser(heavy, "calls");
    const big = await http("orders", { method: "POST", path: `/users/${heavy}/orders`, body: { offerId: "perm-pack" } });
    stripe.succeed(big.body.payment.paymentIntentId);
    expect(await http("orders", { method: "POST", path: `/users/${heavy}/orders/${big.body.order.orderId}/sync`, body: {} })).toMatchObject({ status: 200, body: { status: "paid" } });
    expect(await http("orders", { method: "POST", path: `/users/${heavy}/orders/${big.body.order.orderId}/refund`, body: { mode: "full" } })).toMatchObject({
      status: 200,
      body: { status: "refunded" },
    });
  },

  async consumption() {
    at("2026-11-04T10:00:00.000Z");
    const u = "perm-consumer";
    await createPromotionalGrant(seed, { userId: u, offerGroup: "calls", tokens: 10, expires: null });
    const key = { "idempotency-key": "perm-consume-1" };
    const spent = await http("consumption", { method: "POST", path: `/users/${u}/consumptions`, headers: key, body: { offerGroup: "calls", tokens: 4 } });
    expect(spent).toMatchObject({ status: 201, body: { balance: 6 } });
    expect(await http("consumption", { method: "POST", path: `/users/${u}/consumptions`, headers: key, body: { offerGroup: "calls", tokens: 4 } })).toEqual(spent);
    expect(await http("consumption", { method: "POST", path: `/users/${u}/consumptions`, headers: key, body: { offerGroup: "calls", tokens: 5 } })).toMatchObject({ status: 409 });
    expect(await http("consumption", { method: "POST", path: `/users/${u}/consumptions`, body: { offerGroup: "calls", tokens: 100 } })).toMatchObject({ status: 402 });
    expect(await http("consumption", { method: "POST", path: `/users/${u}/consumptions`, body: { offerGroup: "calls", tokens: 10, allowOverdraft: true } })).toMatchObject({
      status: 201,
      body: { balance: -4 },
    });
    // Overflowing grants: a consumption that drains the map and overflow items.
    const heavy = "perm-consumer-heavy";
    await heavyUser(heavy, "calls", 60);
    expect(await http("consumption", { method: "POST", path: `/users/${heavy}/consumptions`, body: { offerGroup: "calls", tokens: 45 } })).toMatchObject({
      status: 201,
      body: { balance: 15 },
    });
    // Holds: one committed (twice), one released (twice), one past its expiry released by the next hold.
    const holder = "perm-holder";
    await paidOrder(holder);
    const hold = (body: object, headers = {}) => http("consumption", { method: "POST", path: `/users/${holder}/reservations`, headers, body });
    const held = await hold({ offerGroup: "calls", tokens: 30 }, { "idempotency-key": "perm-hold-1" });
    expect(held).toMatchObject({ status: 201, body: { status: "held" } });
    expect(await hold({ offerGroup: "calls", tokens: 30 }, { "idempotency-key": "perm-hold-1" })).toEqual(held);
    const commitPath = `/users/${holder}/reservations/${held.body.reservationId}/commit`;
    expect(await http("consumption", { method: "POST", path: commitPath, headers: { "idempotency-key": "perm-commit-1" }, body: { tokens: 40 } })).toMatchObject({ status: 200 });
    expect(await http("consumption", { method: "POST", path: commitPath, body: { tokens: 40 } })).toMatchObject({ status: 409 });
    // The paid grant drawn to 0 by a hold: its release reads the order back (refunded or disputed?).
    const rest = await hold({ offerGroup: "calls", tokens: 60 });
    const releasePath = `/users/${holder}/reservations/${rest.body.reservationId}/release`;
    expect(await http("consumption", { method: "POST", path: releasePath })).toMatchObject({ status: 200, body: { status: "released" } });
    expect(await http("consumption", { method: "POST", path: releasePath })).toMatchObject({ status: 200, body: { status: "released" } });
    expect(await hold({ offerGroup: "calls", tokens: 10, ttlSeconds: 1 })).toMatchObject({ status: 201 });
    at("2026-11-04T10:05:00.000Z");
    expect(await hold({ offerGroup: "calls", tokens: 1000 })).toMatchObject({ status: 402 });
    // Reversals: part of a consumption, then past what is left.
    const reverse = (entryId: string, body: object) => http("consumption", { method: "POST", path: `/users/${holder}/consumptions/${entryId}/reverse`, headers: { "idempotency-key": `perm-rev-${JSON.stringify(body)}` }, body });
    const failed = await http("consumption", { method: "POST", path: `/users/${holder}/consumptions`, body: { offerGroup: "calls", tokens: 8 } });
    expect(await reverse(failed.body.entry.entryId, { tokens: 5 })).toMatchObject({ status: 201, body: { entry: { reason: "reverse", tokens: 5 } } });
    expect(await reverse(failed.body.entry.entryId, { tokens: 5 })).toMatchObject({ status: 201 });
    expect(await reverse(failed.body.entry.entryId, { tokens: 4 })).toMatchObject({ status: 409 });
  },

  async credits() {
    at("2026-11-05T10:00:00.000Z");
    const u = "perm-credits";
    const { orderId } = await paidOrder(u);
    expect(await http("credits", { method: "POST", path: `/users/${u}/grants`, body: { offerGroup: "calls", tokens: 5, expires: "2026-12-01T00:00:00.000Z" } })).toMatchObject({ status: 201 });
    expect(await http("credits", { method: "GET", path: `/users/${u}/credits` })).toMatchObject({ status: 200, body: { groups: [{ balance: 105 }] } });
    expect(await http("credits", { method: "GET", path: `/users/${u}/ledger?limit=1` })).toMatchObject({ status: 200 });
    expect(await http("credits", { method: "GET", path: `/users/${u}/ledger?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z` })).toMatchObject({ status: 200 });
    expect(await http("credits", { method: "GET", path: `/users/${u}/subscriptions/perm-pack` })).toMatchObject({ status: 200, body: { order: { orderId } } });
    expect(await http("credits", { method: "GET", path: `/users/${u}/subscriptions/perm-none` })).toMatchObject({ status: 200, body: { subscribed: false } });
    expect(await http("credits", { method: "GET", path: `/users/${u}/events?limit=2` })).toMatchObject({ status: 200 });
    expect(await http("credits", { method: "GET", path: `/users/${u}/reservations?status=held&limit=2` })).toMatchObject({ status: 200, body: { reservations: [] } });
    // A paid order's grant spent to nothing: its period still counts, its order is read back (refunded or not).
    const spent = "perm-credits-spent";
    await paidOrder(spent);
    await consume(seed, { userId: spent, offerGroup: "calls", tokens: 100 });
    expect(await http("credits", { method: "GET", path: `/users/${spent}/credits` })).toMatchObject({ status: 200, body: { subscriptions: [{ offerId: "perm-pack" }] } });
    // Overflowing grants: a grant that enters the map (it expires first), the credits read in full.
    const heavy = "perm-credits-heavy";
    await heavyUser(heavy, "calls");
    expect(await http("credits", { method: "POST", path: `/users/${heavy}/grants`, body: { offerGroup: "calls", tokens: 2, expires: "2026-11-20T00:00:00.000Z" } })).toMatchObject({
      status: 201,
    });
    expect(await http("credits", { method: "GET", path: `/users/${heavy}/credits` })).toMatchObject({ status: 200, body: { groups: [{ balance: 42 }] } });
    // Grants past their date, overflowing the balance item: reading the credits expires them first.
    const due = "perm-credits-due";
    await heavyUser(due, "calls", 40, "2026-11-05T12:00:00.000Z");
    at("2026-11-05T13:00:00.000Z");
    expect(await http("credits", { method: "GET", path: `/users/${due}/credits` })).toMatchObject({ status: 200, body: { groups: [{ balance: 0 }] } });
  },

  async expiry() {
    at("2026-11-06T10:00:00.000Z");
    const u = "perm-expiry";
    await createPromotionalGrant(seed, { userId: u, offerGroup: "calls", tokens: 3, expires: "2026-11-07T00:00:00.000Z" });
    await createPromotionalGrant(seed, { userId: u, offerGroup: "calls", tokens: 4, expires: "2026-11-12T00:00:00.000Z" });
    const heavy = "perm-expiry-heavy";
    await heavyUser(heavy, "calls", 40, "2026-11-07T00:00:00.000Z");
    at("2026-11-08T10:00:00.000Z");
    expect(await http("expiry", { method: "POST", path: `/users/${u}/expiry-check`, body: { warnMs: 7 * DAY, low: [{ offerGroup: "calls", min: 10 }] } })).toMatchObject({ status: 200 });
    expect(await http("expiry", { method: "POST", path: `/users/${heavy}/expiry-check`, body: {} })).toMatchObject({ status: 200 });
    expect(await http("expiry", { method: "POST", path: `/users/perm-nobody/expiry-check`, body: {} })).toMatchObject({ status: 200 });
  },

  async webhook() {
    at("2026-11-09T10:00:00.000Z");
    // A. Fulfilment, and its redelivery.
    const u = "perm-webhook";
    const { payment } = await createOrder(seed, { userId: u, offerId: "perm-pack" });
    if (payment?.provider !== "stripe") throw new Error("expected a Stripe payment");
    const succeeded = stripeEvent("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId));
    expect(await deliver(succeeded)).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect(await deliver(succeeded)).toMatchObject({ status: 200, body: { outcome: "ignored" } });
    // B. A refund made in the dashboard, a refund Stripe could not pay out.
    const charge = stripe.dashboardRefund(payment.paymentIntentId, 300);
    expect(await deliver(stripeEvent("charge.refunded", charge))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    const [refund] = [...stripe.refunds.values()].filter((r) => r.payment_intent === payment.paymentIntentId);
    expect(await deliver(stripeEvent("refund.failed", stripe.failRefund(refund!.id as string)))).toMatchObject({ status: 200 });
    // C. A dispute opened, then lost.
    const disputed = await paidOrder("perm-webhook-dispute");
    const dispute = stripe.openDispute(disputed.paymentIntentId);
    expect(await deliver(stripeEvent("charge.dispute.created", dispute))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect(await deliver(stripeEvent("charge.dispute.closed", stripe.closeDispute(dispute.id as string, "lost")))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    // D. A dispute opened, then won (the frozen tokens come back).
    const won = await paidOrder("perm-webhook-won");
    const dispute2 = stripe.openDispute(won.paymentIntentId);
    expect(await deliver(stripeEvent("charge.dispute.created", dispute2))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect(await deliver(stripeEvent("charge.dispute.closed", stripe.closeDispute(dispute2.id as string, "won")))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    // E. A failed attempt refuses its order; a Checkout Session completed pays its order.
    const failing = await createOrder(seed, { userId: "perm-webhook-failed", offerId: "perm-pack" });
    if (failing.payment?.provider !== "stripe") throw new Error("expected a Stripe payment");
    expect(await deliver(stripeEvent("payment_intent.payment_failed", stripe.fail(failing.payment.paymentIntentId)))).toMatchObject({ status: 200 });
    const viaCheckout = await createOrder(seed, {
      userId: "perm-webhook-checkout",
      offerId: "perm-pack",
      checkout: { successUrl: "https://shop.example/ok", cancelUrl: "https://shop.example/cancel" },
    });
    if (viaCheckout.payment?.provider !== "stripe_checkout") throw new Error("expected a Checkout Session");
    expect(await deliver(stripeEvent("checkout.session.completed", stripe.completeSession(viaCheckout.payment.checkoutSessionId)))).toMatchObject({
      status: 200,
      body: { outcome: "applied" },
    });
    // F. A user whose grants overflow the balance item: fulfilled, then refunded in the dashboard.
    const heavy = "perm-webhook-heavy";
    await heavyUser(heavy, "calls");
    const big = await createOrder(seed, { userId: heavy, offerId: "perm-pack" });
    if (big.payment?.provider !== "stripe") throw new Error("expected a Stripe payment");
    expect(await deliver(stripeEvent("payment_intent.succeeded", stripe.succeed(big.payment.paymentIntentId)))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect(await deliver(stripeEvent("charge.refunded", stripe.dashboardRefund(big.payment.paymentIntentId)))).toMatchObject({ status: 200, body: { outcome: "applied" } });
  },

  async notFound() {
    expect(await invoke(handlers.notFound as never, { method: "GET", path: "/nowhere" })).toMatchObject({ status: 404 });
  },

  async dailyJob() {
    // Due grants (one user's overflowing), a grant expiring soon (a warning), an unpaid
    // Stripe order past the abandon age (cancelled at Stripe), events to publish; a run
    // out of time first (handing over to the continuation queue), then a full run.
    at("2026-11-10T10:00:00.000Z");
    await createPromotionalGrant(seed, { userId: "perm-job", offerGroup: "calls", tokens: 3, expires: "2026-11-12T00:00:00.000Z" });
    await createPromotionalGrant(seed, { userId: "perm-job", offerGroup: "calls", tokens: 3, expires: "2026-11-25T00:00:00.000Z" });
    await heavyUser("perm-job-heavy", "calls", 40, "2026-11-12T00:00:00.000Z");
    const unpaid = await createOrder(seed, { userId: "perm-job-unpaid", offerId: "perm-pack" });
    at("2026-11-20T00:05:00.000Z");
    expect(await handlers.dailyJob!(scheduled, localLambdaContext("dailyJob", 30_000))).toMatchObject({ complete: false, continuedAs: 1 });
    expect(await handlers.dailyJob!(scheduled, localLambdaContext("dailyJob", 15 * 60_000))).toMatchObject({ complete: true, published: expect.any(Number) });
    expect(stripe.intent((unpaid.payment as { paymentIntentId: string }).paymentIntentId)).toMatchObject({ status: "canceled" });
    expect(eventBridge.delivered.length).toBeGreaterThan(0);
  },

  async dailyJobContinuations() {
    // The same work, arriving as continuation messages.
    at("2026-11-21T10:00:00.000Z");
    await createPromotionalGrant(seed, { userId: "perm-cont", offerGroup: "calls", tokens: 3, expires: "2026-11-23T00:00:00.000Z" });
    await createPromotionalGrant(seed, { userId: "perm-cont", offerGroup: "calls", tokens: 3, expires: "2026-12-05T00:00:00.000Z" });
    await heavyUser("perm-cont-heavy", "calls", 40, "2026-11-23T00:00:00.000Z");
    const unpaid = await createOrder(seed, { userId: "perm-cont-unpaid", offerId: "perm-pack" });
    at("2026-12-01T00:05:00.000Z");
    const queueArn = arnsOf(program).continuationQueue;
    expect(await handlers.dailyJobContinuations!(sqsEvent('{"continuation":1}', queueArn), localLambdaContext("continuation", 30_000))).toMatchObject({
      complete: false,
      continuation: 1,
      continuedAs: 2,
    });
    expect(await handlers.dailyJobContinuations!(sqsEvent('{"continuation":2}', queueArn), localLambdaContext("continuation", 15 * 60_000))).toMatchObject({
      complete: true,
      continuation: 2,
      published: expect.any(Number),
    });
    expect(stripe.intent((unpaid.payment as { paymentIntentId: string }).paymentIntentId)).toMatchObject({ status: "canceled" });
  },

  async portal() {
    at("2026-11-05T10:00:00.000Z");
    const u = "perm-portal";
    const { orderId } = await paidOrder(u);
    const minted = await http("portal", { method: "POST", path: `/users/${u}/portal-sessions`, body: { tags: [] } });
    expect(minted).toMatchObject({ status: 201, body: { url: expect.stringContaining("/portal#token=") } });
    const asUser = (token: string, method: string, path: string, body?: object) =>
      invoke(handlers.portal as never, { method, path, headers: { authorization: `Bearer ${token}` }, ...(body ? { body } : {}) });
    const token = String(minted.body.url).split("#token=")[1]!;
    expect(await asUser(token, "GET", "/portal/api/session")).toMatchObject({ status: 200, body: { userId: u } });
    for (const path of ["/portal/api/credits", "/portal/api/offers", "/portal/api/orders", `/portal/api/orders/${orderId}`, "/portal/api/ledger", "/portal/api/subscriptions/perm-pack"]) {
      expect((await asUser(token, "GET", path)).status, path).toBe(200);
    }
    expect(await asUser(token, "POST", "/portal/api/orders", { offerId: "perm-pack" })).toMatchObject({ status: 201, body: { payment: { provider: "stripe_checkout" } } });
    // A bundle: its items' offers are read together (BatchGetItem).
    await upsertOffer(seed, "perm-portal-bundle", anOffer({ offerGroup: "perm-portal-bundle", tokenCount: 0, combinedItems: [{ offerId: "perm-pack", quantity: 1 }] }));
    expect(await asUser(token, "POST", "/portal/api/orders", { offerId: "perm-portal-bundle" })).toMatchObject({ status: 201 });
    expect((await asUser(token, "DELETE", "/portal/api/subscriptions/perm-pack", {})).status).toBe(404);
    // The function verifies with its secret: a token signed with another is refused.
    const forged = await mintPortalToken("another-portal-secret-0123456789abcdef", { userId: u }, clock.now());
    if ((await asUser(forged.token, "GET", "/portal/api/session")).status === 401) use("portal", "PortalSigningSecret");
    // A user whose overflowing grants are past their date: the portal's credits read expires them first.
    const due = "perm-portal-due";
    await heavyUser(due, "calls", 40, "2026-11-05T12:00:00.000Z");
    const dueToken = String((await http("portal", { method: "POST", path: `/users/${due}/portal-sessions`, body: { ttlSeconds: 86_400 } })).body.url).split("#token=")[1]!;
    at("2026-11-05T13:00:00.000Z");
    expect(await asUser(dueToken, "GET", "/portal/api/credits")).toMatchObject({ status: 200, body: { groups: [{ balance: 0 }] } });
  },

  async publisher() {
    at("2026-12-02T10:00:00.000Z");
    const u = "perm-publisher";
    await paidOrder(u); // order.paid in the outbox
    // An automatic top-up requested by a consumption crossing its threshold: the publisher
    // orders and pays it off-session with the saved card (core/top-ups.ts).
    const setup = await setupPaymentMethod(seed, { userId: u, currency: "usd" });
    if (setup.provider !== "stripe") throw new Error("expected a SetupIntent");
    stripe.confirmSetupIntent(setup.setupIntentId);
    await savePaymentMethod(seed, setup.setupIntentId);
    // An appendDate offer: its order reads the user's balances (a Query) to chain after them.
    await upsertOffer(seed, "perm-top-up", anOffer({ appendDate: true }));
    await putAutoTopUp(seed, u, "calls", { offerId: "perm-top-up", threshold: 50 });
    await consume(seed, { userId: u, offerGroup: "calls", tokens: 60 });
    const batch = await streamBatch(u);
    expect(batch.Records.length).toBeGreaterThan(1);
    expect(await handlers.publisher!(batch, localLambdaContext("publisher", 60_000))).toMatchObject({ failed: 0 });
    expect((await listEvents(seed, u, { limit: 20 })).events.map((event) => event.type)).toContain("top_up.succeeded");
  },
};

// --- the checks -------------------------------------------------------------------------------

/** `action resourceArn` pairs, sorted. */
function pairs(statements: Array<{ actions: readonly string[]; resources: readonly string[] }>): string[] {
  return [...new Set(statements.flatMap((s) => s.actions.flatMap((action) => s.resources.map((resource) => `${action} ${resource}`))))].sort();
}

/** The ARN of the resource a recorded request named (from the evaluated infra). */
function arnOfRef(ref: ResourceRef): string {
  const arns = arnsOf(program);
  const names = resourceNamesOf(program);
  if (ref.kind === "table" && ref.table === names.table) return arns.table;
  if (ref.kind === "index" && ref.table === names.table) return `${arns.table}/index/${ref.index}`;
  if (ref.kind === "bus" && ref.bus === names.bus) return arns.bus;
  if (ref.kind === "queue" && ref.queueUrl === names.continuationQueueUrl) return arns.continuationQueue;
  throw new Error(`a request named a resource the infra does not declare: ${JSON.stringify(ref)}`);
}

describe.skipIf(!PLATFORM_INSTALLED)("each function is granted what its code uses, no more (recorded)", () => {
  /** Every function the infra declares: those with a scene in the scenes' (time) order, then the rest. */
  const names = (): FunctionName[] => {
    const declared = [...program.functions.keys()];
    return [...(Object.keys(scenes) as FunctionName[]).filter((name) => declared.includes(name)), ...declared.filter((name) => !(name in scenes))];
  };

  it("drives every function the infra declares", async () => {
    for (const name of names()) {
      const scene = scenes[name];
      await recordAs(name, async () => {
        if (name in HTTP_FUNCTIONS) await probeSecrets(name as HttpFunctionName);
        if (scene) await scene();
      });
    }
    // Every function but those granted nothing has a scene of its own.
    const unscened = names().filter((name) => !scenes[name] && program.functions.get(name)!.statements.length > 0);
    expect(unscened).toEqual([]);
  }, 240_000);

  it("grants each function's role exactly the IAM actions its requests need", () => {
    const arns = arnsOf(program);
    const report: Record<string, { usedNotGranted: string[]; grantedNotUsed: string[] }> = {};
    for (const [name, declared] of program.functions) {
      const recorded = [...new Set(recorder.of(name).flatMap((request) => iamActionsOf(request).map(({ action, resource }) => `${action} ${arnOfRef(resource)}`)))].sort();
      const service = pairs(statementsOf(SERVICE_GRANTS[name] ?? {}, arns));
      const granted = pairs(declared.statements.map((s) => ({ actions: s.Action, resources: s.Resource })));
      expect(service.filter((pair) => !granted.includes(pair)), `${name}: the service grants are in its role`).toEqual([]);
      const forCode = granted.filter((pair) => !service.includes(pair));
      report[name] = {
        usedNotGranted: recorded.filter((pair) => !forCode.includes(pair)),
        grantedNotUsed: forCode.filter((pair) => !recorded.includes(pair)),
      };
    }
    const empty = Object.fromEntries(Object.keys(report).map((name) => [name, { usedNotGranted: [], grantedNotUsed: [] }]));
    expect(report).toEqual(empty);
  });

  it("links each function to exactly the secrets it uses", () => {
    const report: Record<string, { usedNotLinked: string[]; linkedNotUsed: string[] }> = {};
    for (const [name, declared] of program.functions) {
      const linked = Object.keys(declared.build.links).sort();
      const usedSecrets = [...(used.get(name) ?? [])].sort();
      report[name] = { usedNotLinked: usedSecrets.filter((secret) => !linked.includes(secret)), linkedNotUsed: linked.filter((link) => !usedSecrets.includes(link as SecretName)) };
    }
    const empty = Object.fromEntries(Object.keys(report).map((name) => [name, { usedNotLinked: [], linkedNotUsed: [] }]));
    expect(report).toEqual(empty);
    // What was measured: the secrets each function uses.
    expect(Object.fromEntries([...program.functions.keys()].map((name) => [name, [...(used.get(name) ?? [])].sort()]))).toMatchObject({
      dailyJob: ["StripeSecretKey"],
      webhook: ["StripeSecretKey", "StripeWebhookSecret"],
      portal: ["ApiKey", "PortalSigningSecret", "StripeSecretKey"],
      notFound: [],
    });
  });
});
