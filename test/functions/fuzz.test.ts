/**
 * Hostile input at the HTTP edge (issue "Money safety ... hostile input"). Thousands of
 * random, malformed requests reach every route of the route table through the Lambda
 * handlers, as API Gateway v2 events. Each request is invalid by construction (it
 * carries at least one defect: a bad key, path, query, body, content type, size or
 * header, or a wrong method), and the defects decide the one answer it must get, by
 * the edge's precedence: unreadable header 400 > API key 401 > size 413 > no route 404 >
 * path 400 > content type 415 > body 400 > query 400 > Idempotency-Key 400 (the webhook:
 * signature 400). Every answer must be that documented JSON error (never 5xx, never 2xx),
 * a 400 naming the bad field, with no stack trace, API key, webhook secret or table name;
 * and the seeded table must be exactly as it was. Access: every route but the webhook
 * refuses missing, wrong and near-miss API keys, and takes every key of a rotation.
 *
 * Runs are seeded (`SEED`); on a failure fast-check prints the seed and path to replay it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import fc from "fast-check";
import stringify from "safe-stable-stringify";
import Stripe from "stripe";
import type { ErrorCode } from "../../core/errors.js";
import { MAX_BODY_BYTES, STATUS_OF } from "../../functions/http.js";
import { ROUTES, UNAUTHENTICATED_ROUTES, type HttpFunctionName } from "../../functions/routes.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { handler as consumption } from "../../functions/consumption.js";
import { handler as credits } from "../../functions/credits.js";
import { handler as expiry } from "../../functions/expiry.js";
import { handler as notFound } from "../../functions/not-found.js";
import { handler as offers } from "../../functions/offers.js";
import { handler as orders } from "../../functions/orders.js";
import { handler as webhook } from "../../functions/webhook.js";
import { localLambdaContext } from "../../scripts/local-gateway.js";
import { createTestDb } from "../helpers/db.js";
import { apiEvent } from "../helpers/gateway.js";
import { anOffer } from "../helpers/factories.js";
import { stripeEvent } from "../helpers/stripe-stand-in.js";

type Handler = (event: APIGatewayProxyEventV2, context: any) => Promise<APIGatewayProxyStructuredResultV2>;
type RouteKey = (typeof ROUTES)[number]["route"];

const HANDLERS = { offers, orders, consumption, credits, expiry, webhook, notFound } satisfies Record<HttpFunctionName, Handler>;

/** Recognisable secrets, searched for in every error body. */
const API_KEYS = ["fuzz-key-A-123456", "fuzz-key-B-654321"] as const;
const WEBHOOK_SECRET = "whsec_fuzz_secret_value";
/** Seed of the first property; property `i` uses `SEED + i`. */
const SEED = 20_261_123;
/** Hostile requests per route (15 routes, plus the `$default` route). */
const RUNS_PER_ROUTE = 300;
const RUNS_DEFAULT_ROUTE = 100;

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
  "payment_provider_error",
];

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/** JSON text written as is (`1e999`, `-0`, `9007199254740993` survive no JSON.stringify). */
class Raw {
  constructor(readonly text: string) {}
}
/** A body field left out. */
const MISSING = Symbol("missing");

/** JSON text of a value that may hold Raw parts and MISSING fields (kept as own keys, `__proto__` included). */
function toJson(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const fields = Object.entries(value).filter(([, item]) => item !== MISSING);
    return `{${fields.map(([key, item]) => `${JSON.stringify(key)}:${toJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** An object with exactly these own fields (`__proto__` stays a field). */
const fields = (entries: Array<[string, unknown]>): Record<string, unknown> => Object.fromEntries(entries);

/** Percent-encodes a path segment or query part; a lone surrogate becomes its (invalid) WTF-8 bytes, `%ED%A0%80`. */
function encode(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    } else out += encodeURIComponent(char);
  }
  return out;
}

/** Characters of category \p{C} (controls, bidi and zero-width format characters, BOM, lone surrogates, private use, noncharacters): never in a user id. */
const UNPRINTABLE = ["\u0000", "\u0001", "\u0008", "\t", "\n", "\r", "\u001b", "\u007f", "\u0085", "\u009f", "\u00ad", "\u200b", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff", "\ud800", "\udbff", "\udc00", "\udfff", "\ue000", "\uf8ff", "\ufff9", "\uffff", "\u{e0001}", "\u{10ffff}"];
/** Characters outside `[A-Za-z0-9_.:-]`, so never in an offer id or offerGroup. */
const NOT_ID_CHARS = [" ", "/", "#", "%", "?", "+", "&", "=", "é", "😀", "ש", "ل", "\u0000", "\u202e", "\ud800", "|", "@", "*", "~", "'", "(", "!", "\\", "\u00a0", "\n"];
/** Percent-escapes that are not UTF-8 (bare `%`, non-hex, truncated, lone surrogate, overlong, 0xFF); `~` after each keeps a following hex digit from completing it. */
const MALFORMED_ESCAPES = ["%", "%Z", "%ZZ", "%E0%A4%A", "%C3", "%ED%A0%80", "%ED%B0%80", "%FF", "%C0%AF", "%%"].map((escape) => `${escape}~`);

/** Ordinary text: ASCII, emoji, right-to-left scripts, URL-special characters, any grapheme. */
const someText = (maxLength = 12) =>
  fc.string({
    unit: fc.oneof(fc.constantFrom("a", "Z", "0", "-", "_", "|", "@", ".", "😀", "👍🏽", "שלום", "مرحبا", "é", "中", " ", "%", "/", "?", "#", "+", "&"), fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 })),
    maxLength,
  });

/** Printable ASCII (safe as a header value). */
const printable = (minLength: number, maxLength: number) => fc.stringMatching(new RegExp(`^[ -~]{${minLength},${maxLength}}$`));

/** Text around one unprintable character. */
const withUnprintable = fc.tuple(someText(), fc.constantFrom(...UNPRINTABLE), someText()).map(([a, bad, b]) => a + bad + b);

/** A user id over 128 UTF-16 units (ASCII, accented, emoji or Hebrew), after some text. */
const overlongUserId = fc.tuple(someText(6), fc.constantFrom("u", "é", "😀", "ש", "|"), fc.integer({ min: 129, max: 400 })).map(([head, char, length]) => head + char.repeat(length));

/** A raw path segment whose percent-encoding is malformed. */
const malformedSegment = fc.tuple(someText(), fc.constantFrom(...MALFORMED_ESCAPES), someText()).map(([a, escape, b]) => encode(a) + escape + encode(b));

