/**
 * Idempotency record entity: the stored outcome of a request made with an
 * `Idempotency-Key`, scoped to the user and the route (API.md "Idempotency", Stripe's
 * semantics). Expires by TTL; kept at least 24 hours.
 */
import { TABLE } from "./table.js";
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of an idempotency record. */
export const idempotencyRecordSchema = {
  model: { entity: "idempotencyRecord", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    scope: { type: "string", required: true },
    key: { type: "string", required: true },
    /** SHA-256 of the canonical JSON of the request body. */
    requestHash: { type: "string", required: true },
    state: { type: ["in_progress", "done"] as const, required: true },
    /** `{ ok: true, result }` or `{ ok: false, error: { code, message, details } }`. */
    outcome: { type: "any" },
    /** The order id reserved by an order creation, reused if the request is taken over. */
    orderId: { type: "string" },
    createdAt: { type: "string", required: true },
    /** In-progress lease end (ISO): past it, a retry may take the request over. */
    leaseUntil: { type: "string" },
    ttl: { type: "number", required: true, field: TABLE.ttlAttribute },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["scope", "key"]) },
  },
} as const;
