/**
 * Grant entity: the facts of one grant (tokens one paid order, bundle item or
 * promotional gesture adds to one offerGroup, with its dates). Its live `remaining`
 * lives in the balance item (DESIGN.md, single-table model).
 *
 * Active grants that expire carry the work index keys of expiring grants (`expiryBucket`,
 * `expirySort`); expiring a grant removes them, so the index only ever holds work
 * still to do.
 */
import { TABLE } from "./table.js";
import { SERVICE, pk, sk } from "./keys.js";

/** Grant statuses: active until it expires (or its order is refunded). */
export const GRANT_STATUSES = ["active", "expired", "refunded"] as const;

/** Why a grant exists: a paid order (or bundle item), or a promotional adjustment. */
export const GRANT_REASONS = ["purchase", "adjust"] as const;

/** ElectroDB schema of a grant. */
export const grantSchema = {
  model: { entity: "grant", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    grantId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    reason: { type: GRANT_REASONS, required: true },
    /** The order that paid for it, absent for promotional grants. */
    orderId: { type: "string" },
    /** The offer whose tokens it holds (the item's offer for a bundle item). */
    offerId: { type: "string" },
    /** The offer of the order (the bundle root for bundle items). */
    orderOfferId: { type: "string" },
    tokens: { type: "number", required: true },
    starts: { type: "string", required: true },
    /** Absent for grants that never expire (`once`). */
    expires: { type: "string" },
    status: { type: GRANT_STATUSES, required: true },
    note: { type: "string" },
    createdAt: { type: "string", required: true },
    expiredAt: { type: "string" },
    /** Tokens removed at expiry (the grant's remaining then). */
    expiredTokens: { type: "number" },
    /** When the `credits.expiring` event about this grant was raised (once per grant). */
    expiringWarnedAt: { type: "string" },
    /** Work index partition (core/rules/work-index.ts): `<YYYY-MM-DD>#<shard>`; present only while due work remains. */
    expiryBucket: { type: "string" },
    /** Work index sort: `<expires ISO>#<userId>#<grantId>`. */
    expirySort: { type: "string" },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["grantId"]) },
    byExpiry: {
      index: TABLE.workIndex.name,
      pk: { field: TABLE.workIndex.partitionKey, composite: ["expiryBucket"], casing: "none" },
      sk: { field: TABLE.workIndex.sortKey, composite: ["expirySort"], casing: "none" },
    },
  },
} as const;
