/**
 * Reservation entity: one item per reservation (API.md "Reservations"), its history and
 * status. The live hold itself (what is held, from which grants) is on the group's
 * balance item (core/db/balance.ts `holds`), which decides; this item is written in the
 * same transactions (created with the hold, updated by its commit, release or expiry) so
 * that a reservation no longer live can be answered (`released`, `committed`, `expired`)
 * and listed. Keyed by user, sorted by reservation id (a ULID: creation order).
 *
 * Work index. While `held`, the item carries the expiring-holds keys of the work index
 * (`holdExpiryBucket`, `holdExpirySort`: core/rules/work-index.ts `holdExpiryKeys`, from
 * its `expires`), written with it by the hold (core/reservations.ts `createHold`); the
 * update that ends it (committed, released, expired: core/reservations.ts
 * `reservationEnd`) removes them, so ElectroDB removes its index keys and it leaves the
 * sparse index, as an order leaves the pending-orders index and a grant the expiring-grants
 * one. The daily job finds there the expired holds of groups nobody touches, without a
 * scan. The index entry is the small reservation item: the balance item (the whole grants
 * map, written by every consumption) is never in the index.
 */
import { drawList } from "./balance.js";
import { RESERVATION_STATUSES } from "../rules/holds.js";
import { TABLE } from "./table.js";
import { SERVICE, pk, sk } from "./keys.js";

// A reservation's statuses are a rule of holds (core/rules/holds.ts), re-exported for the schema below.
export { RESERVATION_STATUSES };

/** ElectroDB schema of a reservation. */
export const reservationSchema = {
  model: { entity: "reservation", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    reservationId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    /** Tokens held, integer >= 1. */
    tokens: { type: "number", required: true },
    status: { type: RESERVATION_STATUSES, required: true },
    /** ISO 8601 instant the hold expires. */
    expires: { type: "string", required: true },
    /** The grants drawn by the hold, in drain order. */
    draws: drawList,
    metadata: { type: "any" },
    /** The ledger `hold` entry. */
    holdEntryId: { type: "string", required: true },
    /** Committed: tokens consumed, and the `consume` entry. */
    committedTokens: { type: "number" },
    consumeEntryId: { type: "string" },
    /** ISO 8601 instant of the commit, release or expiry. */
    endedAt: { type: "string" },
    createdAt: { type: "string", required: true },
    /** Work index partition (core/rules/work-index.ts `holdExpiryKeys`): `<YYYY-MM-DD of expires>#<shard>`; present while `held`. */
    holdExpiryBucket: { type: "string" },
    /** Work index sort: `<expires ISO>#<userId>#<offerGroup>#<reservationId>`; present while `held`. */
    holdExpirySort: { type: "string" },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["reservationId"]) },
    /** Held reservations whose hold expires in a day partition (the daily job's hold-expiry pass). */
    byHoldExpiry: {
      index: TABLE.workIndex.name,
      pk: { field: TABLE.workIndex.partitionKey, composite: ["holdExpiryBucket"], casing: "none" },
      sk: { field: TABLE.workIndex.sortKey, composite: ["holdExpirySort"], casing: "none" },
    },
  },
} as const;
