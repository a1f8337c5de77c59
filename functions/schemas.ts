/**
 * Request schemas of the HTTP API, one per body, path and query (API.md). Field limits
 * keep every number a safe integer and every id a valid key.
 *
 * Written with `zod/mini` (zod 4's functional, tree-shakable API over the same core as
 * classic `zod`): the HTTP functions' bundles then carry neither classic zod's method
 * chains nor its JSON Schema code, and every schema validates and words its issues as the
 * classic one did (`z.number().int("m")` is `z.number().check(z.int("m"))`, `.default(v)`
 * is `z._default(schema, v)`, `.transform(f)` is `z.pipe(schema, z.transform(f))`).
 * Each schema is built through {@link schema}, marked free of side effects, so that a
 * Lambda bundle builds (and carries) only the schemas its handler uses.
 */
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { MAX_TOKENS } from "../core/rules/balance-state.js";
import { CYCLES } from "../core/rules/cycles.js";
import { notRenewable, RENEWALS, RENEWAL_REFUSALS } from "../core/rules/renewal.js";
import { MAX_HOLD_SECONDS, MIN_HOLD_SECONDS, RESERVATION_STATUSES } from "../core/rules/holds.js";
import { DAY_MS } from "../core/rules/time.js";
import { MAX_PER_MONTH_LIMIT } from "../core/rules/top-up.js";
import { MAX_PORTAL_TTL_SECONDS, MIN_PORTAL_TTL_SECONDS } from "../core/rules/portal.js";

/**
 * zod's English messages ("Invalid input: expected string, received number", "Unrecognized
 * key: ..."), which the API answers with. Classic `zod` installs them when its first schema
 * is built; `zod/mini` installs none (every default message would read "Invalid input").
 * Process-wide: zod keeps one configuration for all its entry points.
 */
z.config(en());

/**
 * Returns `build()`: a schema built at import. Marked `@__NO_SIDE_EFFECTS__` (esbuild, as SST
 * bundles, and Rollup honour it), so that a bundle drops every schema its handler does not
 * reach; building one only allocates.
 */
// @__NO_SIDE_EFFECTS__
function schema<T>(build: () => T): T {
  return build();
}

/** Largest token count in one request (core's limit per grant and on debt). */
export { MAX_TOKENS };
/** Largest price amount, in minor units. */
export const MAX_AMOUNT = 1_000_000_000_000;
/** Largest consumption metadata, as JSON (it is stored on the ledger entry; DynamoDB items hold 400 KB). */
export const MAX_METADATA_BYTES = 4096;
/** Largest quantity in one order. */
export const MAX_QUANTITY = 1_000_000;
/** Deepest nesting of consumption metadata (DynamoDB refuses items nested over 32 levels; the metadata sits inside the ledger entry and the idempotency record). */
export const MAX_METADATA_DEPTH = 8;

/** Free text: any string but lone UTF-16 surrogates, which are not Unicode and cannot be stored as UTF-8. */
const text = () => z.string().check(z.regex(/^[^\p{Cs}]*$/u, "must be well-formed Unicode (no lone surrogates)"));

