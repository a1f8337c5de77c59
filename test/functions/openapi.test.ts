/**
 * The OpenAPI document (functions/openapi-document.ts, served by functions/openapi.ts):
 * - it is a valid OpenAPI 3.1 document for a real validator
 *   (@seriousme/openapi-schema-validator), which refuses a broken one;
 * - its operations are exactly the route table, keyed where the handlers want a key,
 *   with the `Idempotency-Key` exactly where the handlers read it, and its request
 *   schemas accept and refuse what the handlers' zod schemas do;
 * - real responses of the handlers (a scenario driven in-process against DynamoDB Local
 *   and the Stripe stand-in) match the document's response schemas for their status,
 *   with every object closed, so a field added or dropped without the document fails;
 * - it is useful: openapi-typescript turns it into types, a client written with
 *   openapi-fetch compiles (the TypeScript compiler API) and runs against the handlers,
 *   and wrong calls do not compile;
 * - the `openapi` function serves it without a key, and its bundle holds no runtime,
 *   database, AWS SDK or Stripe code.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Validator } from "@seriousme/openapi-schema-validator";
import { build } from "esbuild-sst";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";
import type * as z from "zod/mini";
import { ManualClock } from "../../core/clock.js";
import type { Credits } from "../../core/credits.js";
import type { ServiceEvent } from "../../core/events.js";
import type { ExpiredGrantReport } from "../../core/expiry.js";
import type { Grant } from "../../core/grants.js";
import type { LedgerEntry } from "../../core/ledger.js";
import type { Offer } from "../../core/offers.js";
import type { CommitResult, Reservation } from "../../core/reservations.js";
import type { ReversalResult } from "../../core/reversals.js";
import type { CreateOrderResult, Order } from "../../core/orders.js";
import type { Warning, OfferGroupSettings } from "../../core/rules/warnings.js";
import { STATUS_OF } from "../../functions/http.js";
import { openApiDocument } from "../../functions/openapi-document.js";
import * as responses from "../../functions/response-schemas.js";
import { ROUTES, UNAUTHENTICATED_ROUTES, type HttpFunctionName } from "../../functions/routes.js";
import { buildRuntime, setRuntime, type RuntimeConfig } from "../../functions/runtime.js";
import * as requests from "../../functions/schemas.js";
import type { HttpHandler } from "../../scripts/local-gateway.js";
import { createTestDb } from "../helpers/db.js";
import { inProcessFetch, loadHandlers, type Exchange } from "../helpers/in-process-fetch.js";
import { invariantViolations } from "../helpers/invariants.js";
import { signedDelivery, StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

type Json = Record<string, any>;

const KEY = "openapi-test-key-0123456789";
const WEBHOOK_SECRET = "whsec_openapi_test";
const BASE_URL = "https://api.example.test";
const DAY_MS = 86_400_000;

const doc = openApiDocument() as Json;
const stripe = new StripeStandIn();
let table: Awaited<ReturnType<typeof createTestDb>>;
let handlers: Record<HttpFunctionName, HttpHandler>;
let clock: ManualClock;
/** Every exchange the handlers served in this file, checked against the document in afterAll. */
const exchanges: Exchange[] = [];

/** The runtime of this file: its table and clock, the Stripe stand-in (or the manual provider). */
function useRuntime(payments: "stripe" | "manual"): void {
  const config: RuntimeConfig = {
    apiKeys: [KEY],
    stripeWebhookSecret: WEBHOOK_SECRET,
    portalSigningSecret: "openapi-portal-signing-secret-0123456789",
    defaultCurrency: "usd",
    tableName: table.tableName,
    dynamoEndpoint: table.endpoint,
    ...(payments === "stripe" ? { stripeSecretKey: "sk_test_openapi", stripeApiUrl: stripe.url } : {}),
  };
  setRuntime(buildRuntime(config, clock));
}

beforeAll(async () => {
  await stripe.start();
  table = await createTestDb("openapi");
  clock = new ManualClock(new Date());
  useRuntime("stripe");
  handlers = await loadHandlers();
});
afterAll(async () => {
  setRuntime(undefined);
  await stripe.stop();
});
afterEach(async () => expect(await invariantViolations(table.client, table.tableName)).toEqual([]));

/** fetch over the handlers, recording each exchange. */
const fetchInProcess = (request: Request) => inProcessFetch(handlers, (exchange) => exchanges.push(exchange))(request);

