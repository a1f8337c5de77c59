/**
 * Purchase rules, pure: the grants a paid order creates, their dates and tokens, and
 * what each group's balance becomes (API.md "Orders and payment"; ORIGINAL-BEHAVIOUR.md
 * §3.1-3.3 with its bugs fixed).
 *
 * - The root grant, in the order's offerGroup, holds `tokenCount × quantity` tokens; it
 *   exists even with 0 tokens (a pure subscription or a bundle root: its period is what
 *   unlocks offers and what the subscription check sees).
 * - Start: the order's requested `starts` if still in the future; if it has passed, the
 *   confirmation instant (noted in the history); else with `appendDate` the chain head
 *   (latest expiry among the group's unexpired grants) when in the future; else now.
 * - Expiry: start + cycle × quantity (core/rules/cycles.ts); `once` never expires. An
 *   expiry past 9999-12-31 (the chain grew, or time passed, after the order was accepted
 *   at creation by core/rules/order-plan.ts) is clamped to its last instant,
 *   9999-12-31T23:59:59.999Z, with a note: fulfilment never fails on a date.
 * - A renewing order's period (issue 13: Stripe's invoice line `period`, which keeps the
 *   billing anchor day: Jan 31 -> Feb 28 -> Mar 31) gives every grant of it, root and
 *   bundle items, its start and expiry instead: Stripe's dates, not these rules';
 *   quantity then multiplies the tokens of the period, never its length.
 * - Bundle items: one grant each in the item's offerGroup, with `item.tokens` tokens
 *   (item quantity × order quantity × item tokenCount, computed at order creation).
 *   They last the root offer's cycle × order quantity; an item whose offer has
 *   `appendDate` starts at its own group's chain head (or now), the others share the
 *   root grant's dates.
 * - A purchase never shortens or replaces an existing grant and always adds its tokens;
 *   debt in a group is repaid first from the new grant (core/rules/balance-state.ts).
 * - The chain head counts exhausted grants that left the balance item too (its
 *   `chainUntil`, core/rules/balance-state.ts `chainHead`).
 */
import { addGrant, chainHead, emptyBalance, type BalanceState } from "./balance-state.js";
import { expiryDate, LAST_INSTANT_MS, withinCalendar, type CycleTerms } from "./cycles.js";

/** The parts of an order a purchase plan reads (a stored order fits). */
export interface PurchaseOrder extends CycleTerms {
  userId: string;
  orderId: string;
  offerId: string;
  offerGroup: string;
  quantity: number;
  tokens: number;
  appendDate: boolean;
  requestedStarts?: string | undefined;
  combinedItems: ReadonlyArray<{
    offerId: string;
    offerGroup: string;
    tokens: number;
    appendDate: boolean;
  }>;
}

/** A grant the purchase creates. `itemIndex` is null for the root grant. */
export interface PlannedGrant {
  grantId: string;
  offerGroup: string;
  offerId: string;
  tokens: number;
  starts: Date;
  expires: Date | null;
  debtRepaid: number;
  itemIndex: number | null;
}

/** What paying an order does. */
export interface PurchasePlan {
  /** Root grant first, then one per bundle item in order. */
  grants: PlannedGrant[];
  /** Next state of every group touched (versions unchanged: the writer bumps them). */
  balances: Map<string, BalanceState>;
  /** History notes (e.g. a requested start that had passed, an expiry clamped). */
  notes: string[];
  /** The grants whose expiry fell past 9999-12-31 and was clamped to its last instant (none normally). */
  clamped: Array<{ offerGroup: string; itemIndex: number | null }>;
}

/** A renewing order's paid period (Stripe's invoice line `period`): `starts` < `expires`. */
export interface PaidPeriodDates {
  starts: Date;
  expires: Date;
}

/**
 * Plans the grants of `order` paid at `now`.
 * @param balances current state of the user's groups (missing groups are empty)
 * @param newGrantId makes a fresh grant id (ULID)
 * @param period a renewing order's period: every grant takes its dates
 * @throws RangeError for a period that does not end after it starts
 */
export function planPurchase(input: {
  order: PurchaseOrder;
  balances: ReadonlyMap<string, BalanceState>;
  now: Date;
  newGrantId: () => string;
  period?: PaidPeriodDates | undefined;
}): PurchasePlan {
  const { order, now, newGrantId } = input;
  const balances = new Map(input.balances);
  const stateOf = (group: string) => balances.get(group) ?? emptyBalance(order.userId, group);
  const notes: string[] = [];
  const grants: PlannedGrant[] = [];
  const clamped: PurchasePlan["clamped"] = [];

  /** The expiry of a grant of `group` starting at `starts`, clamped to the last instant (noted) when past it. */
  const expiryFrom = (starts: Date, group: string, itemIndex: number | null): Date | null => {
    const expires = expiryDate(starts, order, order.quantity);
    if (expires === null || withinCalendar(expires)) return expires;
    const last = new Date(LAST_INSTANT_MS);
    notes.push(`the ${group} grant's period runs past 9999-12-31; it expires at ${last.toISOString()}`);
    clamped.push({ offerGroup: group, itemIndex });
    return last;
  };

  const add = (group: string, offerId: string, tokens: number, starts: Date, expires: Date | null, itemIndex: number | null) => {
    const grantId = newGrantId();
    const { next, debtRepaid } = addGrant(stateOf(group), {
      grantId,
      orderId: order.orderId,
      offerId,
      orderOfferId: order.offerId,
      tokens,
      starts: starts.toISOString(),
      expires: expires?.toISOString(),
    });
    balances.set(group, next);
    grants.push({ grantId, offerGroup: group, offerId, tokens, starts, expires, debtRepaid, itemIndex });
  };

  // A. Root grant dates.
  const { period } = input;
  if (period && !(period.starts.getTime() < period.expires.getTime())) {
    throw new RangeError(`a period must end after it starts: ${period.starts.toISOString()} -> ${period.expires.toISOString()}`);
  }
  let rootStarts = now;
  if (period) rootStarts = period.starts;
  else if (order.requestedStarts !== undefined) {
    const requested = new Date(order.requestedStarts);
    if (requested.getTime() > now.getTime()) rootStarts = requested;
    else notes.push(`requested start ${order.requestedStarts} had passed at confirmation; the grant starts at ${now.toISOString()}`);
  } else if (order.appendDate) {
    rootStarts = chainHead(stateOf(order.offerGroup), now) ?? now;
  }
  const rootExpires = period ? period.expires : expiryFrom(rootStarts, order.offerGroup, null);
  add(order.offerGroup, order.offerId, order.tokens, rootStarts, rootExpires, null);

  // B. Bundle items, in order: each chains within its own group, after what came before.
  order.combinedItems.forEach((item, index) => {
    if (item.appendDate && !period) {
      const starts = chainHead(stateOf(item.offerGroup), now) ?? now;
      add(item.offerGroup, item.offerId, item.tokens, starts, expiryFrom(starts, item.offerGroup, index), index);
    } else {
      add(item.offerGroup, item.offerId, item.tokens, rootStarts, rootExpires, index);
    }
  });

  return { grants, balances, notes, clamped };
}
