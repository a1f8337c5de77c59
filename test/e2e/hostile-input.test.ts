/**
 * Hostile input through `npm start`'s HTTP server, as an outside client would send it:
 * raw HTTP/1.1 over a socket (test/helpers/raw-http.ts) for what `fetch` will not send
 * as written (a broken Host, malformed percent-encoding, any Content-Encoding). Every
 * answer is a 4xx JSON error naming what is wrong, never a 5xx, and nothing is written
 * or silently changed: the ledger is read back to check it.
 */
import { gzipSync, brotliCompressSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalRunner, type LocalRunner } from "../helpers/local-runner.js";
import { rawRequest, sendRaw, type RawResponse } from "../helpers/raw-http.js";
import { signedDelivery, stripeEvent } from "../helpers/stripe-stand-in.js";

const WEBHOOK_SECRET = "whsec_e2e_hostile_input";
let api: LocalRunner;
let sequence = 0;

beforeAll(async () => {
  api = await startLocalRunner({
    DYNAMODB_ENDPOINT: inject("dynamoEndpoint"),
    TABLE_NAME: `hostile-${process.pid}-${Date.now().toString(36)}`,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
  });
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

const auth = () => ({ Authorization: `Bearer ${api.apiKey}` });
const json = { "Content-Type": "application/json" };

/** Sends a raw request to the runner. */
function send(method: string, target: string, options: Parameters<typeof rawRequest>[2] = {}): Promise<RawResponse> {
  return sendRaw(api.url, rawRequest(method, target, options));
}

/** A fresh user holding 100 never-expiring tokens of `calls` (a promotional grant, through the API). */
async function seededUser(): Promise<string> {
  const user = `hostile-${++sequence}`;
  const grant = await api.request("POST", `/users/${user}/grants`, { body: { offerGroup: "calls", tokens: 100, expires: null } });
  expect(grant.status).toBe(201);
  return user;
}

/** The user's ledger entries, oldest first. */
async function ledger(user: string): Promise<any[]> {
  const response = await api.request("GET", `/users/${user}/ledger`);
  expect(response.status).toBe(200);
  return response.body.entries;
}

/** `POST /users/{user}/consumptions` with `body` sent exactly as written. */
function consume(user: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  return send("POST", `/users/${user}/consumptions`, { headers: { ...auth(), ...json, ...headers }, body });
}

/** Expects a 400 `validation_error` whose details name `field`. */
function expectRefused(response: RawResponse, field: string) {
  expect(response.status, response.text).toBe(400);
  expect(response.headers["content-type"]).toMatch(/^application\/json/);
  expect(response.body.error.code).toBe("validation_error");
  expect(Object.keys(response.body.error.details)).toContain(field);
}

describe("consumption metadata the database cannot store as sent", () => {
  // Written as text: in a JS object literal `__proto__` would set the prototype instead of a key.
  const cases: Array<[string, string, string]> = [
    ["constructor at the top level", '{"callId":"c1","constructor":"x"}', "metadata.constructor"],
    ["constructor whose value the marshaller reads as a String", '{"constructor":{"name":"String"}}', "metadata.constructor"],
    ["constructor nested", '{"a":{"constructor":{"x":1}}}', "metadata.a.constructor"],
    ["constructor inside a list", '{"list":[{"constructor":true}]}', "metadata.list.0.constructor"],
    ["__proto__ at the top level", '{"callId":"c1","__proto__":{"x":1}}', "metadata.__proto__"],
    ["__proto__ at the top level with a plain value", '{"__proto__":"x"}', "metadata.__proto__"],
    ["__proto__ nested", '{"a":{"__proto__":{"x":1}}}', "metadata.a.__proto__"],
  ];

  it.each(cases)("refuses %s with 400 naming the key, writes nothing, and refuses a retry with the same Idempotency-Key with 400 again", async (_, metadata, field) => {
    const user = await seededUser();
    const body = `{"offerGroup":"calls","tokens":5,"metadata":${metadata}}`;
    const headers = { "Idempotency-Key": `key-${user}` };
    expectRefused(await consume(user, body, headers), field);
    expectRefused(await consume(user, body, headers), field);
    expect((await ledger(user)).map((e) => [e.reason, e.tokens])).toEqual([["adjust", 100]]);
    expect((await api.request("GET", `/users/${user}/credits`)).body.groups[0]).toMatchObject({ offerGroup: "calls", balance: 100 });
  });

  it("refuses __proto__ and constructor as body fields with 400 naming them", async () => {
    const user = await seededUser();
    for (const field of ["__proto__", "constructor"]) {
      expectRefused(await consume(user, `{"offerGroup":"calls","tokens":5,"${field}":{"x":1}}`), field);
    }
    expect(await ledger(user)).toHaveLength(1);
  });

  it("executes the same Idempotency-Key once the body is corrected, since the refusal stored nothing", async () => {
    const user = await seededUser();
    const headers = { "Idempotency-Key": "corrected" };
    expectRefused(await consume(user, '{"offerGroup":"calls","tokens":5,"metadata":{"__proto__":{"x":1}}}', headers), "metadata.__proto__");
    const accepted = await consume(user, '{"offerGroup":"calls","tokens":5,"metadata":{"proto":{"x":1}}}', headers);
    expect(accepted.status, accepted.text).toBe(201);
    expect((await ledger(user)).map((e) => [e.reason, e.tokens, e.metadata])).toEqual([
      ["adjust", 100, undefined],
      ["consume", -5, { proto: { x: 1 } }],
    ]);
  });

  it("stores keys named like the other Object.prototype members exactly as sent, and replays them for the same Idempotency-Key", async () => {
    const user = await seededUser();
    const metadata = {
      toString: "a",
      valueOf: 1,
      hasOwnProperty: { isPrototypeOf: null },
      propertyIsEnumerable: false,
      toLocaleString: [1, "two"],
      __defineGetter__: "g",
      __lookupSetter__: { toJSON: "j" },
      then: "t",
      name: { name: "String" },
    };
    const body = JSON.stringify({ offerGroup: "calls", tokens: 5, metadata });
    const first = await consume(user, body, { "Idempotency-Key": "members" });
    expect(first.status, first.text).toBe(201);
    expect(first.body.entry.metadata).toEqual(metadata);
    const replay = await consume(user, body, { "Idempotency-Key": "members" });
    expect(replay.status).toBe(201);
    expect(replay.body.entry).toEqual(first.body.entry);
    const entries = await ledger(user);
    expect(entries).toHaveLength(2);
    expect(entries[1].metadata).toEqual(metadata);
  });
});

describe("malformed percent-encoding in the path", () => {
  const cases: Array<[string, string]> = [
    ["/users/%ED%A0%80/credits", "userId"],
    ["/users/%E0%A4%A/ledger", "userId"],
    ["/offers/%ff", "offerId"],
  ];

  it.each(cases)("GET %s reaches the handler, which answers 400 naming %s", async (target, param) => {
    const response = await send("GET", target, { headers: auth() });
    expectRefused(response, param);
    expect(response.body.error.details[param]).toBe("malformed percent-encoding");
  });

  it.each(cases)("GET %s without an API key answers 401: the key is checked before the path", async (target) => {
    const response = await send("GET", target);
    expect(response.status, response.text).toBe(401);
    expect(response.body.error.code).toBe("unauthorized");
  });

  it("checks the path before the body's content coding", async () => {
    const response = await send("POST", "/users/%ff/consumptions", {
      headers: { ...auth(), ...json, "Content-Encoding": "gzip" },
      body: gzipSync('{"offerGroup":"calls","tokens":1}'),
    });
    expectRefused(response, "userId");
  });
});

describe("an unparseable Host header", () => {
  it.each([["a b"], [""], ["[::1"], ["a@b"], ["a/b"]])("Host %j answers 400 naming host, with or without an API key", async (host) => {
    for (const headers of [auth(), {}]) {
      const response = await send("GET", "/offers", { host, headers });
      expectRefused(response, "host");
      expect(response.body.error.details.host).toEqual(expect.any(String));
    }
  });

  it("reads a target starting with // as that path, not as a host followed by a shorter path", async () => {
    const response = await send("GET", "//x/offers", { headers: auth() });
    expect(response.status, response.text).toBe(404);
    expect(response.body.error.code).toBe("not_found");
  });

  it("serves a host with a port, an IPv6 literal and a name", async () => {
    for (const host of [new URL(api.url).host, "[::1]:3000", "credits.example.com"]) {
      const response = await send("GET", "/offers", { host, headers: auth() });
      expect(response.status, `${host}: ${response.text}`).toBe(200);
    }
  });
});

describe("Content-Encoding", () => {
  const plain = '{"offerGroup":"calls","tokens":5}';
  const cases: Array<[string, string, Buffer]> = [
    ["gzip over a plain JSON body", "gzip", Buffer.from(plain)],
    ["gzip over a gzipped body", "gzip", gzipSync(plain)],
    ["br over a brotli body", "br", brotliCompressSync(plain)],
    ["an unknown coding", "x-foo", Buffer.from(plain)],
    ["identity followed by gzip", "identity, gzip", gzipSync(plain)],
  ];

  it.each(cases)("refuses %s with 415 unsupported_media_type naming the coding, and spends nothing", async (_, coding, body) => {
    const user = await seededUser();
    const response = await consume(user, body, { "Content-Encoding": coding, "Idempotency-Key": "coded" });
    expect(response.status, response.text).toBe(415);
    expect(response.body.error).toMatchObject({ code: "unsupported_media_type", details: { "content-encoding": coding } });
    expect(await ledger(user)).toHaveLength(1);
  });

  it("checks the API key before the content coding", async () => {
    const response = await send("POST", "/users/u/consumptions", { headers: { ...json, "Content-Encoding": "gzip" }, body: gzipSync(plain) });
    expect(response.status).toBe(401);
  });

  it("executes a body labelled identity as usual", async () => {
    const user = await seededUser();
    const response = await consume(user, plain, { "Content-Encoding": "identity" });
    expect(response.status, response.text).toBe(201);
    expect((await ledger(user)).map((e) => [e.reason, e.tokens])).toEqual([
      ["adjust", 100],
      ["consume", -5],
    ]);
  });

  it("accepts a coding label on an empty body, which has nothing to decode", async () => {
    const offer = { name: "10 calls", offerGroup: "calls", cycle: "once", tokenCount: 10, prices: [{ amount: 500, currency: "usd" }] };
    expect((await api.request("PUT", "/offers/calls-10", { body: offer })).status).toBe(200);
    const created = await api.request("POST", "/users/hostile-buyer/orders", { body: { offerId: "calls-10" } });
    expect(created.status).toBe(201);
    const confirmed = await send("POST", `/users/hostile-buyer/orders/${created.body.order.orderId}/confirm`, {
      headers: { ...auth(), "Content-Encoding": "gzip" },
    });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(confirmed.body.status).toBe("paid");
  });

  it("refuses a coded Stripe webhook delivery with 415 before its signature is checked, and applies the same delivery uncoded", async () => {
    const event = stripeEvent("payment_intent.succeeded", { id: "pi_hostile", object: "payment_intent", metadata: {}, status: "succeeded" });
    const { body, signature } = signedDelivery(event, WEBHOOK_SECRET);
    const headers = { "Stripe-Signature": signature, "Content-Type": "application/json; charset=utf-8" };
    for (const coded of [Buffer.from(body), gzipSync(body)]) {
      const response = await send("POST", "/webhooks/stripe", { headers: { ...headers, "Content-Encoding": "gzip" }, body: coded });
      expect(response.status, response.text).toBe(415);
      expect(response.body.error.code).toBe("unsupported_media_type");
    }
    const applied = await send("POST", "/webhooks/stripe", { headers, body });
    expect(applied.status, applied.text).toBe(200);
    expect(applied.body).toMatchObject({ received: true });
  });
});
