/**
 * The routes, as the fuzzer sees them: what each reads besides its path (a JSON body and
 * its fields, a query, an Idempotency-Key), with each field's and parameter's invalid
 * values (and a query parameter's valid ones); the ids, cursors and webhook events the
 * seeding made, that requests may reference; and a valid request to each route.
 */
import fc from "fast-check";
import { CYCLES } from "../../../core/rules/cycles.js";
import { RENEWALS } from "../../../core/rules/renewal.js";
import { ROUTES } from "../../../functions/routes.js";
import { anOffer } from "../../helpers/factories.js";
import {
  MISSING,
  badCurrency,
  badEnum,
  badInstant,
  badInteger,
  badLimit,
  badMetadata,
  badOperatorId,
  badText,
  badUrl,
  badUserId,
  encode,
  fields,
  someText,
  unknownField,
  wrongType,
} from "./generators.js";

/** The key of a route of the route table, e.g. `GET /offers`. */
export type RouteKey = (typeof ROUTES)[number]["route"];

/** A body field: its invalid values (MISSING among them when required). */
export type FieldSpec = { bad: fc.Arbitrary<unknown> };
/** A query parameter: valid values (none for a cursor, which is valid for one user's list only) and invalid ones (decoded). */
export type QuerySpec = Record<string, { good?: fc.Arbitrary<string>; bad: fc.Arbitrary<string> }>;

/** What a route reads besides its path: a validated JSON body, a parsed but unused body, a query, an Idempotency-Key. */
export interface RouteSpec {
  body?: { kind: "schema"; base: Record<string, unknown>; fields: Record<string, FieldSpec> } | { kind: "ignored" };
  query?: QuerySpec;
  idempotent?: boolean;
}

/** Ids, cursors and events made by the seeding, that requests may reference. */
export interface Seeded {
  users: string[];
  offerIds: string[];
  orderIds: string[];
  /** Reservations of the users: one held, one committed, each user's. */
  reservationIds: string[];
  /** The users' consumption entries (each user's one). */
  entryIds: string[];
  /** Page cursors of each user's lists. */
  cursors: { orders: Record<string, string>; ledger: Record<string, string>; reservations: Record<string, string> };
  /** Webhook events about seeded orders (a forged payment must not apply). */
  events: string[];
  /** A portal session token of the first user (the routes under `/portal/api/` take it instead of an API key). */
  portalToken: string;
}

/** A required field: left out, or one of its invalid values. */
const required = (bad: fc.Arbitrary<unknown>): FieldSpec => ({ bad: fc.oneof(fc.constant(MISSING), bad) });
/** An optional field: one of its invalid values. */
const optional = (bad: fc.Arbitrary<unknown>): FieldSpec => ({ bad });

/** Invalid `prices`: empty, too many, bad amount or currency, unknown item field, duplicate currency, not objects. */
const badPrices = fc.oneof(
  wrongType("array"),
  fc.constant([]),
  fc.constant(Array.from({ length: 51 }, (_, i) => ({ amount: 1, currency: `a${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}` }))),
  badInteger(0, 1_000_000_000_000).map((amount) => [{ amount, currency: "usd" }]),
  badCurrency.map((currency) => [{ amount: 100, currency }]),
  unknownField(["amount", "currency"]).map((key) => [fields([["amount", 100], ["currency", "usd"], [key, 1]])]),
  fc.constant([{ currency: "usd" }]),
  fc.constant([{ amount: 100, currency: "usd" }, { amount: 200, currency: "usd" }]),
  wrongType("object").map((item) => [item]),
);

/** Invalid lists of `items` (not a list, too long, or holding a bad item). */
const badList = (item: fc.Arbitrary<unknown>, good: unknown, max: number) =>
  fc.oneof(wrongType("array"), fc.constant(Array.from({ length: max + 1 }, () => good)), fc.tuple(item, fc.nat(3)).map(([bad, at]) => [...Array.from({ length: at }, () => good), bad]));

