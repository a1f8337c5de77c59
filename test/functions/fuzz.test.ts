/**
 * Hostile input at the HTTP edge (issue "Money safety ... hostile input"). Thousands of
 * random, malformed requests reach every route of the route table through the Lambda
 * handlers, as API Gateway v2 events. Each request is invalid by construction (it
 * carries at least one defect: a bad key, path, query, body, content type, size or
 * header, or a wrong method), and the defects decide the one answer it must get, by
 * the edge's precedence: unreadable header 400 > API key 401 > size 413 > no route 404 >
 * path 400 > content type 415 > body 400 > query 400 > Idempotency-Key 400 (the webhook:
 * signature 400). Every answer must be that documented JSON error (never 5xx, never 2xx),
 * a 400 naming the bad field, with no stack trace, API key, webhook secret or table name.
 * Access: every route but the webhook refuses missing, wrong and near-miss API keys with
 * exactly `{ error: { code: "unauthorized", message } }`, and takes every key of a
 * rotation. After all of it (afterAll), every route was sent its share and the seeded
 * table is exactly as it was: nothing hostile or refused wrote anything.
 *
 * The parts, in test/functions/fuzz/: generators.ts (hostile values), routes.ts (what
 * each route reads, and its valid and invalid parts), expected.ts (hostile requests and
 * the answer each must get), harness.ts (sending, checks, tally, table scan, seeding),
 * secrets.ts (the API keys and webhook secret).
 *
 * Runs are seeded (`SEED`); on a failure fast-check prints the seed and path to replay it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { PORTAL_ROUTES, ROUTES, UNAUTHENTICATED_ROUTES } from "../../functions/routes.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { createTestDb } from "../helpers/db.js";
import { defaultRouteRequests, hostileRequests } from "./fuzz/expected.js";
import { Tally, describeRequest, expectDocumentedError, expectNoLeak, scanTable, seed, send, type TestTable } from "./fuzz/harness.js";
import { routeSpecs, validRequest, type Seeded } from "./fuzz/routes.js";
import { API_KEYS, PORTAL_SECRET, WEBHOOK_SECRET } from "./fuzz/secrets.js";

/** Seed of the first property; property `i` uses `SEED + i`. */
const SEED = 20_261_123;
/** Hostile requests per route of the route table (`ROUTES`). */
const RUNS_PER_ROUTE = 300;
/** Hostile requests to the `$default` route (no route matched). */
const RUNS_DEFAULT_ROUTE = 100;

/** What the tests share, set up once by beforeAll: the table, what seeding made in it, and the table as seeded. */
let run: { table: TestTable; seeded: Seeded; tableBefore: string[] };
/** Hostile requests sent, per route and expected status. */
const tally = new Tally();

beforeAll(async () => {
  const table = await createTestDb("fuzz");
  setRuntime(
    buildRuntime({ apiKeys: [...API_KEYS], stripeWebhookSecret: WEBHOOK_SECRET, portalSigningSecret: PORTAL_SECRET, defaultCurrency: "usd", tableName: table.tableName, dynamoEndpoint: table.endpoint }),
  );
  const seeded = await seed();
  run = { table, seeded, tableBefore: await scanTable(table) };
});

afterAll(async () => {
  try {
    // A. The report: hostile requests per route, by expected status.
    console.log(tally.report());
    if (!run) return; // beforeAll failed, and said so.

    // B. Every route whose test ran was sent its share (a route left out by a `-t` filter owes none).
    for (const route of [...ROUTES.map((r) => r.route), "$default"]) {
      if (tally.due.has(route)) expect(tally.sent[route] ?? 0, route).toBeGreaterThanOrEqual(route === "$default" ? RUNS_DEFAULT_ROUTE : RUNS_PER_ROUTE);
    }

    // C. The table is exactly as seeded: no hostile request, refused key or invalid write changed it, whatever ran first.
    expect(await scanTable(run.table)).toEqual(run.tableBefore);
  } finally {
    setRuntime(undefined);
  }
});

