/**
 * Request schemas (zod) of the HTTP API, one per body, path and query (API.md). Field
 * limits keep every number a safe integer and every id a valid key.
 */
import * as z from "zod";
import { MAX_TOKENS } from "../core/rules/balance-state.js";
import { CYCLES } from "../core/rules/cycles.js";
import { DAY_MS } from "../core/rules/time.js";

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
const text = () => z.string().regex(/^[^\p{Cs}]*$/u, "must be well-formed Unicode (no lone surrogates)");

/** Operator-chosen ids: offer ids and offerGroups (`[A-Za-z0-9_.:-]{1,64}`). */
export const operatorId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must match [A-Za-z0-9_.:-]{1,64}");

/** User ids: the customer's own ids, 1-128 printable characters (emails, `auth0|123`). */
export const userId = z
  .string()
  .min(1, "must not be empty")
  .max(128, "must be at most 128 characters")
  .regex(/^[^\p{C}]+$/u, "must be printable characters");

/** Generated ids (ULIDs). */
export const generatedId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "must be a ULID");

/** Lowercase ISO 4217 currency code. */
export const currency = z.string().regex(/^[a-z]{3}$/, "must be a lowercase ISO 4217 code");

/** An ISO 8601 instant with a zone (`2026-11-23T10:00:00.000Z`). */
export const instant = z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" });

const tokens = z.number().int("must be an integer").min(1, "must be >= 1").max(MAX_TOKENS, `must be <= ${MAX_TOKENS}`);

/** `PUT /offers/{offerId}` body. */
export const offerBody = z
  .strictObject({
    name: text().min(1).max(200),
    kind: z.enum(["tokens", "subscription", "expertise"]).default("tokens"),
    offerGroup: operatorId,
    cycle: z.enum(CYCLES),
    customCycleSeconds: z.number().int().min(1).max(100 * 366 * 86_400).nullable().default(null),
    appendDate: z.boolean().default(false),
    tokenCount: z.number().int("must be an integer").min(0).max(MAX_TOKENS),
    prices: z
      .array(z.strictObject({ amount: z.number().int("must be an integer in minor units").min(0).max(MAX_AMOUNT), currency }))
      .min(1, "needs at least one price")
      .max(50)
      .refine((prices) => new Set(prices.map((p) => p.currency)).size === prices.length, "one price per currency"),
    quantityLimit: z.number().int().min(1).max(MAX_QUANTITY).nullable().default(null),
    tags: z.array(text().min(1).max(64)).max(50).default([]),
    unlockedBy: z.array(operatorId).max(50).default([]),
    overridingKey: text().min(1).max(64).nullable().default(null),
    weight: z.number().int().min(-1_000_000).max(1_000_000).default(0),
    popular: z.number().int().min(0).max(1_000_000).default(0),
    combinedItems: z
      .array(z.strictObject({ offerId: operatorId, quantity: z.number().int().min(1).max(MAX_QUANTITY) }))
      .max(30, "at most 30 bundle items")
      .default([]),
    active: z.boolean().default(true),
  })
  .superRefine((offer, ctx) => {
    if (offer.cycle === "custom" && offer.customCycleSeconds === null) {
      ctx.addIssue({ code: "custom", path: ["customCycleSeconds"], message: "required when cycle is custom" });
    }
  });

/** `PUT /offer-groups/{offerGroup}` body. */
export const offerGroupBody = z.strictObject({
  lowBalanceThreshold: z.number().int("must be an integer").min(0).max(MAX_TOKENS).nullable().default(null),
  expiryWarningDays: z.number().int("must be an integer").min(0).max(366).default(7),
});

/** `GET /offers` query. */
export const offerQuery = z.strictObject({
  userId: userId.optional(),
  tags: z
    .string()
    .optional()
    .transform((value) => (value ? value.split(",").map((tag) => tag.trim()).filter(Boolean) : [])),
  allTags: z.enum(["true", "false"]).optional().transform((value) => value === "true"),
  all: z.enum(["true", "false"]).optional().transform((value) => value === "true"),
  currency: currency.optional(),
});

