/**
 * Reversals, pure: giving back all or part of a consumption whose work failed (API.md
 * "Reservations": `POST /users/{userId}/consumptions/{entryId}/reverse`; issue 11).
 *
 * A consumption entry consumed `tokens`: `debtAdded` of them became the group's debt, the
 * rest came from grants (`draws`, in the order drawn). Its counter `reversedSoFar` says how
 * much of it has been reversed; the total never exceeds `tokens`. A reversal of `k` tokens:
 * 1. takes the debt part first: `min(k, debtAdded − debt part already reversed)`, where the
 *    counter is split debt part first (the first `min(reversedSoFar, debtAdded)` reversed
 *    tokens were the debt part, the rest were grant tokens). It lowers the group's debt by
 *    as much as the group still owes (`debtReversed`); what the group no longer owes (a
 *    later grant repaid that debt with its own tokens) is `debtSettled`: no grant to give it
 *    to, it is reported and counts as reversed. (Why not give it to the grant that repaid
 *    it: a group's debt is one pooled number, and what repaid it is not recorded per
 *    consumption: a grant item does not keep its repaid debt, a purchase entry only its
 *    total, a release or reversal not per grant, and another reversal's debt part lowers
 *    it with no grant at all. Any grant picked would be a guess, and could be given tokens
 *    it never spent on this debt: tokens made out of nothing. So the rule keeps every
 *    movement explained and creates none: the repayment is the grant's own entry's
 *    `debtRepaid`, and the reversal's entry notes `debtSettled`, core/reversals.ts.);
 * 2. gives the rest back to the grants the entry drew from, the latest drawn first (the
 *    grant tokens reversed before were the latest ones), by the one give-back rule
 *    (core/rules/give-back.ts: the group's remaining debt first; a grant that left comes
 *    back; what lands in a grant past its expiry leaves at once, `expire`; nothing into a
 *    grant of a refunded or disputed order: those tokens are `refused`, reported, and count
 *    as reversed, so that the counter keeps walking the draws from the latest and a retry
 *    cannot push them into another grant).
 *
 * Ledger: one `reverse` entry of +(debtReversed + tokens given to grants), its draws the
 * tokens given per grant, noting `debtReversed` and `debtRepaid` (debtReversed plus the
 * debt the grants' tokens repaid); then one `expire` entry of −Σexpired when some grant is
 * past its expiry. The balance moves by exactly their sum; the counter moves by `k`.
 */
import type { BalanceState } from "./balance-state.js";
import { isEndedGrant, type GiveBack, type GiveBackMovement, type RefusedGiveBack } from "./give-back.js";
import { giveBackInHand, returnEntries, type GrantDraw, type PlannedEntry } from "./holds.js";

/** The consumption entry to reverse, with the facts of the grants it drew from. */
export interface ConsumedEntry {
  /** Tokens the entry consumed (its signed tokens negated), integer >= 0. */
  tokens: number;
  /** The grants it drew, in the order drawn, each once, with their facts (grant items, or the balance item). */
  draws: readonly GrantDraw[];
  /** Part of `tokens` that became the group's debt: tokens = Σ draws + debtAdded. */
  debtAdded: number;
  /** Tokens of it reversed so far (the entry's counter), 0..tokens. */
  reversedSoFar: number;
}

/** What a reversal does, or why it cannot. */
export type ReversalPlan =
  | {
      ok: true;
      /** Tokens reversed by this reversal (`k`): debtReversed + debtSettled + Σ movements.tokens + Σ refused.tokens. */
      tokens: number;
      /** The entry's counter after it: reversedSoFar + tokens. */
      reversedSoFar: number;
      /** The next state (version unchanged). */
      next: BalanceState;
      /** `reverse`, then `expire` if some tokens landed in a grant past its expiry. */
      entries: PlannedEntry[];
      /** Debt part that lowered the group's debt. */
      debtReversed: number;
      /** Debt part the group no longer owed (repaid since by a grant): not given back, counted as reversed. */
      debtSettled: number;
      /** Per grant given back, latest drawn first (core/rules/give-back.ts). */
      movements: GiveBackMovement[];
      /** Grant tokens not given back (refunded or disputed order): counted as reversed. */
      refused: RefusedGiveBack[];
    }
  | {
      ok: false;
      /** More than the entry has left to reverse (`409 conflict`), or nothing left at all. */
      reason: "exceeds_consumed";
      /** Tokens the entry still has to reverse. */
      left: number;
    };