/** The fields of an offer (`PUT /offers/{offerId}`). */
const OFFER_FIELDS: Record<string, FieldSpec> = {
  name: required(badText(1, 200)),
  kind: optional(badEnum(["tokens", "subscription", "expertise"])),
  offerGroup: required(badOperatorId),
  cycle: required(fc.oneof(badEnum(CYCLES), fc.constant("custom"))), // "custom" without customCycleSeconds
  customCycleSeconds: optional(badInteger(1, 100 * 366 * 86_400, { nullable: true })),
  appendDate: optional(wrongType("boolean")),
  // Not a renewal; "auto" on the base offer is valid (monthly, not appended).
  renewal: optional(badEnum(RENEWALS)),
  tokenCount: required(badInteger(0, 1_000_000_000_000)),
  prices: required(badPrices),
  quantityLimit: optional(badInteger(1, 1_000_000, { nullable: true })),
  tags: optional(badList(badText(1, 64), "calls", 50)),
  unlockedBy: optional(badList(badOperatorId, "calls", 50)),
  overridingKey: optional(badText(1, 64, { nullable: true })),
  weight: optional(badInteger(-1_000_000, 1_000_000)),
  popular: optional(badInteger(0, 1_000_000)),
  combinedItems: optional(
    badList(
      fc.oneof(
        badOperatorId.map((offerId) => ({ offerId, quantity: 1 })),
        badInteger(1, 1_000_000).map((quantity) => ({ offerId: "calls-100", quantity })),
        fc.constant({ offerId: "calls-100" }),
        unknownField(["offerId", "quantity"]).map((key) => fields([["offerId", "calls-100"], ["quantity", 1], [key, 1]])),
        wrongType("object"),
      ),
      { offerId: "calls-100", quantity: 1 },
      30,
    ),
  ),
  active: optional(wrongType("boolean")),
};

/** The fields of a new order (`POST /users/{userId}/orders`). */
const ORDER_FIELDS: Record<string, FieldSpec> = {
  offerId: required(badOperatorId),
  quantity: optional(badInteger(1, 1_000_000)),
  currency: optional(badCurrency),
  starts: optional(badInstant({ nullable: true })),
  checkout: optional(
    fc.oneof(
      wrongType("object"),
      badUrl.map((successUrl) => ({ successUrl, cancelUrl: "https://example.com/cancel" })),
      badUrl.map((cancelUrl) => ({ successUrl: "https://example.com/ok", cancelUrl })),
      fc.constant({ successUrl: "https://example.com/ok" }),
      unknownField(["successUrl", "cancelUrl"]).map((key) => fields([["successUrl", "https://example.com/ok"], ["cancelUrl", "https://example.com/cancel"], [key, "x"]])),
    ),
  ),
};

/** The fields of a consumption (`POST /users/{userId}/consumptions`). */
const CONSUMPTION_FIELDS: Record<string, FieldSpec> = {
  offerGroup: required(badOperatorId),
  tokens: required(badInteger(1, 1_000_000_000_000)),
  allowOverdraft: optional(wrongType("boolean")),
  metadata: optional(badMetadata),
};

/** The fields of a hold (`POST /users/{userId}/reservations`). */
const HOLD_FIELDS: Record<string, FieldSpec> = {
  offerGroup: required(badOperatorId),
  tokens: required(badInteger(1, 1_000_000_000_000)),
  ttlSeconds: optional(badInteger(1, 86_400)),
  metadata: optional(badMetadata),
};

/** The fields of a commit (`POST .../reservations/{reservationId}/commit`). */
const COMMIT_FIELDS: Record<string, FieldSpec> = {
  tokens: required(badInteger(0, 1_000_000_000_000)),
  allowOverdraft: optional(wrongType("boolean")),
  metadata: optional(badMetadata),
};

/** The fields of a reversal (`POST .../consumptions/{entryId}/reverse`). */
const REVERSAL_FIELDS: Record<string, FieldSpec> = {
  tokens: optional(badInteger(1, 1_000_000_000_000)),
  reason: optional(badText(1, 500)),
};

