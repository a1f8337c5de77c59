/**
 * Warning rules, pure (API.md "Events" and `POST /users/{userId}/expiry-check`): when a
 * grant is expiring soon, and which warnings hold for a user now. The low-balance
 * crossing of a consumption is core/rules/low-balance.ts.
 *
 * - A grant is expiring soon when its expiry is at most its group's
 *   `expiryWarningDays` (default 7) after now; `credits.expiring` is raised once per
 *   grant (core/expiring-warnings.ts).
 * - The per-user check lists, per group (sorted by name): `expiring` when a grant expires
 *   within `warnMs` (default: the group's window), with the earliest such expiry;
 *   `low_balance` when the balance is at or below `min` (default: the group's
 *   `lowBalanceThreshold`; none when null), with the group's next expiry. A balance of 0
 *   is at or below any min >= 0. The original's `checkForExpiredOrders(userId, warn, low)`
 *   did nothing of this in practice (ORIGINAL-BEHAVIOUR.md §5.1).
 */
import type { BalanceState } from "./balance-state.js";
import { DAY_MS } from "./time.js";

/** Default days before an expiry when `credits.expiring` is raised (API.md). */
export const DEFAULT_EXPIRY_WARNING_DAYS = 7;

/** An offer group's warning settings (API.md `OfferGroupSettings`). */
export interface OfferGroupSettings {
  offerGroup: string;
  /** A balance at or below this is low (null: no low-balance warning). */
  lowBalanceThreshold: number | null;
  /** Days before a grant's expiry when it is warned about. */
  expiryWarningDays: number;
}

/** The settings in effect for a group that has none: no threshold, a 7-day window. */
export function defaultSettings(offerGroup: string): OfferGroupSettings {
  return { offerGroup, lowBalanceThreshold: null, expiryWarningDays: DEFAULT_EXPIRY_WARNING_DAYS };
}

/** A warning that holds now (API.md `Warning`). */
export interface Warning {
  offerGroup: string;
  kind: "expiring" | "low_balance";
  balance: number;
  /** The expiring grant's instant (`expiring`), or the group's next expiry, or null. */
  expires: string | null;
}

/** True when a grant expiring at `expires` (ISO) is at most `windowDays` days after `now`. */
export function isExpiringSoon(expires: string, now: Date, windowDays: number): boolean {
  return Date.parse(expires) - now.getTime() <= windowDays * DAY_MS;
}

/**
 * The end of the widest warning window from `now`: every grant expiring soon in some
 * group expires at or before it (the default window counts even when no group uses it).
 */
export function widestWindowEnd(settings: Iterable<Pick<OfferGroupSettings, "expiryWarningDays">>, now: Date): Date {
  const widest = Math.max(DEFAULT_EXPIRY_WARNING_DAYS, ...[...settings].map((s) => s.expiryWarningDays));
  return new Date(now.getTime() + widest * DAY_MS);
}

/**
 * The warnings that hold for a user's `balances` at `now` (see the rules above).
 * @param settings the groups' settings by name (missing: defaults)
 * @param warnMs overrides every group's window, in ms
 * @param low overrides groups' thresholds
 */
export function warningsFor(input: {
  balances: Iterable<BalanceState>;
  settings: ReadonlyMap<string, OfferGroupSettings>;
  now: Date;
  warnMs?: number | undefined;
  low?: ReadonlyArray<{ offerGroup: string; min: number }> | undefined;
}): Warning[] {
  const { now } = input;
  const warnings: Warning[] = [];
  for (const state of [...input.balances].sort((a, b) => (a.offerGroup < b.offerGroup ? -1 : 1))) {
    const group = input.settings.get(state.offerGroup) ?? defaultSettings(state.offerGroup);
    const warnMs = input.warnMs ?? group.expiryWarningDays * DAY_MS;
    const expiries = state.grants.map((grant) => grant.expires).filter((at): at is string => at !== undefined).sort();
    const expiring = expiries.filter((at) => Date.parse(at) - now.getTime() <= warnMs);
    if (expiring.length > 0) warnings.push({ offerGroup: state.offerGroup, kind: "expiring", balance: state.balance, expires: expiring[0]! });
    const min = input.low?.find((entry) => entry.offerGroup === state.offerGroup)?.min ?? group.lowBalanceThreshold;
    if (min !== null && state.balance <= min) {
      warnings.push({ offerGroup: state.offerGroup, kind: "low_balance", balance: state.balance, expires: expiries[0] ?? null });
    }
  }
  return warnings;
}
