/**
 * The Lambda bundles as SST 4.17 builds them (scripts/bundles.ts: esbuild 0.21.5 with SST's
 * settings), each loaded in a fresh `node` process (no tsx, no project `node_modules`: the
 * bundles are written outside the project) and invoked with real-shaped events, against
 * DynamoDB Local, the Stripe stand-in, the EventBridge stand-in and an SQS stand-in:
 * - API Gateway HTTP API v2 events (test/helpers/gateway.ts, from AWS's sample
 *   test/fixtures/apigw-http-v2.json): one route per HTTP function answers as the same
 *   handler run in this process does (status and body, ids and times aside); an order made
 *   through the orders bundle reaches the Stripe stand-in and the webhook bundle pays it;
 * - the DynamoDB stream event (AWS's sample test/fixtures/dynamodb-event.json with a real
 *   event item laid over its first record): the publisher bundle puts it on the bus;
 * - EventBridge Scheduler (test/fixtures/eventbridge-scheduled.json) and SQS (AWS's sample
 *   test/fixtures/sqs-event.json carrying a continuation): the daily job bundle runs.
 * A bundle that cannot be built (an unresolvable import) fails `beforeAll`; one that
 * cannot be loaded (a missing module at run time) fails its invocation.
 *
 * Sizes are asserted (the consumption bundle at most 2.5x the DynamoDB-client baseline; the
 * Stripe, EventBridge and SQS SDKs only in the bundles that call them); init times are
 * not (this machine is noisy): `npm run bundles` reports them.
 */