/** Operator-chosen ids: offer ids and offerGroups (`[A-Za-z0-9_.:-]{1,64}`). */
export const operatorId = schema(() => z.string().check(z.regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must match [A-Za-z0-9_.:-]{1,64}")));

/** User ids: the customer's own ids, 1-128 printable characters (emails, `auth0|123`). */
export const userId = schema(() =>
  z
    .string()
    .check(z.minLength(1, "must not be empty"), z.maxLength(128, "must be at most 128 characters"), z.regex(/^[^\p{C}]+$/u, "must be printable characters")),
);

/** Generated ids (ULIDs). */
export const generatedId = schema(() => z.string().check(z.regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "must be a ULID")));

/** Lowercase ISO 4217 currency code. */
export const currency = schema(() => z.string().check(z.regex(/^[a-z]{3}$/, "must be a lowercase ISO 4217 code")));

/** An ISO 8601 instant with a zone (`2026-11-23T10:00:00.000Z`). */
export const instant = schema(() => z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" }));

/**
 * An integer number within `[min, max]` (classic `z.number().int(message).min(min).max(max)`:
 * the integer check is zod's `safeint` format, added as a check, so that a non-number is
 * still "expected number"). `messages` words the integer, lower and upper bound issues;
 * zod's English ones where left out.
 */
const integer = (min: number, max: number, messages: { int?: string; min?: string; max?: string } = {}) =>
  z.number().check(z.int(messages.int), z.gte(min, messages.min), z.lte(max, messages.max));

/** A token count of one request: an integer, 1 to {@link MAX_TOKENS}. */
const tokens = schema(() => integer(1, MAX_TOKENS, { int: "must be an integer", min: "must be >= 1", max: `must be <= ${MAX_TOKENS}` }));

/** `PUT /offers/{offerId}` body. */
export const offerBody = schema(() =>
  z
    .strictObject({
      name: text().check(z.minLength(1), z.maxLength(200)),
      kind: z._default(z.enum(["tokens", "subscription", "expertise"]), "tokens"),
      offerGroup: operatorId,
      cycle: z.enum(CYCLES),
      customCycleSeconds: z._default(z.nullable(integer(1, 100 * 366 * 86_400)), null),
      appendDate: z._default(z.boolean(), false),
      renewal: z._default(z.enum(RENEWALS), "none"),
      tokenCount: integer(0, MAX_TOKENS, { int: "must be an integer" }),
      prices: z
        .array(z.strictObject({ amount: integer(0, MAX_AMOUNT, { int: "must be an integer in minor units" }), currency }))
        .check(
          z.minLength(1, "needs at least one price"),
          z.maxLength(50),
          z.refine((prices) => new Set(prices.map((p) => p.currency)).size === prices.length, "one price per currency"),
        ),
      quantityLimit: z._default(z.nullable(integer(1, MAX_QUANTITY)), null),
      tags: z._default(z.array(text().check(z.minLength(1), z.maxLength(64))).check(z.maxLength(50)), []),
      unlockedBy: z._default(z.array(operatorId).check(z.maxLength(50)), []),
      overridingKey: z._default(z.nullable(text().check(z.minLength(1), z.maxLength(64))), null),
      weight: z._default(integer(-1_000_000, 1_000_000), 0),
      popular: z._default(integer(0, 1_000_000), 0),
      combinedItems: z._default(
        z.array(z.strictObject({ offerId: operatorId, quantity: integer(1, MAX_QUANTITY) })).check(z.maxLength(30, "at most 30 bundle items")),
        [],
      ),
      active: z._default(z.boolean(), true),
    })
    .check(
      z.superRefine((offer, ctx) => {
        if (offer.cycle === "custom" && offer.customCycleSeconds === null) {
          ctx.addIssue({ code: "custom", path: ["customCycleSeconds"], message: "required when cycle is custom" });
        }
        const notRenewing = offer.renewal === "auto" ? notRenewable(offer) : undefined;
        if (notRenewing) ctx.addIssue({ code: "custom", path: ["renewal"], message: RENEWAL_REFUSALS[notRenewing] });
      }),
    ),
);

/** `PUT /offer-groups/{offerGroup}` body. */
export const offerGroupBody = schema(() =>
  z.strictObject({
    lowBalanceThreshold: z._default(z.nullable(integer(0, MAX_TOKENS, { int: "must be an integer" })), null),
    expiryWarningDays: z._default(integer(0, 366, { int: "must be an integer" }), 7),
  }),
);

/** `"true"` or `"false"` in a query, read as a boolean (absent: false). */
const queryFlag = () =>
  z.pipe(
    z.optional(z.enum(["true", "false"])),
    z.transform((value: "true" | "false" | undefined) => value === "true"),
  );

/** `GET /offers` query. */
export const offerQuery = schema(() =>
  z.strictObject({
    userId: z.optional(userId),
    tags: z.pipe(
      z.optional(z.string()),
      z.transform((value: string | undefined) => (value ? value.split(",").map((tag) => tag.trim()).filter(Boolean) : [])),
    ),
    allTags: queryFlag(),
    all: queryFlag(),
    currency: z.optional(currency),
  }),
);

/**
 * A return URL (Checkout's, the portal's "back" link): well-formed Unicode, an http(s) URL
 * (never `javascript:` or `data:`, which a page would follow), at most 2048 characters.
 */
const returnUrl = () => z.pipe(text(), z.url({ protocol: /^https?$/ }).check(z.maxLength(2048)));

/** `POST /users/{userId}/orders` body. */
export const orderBody = schema(() =>
  z.strictObject({
    offerId: operatorId,
    quantity: z._default(integer(1, MAX_QUANTITY, { int: "must be an integer", min: "must be >= 1" }), 1),
    currency: z.optional(currency),
    starts: z.optional(z.nullable(instant)),
    checkout: z.optional(z.strictObject({ successUrl: returnUrl(), cancelUrl: returnUrl() })),
  }),
);

/**
 * Why a JSON value cannot be stored as a DynamoDB attribute, or undefined when it can:
 * nesting deeper than `depth` levels, an empty or lone-surrogate key, a lone-surrogate
 * string, or a number the DynamoDB marshaller or DynamoDB refuses (beyond the safe
 * integers, or closer to 0 than 1e-130).
 */
function unstorable(value: unknown, depth: number): string | undefined {
  if (typeof value === "string") return /\p{Cs}/u.test(value) ? "strings must be well-formed Unicode (no lone surrogates)" : undefined;
  if (typeof value === "number") {
    const size = Math.abs(value);
    return size > Number.MAX_SAFE_INTEGER || (size !== 0 && size < 1e-130) ? "numbers must be within ±(2^53 - 1) and 0 or at least 1e-130 in size" : undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  if (depth <= 0) return `must be nested at most ${MAX_METADATA_DEPTH} levels deep`;
  for (const [key, item] of Object.entries(value)) {
    if (!Array.isArray(value) && (key === "" || /\p{Cs}/u.test(key))) return "keys must be non-empty, well-formed Unicode";
    const reason = unstorable(item, depth - 1);
    if (reason) return reason;
  }
  return undefined;
}

/**
 * Object keys that cannot be stored as sent, at any depth of free-form JSON (consumption
 * metadata), found by reading `@aws-sdk/util-dynamodb`, which the DynamoDB document client
 * (`@aws-sdk/lib-dynamodb`, under ElectroDB) uses both ways:
 * - `constructor`: `convertToAttr` picks an object's DynamoDB type from
 *   `value.constructor.name`, so an own `constructor` key makes the object unmarshallable
 *   ("Unsupported type passed", 500) or, with `{"name":"String"}`, stores it as the string
 *   `"[object Object]"`;
 * - `__proto__`: every copy (zod's record, the marshaller's `map[key] = ...`, `unmarshall`'s
 *   `acc[key] = ...`) sets the prototype instead of a key, so it is dropped or the write
 *   fails ("Supplied AttributeValue is empty", 500).
 * The other `Object.prototype` members (`toString`, `hasOwnProperty`, ...) are plain data
 * keys to all of them and round-trip exactly.
 */
export const UNSTORABLE_KEYS: readonly string[] = ["__proto__", "constructor"];

/**
 * The paths of the keys of the RAW parsed JSON `value` named in {@link UNSTORABLE_KEYS},
 * down to `depth` levels (deeper values are refused for their depth anyway).
 */
function unstorableKeyPaths(value: unknown, depth: number, path: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== "object" || depth <= 0) return [];
  const found: Array<Array<string | number>> = [];
  for (const key of Object.keys(value)) {
    const at = [...path, Array.isArray(value) ? Number(key) : key];
    if (!Array.isArray(value) && UNSTORABLE_KEYS.includes(key)) found.push(at);
    found.push(...unstorableKeyPaths((value as Record<string, unknown>)[key], depth - 1, at));
  }
  return found;
}

/**
 * Free-form JSON metadata, stored exactly as sent or refused: a JSON object whose keys
 * and values DynamoDB can hold (see `unstorable`), with no key in {@link UNSTORABLE_KEYS}.
 * Those keys are looked for on the raw parsed value, before zod's record copy drops a
 * top-level `__proto__`; each is named in its own issue (`metadata.a.constructor`). A
 * preprocessing step (classic `z.preprocess`): a transform piped into the record, so that
 * the document's input schema is the record's.
 */
const freeFormJson = () =>
  z.pipe(
    z.transform((value: unknown, payload) => {
      for (const path of unstorableKeyPaths(value, MAX_METADATA_DEPTH)) {
        payload.issues.push({ code: "custom", path, input: value, message: `a key named ${String(path.at(-1))} cannot be stored; rename it` });
      }
      return value;
    }),
    z.record(z.string().check(z.maxLength(128)), z.unknown()).check(
      z.superRefine((metadata, ctx) => {
        // Depth first: JSON.stringify overflows the stack on very deep values.
        const reason =
          unstorable(metadata, MAX_METADATA_DEPTH) ??
          (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES ? `must be at most ${MAX_METADATA_BYTES} bytes of JSON` : undefined);
        if (reason) ctx.addIssue({ code: "custom", message: reason });
      }),
    ),
  );

/** Body of routes that take none (`confirm`, `pay`): absent, or an empty JSON object. */
export const emptyBody = schema(() => z.strictObject({}));

/** `POST /users/{userId}/orders/{orderId}/refund` body (API.md). */
export const refundBody = schema(() =>
  z.strictObject({
    mode: z.enum(["unused", "full"]),
    reason: z.optional(text().check(z.minLength(1), z.maxLength(500))),
  }),
);

/** `POST /users/{userId}/consumptions` body. */
export const consumptionBody = schema(() =>
  z.strictObject({
    offerGroup: operatorId,
    tokens,
    allowOverdraft: z._default(z.boolean(), false),
    metadata: z.optional(freeFormJson()),
  }),
);

/** `POST /users/{userId}/reservations` body (API.md "Reservations": `ttlSeconds` 1 to 86400, default 300). */
export const holdBody = schema(() =>
  z.strictObject({
    offerGroup: operatorId,
    tokens,
    ttlSeconds: z.optional(integer(MIN_HOLD_SECONDS, MAX_HOLD_SECONDS, { int: "must be an integer", min: `must be >= ${MIN_HOLD_SECONDS}`, max: `must be <= ${MAX_HOLD_SECONDS}` })),
    metadata: z.optional(freeFormJson()),
  }),
);

/** `POST /users/{userId}/reservations/{reservationId}/commit` body: the tokens used, 0 (nothing used) to {@link MAX_TOKENS}. */
export const commitBody = schema(() =>
  z.strictObject({
    tokens: integer(0, MAX_TOKENS, { int: "must be an integer", min: "must be >= 0", max: `must be <= ${MAX_TOKENS}` }),
    allowOverdraft: z._default(z.boolean(), false),
    metadata: z.optional(freeFormJson()),
  }),
);

/** `POST /users/{userId}/consumptions/{entryId}/reverse` body: `tokens` left out reverses all that is left. */
export const reversalBody = schema(() =>
  z.strictObject({
    tokens: z.optional(tokens),
    reason: z.optional(text().check(z.minLength(1), z.maxLength(500))),
  }),
);

/** `POST /users/{userId}/grants` body. */
export const grantBody = schema(() =>
  z.strictObject({
    offerGroup: operatorId,
    tokens,
    expires: z._default(z.nullable(instant), null),
    reason: z.optional(text().check(z.maxLength(500))),
  }),
);

/** `POST /users/{userId}/expiry-check` body. */
export const expiryCheckBody = schema(() =>
  z.strictObject({
    warnMs: z.optional(integer(0, 10 * 366 * DAY_MS)),
    low: z.optional(z.array(z.strictObject({ offerGroup: operatorId, min: integer(0, MAX_TOKENS) })).check(z.maxLength(100))),
  }),
);

/** True when `cursor` has the shape of a page cursor: base64url JSON `{ pk, sk }`, both non-empty strings. */
function isCursor(cursor: string): boolean {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return false;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (key === null || typeof key !== "object" || Array.isArray(key)) return false;
    const entries = Object.entries(key);
    return (
      entries.length === 2 &&
      entries.every(([name, value]) => (name === "pk" || name === "sk") && typeof value === "string" && value.length > 0 && !/\p{Cs}/u.test(value))
    );
  } catch {
    return false;
  }
}

/** Pagination query (`limit` 1-1000, default 100; `cursor`, as returned by the previous page). */
export const pageQuery = {
  limit: schema(() => z._default(z.coerce.number().check(z.int("must be an integer"), z.gte(1), z.lte(1000)), 100)),
  cursor: schema(() =>
    z.optional(z.string().check(z.minLength(1), z.maxLength(2048), z.refine(isCursor, "is not a cursor returned by this list"))),
  ),
};

/** `GET /users/{userId}/ledger` query (`from` inclusive, `to` exclusive, `from` <= `to`). */
export const ledgerQuery = schema(() =>
  z
    .strictObject({
      offerGroup: z.optional(operatorId),
      from: z.optional(instant),
      to: z.optional(instant),
      ...pageQuery,
    })
    .check(
      z.superRefine((query, ctx) => {
        if (query.from && query.to && Date.parse(query.from) > Date.parse(query.to)) {
          ctx.addIssue({ code: "custom", path: ["to"], message: "must not be before from" });
        }
      }),
    ),
);

/** The ledger filter core reads (core/ledger.ts `listLedger`) from a validated {@link ledgerQuery}: `from`/`to` as UTC ISO instants. */
export function ledgerFilter<Q extends { from?: string | undefined; to?: string | undefined }>(query: Q): Q {
  const iso = (at: string | undefined) => (at ? new Date(at).toISOString() : undefined);
  return { ...query, from: iso(query.from), to: iso(query.to) };
}

/** `GET /users/{userId}/events` query. */
export const eventListQuery = schema(() => z.strictObject({ ...pageQuery }));

/** `GET /users/{userId}/reservations` query. */
export const reservationListQuery = schema(() =>
  z.strictObject({ offerGroup: z.optional(operatorId), status: z.optional(z.enum(RESERVATION_STATUSES)), ...pageQuery }),
);

/** `GET /users/{userId}/orders` query. */
export const orderListQuery = schema(() => z.strictObject({ ...pageQuery }));

/** Path parameters of `/users/{userId}/...`. */
export const userPath = schema(() => z.strictObject({ userId }));
/** Path parameters of `/offer-groups/{offerGroup}`. */
export const offerGroupPath = schema(() => z.strictObject({ offerGroup: operatorId }));
/** Path parameters of `/offers/{offerId}`. */
export const offerPath = schema(() => z.strictObject({ offerId: operatorId }));
/** Path parameters of `/users/{userId}/orders/{orderId}/...`. */
export const userOrderPath = schema(() => z.strictObject({ userId, orderId: generatedId }));
/** `POST /users/{userId}/payment-methods/setup` body: a Checkout Session in setup mode, or (without `checkout`) a SetupIntent's client secret. */
export const paymentMethodSetupBody = schema(() => z.strictObject({ checkout: z.optional(z.strictObject({ successUrl: returnUrl(), cancelUrl: returnUrl() })) }));

/** `DELETE /users/{userId}/subscriptions/{offerId}` body: cancel at the end of the paid period (default) or at once. */
export const cancelSubscriptionBody = schema(() => z.strictObject({ atPeriodEnd: z._default(z.boolean(), true) }));

/** Path parameters of `/users/{userId}/auto-top-up/{offerGroup}`. */
export const userGroupPath = schema(() => z.strictObject({ userId, offerGroup: operatorId }));
/** `PUT /users/{userId}/auto-top-up/{offerGroup}` body (core/auto-top-up.ts). */
export const autoTopUpBody = schema(() =>
  z.strictObject({
    offerId: operatorId,
    threshold: integer(0, MAX_TOKENS),
    maxPerMonth: z.optional(integer(1, MAX_PER_MONTH_LIMIT)),
    enabled: z.optional(z.boolean()),
    currency: z.optional(currency),
  }),
);

/** Path parameters of `/users/{userId}/subscriptions/{offerId}`. */
export const userOfferPath = schema(() => z.strictObject({ userId, offerId: operatorId }));
/** Path parameters of `/users/{userId}/reservations/{reservationId}/...`. */
export const userReservationPath = schema(() => z.strictObject({ userId, reservationId: generatedId }));
/** Path parameters of `/users/{userId}/consumptions/{entryId}/...`. */
export const userEntryPath = schema(() => z.strictObject({ userId, entryId: generatedId }));

/** `POST /users/{userId}/portal-sessions` body (core/portal-sessions.ts). */
export const portalSessionBody = schema(() =>
  z.strictObject({
    returnUrl: z.optional(returnUrl()),
    tags: z.optional(z.array(text().check(z.minLength(1), z.maxLength(64))).check(z.maxLength(50))),
    ttlSeconds: z.optional(integer(MIN_PORTAL_TTL_SECONDS, MAX_PORTAL_TTL_SECONDS)),
  }),
);

/** `POST /portal/api/orders` body: an order the portal's user makes for themself (through Checkout under Stripe). */
export const portalOrderBody = schema(() =>
  z.strictObject({
    offerId: operatorId,
    quantity: z._default(integer(1, MAX_QUANTITY, { int: "must be an integer", min: "must be >= 1" }), 1),
    currency: z.optional(currency),
  }),
);

/** Path parameters of `/portal/api/orders/{orderId}`. */
export const portalOrderPath = schema(() => z.strictObject({ orderId: generatedId }));
/** Path parameters of `/portal/api/subscriptions/{offerId}`. */
export const portalOfferPath = schema(() => z.strictObject({ offerId: operatorId }));
