/**
 * Balance overflow entity: the grants of a (user, offerGroup) that do not fit in its
 * balance item's map (DESIGN.md "The balance item stays small, whatever the history";
 * core/rules/balance-layout.ts). Each item holds whole grants (core/rules/balance-state.ts
 * `GrantState`: id, remaining, dates), keyed by a grant key none of them is below plus a
 * unique id, so that reading a group's items in key order gives its overflow grants in
 * drain order. Items sit in the user's partition, after the balance items; they are read
 * only when the map cannot cover a consumption, when some are due, or when the whole grant
 * set is needed (core/balances.ts `readFullBalance`), and written only in the same
 * transaction as a version-checked write of the balance item.
 */
import { grantStateList } from "./balance.js";
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a balance overflow item. */
export const balanceOverflowSchema = {
  model: { entity: "balanceOverflow", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    /** `<grant key no grant of it is below>|<ULID>` (core/rules/balance-layout.ts `overflowItemKey`). */
    itemKey: { type: "string", required: true },
    grants: grantStateList,
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byGroup: { pk: pk(["userId"]), sk: sk(["offerGroup", "itemKey"]) },
  },
} as const;
