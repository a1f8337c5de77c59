/**
 * Balance entity: one item per (user, offerGroup) holding the balance, the debt, a
 * version for optimistic concurrency, and the `remaining` of the group's first grants in
 * drain order with their dates (core/rules/balance-state.ts `GrantState`; at most
 * `MAIN_GRANTS`, core/rules/balance-layout.ts), the rest being in overflow items
 * (core/db/balance-overflow.ts) summed up in `spilled`. A consumption reads this one item
 * and writes it back conditionally (on its drawn grants, or on its version), whatever
 * the number of grants (DESIGN.md, "Balance item"; core/balances.ts). The group's live
 * holds (reservations) are kept on it too (`liveHolds`, `heldGrants`; DESIGN.md "Holds are
 * draws made early"), so that a hold, a commit, a release and a consumption each read and
 * write this one item.
 *
 * Work index: never. The expiring-holds entries are on the reservation items
 * (core/db/reservation.ts), so that the writes of this item (each consumption, hold,
 * commit and release; the item carries the whole grants map, several KB for a busy
 * group) write no index copy of it: gsi1 projects every attribute (core/db/table.ts), so
 * an indexed balance item would cost its size again in write units on every one of them.
 *
 * Invariant (core/ledger.ts): balance = Σ grants[].remaining + spilled.tokens − debt = Σ ledger tokens.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** The stored shape of one grant (a balance item's map, an overflow item): core/rules/balance-state.ts `GrantState`. */
export const grantStateList = {
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
} as const;

/** A grant's facts (a {@link grantStateList} grant without `remaining`): the grants live holds drew from. */
const { remaining: _remaining, ...grantFactsProperties } = grantStateList.items.properties;
export const grantFactsList = {
  type: "list",
  items: { type: "map", properties: grantFactsProperties },
} as const;

/** Tokens taken per grant, in order (core/rules/drain.ts `Draw`): a hold's draws, on the balance item and the reservation item. */
export const drawList = {
  type: "list",
  required: true,
  items: {
    type: "map",
    properties: {
      grantId: { type: "string", required: true },
      tokens: { type: "number", required: true },
    },
  },
} as const;

/**
 * The live holds of a group (core/rules/holds.ts `HoldState`), stored compactly: each
 * draw names its grant by id, and the facts of the grants drawn are stored once in
 * `heldGrants` (core/balances.ts expands and compacts them).
 */
export const holdList = {
  type: "list",
  items: {
    type: "map",
    properties: {
      reservationId: { type: "string", required: true },
      tokens: { type: "number", required: true },
      expires: { type: "string", required: true },
      createdAt: { type: "string", required: true },
      draws: drawList,
    },
  },
} as const;

/** The layout version written by this code; an item without it predates issue 9 (core/balances.ts reads it as legacy). */
export const BALANCE_LAYOUT = 2;

/** ElectroDB schema of a balance item. */
export const balanceSchema = {
  model: { entity: "balance", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    balance: { type: "number", required: true },
    debt: { type: "number", required: true },
    version: { type: "number", required: true },
    grants: grantStateList,
    /** Grants spilled to overflow items: count, tokens, smallest key (core/rules/balance-state.ts `OverflowSummary`). */
    spilled: {
      type: "map",
      properties: {
        grants: { type: "number", required: true },
        tokens: { type: "number", required: true },
        from: { type: "string", required: true },
      },
    },
    /** Latest expiry of any expiring grant the group held: the appendDate chain head while in the future. */
    chainUntil: { type: "string" },
    /** Periods of the group's paid grants (core/rules/periods.ts `PaidPeriod`). */
    periods: {
      type: "list",
      items: {
        type: "map",
        properties: {
          offerId: { type: "string", required: true },
          orderId: { type: "string", required: true },
          starts: { type: "string", required: true },
          expires: { type: "string" },
          root: { type: "boolean", required: true },
        },
      },
    },
    /** Exhausted expiring grants still waiting for their expiry (core/rules/balance-state.ts `ExhaustedGrants`). */
    exhausted: {
      type: "map",
      properties: {
        since: { type: "string", required: true },
        due: { type: "string", required: true },
      },
    },
    /** Live holds (reservations `held`), at most core/rules/holds.ts `MAX_HOLDS`; absent: none. */
    liveHolds: holdList,
    /** The facts of the grants the live holds drew from, each once. */
    heldGrants: grantFactsList,
    /**
     * The low-balance latch (core/rules/balance-state.ts `lowBalanceLatched`): true once a
     * crossing raised `credits.low_balance`, removed by a purchase or a promotional grant;
     * absent: false (never stored as false).
     */
    lowBalanceLatched: { type: "boolean" },
    /** The automatic top-up threshold (core/rules/balance-state.ts `topUpThreshold`); absent: none. */
    topUpThreshold: { type: "number" },
    /** The top-up latch (core/rules/balance-state.ts `topUpLatched`); absent: false. */
    topUpLatched: { type: "boolean" },
    /** The grant set's version (core/rules/balance-state.ts `grantSet`): the version of the last whole write. */
    grantSet: { type: "number" },
    /** {@link BALANCE_LAYOUT} when written by this code. */
    layout: { type: "number" },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["offerGroup"]) },
  },
} as const;
