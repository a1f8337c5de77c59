/**
 * The local stand-in for API Gateway (scripts/local-gateway.ts): the events it builds
 * have the shape of AWS's sample HTTP API v2 event, and routing follows the route table.
 */
import { describe, expect, it } from "vitest";
import sample from "../fixtures/apigw-http-v2.json" with { type: "json" };
import { createRouteMatcher, toGatewayEvent } from "../../scripts/local-gateway.js";
import { readConfig } from "../../functions/runtime.js";

describe("createRouteMatcher", () => {
  const match = createRouteMatcher();

  it("finds the route key, function and decoded path parameters", () => {
    expect(match("POST", "/users/auth0%7C123/orders/01KF0HJ080FP66SJD5SJKZ765Q/confirm")).toEqual({
      route: "POST /users/{userId}/orders/{orderId}/confirm",
      fn: "orders",
      pathParameters: { userId: "auth0|123", orderId: "01KF0HJ080FP66SJD5SJKZ765Q" },
    });
    expect(match("GET", "/offers")).toEqual({ route: "GET /offers", fn: "offers" });
  });

  it("sends anything else to $default", () => {
    expect(match("DELETE", "/offers/x")).toEqual({ route: "$default", fn: "notFound" });
    expect(match("GET", "/users/u/nothing")).toEqual({ route: "$default", fn: "notFound" });
  });
});

describe("toGatewayEvent", () => {
  const base = {
    method: "POST",
    url: new URL("http://127.0.0.1:3000/users/u1/consumptions?a=1&a=2&b=3"),
    sourceIp: "127.0.0.1",
    route: { route: "POST /users/{userId}/consumptions", pathParameters: { userId: "u1" } },
  };

  it("builds an event with the keys of AWS's sample, multi-value query joined with commas", () => {
    const event = toGatewayEvent({ ...base, headers: { "content-type": "application/json", cookie: "a=1; b=2" }, body: Buffer.from('{"x":1}') });
    const sampleKeys = Object.keys(sample).filter((k) => k !== "stageVariables").sort();
    expect(Object.keys(event).sort()).toEqual(sampleKeys);
    expect(Object.keys(event.requestContext).sort()).toEqual(
      Object.keys(sample.requestContext).filter((k) => !["authentication", "authorizer"].includes(k)).sort(),
    );
    expect(event).toMatchObject({
      version: "2.0",
      routeKey: "POST /users/{userId}/consumptions",
      rawPath: "/users/u1/consumptions",
      rawQueryString: "a=1&a=2&b=3",
      queryStringParameters: { a: "1,2", b: "3" },
      cookies: ["a=1", "b=2"],
      body: '{"x":1}',
      isBase64Encoded: false,
    });
  });

  it("base64-encodes bodies that are not textual, as API Gateway does", () => {
    const event = toGatewayEvent({ ...base, headers: { "content-type": "application/octet-stream" }, body: Buffer.from("raw bytes") });
    expect(event).toMatchObject({ isBase64Encoded: true, body: Buffer.from("raw bytes").toString("base64") });
  });
});

describe("readConfig", () => {
  it("reads the contract's environment variables, with several API keys for a rotation", async () => {
    const config = await readConfig({ API_KEY: " old-key , new-key ", DEFAULT_CURRENCY: "EUR", TABLE_NAME: "t1", DYNAMODB_ENDPOINT: "http://127.0.0.1:8000" });
    expect(config).toEqual({
      apiKeys: ["old-key", "new-key"],
      stripeSecretKey: undefined,
      stripeWebhookSecret: undefined,
      stripeApiUrl: undefined,
      defaultCurrency: "eur",
      tableName: "t1",
      dynamoEndpoint: "http://127.0.0.1:8000",
      eventBusName: undefined,
      eventBridgeEndpoint: undefined,
      continuationQueueUrl: undefined,
      sqsEndpoint: undefined,
      abandonOrdersAfterDays: undefined,
    });
    expect((await readConfig({ ABANDON_ORDERS_AFTER_DAYS: "14" })).abandonOrdersAfterDays).toBe(14);
    expect((await readConfig({ ABANDON_ORDERS_AFTER_DAYS: "soon" })).abandonOrdersAfterDays).toBeUndefined();
    expect((await readConfig({})).tableName).toBe("user-credits");
    expect(await readConfig({ STRIPE_SECRET_KEY: "none", STRIPE_WEBHOOK_SECRET: "None" })).toMatchObject({
      stripeSecretKey: undefined,
      stripeWebhookSecret: undefined,
    });
  });
});
