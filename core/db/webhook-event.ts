/**
 * Processed webhook event entity: one item per Stripe event id that changed something,
 * written in the same transaction as that change, so an event applies at most once.
 * Expires by TTL (Stripe retries deliveries for up to three days).
 */
import { TABLE } from "./table.js";
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a processed webhook event. */
export const webhookEventSchema = {
  model: { entity: "webhookEvent", version: "1", service: SERVICE },
  attributes: {
    eventId: { type: "string", required: true },
    type: { type: "string", required: true },
    orderId: { type: "string" },
    userId: { type: "string" },
    outcome: { type: "string", required: true },
    receivedAt: { type: "string", required: true },
    ttl: { type: "number", required: true, field: TABLE.ttlAttribute },
  },
  indexes: {
    byEvent: { pk: pk(["eventId"]), sk: sk([]) },
  },
} as const;
