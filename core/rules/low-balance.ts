/**
 * The low-balance crossing, pure (API.md "Events": `credits.low_balance` fires once per
 * crossing, a balance going from above to at-or-below its group's threshold, at the
 * moment a consumption crosses it; a top-up above the threshold re-arms it).
 *
 * Only consumptions lower a balance towards the threshold, so "crossed" needs no flag:
 * the balance before the consumption was above, the balance after is at or below. What
 * this module adds is the guard that keeps the decision true when other consumptions run
 * at the same moment: the balance the write finds must be in the same range as the one
 * the plan saw (else the write fails and the consumption re-plans on the item as it is).
 */

/** The decision for one consumption, and the balance range its write requires. */
export interface Crossing {
  /** This consumption takes the balance from above the threshold to at or below it. */
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