/** A user id that is invalid: too long, or with an unprintable character (as a decoded string). */
const badUserId = fc.oneof(overlongUserId, withUnprintable);
/** An offer id / offerGroup that is invalid, never empty: too long, or with a character outside the set. */
const badOperatorIdNonEmpty = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.:-]{65,120}$/),
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9_.:-]{0,20}$/), fc.constantFrom(...NOT_ID_CHARS), fc.stringMatching(/^[A-Za-z0-9_.:-]{0,20}$/)).map(([a, bad, b]) => a + bad + b),
);
/** An offer id / offerGroup that is invalid, the empty string included. */
const badOperatorId = fc.oneof(fc.constant(""), badOperatorIdNonEmpty);
/** An order id that is not a ULID (never empty). */
const badOrderId = fc.oneof(
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{1,25}$/),
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{27,40}$/),
  fc.tuple(fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{25}$/), fc.constantFrom("I", "L", "O", "U", "a", "z", "-", "_", "é", "😀", "\u0000"), fc.nat(25)).map(([id, bad, at]) => id.slice(0, at) + bad + id.slice(at)),
  // Not "." or "..": those are dot-segments, removed from the path before routing.
  someText(40).filter((text) => text.length > 0 && text !== "." && text !== ".." && !/^[0-9A-HJKMNP-TV-Z]{26}$/.test(text)),
);

/** A JSON value of none of `types` (number-looking strings, deep nesting and arrays included). */
function wrongType(...types: Array<"string" | "number" | "boolean" | "null" | "array" | "object">): fc.Arbitrary<unknown> {
  const deep = fc.integer({ min: 2, max: 400 });
  const all = {
    string: fc.oneof(fc.constantFrom("1", "NaN", "Infinity", "-0", "1e308", "", "true", "null", "9007199254740993"), someText()),
    number: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(new Raw("1e308"), new Raw("-0"), new Raw("9007199254740993"))),
    boolean: fc.boolean(),
    null: fc.constant(null),
    array: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }), deep.map((n) => new Raw("[".repeat(n) + "]".repeat(n)))),
    object: fc.oneof(fc.dictionary(someText(6), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), deep.map((n) => new Raw('{"a":'.repeat(n) + "1" + "}".repeat(n)))),
  };
  return fc.oneof(...Object.entries(all).filter(([type]) => !types.includes(type as never)).map(([, arbitrary]) => arbitrary));
}

/** A number field's invalid values: below or above [min, max], fractional, beyond JSON doubles, or not a number. */
function badInteger(min: number, max: number, options: { nullable?: boolean } = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.integer({ min: -(2 ** 31), max: min - 1 }),
    fc.double({ min: max + 1, max: Number.MAX_VALUE, noNaN: true }),
    fc.double({ min, max, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(new Raw("1e308"), new Raw("9007199254740993"), new Raw("1e999"), new Raw("-1e999"), new Raw("1E400"), new Raw(String(max + 0.5)), ...(min > 0 ? [new Raw("-0"), new Raw("0.0"), new Raw("-1")] : [])),
    options.nullable ? wrongType("number", "null") : wrongType("number"),
  );
}

/** A free-text field's invalid values: empty (when min is 1), too long, with a lone surrogate, or not a string. */
function badText(min: number, max: number, options: { nullable?: boolean } = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    ...(min > 0 ? [fc.constant("")] : []),
    fc.tuple(fc.integer({ min: max + 1, max: max + 300 }), someText(3)).map(([length, tail]) => "é".repeat(length) + tail),
    fc.tuple(someText(), fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff"), someText()).map(([a, lone, b]) => a + lone + b),
    fc.tuple(someText(), fc.constantFrom("\ud800", "\udfff")).map(([a, lone]) => a.slice(0, max - 1) + lone),
    options.nullable ? wrongType("string", "null") : wrongType("string"),
  );
}

/** An enum field's invalid values. */
const badEnum = (values: readonly string[]) =>
  fc.oneof(fc.constantFrom(...values.map((v) => v.toUpperCase()), "fortnightly", "", " tokens"), someText(), wrongType("string")).filter((v) => !values.includes(v as string));

/** A lowercase ISO 4217 code's invalid values. */
const badCurrency = fc.oneof(fc.constantFrom("USD", "us", "usdd", "", "€", "u5d", "usd ", "eur\u0000"), someText(5), wrongType("string")).filter((v) => !(typeof v === "string" && /^[a-z]{3}$/.test(v)));

/** An ISO 8601 instant's invalid values (no zone, impossible dates, words, epoch numbers). */
const badInstant = (options: { nullable?: boolean } = {}) =>
  fc.oneof(
    fc.constantFrom("2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z", "yesterday", "", "1700000000", "275760-09-13T00:00:00Z", "2026-01-01T00:00:00.000Z\u0000"),
    someText(30).filter((text) => !/^\d{4}-\d\d-\d\dT/.test(text)),
    options.nullable ? wrongType("string", "null") : wrongType("string"),
  );

/** A checkout URL's invalid values: no scheme, too long, a lone surrogate, not a string. */
const badUrl = fc.oneof(
  someText(30).filter((text) => !text.includes(":")),
  fc.constant(`https://example.com/${"a".repeat(2100)}`),
  fc.constant("https://example.com/\ud800"),
  wrongType("string"),
);

/** JSON metadata DynamoDB cannot store or the contract refuses: not an object, over 4 KB, over 8 levels deep (to 20000), numbers beyond safe integers or under 1e-130, empty keys, keys over 128 characters, lone surrogates. */
const badMetadata = fc.oneof(
  wrongType("object"),
  fc.constant(new Raw("[]")),
  fc.nat(3000).map((extra) => ({ blob: "x".repeat(4097 + extra) })),
  fc.constantFrom(9, 12, 40, 1000, 20_000).map((n) => new Raw('{"a":'.repeat(n) + "1" + "}".repeat(n))),
  fc.constantFrom(9, 33).map((n) => ({ list: new Raw("[".repeat(n) + "]".repeat(n)) })),
  fc.constantFrom(new Raw("1e308"), new Raw("9007199254740993"), new Raw("5e-324"), new Raw("-1e200"), new Raw("1e20"), new Raw("1e999")).map((n) => fields([["n", { deeper: [1, n] }]])),
  fc.constant(fields([["", 1]])),
  fc.constant({ nested: fields([["", "x"]]) }),
  fc.nat(50).map((extra) => fields([["k".repeat(129 + extra), 1]])),
  fc.constantFrom({ s: "\ud800" }, fields([["\udc00", 1]]), { a: ["ok", "\udfff"] }),
);

/** JSON text that does not parse (after UTF-8 decoding): truncated, NaN, single quotes, trailing commas, BOM, garbage. */
const invalidJsonText = fc
  .oneof(
    fc.constantFrom("{", '{"a":}', "[1,]", "NaN", "{'a':1}", "undefined", '"unterminated', '{"a":1}}', "\u0000", "tru", "\ufeff{}", " ", "{\"tokens\": 1e}", "--1", "{\"a\":01}"),
    someText(40),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  )
  .filter((body) => {
    const bytes = Buffer.from(body as never);
    if (bytes.byteLength === 0) return false;
    try {
      JSON.parse(bytes.toString("utf8"));
      return false;
    } catch {
      return true;
    }
  });

/** A JSON body that is not an object: arrays, primitives, null, deep arrays. */
const notAnObject = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).filter((v) => v === null || typeof v !== "object" || Array.isArray(v)).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 5000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
  fc.constantFrom("null", "1e308", '"{}"', "-0", "[{}]"),
);

