/**
 * Automatic top-up entities (issue 13; API.md "Renewing subscriptions and automatic
 * top-ups"), under the user's partition key:
 *
 * - `autoTopUp`: a group's setting (`PUT /users/{userId}/auto-top-up/{offerGroup}`), with
 *   the month's count of top-ups started (`month`, `count`), which `maxPerMonth` bounds.
 *   Its threshold is also kept on the group's balance item (`topUpThreshold`), where the
 *   consumption that crosses it reads it without another request.
 * - `topUp`: one top-up, keyed by the id of the `top_up.requested` event that asked for
 *   it: created with the month's count in one transaction (so a request redelivered, or
 *   handled by two publishers at once, counts once), then ended once
 *   (`succeeded`/`failed`) with its event.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a group's automatic top-up setting. */
export const autoTopUpSchema = {
  model: { entity: "autoTopUp", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    /** The offer ordered on each top-up (of this offerGroup, one-time). */
    offerId: { type: "string", required: true },
    /** Lowercase ISO 4217: the currency of the top-up orders. */
    currency: { type: "string", required: true },
    /** Tokens: a balance falling from above it to at or below it requests a top-up. */
    threshold: { type: "number", required: true },
    /** Top-ups started per calendar month (UTC), at most. */
    maxPerMonth: { type: "number", required: true },
    enabled: { type: "boolean", required: true },
    /** The calendar month (`YYYY-MM`, UTC) `count` is of; absent before the first top-up. */
    month: { type: "string" },
    /** Top-ups started in `month`. */
    count: { type: "number" },
    createdAt: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["offerGroup"]) },
  },
} as const;

/** The states of one top-up: started (counted, its order being made), then ended once. */
export const TOP_UP_STATUSES = ["started", "succeeded", "failed"] as const;

/** ElectroDB schema of one automatic top-up. */
export const topUpSchema = {
  model: { entity: "topUp", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    /** The `top_up.requested` event's id: also the order's idempotency key. */
    eventId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    offerId: { type: "string", required: true },
    /** Lowercase ISO 4217 of its order. */
    currency: { type: "string", required: true },
    status: { type: TOP_UP_STATUSES, required: true },
    /** The top-up's order, once made. */
    orderId: { type: "string" },
    /** Why it failed: Stripe's decline code, or ours (`max_per_month`, `no_payment_method`, ...). */
    code: { type: "string" },
    createdAt: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["eventId"]) },
  },
} as const;