/**
 * Plans reversing `tokens` (default: all that is left) of `entry` in `state` at `now`, by
 * the rules above.
 * @param tokens integer >= 1, or undefined for what is left
 * @param refundedOrDisputed ids of the orders, among those of the entry's grants, that are refunded or disputed now, and of
 *   the grants whose own period was (a renewing order's; give-back.ts `isEndedGrant`)
 * @returns the plan, or `exceeds_consumed` when reversedSoFar + tokens would pass what the entry consumed
 * @throws RangeError for tokens not an integer >= 1, an entry whose numbers do not add up, or a
 *   grant to give back to that may be in overflow items not read (holds.ts `grantsOutOfHand`)
 */
export function planReversal(input: {
  state: BalanceState;
  entry: ConsumedEntry;
  tokens?: number | undefined;
  now: Date;
  refundedOrDisputed: ReadonlySet<string>;
}): ReversalPlan {
  const { state, entry, now, refundedOrDisputed } = input;
  checkEntry(entry);
  if (input.tokens !== undefined && (!Number.isSafeInteger(input.tokens) || input.tokens < 1)) {
    throw new RangeError(`tokens must be an integer >= 1, got ${input.tokens}`);
  }
  const left = entry.tokens - entry.reversedSoFar;
  const tokens = input.tokens ?? left;
  if (tokens < 1 || tokens > left) return { ok: false, reason: "exceeds_consumed", left };

  // A. The counter, split debt part first.
  const debtDone = Math.min(entry.reversedSoFar, entry.debtAdded);
  const grantDone = entry.reversedSoFar - debtDone;
  const debtPart = Math.min(tokens, entry.debtAdded - debtDone);
  const grantPart = tokens - debtPart;

  // B. The debt part: lowers the debt the group still owes.
  const debtReversed = Math.min(debtPart, state.debt);
  const afterDebt: BalanceState = debtReversed > 0 ? { ...state, debt: state.debt - debtReversed, balance: state.balance + debtReversed } : state;

  // C. The grant part: latest drawn first, past the grant tokens reversed before.
  const grants: GiveBack[] = [];
  let skip = grantDone;
  let need = grantPart;
  for (const draw of [...entry.draws].reverse()) {
    if (need === 0) break;
    const skipped = Math.min(skip, draw.tokens);
    skip -= skipped;
    const take = Math.min(need, draw.tokens - skipped);
    need -= take;
    if (take > 0) {
      grants.push({ grant: draw.grant, tokens: take, orderRefundedOrDisputed: isEndedGrant(refundedOrDisputed, draw.grant) });
    }
  }
  const back = giveBackInHand(afterDebt, grants, now);

  return {
    ok: true,
    tokens,
    reversedSoFar: entry.reversedSoFar + tokens,
    next: back.next,
    entries: returnEntries("reverse", back, debtReversed),
    debtReversed,
    debtSettled: debtPart - debtReversed,
    movements: back.movements,
    refused: back.refused,
  };
}

/** Refuses an entry whose numbers do not add up (a programming error: the writer builds it from a stored consume entry). */
function checkEntry(entry: ConsumedEntry): void {
  const whole = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!whole(entry.tokens) || !whole(entry.debtAdded) || !whole(entry.reversedSoFar)) {
    throw new RangeError(`entry of ${entry.tokens} tokens, debt ${entry.debtAdded}, reversed ${entry.reversedSoFar}: integers >= 0 expected`);
  }
  const seen = new Set<string>();
  let drawn = 0;
  for (const draw of entry.draws) {
    if (!Number.isSafeInteger(draw.tokens) || draw.tokens < 1) throw new RangeError(`entry draws ${draw.tokens} from ${draw.grant.grantId}`);
    if (seen.has(draw.grant.grantId)) throw new RangeError(`entry draws ${draw.grant.grantId} twice`);
    seen.add(draw.grant.grantId);
    drawn += draw.tokens;
  }
  if (drawn + entry.debtAdded !== entry.tokens) throw new RangeError(`entry of ${entry.tokens} tokens draws ${drawn} and adds debt ${entry.debtAdded}`);
  if (entry.reversedSoFar > entry.tokens) throw new RangeError(`entry of ${entry.tokens} tokens reversed ${entry.reversedSoFar}`);
}