/** Field names no body schema has (prototype names included). */
const unknownField = (known: readonly string[]) =>
  fc.oneof(fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "extra", "userId", "amount", "balance", "isAdmin"), someText(10)).filter((key) => key.length > 0 && !known.includes(key));

/** An `Authorization` header that is not a valid key: missing, wrong, near misses, other schemes. */
const badAuthorization = fc.constantFrom<string | undefined>(
  undefined,
  "",
  "Bearer wrong",
  `Bearer ${API_KEYS[0].slice(0, -1)}7`,
  `Bearer ${API_KEYS[0].slice(0, -1)}`,
  `Bearer ${API_KEYS[0].toUpperCase()}`,
  "Bearer",
  "Bearer ",
  `Basic ${Buffer.from(API_KEYS[0]).toString("base64")}`,
  API_KEYS[0],
  `Bearer ${API_KEYS[0]}x`,
  `Bearer ${API_KEYS.join(",")}`,
  `Token ${API_KEYS[0]}`,
  `Bearer ${WEBHOOK_SECRET}`,
  `Bearer \u200b${API_KEYS[0]}`,
);
/** A valid `Authorization` header (either key of the rotation, scheme in any case). */
const goodAuthorization = fc.tuple(fc.constantFrom(...API_KEYS), fc.constantFrom("Bearer", "bearer", "BEARER")).map(([key, scheme]) => `${scheme} ${key}`);

/** A header value the Fetch API refuses (NUL, CR or LF inside) or the adapter cannot encode (lone surrogate). */
const unreadableHeader = fc.record({
  name: fc.constantFrom("idempotency-key", "stripe-signature", "x-request-id", "x-forwarded-for", "authorization", "content-type"),
  value: fc.tuple(printable(0, 10), fc.constantFrom("\u0000", "\r", "\n", "\r\n", "\ud800", "\udfff"), printable(0, 10)).map(([a, bad, b]) => `x${a}${bad}${b}x`),
});

