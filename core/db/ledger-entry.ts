/**
 * Ledger entry entity: one signed token movement (purchase, consume, expire, refund,
 * adjust; hold, release and reverse for reservations and reversals, core/reservations.ts
 * and core/reversals.ts), written in the same transaction as the balance change it
 * explains. Entries never change, but for the `reversed` counter of a `consume`. Sorted
 * by creation instant then id, so a user's ledger reads oldest first and a date range
 * is a key range.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** Why tokens moved. */
export const LEDGER_REASONS = ["purchase", "consume", "expire", "refund", "adjust", "hold", "release", "reverse"] as const;

/** ElectroDB schema of a ledger entry. */
export const ledgerEntrySchema = {
  model: { entity: "ledgerEntry", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    entryId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    /** Signed: + purchase/adjust/release/reverse, − consume/expire/refund/hold. */
    tokens: { type: "number", required: true },
    reason: { type: LEDGER_REASONS, required: true },
    orderId: { type: "string" },
    grantId: { type: "string" },
    /** Which grants a consumption (or expiry) drew from, and how much. */
    draws: {
      type: "list",
      items: {
        type: "map",
        properties: {
          grantId: { type: "string", required: true },
          tokens: { type: "number", required: true },
        },
      },
    },
    /** Tokens of a consumption not covered by grants (overdraft). */
    debt: { type: "number" },
    /** Debt a purchase (or tokens given back: release, reverse) repaid before filling its grant. */
    debtRepaid: { type: "number" },
    /** The reservation of a `hold`, `release`, its commit's `consume`, or an `expire` of tokens it gave back (core/reservations.ts). */
    reservationId: { type: "string" },
    /**
     * `consume` only: tokens of it reversed so far (core/reversals.ts), 0..−tokens; absent
     * until its first reversal. Each reversal raises it in its own transaction, on the
     * condition that it still holds the value read, so that reversals together never
     * exceed what the entry consumed.
     */
    reversed: { type: "number" },
    /** `reverse` (and the `expire` of tokens it gave back to a grant past its expiry): the `consume` entry it reverses. */
    reversesEntryId: { type: "string" },
    metadata: { type: "any" },
    createdAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["createdAt", "entryId"]) },
  },
} as const;
