/**
 * Event entity: what the service tells the app about a user (API.md `Event`), written in
 * the same transaction as the change it reports (an outbox). While not yet published to
 * the bus, an event carries the sparse outbox index keys (`outboxBucket`, `outboxSort`)
 * on the shared GSI; publishing removes them.
 */
import { TABLE } from "./table.js";
import { SERVICE, pk, sk } from "./keys.js";

/** The event types (API.md). */
export const EVENT_TYPES = [
  "order.paid",
  "order.refused",
  "order.refunded",
  "order.refund_failed",
  "order.disputed",
  "order.dispute_closed",
  "credits.expired",
  "credits.expiring",
  "credits.low_balance",
  "subscription.renewed",
  "subscription.payment_failed",
  "subscription.canceled",
  "top_up.requested",
  "top_up.succeeded",
  "top_up.failed",
] as const;

/** ElectroDB schema of an event. */
export const eventSchema = {
  model: { entity: "event", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    eventId: { type: "string", required: true },
    type: { type: EVENT_TYPES, required: true },
    offerGroup: { type: "string" },
    orderId: { type: "string" },
    grantId: { type: "string" },
    balance: { type: "number" },
    expires: { type: "string" },
    /** Money moved (refunds), integer minor units of `currency`. */
    amount: { type: "number" },
    currency: { type: "string" },
    /** Tokens moved (refunds, disputes). */
    tokens: { type: "number" },
    /** A dispute's status when it closed (`won`, `lost`, ...). */
    status: { type: "string" },
    /** An automatic refund of a second payment for an already paid order. */
    duplicate: { type: "boolean" },
    /** Why a top-up failed (`top_up.failed`): Stripe's decline code, or ours (`max_per_month`, `no_payment_method`, ...). */
    code: { type: "string" },
    createdAt: { type: "string", required: true },
    publishedAt: { type: "string" },
    /** Outbox index partition (`<shard>`), present until the event is published. */
    outboxBucket: { type: "string" },
    /** Outbox index sort (`<eventId>#<userId>`): oldest first. */
    outboxSort: { type: "string" },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["eventId"]) },
    outbox: {
      index: TABLE.workIndex.name,
      pk: { field: TABLE.workIndex.partitionKey, composite: ["outboxBucket"], casing: "none" },
      sk: { field: TABLE.workIndex.sortKey, composite: ["outboxSort"], casing: "none" },
    },
  },
} as const;