/** A content type that is not `application/json` (or none). */
const badContentType = fc.oneof(
  fc.constantFrom<string | undefined>(undefined, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp", "application/json-patch+json", "text/json", "json", "application/xml", "*/*", "application/json, text/plain"),
  printable(1, 30).filter((type) => type.split(";")[0]!.trim().toLowerCase() !== "application/json"),
);
/** `application/json`, as clients spell it. */
const goodContentType = fc.constantFrom("application/json", "application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8");

/** A body over 1 MB (materialized only when sent, so that failure reports stay short). */
const OVERSIZE = ["ascii", "multibyte", "brackets"] as const;
type Oversize = { oversize: (typeof OVERSIZE)[number] };
function oversizeBody(kind: Oversize["oversize"]): string {
  if (kind === "ascii") return `{"offerGroup":"calls","tokens":1,"metadata":{"blob":"${"x".repeat(MAX_BODY_BYTES)}"}}`;
  if (kind === "multibyte") return `{"name":"${"é".repeat(MAX_BODY_BYTES / 2 + 1)}"}`;
  return "[".repeat(MAX_BODY_BYTES + 1);
}

/** A limit query value that is not an integer in 1-1000. */
const badLimit = fc
  .oneof(fc.constantFrom("abc", "0", "-1", "1001", "100000", "1.5", "", "1e9", "NaN", "Infinity", "-0", "9007199254740993", "10 0", "½"), someText(8), fc.integer().map(String))
  .filter((value) => !(Number.isInteger(Number(value)) && Number(value) >= 1 && Number(value) <= 1000));

// ---------------------------------------------------------------------------------------
// Routes: what each reads, and its valid and invalid parts
// ---------------------------------------------------------------------------------------

/** A body field: its invalid values (MISSING among them when required). */
type FieldSpec = { bad: fc.Arbitrary<unknown> };
/** A query parameter: valid values (none for a cursor, which is valid for one user's list only) and invalid ones (decoded). */
type QuerySpec = Record<string, { good?: fc.Arbitrary<string>; bad: fc.Arbitrary<string> }>;

/** What a route reads besides its path: a validated JSON body, a parsed but unused body, a query, an Idempotency-Key. */
interface RouteSpec {
  body?: { kind: "schema"; base: Record<string, unknown>; fields: Record<string, FieldSpec> } | { kind: "ignored" };
  query?: QuerySpec;
  idempotent?: boolean;
}

/** Ids, cursors and events made by the seeding, that requests may reference. */
interface Seeded {
  users: string[];
  offerIds: string[];
  orderIds: string[];
  /** Page cursors of each user's lists. */
  cursors: { orders: Record<string, string>; ledger: Record<string, string> };
  /** Webhook events about seeded orders (a forged payment must not apply). */
  events: string[];
}

const required = (bad: fc.Arbitrary<unknown>): FieldSpec => ({ bad: fc.oneof(fc.constant(MISSING), bad) });
const optional = (bad: fc.Arbitrary<unknown>): FieldSpec => ({ bad });

const CYCLES_ = ["once", "daily", "weekly", "bi-weekly", "monthly", "trimester", "semester", "yearly", "custom"];

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

const OFFER_FIELDS: Record<string, FieldSpec> = {
  name: required(badText(1, 200)),
  kind: optional(badEnum(["tokens", "subscription", "expertise"])),
  offerGroup: required(badOperatorId),
  cycle: required(fc.oneof(badEnum(CYCLES_), fc.constant("custom"))), // "custom" without customCycleSeconds
  customCycleSeconds: optional(badInteger(1, 100 * 366 * 86_400, { nullable: true })),
  appendDate: optional(wrongType("boolean")),
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

const CONSUMPTION_FIELDS: Record<string, FieldSpec> = {
  offerGroup: required(badOperatorId),
  tokens: required(badInteger(1, 1_000_000_000_000)),
  allowOverdraft: optional(wrongType("boolean")),
  metadata: optional(badMetadata),
};

const GRANT_FIELDS: Record<string, FieldSpec> = {
  offerGroup: required(badOperatorId),
  tokens: required(badInteger(1, 1_000_000_000_000)),
  expires: optional(badInstant({ nullable: true })),
  reason: optional(badText(0, 500)),
};

const OFFER_GROUP_FIELDS: Record<string, FieldSpec> = {
  lowBalanceThreshold: optional(badInteger(0, 1_000_000_000_000, { nullable: true })),
  expiryWarningDays: optional(badInteger(0, 366)),
};

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
const anyInstant = fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((date) => date.toISOString());

/** Query specs of the list routes; cursors of another user's or another list's pages are foreign. */
function pageQuery(seeded: Seeded, list: "orders" | "ledger" | "events"): QuerySpec {
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
function routeSpecs(seeded: Seeded): Record<RouteKey, RouteSpec> {
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
    "POST /users/{userId}/consumptions": {
      body: { kind: "schema", base: { offerGroup: "calls", tokens: 1, allowOverdraft: false, metadata: { callId: "c-1" } }, fields: CONSUMPTION_FIELDS },
      idempotent: true,
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
  };
}

// ---------------------------------------------------------------------------------------
// Hostile requests and the answer each must get
// ---------------------------------------------------------------------------------------

/** What a request carries that makes it invalid. */
type Defect = "header" | "auth" | "size" | "route" | "path" | "contentType" | "body" | "query" | "idempotency" | "signature";

/** The answer a hostile request must get; for a 400 `validation_error`, one of `fields` must be named. */
interface Expected {
  status: number;
  code: ErrorCode;
  fields?: string[];
}

/** A request as sent. */
interface Hostile {
  fn: HttpFunctionName;
  routeKey: string;
  method: string;
  /** Raw (percent-encoded) path and query string. */
  path: string;
  query: string;
  headers: Record<string, string>;
  body?: string | Buffer | Oversize;
  base64: boolean;
  defects: Defect[];
  expected: Expected;
}

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** How often each defect is a request's first one (the body, query and path layers hold the most kinds of hostile values). */
const DEFECT_WEIGHTS: Record<Defect, number> = { body: 6, query: 6, path: 3, idempotency: 2, contentType: 1, size: 1, auth: 1, route: 1, header: 1, signature: 1 };

/** A layer of a request: its valid and its invalid form (each a patch, with the fields an invalid form should be named by). */
type Patch = { method?: string; shape?: "trailingSlash" | "emptyParam"; params?: Record<string, string>; query?: Array<[string, string]>; headers?: Record<string, string | undefined>; body?: string | Buffer | Oversize; contentType?: string | undefined; names?: string[] };

/** The query string of `[key, value]` pairs (both already encoded). */
const queryString = (pairs: Array<[string, string]>) => pairs.map(([key, value]) => `${key}=${value}`).join("&");

/** Query parameters that every route ignores or that are harmless, for routes that read no query. */
const junkQuery = fc.array(fc.tuple(fc.constantFrom("limit", "cursor", "allTags", "x", "userId", "__proto__"), fc.oneof(fc.constantFrom("abc", "0", "maybe", "garbage"), someText(8)).map(encode)), { maxLength: 3 });

/** Hostile requests for `route`: at least one defect among those the route can have, others valid. */
function hostileRequests(route: RouteKey, fn: HttpFunctionName, spec: RouteSpec, seeded: Seeded): fc.Arbitrary<Hostile> {
  const [method, template] = route.split(" ") as [string, string];
  const params = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const isWebhook = UNAUTHENTICATED_ROUTES.includes(route);
  const readsBody = method !== "GET";
  const served = ROUTES.filter((r) => r.route.split(" ")[1] === template).map((r) => r.route.split(" ")[0]!);

  const goodParam: Record<string, fc.Arbitrary<string>> = {
    userId: fc.constantFrom(...seeded.users.map(encode)),
    offerId: fc.constantFrom(...seeded.offerIds),
    orderId: fc.constantFrom(...seeded.orderIds),
    offerGroup: fc.constantFrom("calls", "trial"),
  };
  const badParam: Record<string, fc.Arbitrary<string>> = {
    userId: fc.oneof(badUserId.map(encode), malformedSegment),
    offerId: fc.oneof(badOperatorIdNonEmpty.map(encode), malformedSegment),
    orderId: fc.oneof(badOrderId.map(encode), malformedSegment),
    offerGroup: fc.oneof(badOperatorIdNonEmpty.map(encode), malformedSegment),
  };

  const layers: Partial<Record<Defect, { good: fc.Arbitrary<Patch>; bad: fc.Arbitrary<Patch> }>> = {};
  layers.header = {
    good: fc.record({ "x-request-id": printable(0, 30), "x-forwarded-for": fc.constantFrom("203.0.113.7", "::1") }).map((headers) => ({ headers })),
    bad: unreadableHeader.map(({ name, value }) => ({ headers: { [name]: value }, names: [name] })),
  };
  layers.route = {
    good: fc.constant({}),
    bad: fc.oneof(
      fc.constantFrom(...METHODS.filter((m) => !served.includes(m))).map((m) => ({ method: m })),
      fc.constant<Patch>({ shape: "trailingSlash" }),
      ...(params.length > 0 ? [fc.constant<Patch>({ shape: "emptyParam" })] : []),
    ),
  };
  if (!isWebhook) {
    layers.auth = {
      good: goodAuthorization.map((authorization) => ({ headers: { authorization } })),
      bad: badAuthorization.map((authorization) => ({ headers: { authorization } })),
    };
  }
  if (params.length > 0 && !isWebhook) {
    const all = fc.record(Object.fromEntries(params.map((p) => [p, goodParam[p]!])));
    layers.path = {
      good: all.map((values) => ({ params: values })),
      bad: fc.tuple(all, fc.subarray(params, { minLength: 1 })).chain(([values, broken]) =>
        fc.tuple(...broken.map((p) => badParam[p]!)).map((bad) => ({ params: { ...values, ...Object.fromEntries(broken.map((p, i) => [p, bad[i]!])) }, names: broken })),
      ),
    };
  }
  if (readsBody) {
    layers.size = { good: fc.constant({}), bad: fc.constantFrom(...OVERSIZE).map((oversize) => ({ body: { oversize } })) };
  }
  if (readsBody && !isWebhook) {
    layers.contentType = { good: goodContentType.map((contentType) => ({ contentType })), bad: badContentType.map((contentType) => ({ contentType })) };
  }
  if (spec.body?.kind === "schema") {
    const { base, fields: specs } = spec.body;
    const names = Object.keys(specs);
    const fieldDefects = fc.uniqueArray(fc.constantFrom(...(names.length > 0 ? names : ["-"])), { minLength: 1, maxLength: 3 }).chain((chosen) =>
      fc.tuple(...chosen.map((name) => specs[name]!.bad)).map((values) => ({
        body: toJson(fields([...Object.entries(base).filter(([k]) => !chosen.includes(k)), ...chosen.map((k, i) => [k, values[i]] as [string, unknown])])),
        names: chosen.includes("cycle") ? [...chosen, "customCycleSeconds"] : chosen,
      })),
    );
    const extraFields = fc.uniqueArray(unknownField(names), { minLength: 1, maxLength: 3 }).chain((extra) =>
      fc.tuple(...extra.map(() => fc.jsonValue({ maxDepth: 2 }))).map((values) => ({
        body: toJson(fields([...Object.entries(base), ...extra.map((k, i) => [k, values[i]] as [string, unknown])])),
        names: extra,
      })),
    );
    layers.body = {
      good: fc.constant({ body: toJson(base) }),
      bad: fc.oneof(
        ...(names.length > 0 ? [{ weight: 6, arbitrary: fieldDefects }] : []),
        { weight: 2, arbitrary: extraFields },
        { weight: 1, arbitrary: notAnObject.map((body) => ({ body, names: ["body"] })) },
        { weight: 1, arbitrary: invalidJsonText.map((body) => ({ body: body as string | Buffer, names: ["body"] })) },
      ),
    };
  } else if (spec.body?.kind === "ignored") {
    layers.body = {
      good: fc.option(fc.json({ maxDepth: 2 }), { nil: undefined }).map((body) => ({ body })),
      bad: invalidJsonText.map((body) => ({ body: body as string | Buffer, names: ["body"] })),
    };
  }
  if (spec.query) {
    const q = spec.query;
    const names = Object.keys(q);
    // Valid parts; a valid `from` is never after a valid `to`.
    const good = fc.subarray(names.filter((n) => q[n]!.good)).chain((chosen) =>
      fc.tuple(...chosen.map((n) => q[n]!.good!)).map((values) => {
        const pairs = chosen.map((n, i) => [n, values[i]!] as [string, string]);
        const from = pairs.find(([n]) => n === "from");
        const to = pairs.find(([n]) => n === "to");
        if (from && to && from[1] > to[1]) [from[1], to[1]] = [to[1], from[1]];
        return pairs;
      }),
    );
    const defective = names.filter((n) => n !== "tags");
    const badPair = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...defective).chain((n) => q[n]!.bad.map((value) => ({ pair: [encode(n), encode(value)] as [string, string], name: n, value }))) },
      fc.tuple(unknownField(names), someText(8)).map(([n, value]) => ({ pair: [encode(n), encode(value)] as [string, string], name: n })),
      fc.tuple(fc.constantFrom(...names), malformedSegment).map(([n, value]) => ({ pair: [encode(n), value] as [string, string], name: n })),
      // A malformed key is named as the URL carries it (which percent-encodes `'`).
      fc.tuple(malformedSegment, someText(8)).map(([key, value]) => ({ pair: [key, encode(value)] as [string, string], name: new URL(`https://h/?${key}`).search.slice(1) })),
    );
    layers.query = {
      good: good.map((pairs) => ({ query: pairs.map(([n, v]) => [encode(n), encode(v)] as [string, string]) })),
      bad: fc.tuple(good, badPair).map(([pairs, bad]) => {
        const kept = pairs.filter(([n]) => n !== bad.name);
        return { query: [...kept.map(([n, v]) => [encode(n), encode(v)] as [string, string]), bad.pair], names: [bad.name] };
      }),
    };
    // `from` after `to` is invalid too (both valid instants).
    if (q.from && q.to) {
      const reversed = fc.tuple(anyInstant, anyInstant).filter(([a, b]) => a !== b).map(([a, b]) => (a > b ? [a, b] : [b, a]));
      layers.query.bad = fc.oneof(
        { weight: 9, arbitrary: layers.query.bad },
        { weight: 1, arbitrary: reversed.map(([from, to]) => ({ query: [["from", encode(from!)], ["to", encode(to!)]] as Array<[string, string]>, names: ["to"] })) },
      );
    }
  }
  if (spec.idempotent) {
    layers.idempotency = {
      good: fc.option(fc.stringMatching(/^[!-~]{1,64}$/), { nil: undefined }).map((key) => ({ headers: { "idempotency-key": key } })),
      // Empty, or over 255 characters (no spaces at the ends, which HTTP trims).
      bad: fc.oneof(fc.constant(""), fc.stringMatching(/^[!-~]{256,400}$/), fc.integer({ min: 256, max: 300 }).map((n) => "é".repeat(n))).map((key) => ({ headers: { "idempotency-key": key }, names: ["Idempotency-Key"] })),
    };
  }
  if (isWebhook) layers.signature = { good: fc.constant({}), bad: fc.constant({}) }; // always bad: see webhookBody

  // One defect, mostly in the rich layers (body, query, path), sometimes a second one;
  // a webhook delivery always has a bad signature, and sometimes one more defect.
  const kinds = Object.keys(layers) as Defect[];
  const second = (among: Defect[]) => fc.oneof({ weight: 7, arbitrary: fc.constant<Defect[]>([]) }, { weight: 3, arbitrary: fc.subarray(among, { minLength: 1, maxLength: 1 }) });
  const chosenDefects: fc.Arbitrary<Defect[]> = isWebhook
    ? second(kinds.filter((k) => k !== "signature")).map((more) => ["signature", ...more])
    : fc
        .tuple(fc.oneof(...kinds.map((kind) => ({ weight: DEFECT_WEIGHTS[kind], arbitrary: fc.constant(kind) }))), second(kinds))
        .map(([first, more]) => [...new Set<Defect>([first, ...more])]);

  const decoration = fc.record({
    base64: fc.boolean(),
    junkQuery,
    getBody: fc.option(fc.oneof(fc.json({ maxDepth: 2 }), invalidJsonText.map((b) => b as string | Buffer)), { nil: undefined }),
    getContentType: fc.option(fc.oneof(goodContentType, badContentType), { nil: undefined }),
  });

  return fc.tuple(chosenDefects, decoration).chain(([defects, decor]) => {
    const patches = kinds.map((kind) => (defects.includes(kind) ? layers[kind]!.bad : layers[kind]!.good));
    const webhookPart = isWebhook ? webhookBody(seeded) : fc.constant(undefined);
    return fc.tuple(fc.tuple(...patches), webhookPart).map(([applied, hook]) => {
      const byKind = Object.fromEntries(kinds.map((kind, i) => [kind, applied[i]!])) as Record<Defect, Patch>;
      return assemble({ route, fn, method, template, params, isWebhook, readsBody, defects, byKind, decor, hook });
    });
  });
}

/** A webhook delivery that must not verify: a Stripe event (about seeded orders), any JSON, or garbage, with a bad signature; or a correctly signed body that is no Stripe event. */
function webhookBody(seeded: Seeded): fc.Arbitrary<{ body: string | Buffer; signature: string | undefined; contentType: string | undefined }> {
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (payload: string, secret: string, timestamp = now()) => Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
  const anyBody = fc.oneof(fc.constantFrom(...seeded.events), fc.json({ maxDepth: 3 }), invalidJsonText.map((b) => b as string | Buffer));
  const contentType = fc.option(fc.oneof(goodContentType, badContentType), { nil: undefined });
  const text = (body: string | Buffer) => Buffer.from(body as never).toString("utf8");
  const badSignature = (body: string | Buffer) =>
    fc.oneof(
      fc.constant(undefined),
      fc.constant(""),
      printable(1, 120),
      fc.tuple(fc.integer(), fc.stringMatching(/^[0-9a-f]{64}$/)).map(([t, v1]) => `t=${t},v1=${v1}`),
      fc.constantFrom("whsec_wrong", API_KEYS[0], `${WEBHOOK_SECRET}x`, WEBHOOK_SECRET.slice(0, -1)).map((secret) => sign(text(body), secret)),
      fc.integer({ min: 361, max: 10_000_000 }).map((age) => sign(text(body), WEBHOOK_SECRET, now() - age)),
      fc.constant(null).map(() => sign(`${text(body)}tampered`, WEBHOOK_SECRET)),
    );
  const signedNonEvent = fc
    .oneof(
      fc.jsonValue({ maxDepth: 2 }).filter((v) => v === null || typeof v !== "object" || Array.isArray(v)),
      fc.dictionary(fc.constantFrom("id", "type", "object", "created", "livemode"), fc.jsonValue({ maxDepth: 1 })),
      fc.constant({ id: "evt_1", type: "payment_intent.succeeded", data: null }),
      fc.constant({ id: "evt_1", type: "payment_intent.succeeded", data: { object: "pi_1" } }),
      fc.constant({ id: 1, type: "payment_intent.succeeded", data: { object: {} } }),
    )
    .map((value) => JSON.stringify(value));
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(anyBody, contentType).chain(([body, type]) => badSignature(body).map((signature) => ({ body, signature, contentType: type }))) },
    { weight: 1, arbitrary: fc.tuple(signedNonEvent, contentType).map(([body, type]) => ({ body, signature: sign(body, WEBHOOK_SECRET), contentType: type })) },
  );
}

