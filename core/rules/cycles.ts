/**
 * Cycles: how long a grant lasts. Pure functions, UTC calendar arithmetic through
 * date-fns on `UTCDate` (@date-fns/utc), with end-of-month clamping (Jan 31 + 1 month
 * = Feb 28/29), never local time.
 *
 * Rules (API.md "Offers"; ORIGINAL-BEHAVIOUR.md §3.2, with its bugs fixed):
 * - `once` never expires (the original expired it at once);
 * - `semester` is 6 months (the original added 4), `trimester` 3;
 * - `quantity` multiplies the cycle, applied in one step: monthly × 2 from Jan 31 is
 *   Mar 31, not Mar 28;
 * - `custom` is `customCycleSeconds` seconds;
 * - dates end at {@link LAST_INSTANT_MS}, 9999-12-31T23:59:59.999Z (API.md: a purchase
 *   whose dates would fall past it is refused at creation): {@link expiryDate} may
 *   return a later instant, or an invalid Date for a period past what a Date holds,
 *   which {@link withinCalendar} tells apart.
 */
import { addDays, addMonths, addSeconds, addYears } from "date-fns";
// UTCDateMini: UTC calendar math without the formatting overrides (we format with toISOString),
// which spares each cold start the Intl.DateTimeFormat objects UTCDate builds on import (scripts/bundles.ts).
import { UTCDateMini as UTCDate } from "@date-fns/utc/date/mini";

/** Every cycle an offer may have. */
export const CYCLES = [
  "once",
  "daily",
  "weekly",
  "bi-weekly",
  "monthly",
  "trimester",
  "semester",
  "yearly",
  "custom",
] as const;

/** One of {@link CYCLES}. */
export type Cycle = (typeof CYCLES)[number];

/**
 * The last instant the service stores, 9999-12-31T23:59:59.999Z: the last one an ISO 8601
 * date with a 4-digit year names (later ones print as `+010000-...`).
 */
export const LAST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** True when `at` is a valid instant no later than {@link LAST_INSTANT_MS}. */
export function withinCalendar(at: Date): boolean {
  const time = at.getTime();
  return !Number.isNaN(time) && time <= LAST_INSTANT_MS;
}

/** The duration terms an offer (and the order copying it) carries. */
export interface CycleTerms {
  cycle: Cycle;
  /** Seconds per cycle; required (integer >= 1) when `cycle` is `custom`, else ignored. */
  customCycleSeconds?: number | null;
}

/**
 * The instant a grant that starts at `starts` expires, for `multiplier` cycles
 * (the order quantity, or root quantity for bundle items).
 *
 * @param starts the grant's start instant
 * @param terms the cycle (and custom seconds)
 * @param multiplier integer >= 1
 * @returns the expiry instant, or `null` for `once` (never expires); past
 *   {@link LAST_INSTANT_MS}, or invalid, when the period runs past what a Date holds
 *   (check with {@link withinCalendar})
 * @throws RangeError for a multiplier < 1 or a custom cycle without valid seconds
 */
export function expiryDate(starts: Date, terms: CycleTerms, multiplier: number): Date | null {
  if (!Number.isInteger(multiplier) || multiplier < 1) {
    throw new RangeError(`multiplier must be an integer >= 1, got ${multiplier}`);
  }
  const from = new UTCDate(starts.getTime());
  const n = multiplier;
  let to: Date;
  switch (terms.cycle) {
    case "once":
      return null;
    case "daily":
      to = addDays(from, n);
      break;
    case "weekly":
      to = addDays(from, 7 * n);
      break;
    case "bi-weekly":
      to = addDays(from, 14 * n);
      break;
    case "monthly":
      to = addMonths(from, n);
      break;
    case "trimester":
      to = addMonths(from, 3 * n);
      break;
    case "semester":
      to = addMonths(from, 6 * n);
      break;
    case "yearly":
      to = addYears(from, n);
      break;
    case "custom": {
      const seconds = terms.customCycleSeconds;
      if (seconds == null || !Number.isInteger(seconds) || seconds < 1) {
        throw new RangeError("a custom cycle needs customCycleSeconds, an integer >= 1");
      }
      to = addSeconds(from, seconds * n);
      break;
    }
  }
  return new Date(to.getTime());
}
