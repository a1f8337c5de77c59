/**
 * Renewing offers (`renewal: "auto"`, API.md "Renewing subscriptions and automatic
 * top-ups"): which offers a Stripe Subscription can renew, the recurring interval of
 * their Stripe Price, and the lookup key that names one Price. Pure functions.
 *
 * Rules (issue 13; Stripe API reference, "Create a price": `recurring.interval` is one of
 * `day`, `week`, `month`, `year`, with `interval_count` at most one year's worth):
 * - a cycle maps to Stripe's interval one to one: `daily` 1 day, `weekly` 1 week,
 *   `bi-weekly` 2 weeks, `monthly` 1 month, `trimester` 3 months, `semester` 6 months,
 *   `yearly` 1 year. Stripe then keeps the billing anchor day (Jan 31 -> Feb 28 -> Mar 31),
 *   and the grants follow Stripe's dates, not core/rules/cycles.ts's;
 * - `once` (never renews) and `custom` (seconds: no Stripe interval) cannot renew;
 * - `appendDate` (a period dated after the user's last one) cannot renew: Stripe dates
 *   each period, so an offer that renews must take Stripe's;
 * - an order of a renewing offer cannot start in the future: its first period is paid
 *   and starts when the subscription is created.
 * The original library had no renewal at all (ORIGINAL-BEHAVIOUR.md: a subscription is
 * bought again each cycle).
 */
import type { Cycle } from "./cycles.js";

/** Whether an offer renews by itself: `none` (bought once per period) or `auto` (Stripe Subscription). */
export const RENEWALS = ["none", "auto"] as const;

/** One of {@link RENEWALS}. */
export type Renewal = (typeof RENEWALS)[number];

/** Stripe's `recurring` of a Price: `interval` and `interval_count` (integer >= 1). */
export interface StripeRecurring {
  interval: "day" | "week" | "month" | "year";
  intervalCount: number;
}

const RECURRING: Partial<Record<Cycle, StripeRecurring>> = {
  daily: { interval: "day", intervalCount: 1 },
  weekly: { interval: "week", intervalCount: 1 },
  "bi-weekly": { interval: "week", intervalCount: 2 },
  monthly: { interval: "month", intervalCount: 1 },
  trimester: { interval: "month", intervalCount: 3 },
  semester: { interval: "month", intervalCount: 6 },
  yearly: { interval: "year", intervalCount: 1 },
};

/** The Stripe recurring interval of `cycle`, or undefined for `once` and `custom` (which cannot renew). */
export function stripeRecurring(cycle: Cycle): StripeRecurring | undefined {
  return RECURRING[cycle];
}

/** Why an offer or an order cannot renew. */
export type NotRenewableReason = "cycle" | "appendDate" | "starts" | "free" | "provider";

/** Why not, in words, for an error's details (API.md errors: the field named, a short reason). */
export const RENEWAL_REFUSALS: Record<NotRenewableReason, string> = {
  cycle: "auto needs a cycle from daily to yearly (not once or custom)",
  appendDate: "auto cannot be combined with appendDate: Stripe dates each period",
  starts: "a renewing offer starts when its subscription is created, not in the future",
  free: "a free offer cannot renew through Stripe (a subscription bills an amount)",
  provider: "only the stripe payment provider renews subscriptions",
};

/** The terms that decide whether an offer can renew. */
export interface RenewalTerms {
  cycle: Cycle;
  appendDate: boolean;
}

/**
 * Why an offer with these terms cannot renew, or undefined when it can.
 * @param starts the order's requested start (ISO 8601), if any; a start after `now` cannot renew
 * @param now the request's instant
 */
export function notRenewable(terms: RenewalTerms, starts?: string | null, now?: Date): NotRenewableReason | undefined {
  if (!stripeRecurring(terms.cycle)) return "cycle";
  if (terms.appendDate) return "appendDate";
  if (starts != null && now !== undefined && Date.parse(starts) > now.getTime()) return "starts";
  return undefined;
}

/**
 * Stripe Subscription statuses that hold a (user, offer) subscription whatever its order:
 * a second order of the offer is refused (Stripe API reference, "Subscription: status").
 */
export const HOLDING_STATUSES: ReadonlySet<string> = new Set(["active", "past_due", "unpaid", "trialing", "paused"]);

/** Stripe Subscription statuses after which a subscription renews no more. */
export const ENDED_STATUSES: ReadonlySet<string> = new Set(["canceled", "incomplete_expired"]);

/**
 * Stripe Subscription statuses under which a renewing subscription's holder stands
 * subscribed (and its group unlocked) even while no period's grant runs: `active`, in
 * the hour between a period's end and its renewal invoice's payment, and `past_due`,
 * while Stripe's Smart Retries try again (Stripe API reference, "Subscription: status").
 */
export const STANDING_STATUSES: ReadonlySet<string> = new Set(["active", "past_due"]);

/** What one Stripe Price of a renewing offer is: the offer, its currency, amount and interval. */
export interface PriceTerms {
  offerId: string;
  /** Lowercase ISO 4217. */
  currency: string;
  /** Integer, minor units per period. */
  amount: number;
  recurring: StripeRecurring;
}

/**
 * The Stripe `lookup_key` of the Price for `terms`: `uc:<offerId>:<currency>:<amount>:<count><interval>`.
 * A Price's amount and interval cannot change at Stripe, so a changed offer price names
 * another key, and so a new Price (Stripe API reference, "Prices": `lookup_key`, at most
 * 200 characters; an offer id is at most 64).
 */
export function priceLookupKey(terms: PriceTerms): string {
  return `uc:${terms.offerId}:${terms.currency}:${terms.amount}:${terms.recurring.intervalCount}${terms.recurring.interval}`;
}
