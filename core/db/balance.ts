/**
 * Balance entity: one item per (user, offerGroup) holding the balance, the debt, a
 * version for optimistic concurrency, and the `remaining` of each active grant with
 * its dates (core/rules/balance-state.ts `GrantState`). A consumption reads this one item
 * and writes it back conditionally (on its drawn grants, or on its version), whatever
 * the number of grants (DESIGN.md, "Balance item"; core/balances.ts).
 *
 * Invariant (core/ledger.ts): balance = Σ grants[].remaining − debt = Σ ledger tokens.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a balance item. */
export const balanceSchema = {
  model: { entity: "balance", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    balance: { type: "number", required: true },
    debt: { type: "number", required: true },
    version: { type: "number", required: true },
    grants: {
      type: "list",
      required: true,
      items: {
        type: "map",
        properties: {
          grantId: { type: "string", required: true },
          orderId: { type: "string" },
          offerId: { type: "string" },
          orderOfferId: { type: "string" },
          tokens: { type: "number", required: true },
          remaining: { type: "number", required: true },
          starts: { type: "string", required: true },
          expires: { type: "string" },
        },
      },
    },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["offerGroup"]) },
  },
} as const;
