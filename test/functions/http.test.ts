/**
 * The HTTP edge (functions/*) called as Lambda handlers with real-shaped API Gateway
 * v2 events: JSON errors, body limits, validation naming fields with nothing written,
 * webhook signatures on the raw body (base64 too), and the route table matching what
 * the functions serve. Auth on every route but the webhook is in fuzz.test.ts ("access").
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { HTTP_FUNCTIONS, ROUTES, type HttpFunctionName } from "../../functions/routes.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { honoPath } from "../../functions/http.js";
import { createTestDb } from "../helpers/db.js";
import { invariantViolations } from "../helpers/invariants.js";
import { invoke, type ApiRequest } from "../helpers/gateway.js";
import { signedDelivery, stripeEvent } from "../helpers/stripe-stand-in.js";
import type { Hono } from "hono";

const KEYS = ["key-current-0123456789", "key-next-9876543210"];
const WEBHOOK_SECRET = "whsec_test_http_edge";
const modules = {} as Record<HttpFunctionName, { handler: any; app?: Hono<any> }>;
let table: Awaited<ReturnType<typeof createTestDb>>;

beforeAll(async () => {
  table = await createTestDb("http");
  setRuntime(
    buildRuntime({
      apiKeys: KEYS,
      stripeWebhookSecret: WEBHOOK_SECRET,
      defaultCurrency: "usd",
      tableName: table.tableName,
      dynamoEndpoint: table.endpoint,
    }),
  );
  for (const name of Object.keys(HTTP_FUNCTIONS) as HttpFunctionName[]) {
    modules[name] = await import(`../../functions/${HTTP_FUNCTIONS[name].split(".")[0]!.replace("functions/", "")}.ts`);
  }
});
afterAll(() => setRuntime(undefined));
afterEach(async () => expect(await invariantViolations(table.client, table.tableName)).toEqual([]));

const call = (fn: HttpFunctionName, request: ApiRequest) => invoke(modules[fn].handler, request);
const auth = (key = KEYS[0]!) => ({ authorization: `Bearer ${key}` });
const itemCount = async () => (await table.client.send(new ScanCommand({ TableName: table.tableName, Select: "COUNT" }))).Count;

describe("the route table", () => {
  it("is served by the functions it names, and every function has its routes", () => {
    for (const { route, fn } of ROUTES) {
      const [method, path] = route.split(" ") as [string, string];
      const served = modules[fn].app!.routes.some((r) => r.method === method && r.path === honoPath(path));
      expect(served, `${route} in ${fn}`).toBe(true);
    }
  });
});

describe("errors", () => {
  it("answers unknown routes with a JSON 404, through $default and inside a function", async () => {
    expect(await call("notFound", { method: "GET", path: "/nope" })).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(await call("orders", { method: "DELETE", path: "/users/u/orders", headers: auth() })).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
  });

  it("names each bad field in a 400, and writes nothing", async () => {
    const before = await itemCount();
    const response = await call("offers", {
      method: "PUT",
      path: "/offers/bad",
      headers: auth(),
      body: { name: "", offerGroup: "has space", cycle: "fortnightly", tokenCount: 1.5, prices: [{ amount: -1, currency: "USD" }], extra: 1 },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("validation_error");
    expect(Object.keys(response.body.error.details).sort()).toEqual(
      ["cycle", "extra", "name", "offerGroup", "prices.0.amount", "prices.0.currency", "tokenCount"].sort(),
    );
    expect(await itemCount()).toBe(before);
  });

  it("refuses an offer that cannot renew with renewal auto (once, custom, appendDate), naming renewal; keeps renewal none by default", async () => {
    const before = await itemCount();
    const offer = { name: "Pro", offerGroup: "pro", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }], renewal: "auto" };
    for (const [terms, reason] of [
      [{ cycle: "once" }, "not once or custom"],
      [{ cycle: "custom", customCycleSeconds: 3600 }, "not once or custom"],
      [{ cycle: "monthly", appendDate: true }, "appendDate"],
    ] as const) {
      const response = await call("offers", { method: "PUT", path: "/offers/pro-bad", headers: auth(), body: { ...offer, ...terms } });
      expect(response).toMatchObject({ status: 400, body: { error: { code: "validation_error" } } });
      expect(Object.keys(response.body.error.details)).toEqual(["renewal"]);
      expect(response.body.error.details.renewal).toContain(reason);
    }
    expect(await itemCount()).toBe(before);
    const auto = await call("offers", { method: "PUT", path: "/offers/pro-auto", headers: auth(), body: { ...offer, cycle: "semester" } });
    expect(auto).toMatchObject({ status: 200, body: { offerId: "pro-auto", renewal: "auto", cycle: "semester" } });
    const plain = await call("offers", { method: "PUT", path: "/offers/pro-plain", headers: auth(), body: { ...offer, cycle: "monthly", renewal: undefined } });
    expect(plain).toMatchObject({ status: 200, body: { renewal: "none" } });
  });

  it("answers invalid JSON with 400, other content types with 415, bodies over 1 MB with 413", async () => {
    const path = "/users/u1/consumptions";
    const headers = { ...auth(), "content-type": "application/json" };
    expect(await call("consumption", { method: "POST", path, headers, body: "{not json" })).toMatchObject({
      status: 400,
      body: { error: { code: "validation_error", details: { body: "invalid JSON" } } },
    });
    expect(await call("consumption", { method: "POST", path, headers: { ...auth(), "content-type": "text/plain" }, body: "tokens=1" })).toMatchObject({
      status: 415,
      body: { error: { code: "unsupported_media_type" } },
    });
    const huge = JSON.stringify({ offerGroup: "calls", tokens: 1, metadata: { blob: "x".repeat(1024 * 1024) } });
    expect(await call("consumption", { method: "POST", path, headers, body: huge })).toMatchObject({
      status: 413,
      body: { error: { code: "payload_too_large" } },
    });
  });

  it("refuses consumption metadata over 4 KB with 400 naming the field", async () => {
    const response = await call("consumption", {
      method: "POST",
      path: "/users/u1/consumptions",
      headers: auth(),
      body: { offerGroup: "calls", tokens: 1, metadata: { blob: "x".repeat(5000) } },
    });
    expect(response).toMatchObject({ status: 400, body: { error: { code: "validation_error", details: { metadata: expect.any(String) } } } });
  });

  it("answers a refused consumption with 402 and the balance", async () => {
    const response = await call("consumption", {
      method: "POST",
      path: "/users/nobody/consumptions",
      headers: auth(),
      body: { offerGroup: "calls", tokens: 1 },
    });
    expect(response).toMatchObject({ status: 402, body: { error: { code: "insufficient_credits", details: { balance: 0 } } } });
  });

  it("decodes percent-encoded user ids", async () => {
    const response = await call("credits", { method: "GET", path: "/users/auth0%7C123/credits", headers: auth() });
    expect(response).toMatchObject({ status: 200, body: { userId: "auth0|123", groups: [] } });
  });
});

describe("orders refused by the rules (issue 9, defects 4 and 5)", () => {
  const putOffer = async (offerId: string, terms: Record<string, unknown>) =>
    expect(
      await call("offers", {
        method: "PUT",
        path: `/offers/${offerId}`,
        headers: auth(),
        body: { name: offerId, offerGroup: "calls", cycle: "monthly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }], ...terms },
      }),
    ).toMatchObject({ status: 200 });
  const order = (userId: string, body: Record<string, unknown>) => call("orders", { method: "POST", path: `/users/${userId}/orders`, headers: auth(), body });

  it("answers a free order for more than one unit with 422 quantity_limit_exceeded naming the quantity and the limit 1, writing nothing", async () => {
    await putOffer("free-http", { prices: [{ amount: 0, currency: "usd" }] });
    const before = await itemCount();
    expect(await order("free-bulk", { offerId: "free-http", quantity: 1_000_000 })).toMatchObject({
      status: 422,
      body: { error: { code: "quantity_limit_exceeded", details: { quantity: 1_000_000, quantityLimit: 1 } } },
    });
    expect(await itemCount()).toBe(before);
    expect(await call("orders", { method: "GET", path: "/users/free-bulk/orders", headers: auth() })).toMatchObject({ status: 200, body: { orders: [] } });
    expect(await call("credits", { method: "GET", path: "/users/free-bulk/ledger", headers: auth() })).toMatchObject({ status: 200, body: { entries: [] } });
  });

  it("answers a purchase whose dates would fall past 9999-12-31 with 422 period_out_of_range at creation, writing nothing", async () => {
    await putOffer("yearly-http", { cycle: "yearly" });
    const before = await itemCount();
    expect(await order("far-http", { offerId: "yearly-http", quantity: 1_000_000 })).toMatchObject({
      status: 422,
      body: { error: { code: "period_out_of_range", details: { quantity: 1_000_000, latest: "9999-12-31T23:59:59.999Z" } } },
    });
    expect(await order("far-http", { offerId: "yearly-http", starts: "9999-12-01T00:00:00.000Z" })).toMatchObject({
      status: 422,
      body: { error: { code: "period_out_of_range" } },
    });
    expect(await itemCount()).toBe(before);
    expect(await call("orders", { method: "GET", path: "/users/far-http/orders", headers: auth() })).toMatchObject({ status: 200, body: { orders: [] } });
  });
});

describe("the Stripe webhook", () => {
  const unknownOrderEvent = () =>
    stripeEvent("payment_intent.succeeded", { id: "pi_unknown", object: "payment_intent", metadata: {}, status: "succeeded" });

  it("needs no API key, verifies the signature on the raw body, base64 bodies included", async () => {
    for (const base64 of [false, true]) {
      const { body, signature } = signedDelivery(unknownOrderEvent(), WEBHOOK_SECRET);
      const response = await call("webhook", {
        method: "POST",
        path: "/webhooks/stripe",
        headers: { "stripe-signature": signature, "content-type": "application/json; charset=utf-8" },
        body,
        base64,
      });
      expect(response).toMatchObject({ status: 200, body: { received: true, outcome: "ignored" } });
    }
  });

  it("refuses a wrong secret, a tampered body, a stale timestamp or no signature with 400 invalid_signature, writing nothing", async () => {
    const before = await itemCount();
    const event = unknownOrderEvent();
    const good = signedDelivery(event, WEBHOOK_SECRET);
    const cases: Array<{ body: string; signature?: string }> = [
      { body: good.body, signature: signedDelivery(event, "whsec_wrong").signature },
      { body: good.body.replace("pi_unknown", "pi_tampered"), signature: good.signature },
      signedDelivery(event, WEBHOOK_SECRET, Math.floor(Date.now() / 1000) - 3600),
      { body: good.body },
    ];
    for (const { body, signature } of cases) {
      const response = await call("webhook", {
        method: "POST",
        path: "/webhooks/stripe",
        headers: { "content-type": "application/json", ...(signature ? { "stripe-signature": signature } : {}) },
        body,
      });
      expect(response).toMatchObject({ status: 400, body: { error: { code: "invalid_signature" } } });
    }
    expect(await itemCount()).toBe(before);
  });
});