/** Puts the layers together into the request, and works out the one answer it must get. */
function assemble(input: {
  route: RouteKey;
  fn: HttpFunctionName;
  method: string;
  template: string;
  params: string[];
  isWebhook: boolean;
  readsBody: boolean;
  defects: Defect[];
  byKind: Record<Defect, Patch>;
  decor: { base64: boolean; junkQuery: Array<[string, string]>; getBody: string | Buffer | undefined; getContentType: string | undefined };
  hook: { body: string | Buffer; signature: string | undefined; contentType: string | undefined } | undefined;
}): Hostile {
  const { route, fn, template, params, isWebhook, readsBody, defects, byKind, decor, hook } = input;
  const patch = (kind: Defect): Patch => byKind[kind] ?? {};
  const has = (kind: Defect) => defects.includes(kind);

  // A. Method and path.
  const method = patch("route").method ?? input.method;
  const values = { ...Object.fromEntries(params.map((p) => [p, "x"])), ...patch("path").params };
  if (patch("route").shape === "emptyParam") values[params[0]!] = "";
  let path = template.replace(/\{(\w+)\}/g, (_, p: string) => values[p]!);
  if (patch("route").shape === "trailingSlash") path += "/";

  // B. Headers: decoration, key, Idempotency-Key, content type, unreadable header last.
  const headers: Record<string, string> = {};
  const put = (more: Record<string, string | undefined> | undefined) => {
    for (const [name, value] of Object.entries(more ?? {})) if (value !== undefined) headers[name] = value;
  };
  put(patch("header").headers === undefined || has("header") ? undefined : patch("header").headers);
  put(patch("auth").headers);
  put(patch("idempotency").headers);

  // C. Body: the route's, replaced by an oversize one; GET routes get a body that must be ignored.
  let body: Hostile["body"];
  let contentType: string | undefined;
  if (isWebhook) {
    body = hook!.body;
    contentType = hook!.contentType;
    if (hook!.signature !== undefined) headers["stripe-signature"] = hook!.signature;
  } else if (readsBody) {
    body = patch("body").body;
    contentType = patch("contentType").contentType;
    if (has("contentType") && (body === undefined || Buffer.from(body as never).byteLength === 0)) body = "{}";
  } else {
    body = decor.getBody;
    contentType = decor.getContentType;
  }
  if (has("size")) body = patch("size").body;
  if (contentType !== undefined) headers["content-type"] = contentType;
  if (has("header")) put(patch("header").headers);

  // D. Query: the route's, or junk it ignores.
  const query = queryString(patch("query").query ?? decor.junkQuery);

  // E. The answer, by the edge's precedence.
  const sendsBody = !["GET", "HEAD"].includes(method) && body !== undefined;
  const expected = ((): Expected => {
    if (has("header")) return { status: 400, code: "validation_error", fields: patch("header").names! };
    if (!isWebhook && has("auth")) return { status: 401, code: "unauthorized" };
    if (has("size") && sendsBody) return { status: 413, code: "payload_too_large" };
    if (has("route")) return { status: 404, code: "not_found" };
    if (isWebhook) return { status: 400, code: "invalid_signature" };
    if (has("path")) return { status: 400, code: "validation_error", fields: patch("path").names! };
    if (readsBody && has("contentType")) return { status: 415, code: "unsupported_media_type" };
    if (readsBody && has("body")) return { status: 400, code: "validation_error", fields: patch("body").names! };
    if (has("query")) return { status: 400, code: "validation_error", fields: patch("query").names! };
    if (has("idempotency")) return { status: 400, code: "validation_error", fields: ["Idempotency-Key"] };
    throw new Error(`generator bug: a request to ${route} without a defect that decides its answer (${defects.join(", ")})`);
  })();

  return { fn, routeKey: route, method, path, query, headers, body, base64: decor.base64, defects, expected };
}

