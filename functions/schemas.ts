/**
 * Request schemas (zod) of the HTTP API, one per body, path and query (API.md). Field
 * limits keep every number a safe integer and every id a valid key.
 */
import { z } from "zod";
import { CYCLES } from "../core/cycles.js";

/** Largest token count in one request (sums of many stay safe integers). */
export const MAX_TOKENS = 1_000_000_000_000;
/** Largest price amount, in minor units. */
export const MAX_AMOUNT = 1_000_000_000_000;
/** Largest consumption metadata, as JSON (it is stored on the ledger entry; DynamoDB items hold 400 KB). */
export const MAX_METADATA_BYTES = 4096;
/** Largest quantity in one order. */
export const MAX_QUANTITY = 1_000_000;

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
    name: z.string().min(1).max(200),
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
    tags: z.array(z.string().min(1).max(64)).max(50).default([]),
    unlockedBy: z.array(operatorId).max(50).default([]),
    overridingKey: z.string().min(1).max(64).nullable().default(null),
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
  checkout: z.strictObject({ successUrl: z.url().max(2048), cancelUrl: z.url().max(2048) }).optional(),
});

/** `POST /users/{userId}/consumptions` body. */
export const consumptionBody = z.strictObject({
  offerGroup: operatorId,
  tokens,
  allowOverdraft: z.boolean().default(false),
  metadata: z
    .record(z.string().max(128), z.unknown())
    .refine((metadata) => Buffer.byteLength(JSON.stringify(metadata)) <= MAX_METADATA_BYTES, `must be at most ${MAX_METADATA_BYTES} bytes of JSON`)
    .optional(),
});

/** `POST /users/{userId}/grants` body. */
export const grantBody = z.strictObject({
  offerGroup: operatorId,
  tokens,
  expires: instant.nullable().default(null),
  reason: z.string().max(500).optional(),
});

/** `POST /users/{userId}/expiry-check` body. */
export const expiryCheckBody = z.strictObject({
  warnMs: z.number().int().min(0).max(10 * 366 * 86_400_000).optional(),
  low: z.array(z.strictObject({ offerGroup: operatorId, min: z.number().int().min(0).max(MAX_TOKENS) })).max(100).optional(),
});

/** Pagination query (`limit` 1-1000, default 100; `cursor`). */
export const pageQuery = {
  limit: z.coerce.number().int("must be an integer").min(1).max(1000).default(100),
  cursor: z.string().min(1).max(2048).optional(),
};

/** `GET /users/{userId}/ledger` query. */
export const ledgerQuery = z.strictObject({
  offerGroup: operatorId.optional(),
  from: instant.optional(),
  to: instant.optional(),
  ...pageQuery,
});

/** `GET /users/{userId}/orders` query. */
export const orderListQuery = z.strictObject({ ...pageQuery });

/** Path parameters of `/users/{userId}/...`. */
export const userPath = z.strictObject({ userId });
/** Path parameters of `/offers/{offerId}`. */
export const offerPath = z.strictObject({ offerId: operatorId });
/** Path parameters of `/users/{userId}/orders/{orderId}/...`. */
export const userOrderPath = z.strictObject({ userId, orderId: generatedId });
/** Path parameters of `/users/{userId}/subscriptions/{offerId}`. */
export const userOfferPath = z.strictObject({ userId, offerId: operatorId });