import { appendFileSync, copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { systemClock } from "../core/clock.js";
import { silentLogger, type Context } from "../core/context.js";
import { createPromotionalGrant } from "../core/grants.js";
import { putAutoTopUp } from "../core/auto-top-up.js";
import { savePaymentMethod, setupPaymentMethod } from "../core/billing.js";
import { consume } from "../core/consumption.js";
import { createStripeProvider } from "../core/payments/stripe.js";
import { mintPortalToken } from "../core/portal-sessions.js";
import { upsertOffer } from "../core/offers.js";
import { confirmManualOrder, createOrder, getOrder } from "../core/orders.js";
import { createManualProvider } from "../core/payments/manual.js";
import { eventSchema } from "../core/db/event.js";
import { HTTP_FUNCTIONS, ROUTES, type HttpFunctionName } from "../functions/routes.js";
import { buildRuntime, setRuntime } from "../functions/runtime.js";
import {
  BASELINE,
  buildBundles,
  includesPackage,
  invokeBundle,
  temporaryBundleDir,
  topPackages,
  type BuiltBundle,
  type ChildRun,
} from "../scripts/bundles.js";
import { localLambdaContext } from "../scripts/local-gateway.js";
import dynamodbSample from "./fixtures/dynamodb-event.json" with { type: "json" };
import scheduled from "./fixtures/eventbridge-scheduled.json" with { type: "json" };
import sqsSample from "./fixtures/sqs-event.json" with { type: "json" };
import { createTestDb } from "./helpers/db.js";
import { EventBridgeStandIn } from "./helpers/eventbridge-stand-in.js";
import { anOffer } from "./helpers/factories.js";
import { apiEvent, type ApiRequest } from "./helpers/gateway.js";
import { SqsStandIn } from "./helpers/sqs-stand-in.js";
import { signedDelivery, stripeEvent, StripeStandIn } from "./helpers/stripe-stand-in.js";

const API_KEY = "bundle-key-0123456789";
const WEBHOOK_SECRET = "whsec_test_bundles";
const PORTAL_SECRET = "bundles-portal-signing-secret-0123456789abcdef";
const BUS = "user-credits-bundles-EventsBus";
const OFFER = "bundle-pack";
const GROUP = "bundle-calls";

/** Bundles that call Stripe, EventBridge, SQS: each SDK must be in these and no other. */
const SDK_USERS: Record<string, string[]> = {
  stripe: ["orders", "webhook", "dailyJob", "publisher", "portal"],
  "@aws-sdk/client-eventbridge": ["publisher", "dailyJob"],
  "@aws-sdk/client-sqs": ["dailyJob"],
};

const stripe = new StripeStandIn();
const eventBridge = new EventBridgeStandIn();
const sqs = new SqsStandIn();
let outDir = "";
let bundles: Record<string, BuiltBundle> = {};
let table: Awaited<ReturnType<typeof createTestDb>>;
let env: Record<string, string> = {};
let queueUrl = "";
/** Core on the test's table with the manual provider (seeding). */
let ctx: Context;

beforeAll(async () => {
  outDir = temporaryBundleDir();
  const [built] = await Promise.all([buildBundles(outDir), stripe.start(), eventBridge.start(), sqs.start()]);
  bundles = Object.fromEntries(built.map((bundle) => [bundle.name, bundle]));
  table = await createTestDb("bundles");
  queueUrl = `${sqs.url}/000000000000/ExpiryJobContinuations`;
  env = {
    API_KEY,
    STRIPE_SECRET_KEY: "sk_test_bundles",
    STRIPE_API_URL: stripe.url,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    PORTAL_SIGNING_SECRET: PORTAL_SECRET,
    DEFAULT_CURRENCY: "usd",
    TABLE_NAME: table.tableName,
    DYNAMODB_ENDPOINT: table.endpoint,
    EVENT_BUS_NAME: BUS,
    EVENTBRIDGE_ENDPOINT: eventBridge.url,
    EXPIRY_CONTINUATION_QUEUE_URL: queueUrl,
    SQS_ENDPOINT: sqs.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    POWERTOOLS_LOG_LEVEL: "WARN",
  };
  // The same handlers in this process, on the same table and stand-ins.
  setRuntime(
    buildRuntime(
      {
        apiKeys: [API_KEY],
        stripeSecretKey: "sk_test_bundles",
        stripeApiUrl: stripe.url,
        stripeWebhookSecret: WEBHOOK_SECRET,
        portalSigningSecret: PORTAL_SECRET,
        defaultCurrency: "usd",
        tableName: table.tableName,
      },
      systemClock,
      table.client,
    ),
  );
  ctx = { db: table.db, clock: systemClock, payments: createManualProvider(), config: { defaultCurrency: "usd" }, logger: silentLogger };
  await upsertOffer(ctx, OFFER, anOffer({ offerGroup: GROUP, prices: [{ amount: 1500, currency: "usd" }] }));
}, 60_000);

afterAll(async () => {
  setRuntime(undefined);
  await Promise.all([stripe.stop(), eventBridge.stop(), sqs.stop()]);
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** The result a bundle's handler returned, or the test fails with what went wrong (import or invocation). */
async function resultOf<T = unknown>(run: Promise<ChildRun>): Promise<T> {
  const { report, stdout, stderr } = await run;
  if (!report.ok) throw new Error(`${report.phase} failed: ${report.error.message}\n${report.error.stack ?? ""}\n${stdout}\n${stderr}`);
  return report.result as T;
}

/** A handler's response, body parsed. */
interface Answer {
  status: number;
  body: unknown;
}

function answer(result: APIGatewayProxyStructuredResultV2): Answer {
  const text = result.isBase64Encoded ? Buffer.from(result.body ?? "", "base64").toString("utf8") : (result.body ?? "");
  return { status: result.statusCode ?? 200, body: text ? JSON.parse(text) : undefined };
}

/**
 * `value` with what differs between two runs of the same request replaced: ISO times, ULIDs,
 * Stripe ids and client secrets, and the user id of the run.
 */
function normalized(value: unknown, user: string): unknown {
  if (typeof value === "string") {
    return value
      .replaceAll(user, "<user>")
      .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, "<time>")
      .replace(/\b[0-9A-HJKMNP-TV-Z]{26}\b/g, "<id>")
      .replace(/\b(pi|cs|re|ch|dp|evt|req)_[A-Za-z0-9]+(_secret_[A-Za-z0-9]+)?/g, "<$1>");
  }
  if (Array.isArray(value)) return value.map((item) => normalized(item, user));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, normalized(item, user)]));
  }
  return value;
}

/** One request per HTTP function: seeded for a user, then sent to the bundle (one user) and in process (another). */
interface Scenario {
  seed?: (user: string) => Promise<void>;
  request: (user: string) => ApiRequest;
  status: number;
}

