/**
 * The automatic top-up's rules, pure (issue 13; API.md "Renewing subscriptions and
 * automatic top-ups": "at most `maxPerMonth` per calendar month (UTC)").
 */

/** `maxPerMonth` when a setting leaves it out. */
export const DEFAULT_MAX_PER_MONTH = 10;
/** The largest `maxPerMonth` accepted (a runaway loop of top-ups is a bill, not a feature). */
export const MAX_PER_MONTH_LIMIT = 1000;

/** The calendar month (UTC) of `now`, as `YYYY-MM`: the period `maxPerMonth` counts in. */
export function monthOf(now: Date): string {
  return now.toISOString().slice(0, 7);
}

/**
 * The top-ups already started in the month of `now`, from the stored count and the month
 * it is of (`month` absent: none yet; another month: it starts again from 0).
 */
export function usedInMonth(stored: { month?: string | undefined; count?: number | undefined }, now: Date): number {
  return stored.month === monthOf(now) ? (stored.count ?? 0) : 0;
}
