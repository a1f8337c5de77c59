/**
 * UTC days, pure: the calendar day of an instant, stepping by days, and the days of a
 * range, through date-fns on `UTCDate` (@date-fns/utc), never local time (DESIGN.md
 * "Time is UTC").
 */
import { addDays } from "date-fns";
// UTCDateMini: UTC calendar math without the formatting overrides (we format with toISOString),
// which spares each cold start the Intl.DateTimeFormat objects UTCDate builds on import (scripts/bundles.ts).
import { UTCDateMini as UTCDate } from "@date-fns/utc/date/mini";

/** Milliseconds in a day (24 hours; calendar months and years go through core/rules/cycles.ts). */
export const DAY_MS = 24 * 60 * 60 * 1000;

/** The UTC day (YYYY-MM-DD) of an instant. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The UTC day `days` days before or after `at`'s day (YYYY-MM-DD). */
export function utcDayPlus(at: Date | string, days: number): string {
  const from = typeof at === "string" ? new UTCDate(`${at}T00:00:00.000Z`) : new UTCDate(at.getTime());
  return utcDay(addDays(from, days));
}

/** Every UTC day from `first` to `last` (YYYY-MM-DD, both included), in order; none when `first` is after `last`. */
export function* daysBetween(first: string, last: string): Generator<string> {
  for (let day = first; day <= last; day = utcDayPlus(day, 1)) yield day;
}
