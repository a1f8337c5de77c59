/**
 * The fuzz harness: sends requests to the Lambda handlers as API Gateway v2 events, checks
 * each answer (the documented JSON error, nothing leaked), tallies the hostile requests
 * sent, scans the table, and seeds it through the handlers. Nothing here holds state:
 * the test file keeps the table, what seeding made and the tally, and passes the table
 * to the functions that read it (the handlers find it in the runtime, `setRuntime`).
 */
import { expect } from "vitest";
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import stringify from "safe-stable-stringify";
import Stripe from "stripe";
import type { ErrorCode } from "../../../core/errors.js";
import { STATUS_OF } from "../../../functions/http.js";
import type { HttpFunctionName } from "../../../functions/routes.js";
import { handler as consumption } from "../../../functions/consumption.js";
import { handler as credits } from "../../../functions/credits.js";
import { handler as expiry } from "../../../functions/expiry.js";
import { handler as notFound } from "../../../functions/not-found.js";
import { handler as offers } from "../../../functions/offers.js";
import { handler as orders } from "../../../functions/orders.js";
import { handler as webhook } from "../../../functions/webhook.js";
import { handler as openapi } from "../../../functions/openapi.js";
import { handler as portal } from "../../../functions/portal.js";
import { runtime } from "../../../functions/runtime.js";
import { localLambdaContext } from "../../../scripts/local-gateway.js";
import type { createTestDb } from "../../helpers/db.js";
import { anOffer } from "../../helpers/factories.js";
import { apiEvent } from "../../helpers/gateway.js";
import { stripeEvent } from "../../helpers/stripe-stand-in.js";
import type { Expected, Hostile } from "./expected.js";
import { encode, oversizeBody } from "./generators.js";
import type { Seeded } from "./routes.js";
import { API_KEYS, PORTAL_SECRET, WEBHOOK_SECRET } from "./secrets.js";

type Handler = (event: APIGatewayProxyEventV2, context: any) => Promise<APIGatewayProxyStructuredResultV2>;

const HANDLERS = { offers, orders, consumption, credits, expiry, webhook, portal, openapi, notFound } satisfies Record<HttpFunctionName, Handler>;

/** The test file's table, as `createTestDb` makes it. */
export type TestTable = Awaited<ReturnType<typeof createTestDb>>;

/** The error codes of API.md's table. */
const DOCUMENTED_CODES: readonly ErrorCode[] = [
  "validation_error",
  "invalid_signature",
  "unauthorized",
  "insufficient_credits",
  "not_found",
  "conflict",
  "idempotency_conflict",
  "idempotency_in_progress",
  "already_subscribed",
  "payload_too_large",
  "unsupported_media_type",
  "offer_locked",
  "quantity_limit_exceeded",
  "currency_not_offered",
  "start_in_past",
  "amount_out_of_range",
  "period_out_of_range",
  "payment_provider_error",
];

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

/** A request to send: a hostile one, or any other laid out the same way. */
export type Request = Pick<Hostile, "method" | "path" | "query" | "headers" | "body" | "base64" | "routeKey">;

/** The API Gateway v2 event of a request, path and query kept byte for byte. */
function eventOf(request: Request): APIGatewayProxyEventV2 {
  const event = apiEvent({ method: request.method, path: "/", headers: request.headers, routeKey: request.routeKey });
  event.rawPath = request.path;
  event.rawQueryString = request.query;
  event.requestContext.http.path = request.path;
  delete event.queryStringParameters;
  const body = request.body;
  if (body !== undefined) {
    const materialized = typeof body === "object" && !Buffer.isBuffer(body) ? oversizeBody(body.oversize) : body;
    const base64 = request.base64 || Buffer.isBuffer(materialized);
    event.body = base64 ? Buffer.from(materialized as never).toString("base64") : (materialized as string);
    event.isBase64Encoded = base64;
  }
  return event;
}