/** The fields of a refund (`POST .../refund`). */
const REFUND_FIELDS: Record<string, FieldSpec> = {
  mode: required(badEnum(["unused", "full"])),
  reason: optional(badText(1, 500)),
};

/** The fields of a grant (`POST /users/{userId}/grants`). */
const GRANT_FIELDS: Record<string, FieldSpec> = {
  offerGroup: required(badOperatorId),
  tokens: required(badInteger(1, 1_000_000_000_000)),
  expires: optional(badInstant({ nullable: true })),
  reason: optional(badText(0, 500)),
};

/** The settings of an offer group (`PUT /offer-groups/{offerGroup}`). */
const OFFER_GROUP_FIELDS: Record<string, FieldSpec> = {
  lowBalanceThreshold: optional(badInteger(0, 1_000_000_000_000, { nullable: true })),
  expiryWarningDays: optional(badInteger(0, 366)),
};

/** The fields of an expiry check (`POST /users/{userId}/expiry-check`). */
const EXPIRY_FIELDS: Record<string, FieldSpec> = {
  warnMs: optional(badInteger(0, 10 * 366 * 86_400_000)),
  low: optional(
    badList(
      fc.oneof(
        badOperatorId.map((offerGroup) => ({ offerGroup, min: 1 })),
        badInteger(0, 1_000_000_000_000).map((min) => ({ offerGroup: "calls", min })),
        fc.constant({ min: 1 }),
        unknownField(["offerGroup", "min"]).map((key) => fields([["offerGroup", "calls"], ["min", 1], [key, 1]])),
        wrongType("object"),
      ),
      { offerGroup: "calls", min: 1 },
      100,
    ),
  ),
};

/** A valid instant, in the past or the future. */
export const anyInstant = fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((date) => date.toISOString());

/** Query specs of the list routes; cursors of another user's or another list's pages are foreign. */
function pageQuery(seeded: Seeded, list: "orders" | "ledger" | "events" | "reservations"): QuerySpec {
  const foreign = Object.entries(seeded.cursors)
    .filter(([name]) => name !== list)
    .flatMap(([, cursors]) => Object.values(cursors));
  const forged = fc
    .record({ pk: someText(30).filter((s) => s.length > 0), sk: someText(30).filter((s) => s.length > 0) })
    .map((key) => Buffer.from(JSON.stringify(key)).toString("base64url"));
  return {
    limit: { good: fc.integer({ min: 1, max: 1000 }).map(String), bad: badLimit },
    cursor: {
      bad: fc.oneof(
        fc.constantFrom("", "garbage", "null", "e30", "W10", Buffer.from("null").toString("base64url"), "a".repeat(2049)),
        { weight: 3, arbitrary: fc.constantFrom(...foreign) },
        { weight: 2, arbitrary: forged },
        someText(40).filter((s) => s.length > 0),
        fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? "x").toString("base64url")),
      ),
    },
  };
}

