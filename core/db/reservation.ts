/**
 * Reservation entity: one item per reservation (API.md "Reservations"), its history and
 * status. The live hold itself (what is held, from which grants) is on the group's
 * balance item (core/db/balance.ts `holds`), which decides; this item is written in the
 * same transactions (created with the hold, updated by its commit, release or expiry) so
 * that a reservation no longer live can be answered (`released`, `committed`, `expired`)
 * and listed. Keyed by user, sorted by reservation id (a ULID: creation order).
 */
import { drawList } from "./balance.js";
import { RESERVATION_STATUSES } from "../rules/holds.js";
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
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["reservationId"]) },
  },
} as const;
