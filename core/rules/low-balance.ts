/**
 * The low-balance crossing, pure (API.md "Events": `credits.low_balance` fires once per
 * crossing, a balance going from above to at-or-below its group's threshold; only
 * purchases and grants re-arm a crossing, so holds flapping around it raise one event).
 *
 * Two parts. {@link lowBalanceCrossing} is the balance part: an operation lowering the
 * spendable balance (a consumption, a hold, a commit using more than held) crosses when
 * the balance it saw was above the threshold and the balance after is at or below; with
 * the guard that keeps this answer true while other writers run at the same moment: the
 * balance the write finds must be in the same range as the one the plan saw (else the
 * write fails and the operation re-plans on the item as it is).
 *
 * The balance alone is not enough: releases and reversals raise the balance too, so a
 * hold, its release and another hold would cross twice. Hence the stored latch (the
 * balance item's `lowBalanceLatched`, core/rules/balance-state.ts): a crossing raises the
 * event only while the latch is off, and sets it in the same write
 * ({@link latchedCrossing}; core/rules/holds.ts `lowBalanceAlarm` for holds and commits);
 * only a purchase or a promotional grant clears it (core/rules/balance-state.ts `rearmed`),
 * whatever the balance it leaves: a top-up that leaves the balance at or below the
 * threshold raises nothing itself (a crossing needs the balance seen above), the next
 * fall from above it does. A write whose decision read the latch is conditioned on the
 * value read (a relative write, on the attribute; a whole-item write, on the version), so
 * a purchase clearing it at the same moment makes the write fail and re-plan, never lost.
 */

/** The balance part of the decision for one lowering operation, and the balance range its write requires. */
export interface Crossing {
  /** The operation takes the balance from above the threshold to at or below it. */
  crosses: boolean;
  /** The write requires `balance > above` (when set). */
  above?: number;
  /** The write requires `balance <= atMost` (when set). */
  atMost?: number;
}

/**
 * Whether consuming `tokens` from a balance seen at `seen` crosses `threshold` (null:
 * no threshold, nothing to guard), and the range of the actual balance for which that
 * answer holds.
 */
export function lowBalanceCrossing(input: { seen: number; tokens: number; threshold: number | null }): Crossing {
  const { seen, tokens, threshold } = input;
  if (threshold === null) return { crosses: false };
  if (seen - tokens > threshold) return { crosses: false, above: threshold + tokens };
  if (seen > threshold) return { crosses: true, above: threshold, atMost: threshold + tokens };
  return { crosses: false, atMost: threshold };
}

/** A consumption's decision with the latch: {@link Crossing} plus what to raise, set and require. */
export interface LatchedCrossing extends Crossing {
  /** Raise `credits.low_balance` and set the latch in the same write: the balance crosses and the latch is off. */
  raises: boolean;
  /**
   * The write requires the stored latch to be this (true: set; false: absent). Present
   * only when the balance crosses: only then does the decision depend on the latch.
   */
  latched?: boolean;
}

/**
 * {@link lowBalanceCrossing} with the group's stored latch (`latched`, absent on the item:
 * false): a crossing raises only while the latch is off. The range and the latch condition
 * together keep the decision true for whatever the write finds.
 */
export function latchedCrossing(input: { seen: number; tokens: number; threshold: number | null; latched: boolean }): LatchedCrossing {
  const crossing = lowBalanceCrossing(input);
  if (!crossing.crosses) return { ...crossing, raises: false };
  return { ...crossing, raises: !input.latched, latched: input.latched };
}

/**
 * What a lowering write must find and do for both of a group's thresholds: the low-balance
 * alarm's range and latch ({@link LatchedCrossing}) and the automatic top-up's (issue 13;
 * API.md "Renewing subscriptions and automatic top-ups"). The top-up threshold is kept on
 * the balance item (`topUpThreshold`) with its own latch (`topUpLatched`), so the write
 * that crosses it also writes the `top_up.requested` event, once per crossing.
 */
export interface CrossingRange {
  /** The write requires `balance > above` (when set). */
  above?: number | undefined;
  /** The write requires `balance <= atMost` (when set). */
  atMost?: number | undefined;
  /** The write requires `lowBalanceLatched` set (true) or absent (false), when set. */
  latched?: boolean | undefined;
  /** The write sets `lowBalanceLatched` (and writes `credits.low_balance`). */
  raises?: boolean | undefined;
  /** The write requires `topUpLatched` set (true) or absent (false), when set. */
  topUpLatched?: boolean | undefined;
  /** The write sets `topUpLatched` (and writes `top_up.requested`). */
  topUpRaises?: boolean | undefined;
}

/**
 * `range` (the low-balance decision) joined with the top-up decision for the same
 * operation: consuming `tokens` from a balance seen at `seen` against the group's top-up
 * `threshold` (null: no automatic top-up) and its latch. The balance ranges intersect
 * (both hold the balance seen, so the intersection is never empty); a crossing of the
 * top-up threshold raises only while its latch is off, and the write requires the latch
 * it read, exactly as {@link latchedCrossing} does for the low-balance alarm.
 */
export function withTopUp(range: CrossingRange, topUp: { seen: number; tokens: number; threshold: number | null; latched: boolean }): CrossingRange {
  const crossing = latchedCrossing(topUp);
  if (crossing.above === undefined && crossing.atMost === undefined) return range;
  const joined: CrossingRange = { ...range, topUpRaises: crossing.raises };
  const above = [range.above, crossing.above].filter((n): n is number => n !== undefined);
  const atMost = [range.atMost, crossing.atMost].filter((n): n is number => n !== undefined);
  if (above.length > 0) joined.above = Math.max(...above);
  if (atMost.length > 0) joined.atMost = Math.min(...atMost);
  if (crossing.latched !== undefined) joined.topUpLatched = crossing.latched;
  return joined;
}

/**
 * `state` with the latches a write with `range` sets (`raises`: `lowBalanceLatched`,
 * `topUpRaises`: `topUpLatched`): the state that write leaves, for whole-item writers and
 * the balance cache.
 */
export function withRaisedLatches<T extends { lowBalanceLatched?: boolean | undefined; topUpLatched?: boolean | undefined }>(state: T, range: CrossingRange): T {
  if (!range.raises && !range.topUpRaises) return state;
  return { ...state, ...(range.raises ? { lowBalanceLatched: true } : {}), ...(range.topUpRaises ? { topUpLatched: true } : {}) };
}

/**
 * The top-up side of lowering `state`'s balance by `tokens`: the input of {@link withTopUp}
 * from the balance item's threshold (absent: none) and latch (absent: off).
 */
export function topUpOf(state: { balance: number; topUpThreshold?: number | undefined; topUpLatched?: boolean | undefined }, tokens: number): { seen: number; tokens: number; threshold: number | null; latched: boolean } {
  return { seen: state.balance, tokens, threshold: state.topUpThreshold ?? null, latched: state.topUpLatched === true };
}