describe("hostile input", () => {
  it.each(ROUTES.map((r, i) => [r.route, r.fn, i] as const))(
    "%s answers every hostile request with its documented 4xx JSON error",
    async (route, fn, index) => {
      tally.begin(route);
      const arbitrary = hostileRequests(route, fn, routeSpecs(run.seeded)[route], run.seeded);
      await fc.assert(
        fc.asyncProperty(arbitrary, async (request) => {
          tally.count(route, request);
          const answer = await send(fn, request);
          expectDocumentedError(answer, request.expected, run.table, describeRequest(request));
        }),
        { seed: SEED + index, numRuns: RUNS_PER_ROUTE },
      );
    },
  );

  it("answers requests no route matches with a JSON 404", async () => {
    tally.begin("$default");
    await fc.assert(
      fc.asyncProperty(defaultRouteRequests, async (request) => {
        tally.count("$default", request);
        expectDocumentedError(await send("notFound", request), request.expected, run.table, describeRequest(request));
      }),
      { seed: SEED + ROUTES.length, numRuns: RUNS_DEFAULT_ROUTE },
    );
  });
});

// Nothing a refused request asks for is written: afterAll checks that the table is exactly as seeded.
describe("access", () => {
  const protectedRoutes = ROUTES.filter((r) => !UNAUTHENTICATED_ROUTES.includes(r.route));

  /** Authorization headers that are not a valid key, each with why. */
  const refused: Array<[string, string | undefined]> = [
    ["no header", undefined],
    ["a wrong key", "Bearer wrong"],
    ["a key differing in its last character", `Bearer ${API_KEYS[0].slice(0, -1)}7`],
    ["a prefix of the key", `Bearer ${API_KEYS[0].slice(0, -1)}`],
    ["a prefix of the second key", `Bearer ${API_KEYS[1].slice(0, 8)}`],
    ["the key in another case", `Bearer ${API_KEYS[0].toUpperCase()}`],
    ["Bearer without a key", "Bearer"],
    ["Bearer and a space", "Bearer "],
    ["the key with a suffix", `Bearer ${API_KEYS[0]}0`],
    ["the key without a scheme", API_KEYS[0]],
    ["the key as Basic credentials", `Basic ${Buffer.from(`${API_KEYS[0]}:`).toString("base64")}`],
    ["Basic credentials that are no key (\"key\")", "Basic a2V5"],
    ["both keys at once", `Bearer ${API_KEYS.join(",")}`],
    ["the webhook secret", `Bearer ${WEBHOOK_SECRET}`],
    ["the key behind a zero-width space", `Bearer \u200b${API_KEYS[0]}`],
  ];

  it.each(protectedRoutes.map((r) => [r.route, r.fn] as const))("%s answers 401 to a missing, wrong or near-miss key", async (route, fn) => {
    for (const [why, authorization] of refused) {
      const request = { ...validRequest(route, run.seeded), routeKey: route, base64: false, headers: { "content-type": "application/json", ...(authorization === undefined ? {} : { authorization }) } };
      const answer = await send(fn, request);
      expectDocumentedError(answer, { status: 401, code: "unauthorized" }, run.table, `${route} with ${why}`);
      // The whole body: a code and a message, no details.
      expect(JSON.parse(answer.text), `${route} with ${why}`).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    }
  });

  // Every route that takes the API key, `GET /offers` (the catalogue) included (the portal's take its token instead).
  it.each(protectedRoutes.filter((r) => !PORTAL_ROUTES.includes(r.route)).map((r) => [r.route, r.fn] as const))("%s takes either key of a rotation", async (route, fn) => {
    for (const key of API_KEYS) {
      const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
      const request = { ...validRequest(route, run.seeded), routeKey: route, base64: false, headers };
      if (request.method === "GET") {
        // Reads: the real answer.
        const answer = await send(fn, request);
        expect(answer.status, `${route} with key ${key}: ${answer.text.slice(0, 200)}`).toBe(200);
        expectNoLeak(answer.text, run.table);
      } else {
        // Writes: an invalid body shows the key was accepted (400, not 401) and writes nothing.
        const answer = await send(fn, { ...request, body: "{not json" });
        expectDocumentedError(answer, { status: 400, code: "validation_error", fields: ["body"] }, run.table, `${route} with key ${key}`);
      }
    }
  });

  it("does not take an API key for a Stripe signature on the webhook", async () => {
    const body = run.seeded.events[0]!;
    for (const key of API_KEYS) {
      const answer = await send("webhook", { method: "POST", path: "/webhooks/stripe", query: "", routeKey: "POST /webhooks/stripe", base64: false, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });
      expectDocumentedError(answer, { status: 400, code: "invalid_signature" }, run.table, `webhook with API key ${key}`);
    }
  });
});