/** Requests to the `$default` route (no route matched): any method, path, body and headers -> 404 (400 for an unreadable header). */
const defaultRouteRequests: fc.Arbitrary<Hostile> = fc
  .record({
    method: fc.constantFrom(...METHODS),
    segments: fc.array(fc.oneof(someText(10).map(encode), malformedSegment), { maxLength: 5 }),
    body: fc.option(fc.oneof(fc.json({ maxDepth: 2 }), invalidJsonText.map((b) => b as string | Buffer), fc.constant<Oversize>({ oversize: "ascii" })), { nil: undefined }),
    authorization: fc.option(fc.oneof(goodAuthorization, badAuthorization.filter((a): a is string => a !== undefined)), { nil: undefined }),
    unreadable: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: unreadableHeader }),
    base64: fc.boolean(),
  })
  .map(({ method, segments, body, authorization, unreadable, base64 }) => ({
    fn: "notFound" as const,
    routeKey: "$default",
    method,
    path: `/nope/${segments.join("/")}`,
    query: "",
    headers: { ...(authorization ? { authorization } : {}), ...(unreadable ? { [unreadable.name]: unreadable.value } : {}) },
    body,
    base64,
    defects: ["route" as Defect, ...(unreadable ? (["header"] as Defect[]) : [])],
    expected: unreadable ? { status: 400, code: "validation_error" as const, fields: [unreadable.name] } : { status: 404, code: "not_found" as const },
  }));

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