const auth = { authorization: `Bearer ${API_KEY}` };
/** Portal tokens minted for the portal scenario's users. */
const portalTokens = new Map<string, string>();
const grantTen = async (user: string) => void (await createPromotionalGrant(ctx, { userId: user, offerGroup: GROUP, tokens: 10, expires: null }));

const SCENARIOS: Partial<Record<HttpFunctionName, Scenario>> = {
  offers: { request: () => ({ method: "GET", path: `/offers/${OFFER}`, headers: auth }), status: 200 },
  orders: { request: (user) => ({ method: "POST", path: `/users/${user}/orders`, headers: auth, body: { offerId: OFFER } }), status: 201 },
  consumption: {
    seed: grantTen,
    request: (user) => ({ method: "POST", path: `/users/${user}/consumptions`, headers: auth, body: { offerGroup: GROUP, tokens: 3 } }),
    status: 201,
  },
  credits: { seed: grantTen, request: (user) => ({ method: "GET", path: `/users/${user}/credits`, headers: auth }), status: 200 },
  expiry: { seed: grantTen, request: (user) => ({ method: "POST", path: `/users/${user}/expiry-check`, headers: auth, body: {} }), status: 200 },
  webhook: {
    request: (user) => {
      const delivery = signedDelivery(stripeEvent("customer.created", { id: `cus_${user}`, object: "customer" }), WEBHOOK_SECRET);
      return { method: "POST", path: "/webhooks/stripe", headers: { "stripe-signature": delivery.signature, "content-type": "application/json" }, body: delivery.body };
    },
    status: 200,
  },
  notFound: { request: () => ({ method: "GET", path: "/no/such/route", headers: auth }), status: 404 },
  // The portal: a session of the user (signed with the deployment's secret), read back with its token.
  portal: {
    seed: async (user) => void portalTokens.set(user, (await mintPortalToken(PORTAL_SECRET, { userId: user }, systemClock.now())).token),
    request: (user) => ({ method: "GET", path: "/portal/api/session", headers: { authorization: `Bearer ${portalTokens.get(user)}` } }),
    status: 200,
  },
};

/**
 * The scenario of `fn`: its own, or, for a function added to the route table since, its
 * first route without path parameters (with the API key), which must answer below 500.
 */
function scenarioOf(fn: HttpFunctionName): Scenario & { anyStatusBelow500?: boolean } {
  const own = SCENARIOS[fn];
  if (own) return own;
  const route = ROUTES.find((r) => r.fn === fn && !r.route.includes("{"));
  if (!route) throw new Error(`No scenario for the HTTP function ${fn}: add one to SCENARIOS.`);
  const [method, path] = route.route.split(" ") as [string, string];
  return { request: () => ({ method, path, headers: auth, routeKey: route.route }), status: 0, anyStatusBelow500: true };
}

/** The route key API Gateway would give `request` (what the local runner also sets). */
function routeKeyOf(fn: HttpFunctionName, request: ApiRequest): string {
  if (request.routeKey) return request.routeKey;
  const path = new URL(request.path, "http://x").pathname;
  const route = ROUTES.find((r) => {
    const [method, pattern] = r.route.split(" ") as [string, string];
    return r.fn === fn && method === request.method && new RegExp(`^${pattern.replace(/\{\w+\}/g, "[^/]+")}$`).test(path);
  });
  return route?.route ?? "$default";
}

describe("the bundles, built as SST 4.17 builds them", () => {
  it("are one per deployed handler, the consumption bundle at most 2.5x the DynamoDB-client baseline", () => {
    const names = Object.keys(bundles);
    expect(names.sort()).toEqual([...Object.keys(HTTP_FUNCTIONS), "dailyJob", "publisher", BASELINE].sort());
    const baseline = bundles[BASELINE]!;
    const rows = Object.values(bundles).map(
      (b) => `${b.name.padEnd(12)}${(b.bytes / 1024).toFixed(1).padStart(9)} KB  ${(b.bytes / baseline.bytes).toFixed(2)}x baseline`,
    );
    console.log(`bundle sizes (minified):\n${rows.join("\n")}\nconsumption, KB by package: ${JSON.stringify(topPackages(bundles.consumption!, 8))}`);
    expect(bundles.consumption!.bytes).toBeLessThanOrEqual(2.5 * baseline.bytes);
  });

  it("hold the Stripe, EventBridge and SQS SDKs only where their handler calls them", () => {
    for (const [sdk, users] of Object.entries(SDK_USERS)) {
      const holding = Object.values(bundles)
        .filter((bundle) => includesPackage(bundle, sdk))
        .map((bundle) => bundle.name);
      expect({ sdk, holding: holding.sort() }).toEqual({ sdk, holding: [...users].sort() });
    }
  });
});