/** An answer, body as text. */
export interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** Sends a request to a function's Lambda handler. */
export async function send(fn: HttpFunctionName, request: Request): Promise<Answer> {
  const result = await HANDLERS[fn](eventOf(request), localLambdaContext("fuzz"));
  const text = result.isBase64Encoded ? Buffer.from(result.body ?? "", "base64").toString("utf8") : (result.body ?? "");
  return { status: result.statusCode ?? 200, contentType: String(result.headers?.["content-type"] ?? ""), text };
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/** Checks that no stack trace, API key, webhook secret or table name shows in a body. */
export function expectNoLeak(text: string, table: Pick<TestTable, "tableName">): void {
  expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
  expect(text).not.toContain("node_modules");
  expect(text).not.toContain(".ts:");
  for (const secret of [...API_KEYS, WEBHOOK_SECRET, PORTAL_SECRET, table.tableName]) expect(text).not.toContain(secret);
}

/** Checks that `answer` is exactly the documented error `expected` (`label` says which request, in failure messages). */
export function expectDocumentedError(answer: Answer, expected: Expected, table: Pick<TestTable, "tableName">, label: string): void {
  expect(answer.status, label).toBe(expected.status);
  expect(answer.contentType, label).toMatch(/^application\/json\b/);
  let body: any;
  expect(() => (body = JSON.parse(answer.text)), `${label}: body is not JSON: ${answer.text.slice(0, 200)}`).not.toThrow();
  expect(Object.keys(body), label).toEqual(["error"]);
  const { error } = body;
  expect(Object.keys(error).filter((key) => !["code", "message", "details"].includes(key)), label).toEqual([]);
  expect(DOCUMENTED_CODES, label).toContain(error.code);
  expect(error.code, `${label}: ${answer.text.slice(0, 300)}`).toBe(expected.code);
  expect(STATUS_OF[error.code as ErrorCode], label).toBe(answer.status);
  expect(typeof error.message, label).toBe("string");
  if ("details" in error) expect(error.details !== null && typeof error.details === "object" && !Array.isArray(error.details), label).toBe(true);
  if (error.code === "validation_error") {
    const named = Object.keys(error.details ?? {});
    expect(named.length, `${label}: a 400 names no field`).toBeGreaterThan(0);
    if (expected.fields) {
      const wanted = expected.fields;
      const matches = named.some((name) => wanted.some((field) => name === field || name.startsWith(`${field}.`)));
      expect(matches, `${label}: details ${JSON.stringify(error.details)} name none of ${JSON.stringify(wanted)}`).toBe(true);
    }
  }
  expectNoLeak(answer.text, table);
}

/** Short description of a request for assertion messages (bodies cut). */
export function describeRequest(request: Hostile): string {
  const body = request.body === undefined ? "" : typeof request.body === "object" && !Buffer.isBuffer(request.body) ? `<${request.body.oversize} over 1 MB>` : String(request.body).slice(0, 120);
  return `${request.method} ${request.path.slice(0, 160)}?${request.query.slice(0, 120)} defects=${request.defects.join(",")} body=${JSON.stringify(body)}`;
}

// ---------------------------------------------------------------------------------------
// Tally and table
// ---------------------------------------------------------------------------------------

/** Hostile requests sent, per route, and per route and expected status; and the routes whose share is due. */
export class Tally {
  readonly sent: Record<string, number> = {};
  readonly statuses: Record<string, Record<number, number>> = {};
  /** Routes whose test started, so whose share of hostile requests is due (a test left out by a filter owes none). */
  readonly due = new Set<string>();

  /** Marks `route`'s share as due: its test started. */
  begin(route: string): void {
    this.due.add(route);
  }

  /** Counts a hostile request to `route`. */
  count(route: string, request: Hostile): void {
    this.sent[route] = (this.sent[route] ?? 0) + 1;
    const byStatus = (this.statuses[route] ??= {});
    byStatus[request.expected.status] = (byStatus[request.expected.status] ?? 0) + 1;
  }

  /** The report: requests per route, by expected status, and the total. */
  report(): string {
    const total = Object.values(this.sent).reduce((a, b) => a + b, 0);
    const lines = Object.entries(this.sent).map(([route, n]) => {
      const byStatus = Object.entries(this.statuses[route] ?? {}).map(([status, k]) => `${status}: ${k}`).join(", ");
      return `  ${String(n).padStart(5)}  ${route.padEnd(46)} (${byStatus})`;
    });
    return `hostile requests per route:\n${lines.join("\n")}\n  ${String(total).padStart(5)}  total`;
  }
}

/** Every item of the table, ConsistentRead, in a stable order. */
export async function scanTable(table: Pick<TestTable, "client" | "tableName">): Promise<string[]> {
  const items: Array<Record<string, AttributeValue>> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await table.client.send(new ScanCommand({ TableName: table.tableName, ConsistentRead: true, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items.map((item) => stringify(item) ?? "").sort();
}

// ---------------------------------------------------------------------------------------
// Seeding: real offers, orders, consumptions, grants and a webhook, through the handlers
// ---------------------------------------------------------------------------------------

/** Calls a route with a valid request and the first key; the answer must be `status`; returns its JSON body. */
export async function seedCall(fn: HttpFunctionName, method: string, path: string, body: unknown, status: number, headers: Record<string, string> = {}): Promise<any> {
  const [pathname, query = ""] = path.split("?") as [string, string?];
  const answer = await send(fn, {
    method,
    path: pathname,
    query,
    routeKey: "$default",
    headers: { authorization: `Bearer ${API_KEYS[0]}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    base64: false,
  });
  expect(answer.status, `seeding ${method} ${path}: ${answer.text.slice(0, 300)}`).toBe(status);
  return JSON.parse(answer.text);
}

/** Seeds the table (set as the runtime's) through the handlers, and returns what requests may reference. */
export async function seed(): Promise<Seeded> {
  // A. Offers: priced in two currencies, free, unlocked by another group, a bundle.
  const users = ["auth0|123", "alice@example.com"];
  const put = (offerId: string, offer: object) => seedCall("offers", "PUT", `/offers/${offerId}`, offer, 200);
  await put("calls-100", anOffer({ prices: [{ amount: 1000, currency: "usd" }, { amount: 900, currency: "eur" }], quantityLimit: 10, tags: ["calls"] }));
  await put("free-trial", anOffer({ offerGroup: "trial", tokenCount: 10, prices: [{ amount: 0, currency: "usd" }] }));
  await put("vip-calls", anOffer({ offerGroup: "vip", unlockedBy: ["calls"], prices: [{ amount: 500, currency: "usd" }] }));
  await put("calls-bundle", anOffer({ offerGroup: "bundle", tokenCount: 0, combinedItems: [{ offerId: "calls-100", quantity: 2 }] }));

  // B. Per user: a paid order, a pending one, a free one, a consumption, a grant, an expiry check, and forged webhook events.
  const orderIds: string[] = [];
  const reservationIds: string[] = [];
  const entryIds: string[] = [];
  const events: string[] = [];
  for (const user of users) {
    const path = `/users/${encode(user)}`;
    const paid = await seedCall("orders", "POST", `${path}/orders`, { offerId: "calls-100", quantity: 2 }, 201, { "idempotency-key": `seed-${user}` });
    await seedCall("orders", "POST", `${path}/orders/${paid.order.orderId}/confirm`, undefined, 200);
    const pending = await seedCall("orders", "POST", `${path}/orders`, { offerId: "calls-100", currency: "eur" }, 201);
    orderIds.push(paid.order.orderId, pending.order.orderId);
    await seedCall("orders", "POST", `${path}/orders`, { offerId: "free-trial" }, 201);
    const spent = await seedCall("consumption", "POST", `${path}/consumptions`, { offerGroup: "calls", tokens: 60, metadata: { callId: "c-77" } }, 201, { "idempotency-key": `consume-${user}` });
    entryIds.push(spent.entry.entryId);
    const held = await seedCall("consumption", "POST", `${path}/reservations`, { offerGroup: "calls", tokens: 5, ttlSeconds: 3600 }, 201, { "idempotency-key": `hold-${user}` });
    const used = await seedCall("consumption", "POST", `${path}/reservations`, { offerGroup: "calls", tokens: 5, metadata: { callId: "c-78" } }, 201);
    await seedCall("consumption", "POST", `${path}/reservations/${used.reservationId}/commit`, { tokens: 3 }, 200);
    reservationIds.push(held.reservationId, used.reservationId);
    await seedCall("credits", "POST", `${path}/grants`, { offerGroup: "calls", tokens: 50, expires: new Date(Date.now() + 30 * 86_400_000).toISOString(), reason: "support gesture" }, 201);
    await seedCall("expiry", "POST", `${path}/expiry-check`, { low: [{ offerGroup: "calls", min: 1000 }] }, 200);
    // An automatic top-up setting, for the reads: the manual provider the fuzz runs refuses
    // to save one (422 not_renewable: it cannot pay off-session), so it is written as the
    // Stripe runtime's PUT writes it.
    const now = new Date().toISOString();
    const { core } = await runtime();
    await core.db.entities.autoTopUp
      .put({ userId: user, offerGroup: "calls", offerId: "calls-100", currency: "usd", threshold: 10, maxPerMonth: 3, enabled: true, createdAt: now, updatedAt: now })
      .go();
    // Forged Stripe events about the user's orders: a payment of the pending order, a refund of the paid one.
    const metadata = (orderId: string) => ({ orderId, userId: user });
    events.push(
      JSON.stringify(stripeEvent("payment_intent.succeeded", { id: "pi_forged", object: "payment_intent", amount: 900, amount_received: 900, currency: "eur", status: "succeeded", metadata: metadata(pending.order.orderId) })),
      JSON.stringify(stripeEvent("checkout.session.completed", { id: "cs_forged", object: "checkout.session", payment_status: "paid", amount_total: 900, currency: "eur", metadata: metadata(pending.order.orderId) })),
      JSON.stringify(stripeEvent("charge.refunded", { id: "ch_forged", object: "charge", amount_refunded: 2000, currency: "usd", metadata: metadata(paid.order.orderId) })),
    );
  }

  // C. A correctly signed delivery about no order: applied as "ignored".
  const unknown = JSON.stringify(stripeEvent("payment_intent.succeeded", { id: "pi_unknown", object: "payment_intent", metadata: {}, status: "succeeded" }));
  const delivered = await send("webhook", {
    method: "POST",
    path: "/webhooks/stripe",
    query: "",
    routeKey: "POST /webhooks/stripe",
    headers: { "content-type": "application/json", "stripe-signature": Stripe.webhooks.generateTestHeaderString({ payload: unknown, secret: WEBHOOK_SECRET }) },
    body: unknown,
    base64: false,
  });
  expect(delivered.status, delivered.text).toBe(200);

  // D. A second-page cursor of each user's orders and ledger.
  const cursors: Seeded["cursors"] = { orders: {}, ledger: {}, reservations: {} };
  for (const user of users) {
    for (const list of ["orders", "ledger", "reservations"] as const) {
      const page = await seedCall(list === "orders" ? "orders" : "credits", "GET", `/users/${encode(user)}/${list}?limit=1`, undefined, 200);
      expect(page.cursor, `a second page of ${user}'s ${list}`).toEqual(expect.any(String));
      cursors[list][user] = page.cursor;
    }
  }
  // E. A portal session of the first user: the portal routes act for that user.
  const session = await seedCall("portal", "POST", `/users/${encode(users[0]!)}/portal-sessions`, { ttlSeconds: 86_400 }, 201);
  const portalToken = String(session.url).split("#token=")[1]!;
  return { users, offerIds: ["calls-100", "free-trial", "vip-calls", "calls-bundle"], orderIds, reservationIds, entryIds, cursors, events, portalToken };
}