let table: Awaited<ReturnType<typeof createTestDb>>;
let seeded: Seeded;
let tableBefore: string[];
/** Hostile requests sent, per route, and per route and expected status. */
const sent: Record<string, number> = {};
const statuses: Record<string, Record<number, number>> = {};

/** Counts a hostile request to `route`. */
function count(route: string, request: Hostile): void {
  sent[route] = (sent[route] ?? 0) + 1;
  const byStatus = (statuses[route] ??= {});
  byStatus[request.expected.status] = (byStatus[request.expected.status] ?? 0) + 1;
}

/** The API Gateway v2 event of a request, path and query kept byte for byte. */
function eventOf(request: Pick<Hostile, "method" | "path" | "query" | "headers" | "body" | "base64" | "routeKey">): APIGatewayProxyEventV2 {
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
interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** Sends a request to a function's Lambda handler. */
async function send(fn: HttpFunctionName, request: Parameters<typeof eventOf>[0]): Promise<Answer> {
  const result = await HANDLERS[fn](eventOf(request), localLambdaContext("fuzz"));
  const text = result.isBase64Encoded ? Buffer.from(result.body ?? "", "base64").toString("utf8") : (result.body ?? "");
  return { status: result.statusCode ?? 200, contentType: String(result.headers?.["content-type"] ?? ""), text };
}

/** Checks that no stack trace, API key, webhook secret or table name shows in a body. */
function expectNoLeak(text: string): void {
  expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
  expect(text).not.toContain("node_modules");
  expect(text).not.toContain(".ts:");
  for (const secret of [...API_KEYS, WEBHOOK_SECRET, table.tableName]) expect(text).not.toContain(secret);
}

/** Checks that `answer` is exactly the documented error `expected`. */
function expectDocumentedError(answer: Answer, expected: Expected, context: string): void {
  expect(answer.status, context).toBe(expected.status);
  expect(answer.contentType, context).toMatch(/^application\/json\b/);
  let body: any;
  expect(() => (body = JSON.parse(answer.text)), `${context}: body is not JSON: ${answer.text.slice(0, 200)}`).not.toThrow();
  expect(Object.keys(body), context).toEqual(["error"]);
  const { error } = body;
  expect(Object.keys(error).filter((key) => !["code", "message", "details"].includes(key)), context).toEqual([]);
  expect(DOCUMENTED_CODES, context).toContain(error.code);
  expect(error.code, `${context}: ${answer.text.slice(0, 300)}`).toBe(expected.code);
  expect(STATUS_OF[error.code as ErrorCode], context).toBe(answer.status);
  expect(typeof error.message, context).toBe("string");
  if ("details" in error) expect(error.details !== null && typeof error.details === "object" && !Array.isArray(error.details), context).toBe(true);
  if (error.code === "validation_error") {
    const named = Object.keys(error.details ?? {});
    expect(named.length, `${context}: a 400 names no field`).toBeGreaterThan(0);
    if (expected.fields) {
      const wanted = expected.fields;
      const matches = named.some((name) => wanted.some((field) => name === field || name.startsWith(`${field}.`)));
      expect(matches, `${context}: details ${JSON.stringify(error.details)} name none of ${JSON.stringify(wanted)}`).toBe(true);
    }
  }
  expectNoLeak(answer.text);
}

/** Short description of a request for assertion messages (bodies cut). */
function describeRequest(request: Hostile): string {
  const body = request.body === undefined ? "" : typeof request.body === "object" && !Buffer.isBuffer(request.body) ? `<${request.body.oversize} over 1 MB>` : String(request.body).slice(0, 120);
  return `${request.method} ${request.path.slice(0, 160)}?${request.query.slice(0, 120)} defects=${request.defects.join(",")} body=${JSON.stringify(body)}`;
}

/** Every item of the table, ConsistentRead, in a stable order. */
async function scanTable(): Promise<string[]> {
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

/** Calls a route with a valid request and the first key; the answer must be `status`. */
async function seedCall(fn: HttpFunctionName, method: string, path: string, body: unknown, status: number, headers: Record<string, string> = {}): Promise<any> {
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

async function seed(): Promise<Seeded> {
  const users = ["auth0|123", "alice@example.com"];
  const put = (offerId: string, offer: object) => seedCall("offers", "PUT", `/offers/${offerId}`, offer, 200);
  await put("calls-100", anOffer({ prices: [{ amount: 1000, currency: "usd" }, { amount: 900, currency: "eur" }], quantityLimit: 10, tags: ["calls"] }));
  await put("free-trial", anOffer({ offerGroup: "trial", tokenCount: 10, prices: [{ amount: 0, currency: "usd" }] }));
  await put("vip-calls", anOffer({ offerGroup: "vip", unlockedBy: ["calls"], prices: [{ amount: 500, currency: "usd" }] }));
  await put("calls-bundle", anOffer({ offerGroup: "bundle", tokenCount: 0, combinedItems: [{ offerId: "calls-100", quantity: 2 }] }));

  const orderIds: string[] = [];
  const events: string[] = [];
  for (const user of users) {
    const path = `/users/${encode(user)}`;
    const paid = await seedCall("orders", "POST", `${path}/orders`, { offerId: "calls-100", quantity: 2 }, 201, { "idempotency-key": `seed-${user}` });
    await seedCall("orders", "POST", `${path}/orders/${paid.order.orderId}/confirm`, undefined, 200);
    const pending = await seedCall("orders", "POST", `${path}/orders`, { offerId: "calls-100", currency: "eur" }, 201);
    orderIds.push(paid.order.orderId, pending.order.orderId);
    await seedCall("orders", "POST", `${path}/orders`, { offerId: "free-trial" }, 201);
    await seedCall("consumption", "POST", `${path}/consumptions`, { offerGroup: "calls", tokens: 60, metadata: { callId: "c-77" } }, 201, { "idempotency-key": `consume-${user}` });
    await seedCall("credits", "POST", `${path}/grants`, { offerGroup: "calls", tokens: 50, expires: new Date(Date.now() + 30 * 86_400_000).toISOString(), reason: "support gesture" }, 201);
    await seedCall("expiry", "POST", `${path}/expiry-check`, { low: [{ offerGroup: "calls", min: 1000 }] }, 200);
    // Forged Stripe events about the user's orders: a payment of the pending order, a refund of the paid one.
    const metadata = (orderId: string) => ({ orderId, userId: user });
    events.push(
      JSON.stringify(stripeEvent("payment_intent.succeeded", { id: "pi_forged", object: "payment_intent", amount: 900, amount_received: 900, currency: "eur", status: "succeeded", metadata: metadata(pending.order.orderId) })),
      JSON.stringify(stripeEvent("checkout.session.completed", { id: "cs_forged", object: "checkout.session", payment_status: "paid", amount_total: 900, currency: "eur", metadata: metadata(pending.order.orderId) })),
      JSON.stringify(stripeEvent("charge.refunded", { id: "ch_forged", object: "charge", amount_refunded: 2000, currency: "usd", metadata: metadata(paid.order.orderId) })),
    );
  }
  // A correctly signed delivery about no order: applied as "ignored".
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

  const cursors: Seeded["cursors"] = { orders: {}, ledger: {} };
  for (const user of users) {
    for (const list of ["orders", "ledger"] as const) {
      const page = await seedCall(list === "orders" ? "orders" : "credits", "GET", `/users/${encode(user)}/${list}?limit=1`, undefined, 200);
      expect(page.cursor, `a second page of ${user}'s ${list}`).toEqual(expect.any(String));
      cursors[list][user] = page.cursor;
    }
  }
  return { users, offerIds: ["calls-100", "free-trial", "vip-calls", "calls-bundle"], orderIds, cursors, events };
}

beforeAll(async () => {
  table = await createTestDb("fuzz");
  setRuntime(buildRuntime({ apiKeys: [...API_KEYS], stripeWebhookSecret: WEBHOOK_SECRET, defaultCurrency: "usd", tableName: table.tableName, dynamoEndpoint: table.endpoint }));
  seeded = await seed();
  tableBefore = await scanTable();
});

afterAll(() => {
  setRuntime(undefined);
  const total = Object.values(sent).reduce((a, b) => a + b, 0);
  const lines = Object.entries(sent).map(([route, n]) => {
    const byStatus = Object.entries(statuses[route] ?? {}).map(([status, k]) => `${status}: ${k}`).join(", ");
    return `  ${String(n).padStart(5)}  ${route.padEnd(46)} (${byStatus})`;
  });
  console.log(`hostile requests per route:\n${lines.join("\n")}\n  ${String(total).padStart(5)}  total`);
});

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

describe("hostile input", () => {
  it.each(ROUTES.map((r, i) => [r.route, r.fn, i] as const))(
    "%s answers every hostile request with its documented 4xx JSON error",
    async (route, fn, index) => {
      const arbitrary = hostileRequests(route, fn, routeSpecs(seeded)[route], seeded);
      await fc.assert(
        fc.asyncProperty(arbitrary, async (request) => {
          count(route, request);
          const answer = await send(fn, request);
          expectDocumentedError(answer, request.expected, describeRequest(request));
        }),
        { seed: SEED + index, numRuns: RUNS_PER_ROUTE },
      );
    },
  );

  it("answers requests no route matches with a JSON 404", async () => {
    await fc.assert(
      fc.asyncProperty(defaultRouteRequests, async (request) => {
        count("$default", request);
        expectDocumentedError(await send("notFound", request), request.expected, describeRequest(request));
      }),
      { seed: SEED + ROUTES.length, numRuns: RUNS_DEFAULT_ROUTE },
    );
  });
});

describe("access", () => {
  const protectedRoutes = ROUTES.filter((r) => !UNAUTHENTICATED_ROUTES.includes(r.route));

  /** A request to `route` that would succeed (or be refused by core) with a valid key. */
  function validRequest(route: RouteKey): { method: string; path: string; query: string; body?: string } {
    const [method, template] = route.split(" ") as [string, string];
    const path = template
      .replace("{userId}", encode(seeded.users[0]!))
      .replace("{offerId}", "calls-100")
      .replace("{orderId}", seeded.orderIds[1]!)
      .replace("{offerGroup}", "calls");
    const bodies: Partial<Record<RouteKey, object>> = {
      "PUT /offers/{offerId}": anOffer(),
      "POST /users/{userId}/orders": { offerId: "calls-100" },
      "POST /users/{userId}/consumptions": { offerGroup: "calls", tokens: 1 },
      "POST /users/{userId}/grants": { offerGroup: "calls", tokens: 1_000_000 },
      "POST /users/{userId}/expiry-check": {},
      "PUT /offer-groups/{offerGroup}": { lowBalanceThreshold: 10 },
    };
    const body = bodies[route];
    return { method, path, query: "", ...(body ? { body: JSON.stringify(body) } : method === "POST" ? { body: "{}" } : {}) };
  }

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
    ["both keys at once", `Bearer ${API_KEYS.join(",")}`],
    ["the webhook secret", `Bearer ${WEBHOOK_SECRET}`],
    ["the key behind a zero-width space", `Bearer \u200b${API_KEYS[0]}`],
  ];

  it.each(protectedRoutes.map((r) => [r.route, r.fn] as const))("%s answers 401 to a missing, wrong or near-miss key", async (route, fn) => {
    for (const [why, authorization] of refused) {
      const request = { ...validRequest(route), routeKey: route, base64: false, headers: { "content-type": "application/json", ...(authorization === undefined ? {} : { authorization }) } };
      expectDocumentedError(await send(fn, request), { status: 401, code: "unauthorized" }, `${route} with ${why}`);
    }
  });

  it.each(protectedRoutes.map((r) => [r.route, r.fn] as const))("%s takes either key of a rotation", async (route, fn) => {
    for (const key of API_KEYS) {
      const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
      const request = { ...validRequest(route), routeKey: route, base64: false, headers };
      if (request.method === "GET") {
        // Reads: the real answer.
        const answer = await send(fn, request);
        expect(answer.status, `${route} with key ${key}: ${answer.text.slice(0, 200)}`).toBe(200);
        expectNoLeak(answer.text);
      } else {
        // Writes: an invalid body shows the key was accepted (400, not 401) and writes nothing.
        const answer = await send(fn, { ...request, body: "{not json" });
        expectDocumentedError(answer, { status: 400, code: "validation_error", fields: ["body"] }, `${route} with key ${key}`);
      }
    }
  });

  it("does not take an API key for a Stripe signature on the webhook", async () => {
    const body = seeded.events[0]!;
    for (const key of API_KEYS) {
      const answer = await send("webhook", { method: "POST", path: "/webhooks/stripe", query: "", routeKey: "POST /webhooks/stripe", base64: false, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });
      expectDocumentedError(answer, { status: 400, code: "invalid_signature" }, `webhook with API key ${key}`);
    }
  });
});

describe("after the hostile requests", () => {
  it("every route was sent its share, and the table is exactly as seeded", async () => {
    for (const { route } of ROUTES) expect(sent[route] ?? 0, route).toBeGreaterThanOrEqual(RUNS_PER_ROUTE);
    expect(await scanTable()).toEqual(tableBefore);
  });
});