describe("each HTTP function's bundle, on an API Gateway HTTP API v2 event", () => {
  it("answers as the same handler does in process (status and body, ids and times aside)", async () => {
    const fns = Object.keys(HTTP_FUNCTIONS) as HttpFunctionName[];
    const pairs = await Promise.all(
      fns.map(async (fn) => {
        const scenario = scenarioOf(fn);
        const [bundleUser, localUser] = [`${fn}-bundle`, `${fn}-local`];
        await Promise.all([scenario.seed?.(bundleUser), scenario.seed?.(localUser)]);
        const bundleRequest = scenario.request(bundleUser);
        const localRequest = scenario.request(localUser);
        const event = apiEvent({ ...bundleRequest, routeKey: routeKeyOf(fn, bundleRequest) });
        const module = HTTP_FUNCTIONS[fn].split(".")[0]!.replace("functions/", "");
        const local = (await import(`../functions/${module}.ts`)) as { handler: (e: unknown, c: unknown) => Promise<APIGatewayProxyStructuredResultV2> };
        const [fromBundle, inProcess] = await Promise.all([
          resultOf<APIGatewayProxyStructuredResultV2>(invokeBundle(bundles[fn]!, event, { env })),
          local.handler(apiEvent({ ...localRequest, routeKey: routeKeyOf(fn, localRequest) }), localLambdaContext(fn)),
        ]);
        return { fn, scenario, bundle: answer(fromBundle), local: answer(inProcess), bundleUser, localUser };
      }),
    );
    for (const { fn, scenario, bundle, local, bundleUser, localUser } of pairs) {
      if (scenario.anyStatusBelow500) expect(bundle.status, fn).toBeLessThan(500);
      else expect(bundle.status, `${fn}: ${JSON.stringify(bundle.body)}`).toBe(scenario.status);
      expect({ fn, status: bundle.status, body: normalized(bundle.body, bundleUser) }).toEqual({
        fn,
        status: local.status,
        body: normalized(local.body, localUser),
      });
    }
  });

  it("orders: a Stripe order reaches the Stripe stand-in, and the webhook bundle pays it", async () => {
    const user = "stripe-bundle";
    const created = answer(
      await resultOf(
        invokeBundle(bundles.orders!, apiEvent({ method: "POST", path: `/users/${user}/orders`, headers: auth, body: { offerId: OFFER }, routeKey: "POST /users/{userId}/orders" }), {
          env,
        }),
      ),
    );
    expect(created).toMatchObject({ status: 201, body: { order: { userId: user, status: "pending" }, payment: { provider: "stripe" } } });
    const { order, payment } = created.body as { order: { orderId: string }; payment: { paymentIntentId: string } };
    const [request] = stripe.requestsTo("POST", "/v1/payment_intents").filter((r) => (r.params.metadata as Record<string, string>)?.userId === user);
    expect(request).toMatchObject({ params: { amount: "1500", currency: "usd", metadata: { orderId: order.orderId, userId: user } } });

    const delivery = signedDelivery(stripeEvent("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId)), WEBHOOK_SECRET);
    const webhookEvent = apiEvent({
      method: "POST",
      path: "/webhooks/stripe",
      headers: { "stripe-signature": delivery.signature, "content-type": "application/json" },
      body: delivery.body,
      routeKey: "POST /webhooks/stripe",
    });
    expect(answer(await resultOf(invokeBundle(bundles.webhook!, webhookEvent, { env })))).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect((await getOrder(ctx, user, order.orderId)).status).toBe("paid");
    // The webhook bundle read the PaymentIntent back from Stripe before crediting.
    expect(stripe.requestsTo("GET", `/v1/payment_intents/${payment.paymentIntentId}`).length).toBeGreaterThan(0);
  });
});

/** The table's event items of `userId`, as DynamoDB sends them (wire format). */
async function eventItems(userId: string): Promise<Array<Record<string, AttributeValue>>> {
  const { Items = [] } = await table.client.send(
    new ScanCommand({
      TableName: table.tableName,
      ConsistentRead: true,
      FilterExpression: "#user = :user AND #entity = :entity",
      ExpressionAttributeNames: { "#user": "userId", "#entity": "__edb_e__" },
      ExpressionAttributeValues: { ":user": { S: userId }, ":entity": { S: eventSchema.model.entity } },
    }),
  );
  return Items;
}

describe("the portal bundle", () => {
  it("serves the pages from its package (SST's copyFiles), under their Content-Security-Policy", async () => {
    for (const [path, routeKey, marker] of [
      ["/portal", "GET /portal", "<title>Your credits</title>"],
      ["/assets/portal.js", "GET /assets/{file}", "/portal/api/session"],
    ] as const) {
      const served = await resultOf<APIGatewayProxyStructuredResultV2>(invokeBundle(bundles.portal!, apiEvent({ method: "GET", path, routeKey }), { env }));
      expect(served.statusCode, path).toBe(200);
      expect(String(served.headers?.["content-security-policy"]), path).toContain("script-src 'self'");
      expect(served.isBase64Encoded ? Buffer.from(served.body ?? "", "base64").toString() : served.body, path).toContain(marker);
    }
  });
});

describe("the publisher bundle, on a DynamoDB stream event", () => {
  it("puts the batch's event on the EventBridge bus", async () => {
    const user = "publisher-bundle";
    const { order } = await createOrder(ctx, { userId: user, offerId: OFFER });
    await confirmManualOrder(ctx, user, order.orderId);
    const [item] = await eventItems(user);
    const [sample] = dynamodbSample.Records;
    const record = {
      ...sample,
      dynamodb: { ...sample!.dynamodb, Keys: { pk: item!.pk, sk: item!.sk }, NewImage: item, StreamViewType: "NEW_IMAGE" },
      eventSourceARN: `arn:aws:dynamodb:us-east-1:123456789012:table/${table.tableName}/stream/2026-03-01T00:00:00.000`,
    };
    const summary = await resultOf<{ published: number; failed: number }>(invokeBundle(bundles.publisher!, { Records: [record] }, { env, remainingMs: 60_000 }));
    expect(summary.failed).toBe(0);
    expect(summary.published).toBeGreaterThanOrEqual(1);
    expect(eventBridge.deliveredDetails()).toContainEqual(expect.objectContaining({ type: "order.paid", userId: user, orderId: order.orderId, eventId: item!.eventId!.S }));
    expect(eventBridge.delivered.find((entry) => entry.Detail?.includes(order.orderId))).toMatchObject({ Source: "user-credits", DetailType: "order.paid", EventBusName: BUS });
  });

  it("runs the automatic top-up a crossing requested: an order paid off-session at Stripe", async () => {
    const user = "publisher-top-up";
    const paying: Context = { ...ctx, payments: createStripeProvider({ secretKey: "sk_test_bundles", apiUrl: stripe.url }) };
    await createPromotionalGrant(paying, { userId: user, offerGroup: GROUP, tokens: 100, expires: null });
    const setup = await setupPaymentMethod(paying, { userId: user, currency: "usd" });
    if (setup.provider !== "stripe") throw new Error("expected a SetupIntent");
    stripe.confirmSetupIntent(setup.setupIntentId);
    await savePaymentMethod(paying, setup.setupIntentId);
    await putAutoTopUp(paying, user, GROUP, { offerId: OFFER, threshold: 50 });
    await consume(paying, { userId: user, offerGroup: GROUP, tokens: 60 });
    const [sample] = dynamodbSample.Records;
    const records = (await eventItems(user)).map((item) => ({
      ...sample,
      dynamodb: { ...sample!.dynamodb, Keys: { pk: item.pk, sk: item.sk }, NewImage: item, StreamViewType: "NEW_IMAGE" },
      eventSourceARN: `arn:aws:dynamodb:us-east-1:123456789012:table/${table.tableName}/stream/2026-03-01T00:00:00.000`,
    }));
    const summary = await resultOf<{ published: number; failed: number }>(invokeBundle(bundles.publisher!, { Records: records }, { env, remainingMs: 60_000 }));
    expect(summary.failed).toBe(0);
    expect(eventBridge.deliveredDetails()).toContainEqual(expect.objectContaining({ type: "top_up.succeeded", userId: user, offerGroup: GROUP, amount: 1500 }));
    const confirmed = stripe.requests.filter((request) => request.method === "POST" && /^\/v1\/payment_intents\/[^/]+\/confirm$/.test(request.path));
    expect(confirmed.some((request) => request.params.off_session === "true")).toBe(true);
  });
});

describe("the daily job bundle", () => {
  it("runs on EventBridge Scheduler's event, hands over to its queue at its deadline, and runs the SQS continuation", async () => {
    const run = await resultOf<Record<string, unknown>>(invokeBundle(bundles.dailyJob!, scheduled, { env }));
    expect(run).toMatchObject({ complete: true, continuation: 0, publishFailed: 0 });

    // 30 s left: no page may start; the rest goes to the continuation queue (SQS SendMessage).
    const stopped = await resultOf<Record<string, unknown>>(invokeBundle(bundles.dailyJob!, scheduled, { env, remainingMs: 30_000 }));
    expect(stopped).toMatchObject({ complete: false, continuation: 0, continuedAs: 1 });
    expect(sqs.messages).toEqual([{ QueueUrl: queueUrl, MessageBody: '{"continuation":1}' }]);

    const [sample] = sqsSample.Records;
    const message = { Records: [{ ...sample, body: sqs.messages[0]!.MessageBody, eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:ExpiryJobContinuations" }] };
    const continued = await resultOf<Record<string, unknown>>(invokeBundle(bundles.dailyJob!, message, { env }));
    expect(continued).toMatchObject({ complete: true, continuation: 1 });
  });
});

describe("the runtime of a function whose bundle holds no Stripe or EventBridge SDK", () => {
  it("refuses a Stripe call or a publication with an InvariantViolation, and makes it once the adapter is registered", async () => {
    vi.resetModules(); // a module graph without functions/stripe-payments.ts or functions/eventbridge-bus.ts, as in the consumption bundle
    const fresh = await import("../functions/runtime.js");
    const config = { apiKeys: [], stripeSecretKey: "sk_test_bundles", stripeApiUrl: stripe.url, defaultCurrency: "usd", tableName: table.tableName, eventBusName: BUS, eventBridgeEndpoint: eventBridge.url };
    const bare = fresh.buildRuntime(config, systemClock, table.client);
    expect(bare.core.payments.name).toBe("stripe");
    await expect(bare.core.payments.retrievePaymentIntent("pi_unknown")).rejects.toMatchObject({ name: "InvariantViolation", context: { adapter: "stripe" } });
    expect(() => bare.core.payments.checkAmount(1500, "usd")).toThrow(/does not call stripe/);
    await expect(bare.bus!.publish([])).rejects.toMatchObject({ name: "InvariantViolation", context: { adapter: "eventBus" } });

    await import("../functions/stripe-payments.js"); // what orders.ts, webhook.ts and daily-job.ts import
    const calls = stripe.requestsTo("GET", "/v1/payment_intents/pi_unknown").length;
    await expect(bare.core.payments.retrievePaymentIntent("pi_unknown")).rejects.toMatchObject({ name: "PaymentNotFoundError" });
    expect(stripe.requestsTo("GET", "/v1/payment_intents/pi_unknown").length).toBeGreaterThan(calls);
    vi.resetModules();
  });
});

describe("the harness", () => {
  it("reports a bundle that fails to load (a module missing at run time)", async () => {
    const dir = temporaryBundleDir();
    try {
      // The not-found bundle, plus a top-level dynamic import that esbuild cannot follow (a computed specifier).
      const file = join(dir, "broken.mjs");
      copyFileSync(bundles.notFound!.file, file);
      appendFileSync(file, `\nawait import(["./not-bundled", "mjs"].join("."));\n`);
      const { report } = await invokeBundle({ ...bundles.notFound!, file }, apiEvent({ method: "GET", path: "/" }), { env });
      expect(report).toMatchObject({ ok: false, phase: "import", error: { message: expect.stringContaining("not-bundled.mjs") } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