/** `POST /users/{userId}/orders` body. */
export const orderBody = z.strictObject({
  offerId: operatorId,
  quantity: z.number().int("must be an integer").min(1, "must be >= 1").max(MAX_QUANTITY).default(1),
  currency: currency.optional(),
  starts: instant.nullable().optional(),
  checkout: z.strictObject({ successUrl: text().pipe(z.url().max(2048)), cancelUrl: text().pipe(z.url().max(2048)) }).optional(),
});

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
 * top-level `__proto__`; each is named in its own issue (`metadata.a.constructor`).
 */
const freeFormJson = () =>
  z.preprocess(
    (value, ctx) => {
      for (const path of unstorableKeyPaths(value, MAX_METADATA_DEPTH)) {
        ctx.addIssue({ code: "custom", path, input: value, message: `a key named ${String(path.at(-1))} cannot be stored; rename it` });
      }
      return value;
    },
    z.record(z.string().max(128), z.unknown()).superRefine((metadata, ctx) => {
      // Depth first: JSON.stringify overflows the stack on very deep values.
      const reason =
        unstorable(metadata, MAX_METADATA_DEPTH) ??
        (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES ? `must be at most ${MAX_METADATA_BYTES} bytes of JSON` : undefined);
      if (reason) ctx.addIssue({ code: "custom", message: reason });
    }),
  );

/** Body of routes that take none (`confirm`, `pay`): absent, or an empty JSON object. */
export const emptyBody = z.strictObject({});

/** `POST /users/{userId}/orders/{orderId}/refund` body (API.md). */
export const refundBody = z.strictObject({
  mode: z.enum(["unused", "full"]),
  reason: text().min(1).max(500).optional(),
});

/** `POST /users/{userId}/consumptions` body. */
export const consumptionBody = z.strictObject({
  offerGroup: operatorId,
  tokens,
  allowOverdraft: z.boolean().default(false),
  metadata: freeFormJson().optional(),
});

/** `POST /users/{userId}/grants` body. */
export const grantBody = z.strictObject({
  offerGroup: operatorId,
  tokens,
  expires: instant.nullable().default(null),
  reason: text().max(500).optional(),
});

/** `POST /users/{userId}/expiry-check` body. */
export const expiryCheckBody = z.strictObject({
  warnMs: z.number().int().min(0).max(10 * 366 * DAY_MS).optional(),
  low: z.array(z.strictObject({ offerGroup: operatorId, min: z.number().int().min(0).max(MAX_TOKENS) })).max(100).optional(),
});

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
  limit: z.coerce.number().int("must be an integer").min(1).max(1000).default(100),
  cursor: z.string().min(1).max(2048).refine(isCursor, "is not a cursor returned by this list").optional(),
};

/** `GET /users/{userId}/ledger` query (`from` inclusive, `to` exclusive, `from` <= `to`). */
export const ledgerQuery = z
  .strictObject({
    offerGroup: operatorId.optional(),
    from: instant.optional(),
    to: instant.optional(),
    ...pageQuery,
  })
  .superRefine((query, ctx) => {
    if (query.from && query.to && Date.parse(query.from) > Date.parse(query.to)) {
      ctx.addIssue({ code: "custom", path: ["to"], message: "must not be before from" });
    }
  });

/** `GET /users/{userId}/events` query. */
export const eventListQuery = z.strictObject({ ...pageQuery });

/** `GET /users/{userId}/orders` query. */
export const orderListQuery = z.strictObject({ ...pageQuery });

/** Path parameters of `/users/{userId}/...`. */
export const userPath = z.strictObject({ userId });
/** Path parameters of `/offer-groups/{offerGroup}`. */
export const offerGroupPath = z.strictObject({ offerGroup: operatorId });
/** Path parameters of `/offers/{offerId}`. */
export const offerPath = z.strictObject({ offerId: operatorId });
/** Path parameters of `/users/{userId}/orders/{orderId}/...`. */
export const userOrderPath = z.strictObject({ userId, orderId: generatedId });
/** Path parameters of `/users/{userId}/subscriptions/{offerId}`. */
export const userOfferPath = z.strictObject({ userId, offerId: operatorId });