/** Every route's spec (the webhook is generated on its own). */
export function routeSpecs(seeded: Seeded): Record<RouteKey, RouteSpec> {
  const noFields = { kind: "schema", base: {}, fields: {} } as const;
  return {
    "PUT /offers/{offerId}": {
      body: { kind: "schema", base: { name: "Fuzz offer", offerGroup: "calls", cycle: "monthly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }] }, fields: OFFER_FIELDS },
    },
    "GET /offers/{offerId}": {},
    "PUT /offer-groups/{offerGroup}": {
      body: { kind: "schema", base: { lowBalanceThreshold: 50, expiryWarningDays: 7 }, fields: OFFER_GROUP_FIELDS },
    },
    "GET /offer-groups/{offerGroup}": {},
    "GET /offers": {
      query: {
        userId: { good: fc.constantFrom(...seeded.users), bad: fc.oneof(fc.constant(""), badUserId) },
        tags: { good: someText(20), bad: fc.constant("") /* every string is a valid tag list; never picked as a defect */ },
        allTags: { good: fc.constantFrom("true", "false"), bad: fc.oneof(fc.constantFrom("maybe", "1", "TRUE", "yes", "", "true "), someText(6)).filter((v) => v !== "true" && v !== "false") },
        all: { good: fc.constantFrom("true", "false"), bad: fc.oneof(fc.constantFrom("1", "True", "on", ""), someText(6)).filter((v) => v !== "true" && v !== "false") },
        currency: { good: fc.constantFrom("usd", "eur"), bad: badCurrency.filter((v): v is string => typeof v === "string") },
      },
    },
    "POST /users/{userId}/orders": {
      body: { kind: "schema", base: { offerId: "calls-100", quantity: 1, currency: "usd" }, fields: ORDER_FIELDS },
      idempotent: true,
    },
    "GET /users/{userId}/orders": { query: pageQuery(seeded, "orders") },
    "GET /users/{userId}/orders/{orderId}": {},
    // These take no body: an empty object at most, anything else is refused.
    "POST /users/{userId}/orders/{orderId}/confirm": { body: noFields },
    "POST /users/{userId}/orders/{orderId}/pay": { body: noFields },
    "POST /users/{userId}/orders/{orderId}/refund": { body: { kind: "schema", base: { mode: "full" }, fields: REFUND_FIELDS }, idempotent: true },
    "POST /users/{userId}/orders/{orderId}/sync": { body: noFields },
    "POST /users/{userId}/payment-methods/setup": { body: { kind: "schema", base: {}, fields: { checkout: ORDER_FIELDS.checkout! } } },
    "DELETE /users/{userId}/subscriptions/{offerId}": { body: { kind: "schema", base: { atPeriodEnd: true }, fields: { atPeriodEnd: optional(wrongType("boolean")) } } },
    "PUT /users/{userId}/auto-top-up/{offerGroup}": {
      body: {
        kind: "schema",
        base: { offerId: "calls-100", threshold: 10, maxPerMonth: 3, enabled: true, currency: "usd" },
        fields: {
          offerId: required(badOperatorId),
          threshold: required(badInteger(0, 1_000_000_000_000)),
          maxPerMonth: optional(badInteger(1, 1000)),
          enabled: optional(wrongType("boolean")),
          currency: optional(badCurrency),
        },
      },
    },
    "GET /users/{userId}/auto-top-up/{offerGroup}": {},
    "POST /users/{userId}/portal-sessions": {
      body: {
        kind: "schema",
        base: { returnUrl: "https://app.example.com/account", tags: ["calls"], ttlSeconds: 600 },
        fields: { returnUrl: optional(badUrl), tags: optional(badList(badText(1, 64), "calls", 50)), ttlSeconds: optional(badInteger(60, 86_400)) },
      },
    },
    "GET /portal/api/session": {},
    "GET /portal/api/credits": {},
    "GET /portal/api/offers": {},
    "GET /portal/api/orders": { query: pageQuery(seeded, "orders") },
    "GET /portal/api/orders/{orderId}": {},
    "POST /portal/api/orders": {
      body: { kind: "schema", base: { offerId: "calls-100", quantity: 1, currency: "usd" }, fields: { offerId: ORDER_FIELDS.offerId!, quantity: ORDER_FIELDS.quantity!, currency: ORDER_FIELDS.currency! } },
    },
    "GET /portal/api/ledger": {
      query: {
        ...pageQuery(seeded, "ledger"),
        offerGroup: { good: fc.constantFrom("calls", "trial"), bad: badOperatorId },
        from: { good: anyInstant, bad: badInstant().filter((v): v is string => typeof v === "string") },
        to: { good: anyInstant, bad: badInstant().filter((v): v is string => typeof v === "string") },
      },
    },
    "GET /portal/api/subscriptions/{offerId}": {},
    "DELETE /portal/api/subscriptions/{offerId}": { body: { kind: "schema", base: { atPeriodEnd: true }, fields: { atPeriodEnd: optional(wrongType("boolean")) } } },
    "DELETE /users/{userId}/auto-top-up/{offerGroup}": {},
    "POST /users/{userId}/consumptions": {
      body: { kind: "schema", base: { offerGroup: "calls", tokens: 1, allowOverdraft: false, metadata: { callId: "c-1" } }, fields: CONSUMPTION_FIELDS },
      idempotent: true,
    },
    "POST /users/{userId}/consumptions/{entryId}/reverse": {
      body: { kind: "schema", base: { tokens: 1, reason: "the call failed" }, fields: REVERSAL_FIELDS },
      idempotent: true,
    },
    "POST /users/{userId}/reservations": {
      body: { kind: "schema", base: { offerGroup: "calls", tokens: 1, ttlSeconds: 60, metadata: { callId: "c-1" } }, fields: HOLD_FIELDS },
      idempotent: true,
    },
    "POST /users/{userId}/reservations/{reservationId}/commit": {
      body: { kind: "schema", base: { tokens: 1, allowOverdraft: false, metadata: { callId: "c-1" } }, fields: COMMIT_FIELDS },
      idempotent: true,
    },
    "POST /users/{userId}/reservations/{reservationId}/release": { body: noFields, idempotent: true },
    "GET /users/{userId}/reservations": {
      query: {
        ...pageQuery(seeded, "reservations"),
        offerGroup: { good: fc.constantFrom("calls", "trial"), bad: badOperatorId },
        status: { good: fc.constantFrom("held", "committed", "released", "expired"), bad: badEnum(["held", "committed", "released", "expired"]).filter((v): v is string => typeof v === "string") },
      },
    },
    "GET /users/{userId}/credits": {},
    "GET /users/{userId}/ledger": {
      query: {
        ...pageQuery(seeded, "ledger"),
        offerGroup: { good: fc.constantFrom("calls", "trial"), bad: badOperatorId },
        from: { good: anyInstant, bad: badInstant().filter((v): v is string => typeof v === "string") },
        to: { good: anyInstant, bad: badInstant().filter((v): v is string => typeof v === "string") },
      },
    },
    "GET /users/{userId}/subscriptions/{offerId}": {},
    "POST /users/{userId}/grants": {
      body: { kind: "schema", base: { offerGroup: "calls", tokens: 10, reason: "fuzz" }, fields: GRANT_FIELDS },
    },
    "POST /users/{userId}/expiry-check": {
      body: { kind: "schema", base: { warnMs: 1000 }, fields: EXPIRY_FIELDS },
    },
    "GET /users/{userId}/events": { query: pageQuery(seeded, "events") },
    "POST /webhooks/stripe": {},
    "GET /openapi.json": {},
  };
}

/** A request to `route` that would succeed (or be refused by core) with a valid key: seeded ids in the path, a valid body. */
export function validRequest(route: RouteKey, seeded: Seeded): { method: string; path: string; query: string; body?: string } {
  const [method, template] = route.split(" ") as [string, string];
  const path = template
    .replace("{userId}", encode(seeded.users[0]!))
    .replace("{offerId}", "calls-100")
    .replace("{orderId}", seeded.orderIds[1]!)
    .replace("{reservationId}", seeded.reservationIds[0]!)
    .replace("{entryId}", seeded.entryIds[0]!)
    .replace("{offerGroup}", "calls");
  const bodies: Partial<Record<RouteKey, object>> = {
    "PUT /offers/{offerId}": anOffer(),
    "POST /users/{userId}/orders": { offerId: "calls-100" },
    "POST /users/{userId}/consumptions": { offerGroup: "calls", tokens: 1 },
    "POST /users/{userId}/reservations": { offerGroup: "calls", tokens: 1 },
    "POST /users/{userId}/reservations/{reservationId}/commit": { tokens: 1 },
    "POST /users/{userId}/grants": { offerGroup: "calls", tokens: 1_000_000 },
    "POST /users/{userId}/expiry-check": {},
    "PUT /offer-groups/{offerGroup}": { lowBalanceThreshold: 10 },
  };
  const body = bodies[route];
  return { method, path, query: "", ...(body ? { body: JSON.stringify(body) } : method === "POST" ? { body: "{}" } : {}) };
}
