/**
 * The local stand-in for API Gateway (scripts/local-gateway.ts): the events it builds
 * have the shape of AWS's sample HTTP API v2 event, and routing follows the route table.
 */
import { describe, expect, it } from "vitest";
import sample from "../fixtures/apigw-http-v2.json" with { type: "json" };
import { createRouteMatcher, requestUrl, toGatewayEvent } from "../../scripts/local-gateway.js";
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

  it("keeps the raw value of a parameter whose percent-encoding is malformed, for the handler to refuse", () => {
    expect(match("GET", "/users/%ED%A0%80/credits")).toEqual({ route: "GET /users/{userId}/credits", fn: "credits", pathParameters: { userId: "%ED%A0%80" } });
    expect(match("GET", "/offers/%ff")).toEqual({ route: "GET /offers/{offerId}", fn: "offers", pathParameters: { offerId: "%ff" } });
    expect(match("GET", "/users/u%7C1%E0%A4%A/subscriptions/a%20b")).toMatchObject({
      pathParameters: { userId: "u%7C1%E0%A4%A", offerId: "a b" },
    });
  });

  it("sends anything else to $default", () => {
    expect(match("DELETE", "/offers/x")).toEqual({ route: "$default", fn: "notFound" });
    expect(match("GET", "/users/u/nothing")).toEqual({ route: "$default", fn: "notFound" });
  });
});

describe("requestUrl", () => {
  it("builds the URL from the Host header and the request target, the path kept as sent", () => {
    const expectUrl = (target: string, host: string | undefined, href: string) => {
      const parsed = requestUrl(target, host);
      expect("url" in parsed && parsed.url.href).toBe(href);
    };
    expectUrl("/offers?all=true", "127.0.0.1:3000", "http://127.0.0.1:3000/offers?all=true");
    expectUrl("/users/%ED%A0%80/credits", "[::1]:3000", "http://[::1]:3000/users/%ED%A0%80/credits");
    expectUrl("/offers", "Credits.Example.com", "http://credits.example.com/offers");
    expectUrl("/offers", undefined, "http://127.0.0.1/offers");
    expectUrl("//offers/x", "h", "http://h//offers/x");
    expectUrl("http://other:1/offers", "h", "http://other:1/offers");
  });

  it("names host when the Host header is not a host, and path when the target is not a path", () => {
    for (const host of ["a b", "", "[::1", "a@b", "a/b", "a?b", "a#b", "h:99999", "h:x"]) {
      expect(requestUrl("/offers", host), JSON.stringify(host)).toEqual({ invalid: { host: expect.any(String) } });
    }
    for (const target of ["*", "offers", "http://[::1/offers"]) {
      expect(requestUrl(target, "h"), target).toEqual({ invalid: { path: expect.any(String) } });
    }
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

  it("base64-encodes a content-coded body, whose bytes are not text whatever its content type", () => {
    const gzipped = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff]);
    const event = toGatewayEvent({ ...base, headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: gzipped });
    expect(event).toMatchObject({ isBase64Encoded: true, body: gzipped.toString("base64") });
    const identity = toGatewayEvent({ ...base, headers: { "content-type": "application/json", "content-encoding": "identity" }, body: Buffer.from("{}") });
    expect(identity).toMatchObject({ isBase64Encoded: false, body: "{}" });
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