/** Calls the API in-process: JSON body, the API key unless `auth: false`. */
async function call(method: string, path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string>; auth?: boolean } = {}) {
  const headers: Record<string, string> = { ...(options.auth === false ? {} : { authorization: `Bearer ${KEY}` }), ...options.headers };
  let body = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetchInProcess(new Request(`${BASE_URL}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }));
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Json) : undefined };
}

/** Every `METHOD /path` of the document. */
function documentedRoutes(document: Json): string[] {
  return Object.entries(document.paths as Record<string, Json>).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
}

/** The operation object of a route key. */
function operationOf(route: string): Json {
  const [method, path] = route.split(" ") as [string, string];
  return doc.paths[path][method.toLowerCase()];
}

/** `schema` with every object that lists its properties closed (`additionalProperties: false` unless it says otherwise). */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== "object") return schema;
  const copy: Json = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, key === "properties" ? Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, closed(v)])) : closed(value)]));
  if (copy.properties && copy.additionalProperties === undefined) copy.additionalProperties = false;
  return copy;
}

/** Where the document's components live for ajv (`$ref`s rewritten from `#/components/schemas/<name>`). */
const COMPONENTS_ID = "https://user-credits.invalid/openapi.json";

/**
 * An ajv (JSON Schema 2020-12, strict, with formats) that holds the document's components
 * as `$defs` of {@link COMPONENTS_ID}; `compile` takes a schema of the document. With
 * `close`, every object of both is closed ({@link closed}).
 */
function documentAjv(options: { close: boolean }) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const prepare = (schema: unknown) =>
    JSON.parse(JSON.stringify(options.close ? closed(schema) : schema).replaceAll('"#/components/schemas/', `"${COMPONENTS_ID}#/$defs/`));
  ajv.addSchema({ $id: COMPONENTS_ID, $defs: prepare(doc.components.schemas) });
  return { ajv, compile: (schema: unknown): ValidateFunction => ajv.compile(prepare(schema)) };
}

describe("the document", () => {
  it("is a valid OpenAPI 3.1 document for @seriousme/openapi-schema-validator", async () => {
    const validator = new Validator();
    expect(await validator.validate(structuredClone(doc))).toEqual({ valid: true });
    expect(validator.version).toBe("3.1");
  });

  it("is refused by the same validator when broken (a parameter in an unknown place, a dangling $ref)", async () => {
    const badParameter = structuredClone(doc);
    badParameter.paths["/users/{userId}/credits"].get.parameters[0].in = "body";
    expect((await new Validator().validate(badParameter)).valid).toBe(false);
    const danglingRef = structuredClone(doc);
    danglingRef.paths["/offers/{offerId}"].get.responses["200"].content["application/json"].schema = { $ref: "#/components/schemas/Nothing" };
    expect((await new Validator().validate(danglingRef)).valid).toBe(false);
  });

  it("has exactly one operation per route of the route table", () => {
    expect(documentedRoutes(doc).sort()).toEqual(ROUTES.map((r) => r.route).sort());
    const ids = documentedRoutes(doc).map((route) => operationOf(route).operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("asks for the bearer API key on every route but the Stripe webhook, the document itself and the portal's (its session token)", () => {
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.securitySchemes.portalToken).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    expect(doc.security).toEqual([{ apiKey: [] }]);
    for (const { route } of ROUTES) {
      const open = ["POST /webhooks/stripe", "GET /openapi.json"].includes(route);
      const portal = route.includes(" /portal/api/");
      expect(operationOf(route).security, route).toEqual(open ? [] : portal ? [{ portalToken: [] }] : undefined);
      expect(UNAUTHENTICATED_ROUTES.includes(route), route).toBe(open);
      if (!open) expect(operationOf(route).responses["401"], route).toBeDefined();
    }
  });

  it("declares every path parameter of each route template, each parameter described, and the error body with every error code", () => {
    for (const { route } of ROUTES) {
      const names = [...route.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const inPath = (operationOf(route).parameters ?? []).filter((p: Json) => p.in === "path").map((p: Json) => p.name);
      expect(inPath, route).toEqual(names);
      for (const parameter of operationOf(route).parameters ?? []) if (!parameter.$ref) expect(parameter.description, `${route} ${parameter.name}`).toBeTruthy();
    }
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual(Object.keys(STATUS_OF));
  });

  it("holds only valid JSON Schema 2020-12 (ajv compiles every schema in strict mode)", () => {
    const { ajv, compile } = documentAjv({ close: false });
    expect(ajv.getSchema(COMPONENTS_ID)).toBeDefined();
    let compiled = 0;
    for (const route of documentedRoutes(doc)) {
      const operation = operationOf(route);
      for (const parameter of operation.parameters ?? []) if (parameter.schema) (compile(parameter.schema), compiled++);
      for (const media of Object.values((operation.requestBody?.content ?? {}) as Json)) (compile(media.schema), compiled++);
      for (const response of Object.values(operation.responses as Json)) for (const media of Object.values(response.content as Json)) (compile(media.schema), compiled++);
    }
    expect(compiled).toBeGreaterThan(ROUTES.length * 3);
  });

  it("accepts and refuses request bodies as the handlers' zod schemas do", () => {
    const { compile } = documentAjv({ close: false });
    const samples: Array<[z.ZodMiniType, string, unknown[]]> = [
      [
        requests.consumptionBody,
        "ConsumptionRequest",
        [
          { offerGroup: "calls", tokens: 60 },
          { offerGroup: "calls", tokens: 60, allowOverdraft: true, metadata: { service: "call", callId: "c-77" } },
          { offerGroup: "calls", tokens: "ten" },
          { offerGroup: "calls", tokens: 0 },
          { offerGroup: "calls", tokens: 1.5 },
          { tokens: 1 },
          { offerGroup: "has space", tokens: 1 },
          { offerGroup: "calls", tokens: 1, extra: true },
        ],
      ],
      [
        requests.orderBody,
        "OrderRequest",
        [{ offerId: "calls-60" }, { offerId: "calls-60", quantity: 2, currency: "eur", starts: "2030-01-01T00:00:00+02:00" }, { offerId: "calls-60", currency: "USD" }, { offerId: "calls-60", quantity: 0 }, { quantity: 1 }, { offerId: "calls-60", starts: "tomorrow" }],
      ],
      [requests.refundBody, "RefundRequest", [{ mode: "unused" }, { mode: "full", reason: "asked" }, { mode: "half" }, {}]],
      [requests.grantBody, "GrantRequest", [{ offerGroup: "calls", tokens: 5, expires: null }, { offerGroup: "calls", tokens: -5 }, { offerGroup: "calls", tokens: 5, expires: "soon" }]],
      [requests.offerGroupBody, "OfferGroupInput", [{}, { lowBalanceThreshold: 50, expiryWarningDays: 7 }, { expiryWarningDays: 400 }, { lowBalanceThreshold: "50" }]],
      [requests.emptyBody, "EmptyBody", [{}, { anything: 1 }]],
      [requests.expiryCheckBody, "ExpiryCheckRequest", [{}, { warnMs: 604_800_000, low: [{ offerGroup: "calls", min: 60 }] }, { warnMs: -1 }, { low: [{ offerGroup: "calls" }] }]],
    ];
    for (const [schema, name, bodies] of samples) {
      const validate = compile({ $ref: `#/components/schemas/${name}` });
      for (const body of bodies) expect(validate(body), `${name} ${JSON.stringify(body)}`).toBe(schema.safeParse(body).success);
      // Both outcomes are sampled for each schema.
      expect(new Set(bodies.map((body) => schema.safeParse(body).success)), name).toEqual(new Set([true, false]));
    }
  });

  it("matches the core types the handlers return (checked by the compiler)", () => {
    // Each core result type must be assignable to what its response schema describes.
    expectTypeOf<Offer>().toExtend<z.input<typeof responses.offer>>();
    expectTypeOf<OfferGroupSettings>().toExtend<z.input<typeof responses.offerGroupSettings>>();
    expectTypeOf<Order>().toExtend<z.input<typeof responses.order>>();
    expectTypeOf<CreateOrderResult>().toExtend<z.input<typeof responses.orderWithPayment>>();
    expectTypeOf<LedgerEntry>().toExtend<z.input<typeof responses.ledgerEntry>>();
    expectTypeOf<Credits>().toExtend<z.input<typeof responses.credits>>();
    expectTypeOf<Reservation>().toExtend<z.input<typeof responses.reservation>>();
    expectTypeOf<CommitResult>().toExtend<z.input<typeof responses.commitResult>>();
    expectTypeOf<ReversalResult>().toExtend<z.input<typeof responses.reversalResult>>();
    expectTypeOf<Grant>().toExtend<z.input<typeof responses.grant>>();
    expectTypeOf<ServiceEvent>().toExtend<z.input<typeof responses.serviceEvent>>();
    expectTypeOf<{ expired: Array<ExpiredGrantReport & { status: "expired" }>; warnings: Warning[] }>().toExtend<z.input<typeof responses.expiryCheck>>();
  });
});

describe("the openapi function", () => {
  it("serves the document as JSON without an API key, and JSON errors for anything else", async () => {
    const served = await call("GET", "/openapi.json", { auth: false });
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toMatch(/^application\/json/);
    expect(served.body).toEqual(doc);
    expect(await call("POST", "/openapi.json", { auth: false, body: {} })).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    const { handler } = await import("../../functions/openapi.js");
    const event = (headers: Record<string, string>, body?: string) =>
      ({ version: "2.0", routeKey: "GET /openapi.json", rawPath: "/openapi.json", rawQueryString: "", headers, requestContext: { http: { method: "GET", path: "/openapi.json" } }, isBase64Encoded: false, ...(body ? { body } : {}) }) as never;
    const bodyOf = async (answer: Promise<{ body?: string }>) => JSON.parse((await answer).body!);
    expect(await bodyOf(handler(event({ "x-bad": "a\u0000b" })))).toEqual({
      error: { code: "validation_error", message: expect.any(String), details: { "x-bad": "is not a valid HTTP header" } },
    });
    expect((await handler(event({ host: "h" }, "a GET body, ignored"))).statusCode).toBe(200);
    const trailingSlash = { ...(event({}) as object), rawPath: "/openapi.json/", requestContext: { http: { method: "GET", path: "/openapi.json/" } } };
    expect(await bodyOf(handler(trailingSlash as never))).toMatchObject({ error: { code: "not_found" } });
  });

  it("bundles without the runtime, the database, the AWS SDK or Stripe", async () => {
    const result = await build({ entryPoints: ["functions/openapi.ts"], bundle: true, platform: "node", format: "esm", target: "node20", minify: true, write: false, metafile: true });
    const inputs = Object.keys(result.metafile.inputs);
    const heavy = inputs.filter((input) => /node_modules\/(electrodb|@aws-sdk|@smithy|stripe|@aws-lambda-powertools)\/|functions\/(runtime|http)\.ts$|core\/db\/(service|client)\.ts$/.test(input));
    expect(heavy).toEqual([]);
    const bytes = result.outputFiles[0]!.contents.byteLength;
    console.log(`openapi bundle: ${(bytes / 1024).toFixed(1)} KiB minified, ${inputs.length} inputs`);
    expect(bytes).toBeLessThan(400 * 1024);
  });
});

describe("the Idempotency-Key", () => {
  /** A body each write route accepts (checked against the document), on a user and ids that exist or not. */
  const BODIES: Record<string, unknown> = {
    "PUT /offers/{offerId}": { name: "idem", offerGroup: "idem", cycle: "once", tokenCount: 1, prices: [{ amount: 100, currency: "usd" }] },
    "PUT /offer-groups/{offerGroup}": {},
    "POST /users/{userId}/orders": { offerId: "no-such-offer" },
    "POST /users/{userId}/orders/{orderId}/confirm": {},
    "POST /users/{userId}/orders/{orderId}/pay": {},
    "POST /users/{userId}/orders/{orderId}/refund": { mode: "full" },
    "POST /users/{userId}/orders/{orderId}/sync": {},
    "DELETE /users/{userId}/subscriptions/{offerId}": { atPeriodEnd: true },
    "POST /users/{userId}/payment-methods/setup": {},
    "PUT /users/{userId}/auto-top-up/{offerGroup}": { offerId: "idem", threshold: 1 },
    "DELETE /users/{userId}/auto-top-up/{offerGroup}": {},
    "POST /users/{userId}/portal-sessions": {},
    "POST /portal/api/orders": { offerId: "idem" },
    "DELETE /portal/api/subscriptions/{offerId}": { atPeriodEnd: true },
    "POST /users/{userId}/consumptions": { offerGroup: "idem", tokens: 1 },
    "POST /users/{userId}/consumptions/{entryId}/reverse": { tokens: 1 },
    "POST /users/{userId}/reservations": { offerGroup: "idem", tokens: 1 },
    "POST /users/{userId}/reservations/{reservationId}/commit": { tokens: 1 },
    "POST /users/{userId}/reservations/{reservationId}/release": {},
    "POST /users/{userId}/grants": { offerGroup: "idem", tokens: 1 },
    "POST /users/{userId}/expiry-check": {},
  };

  it("is documented on exactly the routes whose handler refuses a bad one (400 naming it)", async () => {
    const { compile } = documentAjv({ close: false });
    const writes = ROUTES.filter((r) => !r.route.startsWith("GET ") && r.route !== "POST /webhooks/stripe").map((r) => r.route);
    expect(Object.keys(BODIES).sort()).toEqual([...writes].sort());
    const readers: string[] = [];
    for (const route of writes) {
      const operation = operationOf(route);
      expect(compile(operation.requestBody.content["application/json"].schema)(BODIES[route]), route).toBe(true);
      const [method, template] = route.split(" ") as [string, string];
      const path = template.replace("{userId}", "idem-user").replace("{orderId}", "01JAAAAAAAAAAAAAAAAAAAAAAA").replace("{reservationId}", "01JAAAAAAAAAAAAAAAAAAAAAAA").replace("{entryId}", "01JAAAAAAAAAAAAAAAAAAAAAAA").replace("{offerId}", "idem").replace("{offerGroup}", "idem");
      const answer = await call(method, path, { body: BODIES[route], headers: { "idempotency-key": "k".repeat(256) } });
      if (answer.status === 400 && answer.body?.error?.details?.["Idempotency-Key"]) readers.push(route);
      const documented = (operation.parameters ?? []).some((p: Json) => p.$ref === "#/components/parameters/IdempotencyKey");
      expect(documented, `${route} answered ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`).toBe(readers.includes(route));
    }
    expect(readers.length).toBeGreaterThanOrEqual(3);
  });
});

describe("real responses", () => {
  const user = "oa|user@example.com";
  const u = encodeURIComponent(user);
  const offer = (overrides: Json = {}) => ({ name: "60 calls", offerGroup: "calls", cycle: "monthly", tokenCount: 60, prices: [{ amount: 1000, currency: "usd" }, { amount: 900, currency: "eur" }], ...overrides });

  it("come from a scenario that takes every route to its success answer and to the main errors", async () => {
    // A. The catalog.
    expect((await call("PUT", "/offers/calls-60", { body: offer({ tags: ["calls"] }) })).status).toBe(200);
    expect((await call("PUT", "/offers/free-5", { body: offer({ name: "free", offerGroup: "free", tokenCount: 5, prices: [{ amount: 0, currency: "usd" }] }) })).status).toBe(200);
    expect((await call("PUT", "/offers/bundle", { body: offer({ name: "bundle", offerGroup: "plan", kind: "subscription", tokenCount: 0, combinedItems: [{ offerId: "calls-60", quantity: 1 }] }) })).status).toBe(200);
    expect((await call("GET", "/offers/calls-60")).status).toBe(200);
    expect((await call("GET", "/offers/nope")).status).toBe(404);
    expect((await call("GET", `/offers?userId=${u}&tags=calls`)).body!.offers).toHaveLength(1);
    expect((await call("PUT", "/offer-groups/calls", { body: { lowBalanceThreshold: 50 } })).status).toBe(200);
    expect((await call("GET", "/offer-groups/calls")).status).toBe(200);

    // B. Orders through Stripe: a PaymentIntent paid and synced, a Checkout Session retried, a free order, a bundle.
    const created = await call("POST", `/users/${u}/orders`, { body: { offerId: "calls-60", quantity: 2 }, headers: { "idempotency-key": "order-1" } });
    expect(created).toMatchObject({ status: 201, body: { payment: { provider: "stripe" } } });
    const paid = created.body!.order.orderId as string;
    stripe.succeed(created.body!.payment.paymentIntentId);
    expect((await call("POST", `/users/${u}/orders/${paid}/sync`)).body).toMatchObject({ status: "paid" });
    const checkout = await call("POST", `/users/${u}/orders`, { body: { offerId: "calls-60", currency: "eur", checkout: { successUrl: "https://app.example/ok", cancelUrl: "https://app.example/no" } } });
    expect(checkout.body!.payment.provider).toBe("stripe_checkout");
    expect((await call("POST", `/users/${u}/orders/${checkout.body!.order.orderId}/pay`)).status).toBe(200);
    expect((await call("POST", `/users/${u}/orders`, { body: { offerId: "free-5" } })).body!.payment).toBeNull();
    const bundle = await call("POST", `/users/${u}/orders`, { body: { offerId: "bundle" } });
    stripe.succeed(bundle.body!.payment.paymentIntentId);
    expect((await call("POST", `/users/${u}/orders/${bundle.body!.order.orderId}/sync`)).body!.combinedItems[0].grantId).toBeDefined();
    expect((await call("POST", `/users/${u}/orders/${paid}/confirm`)).status).toBe(409);
    expect((await call("GET", `/users/${u}/orders?limit=2`)).body!.cursor).not.toBeNull();
    expect((await call("GET", `/users/${u}/orders/${paid}`)).status).toBe(200);
    expect((await call("GET", `/users/${u}/subscriptions/bundle`)).body).toMatchObject({ subscribed: true });
    expect((await call("GET", `/users/${u}/subscriptions/nope`)).body).toEqual({ subscribed: false, order: null });
    // A renewing offer: a Stripe subscription, awaiting its first payment, checked and cancelled at once.
    expect((await call("PUT", "/offers/pro-auto", { body: offer({ name: "pro", offerGroup: "pro", renewal: "auto" }) })).status).toBe(200);
    const renewing = await call("POST", `/users/${u}/orders`, { body: { offerId: "pro-auto" } });
    expect(renewing).toMatchObject({ status: 201, body: { order: { renewal: "auto" }, payment: { provider: "stripe", subscriptionId: expect.stringMatching(/^sub_/) } } });
    expect((await call("GET", `/users/${u}/subscriptions/pro-auto`)).body).toMatchObject({ subscribed: false, renews: false, cancelAtPeriodEnd: false, currentPeriodEnd: null });
    expect((await call("DELETE", `/users/${u}/subscriptions/pro-auto`, { body: { atPeriodEnd: false } })).body).toMatchObject({ status: "canceled", renews: false });
    expect(await call("POST", `/users/${u}/payment-methods/setup`)).toMatchObject({ status: 201, body: { provider: "stripe", clientSecret: expect.stringMatching(/^seti_/) } });
    expect(await call("POST", `/users/${u}/payment-methods/setup`, { body: { checkout: { successUrl: "https://app.example/ok", cancelUrl: "https://app.example/no" } } })).toMatchObject({ status: 201, body: { provider: "stripe_checkout" } });
    // An automatic top-up setting: written, read, refused for a renewing offer, deleted.
    expect(await call("PUT", `/users/${u}/auto-top-up/calls`, { body: { offerId: "calls-60", threshold: 10, maxPerMonth: 2 } })).toMatchObject({ status: 200, body: { threshold: 10, maxPerMonth: 2, enabled: true, usedThisMonth: 0 } });
    expect((await call("GET", `/users/${u}/auto-top-up/calls`)).status).toBe(200);
    expect(await call("PUT", `/users/${u}/auto-top-up/pro`, { body: { offerId: "pro-auto", threshold: 10 } })).toMatchObject({ status: 400, body: { error: { details: { offerId: expect.any(String) } } } });
    expect((await call("DELETE", `/users/${u}/auto-top-up/calls`)).body).toMatchObject({ enabled: false });
    expect((await call("GET", `/users/${u}/auto-top-up/calls`)).status).toBe(404);
    // The customer portal: a session minted with the API key, then its routes with its token only.
    const portal = await call("POST", `/users/${u}/portal-sessions`, { body: { returnUrl: "https://app.example/account", tags: ["calls"], ttlSeconds: 600 } });
    expect(portal).toMatchObject({ status: 201, body: { url: expect.stringMatching(/\/portal#token=/) } });
    const token = { authorization: `Bearer ${String(portal.body!.url).split("#token=")[1]}` };
    const asUser = (method: string, path: string, body?: unknown) => call(method, path, { auth: false, headers: token, ...(body !== undefined ? { body } : {}) });
    expect((await asUser("GET", "/portal/api/session")).body).toMatchObject({ userId: user, tags: ["calls"], returnUrl: "https://app.example/account" });
    expect((await asUser("GET", "/portal/api/credits")).status).toBe(200);
    expect((await asUser("GET", "/portal/api/offers")).body!.offers.map((o: Json) => o.offerId)).toEqual(["calls-60"]);
    const bought = await asUser("POST", "/portal/api/orders", { offerId: "calls-60" });
    expect(bought).toMatchObject({ status: 201, body: { payment: { provider: "stripe_checkout" } } });
    expect((await asUser("GET", "/portal/api/orders?limit=1")).body!.orders).toHaveLength(1);
    expect((await asUser("GET", `/portal/api/orders/${bought.body!.order.orderId}`)).status).toBe(200);
    expect((await asUser("GET", "/portal/api/ledger?limit=5")).status).toBe(200);
    expect((await asUser("GET", "/portal/api/subscriptions/bundle")).body).toMatchObject({ subscribed: true });
    expect((await asUser("DELETE", "/portal/api/subscriptions/pro-auto")).status).toBe(404); // cancelled above already
    expect((await call("POST", `/users/${u}/orders`, { body: { offerId: "pro-auto" } })).status).toBe(201);
    expect((await asUser("DELETE", "/portal/api/subscriptions/pro-auto", { atPeriodEnd: false })).body).toMatchObject({ status: "canceled" });
    expect((await call("GET", "/portal/api/credits")).status).toBe(401); // the API key is no portal token

    // C. Credits: consumption (and a refused one), a grant that expires, the reads.
    expect((await call("POST", `/users/${u}/consumptions`, { body: { offerGroup: "calls", tokens: 100, metadata: { callId: "c-1" } }, headers: { "idempotency-key": "c-1" } })).status).toBe(201);
    expect((await call("POST", `/users/${u}/consumptions`, { body: { offerGroup: "calls", tokens: 1_000_000 } })).status).toBe(402);
    const failed = await call("POST", `/users/${u}/consumptions`, { body: { offerGroup: "calls", tokens: 5, metadata: { callId: "c-2" } } });
    const reversed = await call("POST", `/users/${u}/consumptions/${failed.body!.entry.entryId}/reverse`, { body: { tokens: 2, reason: "the call failed" }, headers: { "idempotency-key": "rev-1" } });
    expect(reversed).toMatchObject({ status: 201, body: { entry: { reason: "reverse", tokens: 2, reversesEntryId: failed.body!.entry.entryId } } });
    expect((await call("POST", `/users/${u}/consumptions/${failed.body!.entry.entryId}/reverse`, { body: { tokens: 4 } })).status).toBe(409);
    expect((await call("POST", `/users/${u}/consumptions/${failed.body!.entry.entryId}/reverse`)).status).toBe(201);
    expect((await call("POST", `/users/${u}/consumptions`, { body: { offerGroup: "calls", tokens: "ten" } })).status).toBe(400);
    expect((await call("POST", `/users/${u}/consumptions`, { raw: "tokens=1", headers: { "content-type": "text/plain" } })).status).toBe(415);
    expect((await call("GET", `/users/${u}/credits`, { auth: false })).status).toBe(401);

    // C2. Reservations: a hold committed (and a second commit refused), one released twice, one too large, the list.
    const held = await call("POST", `/users/${u}/reservations`, { body: { offerGroup: "calls", tokens: 5, ttlSeconds: 60, metadata: { callId: "s-1" } }, headers: { "idempotency-key": "h-1" } });
    expect(held).toMatchObject({ status: 201, body: { status: "held", tokens: 5 } });
    const committed = await call("POST", `/users/${u}/reservations/${held.body!.reservationId}/commit`, { body: { tokens: 3, metadata: { callId: "s-1" } }, headers: { "idempotency-key": "h-1-commit" } });
    expect(committed).toMatchObject({ status: 200, body: { reservation: { status: "committed" }, entry: { tokens: -3, reason: "consume" } } });
    expect((await call("POST", `/users/${u}/reservations/${held.body!.reservationId}/commit`, { body: { tokens: 3 } })).status).toBe(409);
    const other = await call("POST", `/users/${u}/reservations`, { body: { offerGroup: "calls", tokens: 2 } });
    expect((await call("POST", `/users/${u}/reservations/${other.body!.reservationId}/release`)).body).toMatchObject({ status: "released" });
    expect((await call("POST", `/users/${u}/reservations/${other.body!.reservationId}/release`)).status).toBe(200);
    expect((await call("POST", `/users/${u}/reservations`, { body: { offerGroup: "calls", tokens: 1_000_000 } })).status).toBe(402);
    expect((await call("POST", `/users/${u}/reservations/01JAAAAAAAAAAAAAAAAAAAAAAA/release`)).status).toBe(404);
    expect((await call("GET", `/users/${u}/reservations?offerGroup=calls&limit=1`)).body!.cursor).not.toBeNull();
    const grant = await call("POST", `/users/${u}/grants`, { body: { offerGroup: "trial", tokens: 7, expires: new Date(clock.now().getTime() + DAY_MS).toISOString(), reason: "trial" } });
    expect(grant.status).toBe(201);
    expect((await call("GET", `/users/${u}/credits`)).body!.groups.length).toBeGreaterThanOrEqual(3);
    expect((await call("POST", `/users/${u}/expiry-check`, { body: { warnMs: 40 * DAY_MS, low: [{ offerGroup: "calls", min: 1000 }] } })).body!.warnings.length).toBeGreaterThan(0);

    // D. A refund through Stripe, then the webhook (ignored, and refused unsigned).
    const refunded = await call("POST", `/users/${u}/orders/${paid}/refund`, { body: { mode: "unused", reason: "asked" }, headers: { "idempotency-key": "r-1" } });
    expect(refunded.body).toMatchObject({ status: "refunded", refunds: [{ source: "api" }] });
    const delivery = signedDelivery(stripeEvent("payment_intent.succeeded", { id: "pi_unknown", object: "payment_intent", metadata: {}, status: "succeeded" }), WEBHOOK_SECRET);
    expect((await call("POST", "/webhooks/stripe", { raw: delivery.body, auth: false, headers: { "stripe-signature": delivery.signature, "content-type": "application/json" } })).status).toBe(200);
    expect((await call("POST", "/webhooks/stripe", { raw: delivery.body, auth: false, headers: { "content-type": "application/json" } })).status).toBe(400);

    // E. The manual provider: an order confirmed by the operator.
    useRuntime("manual");
    const manual = await call("POST", `/users/${u}/orders`, { body: { offerId: "calls-60" } });
    expect(manual.body!.payment).toEqual({ provider: "manual" });
    expect((await call("POST", `/users/${u}/orders/${manual.body!.order.orderId}/confirm`)).body).toMatchObject({ status: "paid" });
    // Bought through the portal under the manual provider: a pending order for the operator to confirm.
    expect(await asUser("POST", "/portal/api/orders", { offerId: "calls-60" })).toMatchObject({ status: 201, body: { order: { status: "pending", provider: "manual" }, payment: { provider: "manual" } } });
    useRuntime("stripe");

    // F. Time passes: the grant expires; the ledger and events tell it all; the document itself.
    clock.advance(2 * DAY_MS);
    expect((await call("POST", `/users/${u}/expiry-check`)).body!.expired).toHaveLength(1);
    expect((await call("GET", `/users/${u}/ledger?offerGroup=calls&limit=1000`)).body!.entries.length).toBeGreaterThan(2);
    const events = (await call("GET", `/users/${u}/events`)).body!.events as Json[];
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["order.paid", "order.refunded", "credits.expired"]));
    expect((await call("GET", "/openapi.json", { auth: false })).status).toBe(200);
  });

  it("fail the check when the document leaves a field out", async () => {
    // The check of G, on an Order missing from its schema one field it has: refused.
    const order = (await call("GET", `/users/${u}/orders?limit=1`)).body!.orders[0];
    const { compile } = documentAjv({ close: true });
    const schema = structuredClone(doc.components.schemas.Order);
    delete schema.properties.offerName;
    schema.required = schema.required.filter((name: string) => name !== "offerName");
    expect(compile({ $ref: "#/components/schemas/Order" })(order)).toBe(true);
    expect(compile(schema)(order)).toBe(false);
  });
});

describe("a typed client", () => {
  let dir: string;
  beforeAll(async () => {
    // Under node_modules/.cache, so that the client resolves `openapi-fetch` as an app would.
    const cache = resolve("node_modules/.cache");
    await mkdir(cache, { recursive: true });
    dir = await mkdtemp(join(cache, "openapi-client-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A client as an app writes it: generated `paths`, openapi-fetch, one consumption. */
  const CLIENT = `
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

export type Credits = components["schemas"]["Credits"];

/** Gives the user 100 tokens, spends 60, and returns the balance and the entry's reason. */
export async function spend(options: { baseUrl: string; apiKey: string; fetch?: (request: Request) => Promise<Response> }, userId: string) {
  const client = createClient<paths>({ baseUrl: options.baseUrl, headers: { authorization: \`Bearer \${options.apiKey}\` }, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const granted = await client.POST("/users/{userId}/grants", { params: { path: { userId } }, body: { offerGroup: "calls", tokens: 100 } });
  if (granted.error) throw new Error(granted.error.error.code);
  const { data, error } = await client.POST("/users/{userId}/consumptions", {
    params: { path: { userId }, header: { "Idempotency-Key": "spend-1" } },
    body: { offerGroup: "calls", tokens: 60, metadata: { callId: "c-77" } },
  });
  if (error) throw new Error(\`\${error.error.code}: \${error.error.message}\`);
  const balance: number = data.balance;
  const reason: string = data.entry.reason;
  const credits = await client.GET("/users/{userId}/credits", { params: { path: { userId } } });
  const groups: Credits["groups"] = credits.data?.groups ?? [];
  const ledger = await client.GET("/users/{userId}/ledger", { params: { path: { userId }, query: { offerGroup: "calls", limit: 10 } } });
  return { balance, reason, groups: groups.length, entries: ledger.data?.entries.length ?? 0 };
}
`;

  /** Calls that must not compile, each marked on its line. */
  const WRONG = `
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

const client = createClient<paths>({ baseUrl: "https://api.example.test" });
export async function wrong(userId: string) {
  await client.POST("/users/{userId}/consumptions", { params: { path: { userId } }, body: { offerGroup: "calls", tokens: "ten" } }); // WRONG tokens is a number
  await client.POST("/users/{userId}/consumptions", { params: { path: { userId } }, body: { tokens: 10 } }); // WRONG offerGroup is required
  await client.POST("/users/{userId}/consumption", { params: { path: { userId } }, body: { offerGroup: "calls", tokens: 10 } }); // WRONG no such path
  await client.GET("/users/{userId}/credits", { params: { path: { user: userId } } }); // WRONG the parameter is userId
  await client.POST("/users/{userId}/orders/{orderId}/refund", { params: { path: { userId, orderId: "x" } }, body: { mode: "half" } }); // WRONG mode is unused or full
  const { data } = await client.POST("/users/{userId}/consumptions", { params: { path: { userId } }, body: { offerGroup: "calls", tokens: 10 } });
  return data?.balanse; // WRONG no such field
}
`;

  it("is generated by openapi-typescript; a client written with openapi-fetch compiles, and wrong calls do not", async () => {
    const types = astToString(await openapiTS(structuredClone(doc) as never, { defaultNonNullable: false }));
    await writeFile(join(dir, "api.ts"), types);
    await writeFile(join(dir, "client.ts"), CLIENT);
    await writeFile(join(dir, "wrong.ts"), WRONG);

    const { config } = ts.readConfigFile(resolve("tsconfig.json"), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, resolve("."));
    const program = ts.createProgram([join(dir, "client.ts"), join(dir, "wrong.ts")], { ...options, noEmit: true });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ({
      file: d.file?.fileName ?? "",
      line: d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1,
      text: ts.flattenDiagnosticMessageText(d.messageText, "\n"),
    }));
    const inFile = (name: string) => diagnostics.filter((d) => d.file === join(dir, name));
    expect(inFile("client.ts")).toEqual([]);
    expect(inFile("api.ts")).toEqual([]);
    const marked = WRONG.split("\n").flatMap((line, index) => (line.includes("// WRONG") ? [index] : []));
    expect(marked).toHaveLength(6);
    expect([...new Set(inFile("wrong.ts").map((d) => d.line))].sort((a, b) => a - b)).toEqual(marked);
    expect(diagnostics.filter((d) => ![join(dir, "client.ts"), join(dir, "wrong.ts"), join(dir, "api.ts")].includes(d.file))).toEqual([]);
  });

  it("runs against the handlers", async () => {
    const out = join(dir, "client.mjs");
    await build({ entryPoints: [join(dir, "client.ts")], bundle: true, platform: "node", format: "esm", outfile: out, logLevel: "silent" });
    const { spend } = (await import(pathToFileURL(out).href)) as { spend: (options: object, userId: string) => Promise<Json> };
    expect(await spend({ baseUrl: BASE_URL, apiKey: KEY, fetch: fetchInProcess }, "auth0|typed@example.com")).toEqual({ balance: 40, reason: "consume", groups: 1, entries: 2 });
  });
});

describe("every answer served in this file", () => {
  it("matches the document's schema for its status, objects closed; every route gave its success answer", () => {
    const { compile } = documentAjv({ close: true });
    const validators = new Map<string, ValidateFunction>();
    const problems: string[] = [];
    const notFound = compile({ $ref: "#/components/schemas/Error" });
    for (const exchange of exchanges) {
      if (exchange.route === "$default") {
        // No route: API Gateway's `$default`, a JSON 404.
        if (exchange.status !== 404 || !notFound(exchange.body)) problems.push(`$default ${exchange.method} ${exchange.path}: ${exchange.status}`);
        continue;
      }
      const response = operationOf(exchange.route).responses[String(exchange.status)];
      if (!response) {
        problems.push(`${exchange.route} answered ${exchange.status}, which the document does not list`);
        continue;
      }
      const key = `${exchange.route} ${exchange.status}`;
      if (!validators.has(key)) validators.set(key, compile(response.content["application/json"].schema));
      const validate = validators.get(key)!;
      if (!validate(exchange.body)) problems.push(`${key}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
    }
    expect(problems).toEqual([]);
    const succeeded = new Set(exchanges.filter((e) => e.status < 300).map((e) => e.route));
    expect(ROUTES.map((r) => r.route).filter((route) => !succeeded.has(route))).toEqual([]);
    const errors = new Set(exchanges.filter((e) => e.status >= 400).map((e) => e.status));
    for (const status of [400, 401, 402, 404, 409, 415]) expect(errors.has(status), String(status)).toBe(true);
  });
});
