/**
 * Offer group settings (API.md `PUT/GET /offer-groups/{offerGroup}`): the thresholds
 * behind warnings. Unset values fall back to the defaults: no low-balance threshold,
 * a 7-day expiry warning.
 */
import type { Context } from "./context.js";

/** Default days before an expiry when `credits.expiring` is raised (API.md). */
export const DEFAULT_EXPIRY_WARNING_DAYS = 7;

/** An offer group's effective settings. */
export interface OfferGroupSettings {
  offerGroup: string;
  /** A balance at or below this is low (null: no low-balance warning). */
  lowBalanceThreshold: number | null;
  /** Days before a grant's expiry when it is warned about. */
  expiryWarningDays: number;
}

/** The settings in effect when none were set. */
export function defaultSettings(offerGroup: string): OfferGroupSettings {
  return { offerGroup, lowBalanceThreshold: null, expiryWarningDays: DEFAULT_EXPIRY_WARNING_DAYS };
}

/** Sets a group's settings (both replaced). */
export async function putOfferGroup(
  ctx: Pick<Context, "db" | "clock">,
  offerGroup: string,
  input: { lowBalanceThreshold: number | null; expiryWarningDays: number },
): Promise<OfferGroupSettings> {
  await ctx.db.entities.offerGroup
    .put({
      offerGroup,
      expiryWarningDays: input.expiryWarningDays,
      updatedAt: ctx.clock.now().toISOString(),
      ...(input.lowBalanceThreshold !== null ? { lowBalanceThreshold: input.lowBalanceThreshold } : {}),
    })
    .go();
  return { offerGroup, ...input };
}

/** A group's settings in effect (defaults when never set). */
export async function getOfferGroup(ctx: Pick<Context, "db">, offerGroup: string): Promise<OfferGroupSettings> {
  const { data } = await ctx.db.entities.offerGroup.get({ offerGroup }).go();
  if (!data) return defaultSettings(offerGroup);
  return {
    offerGroup,
    lowBalanceThreshold: data.lowBalanceThreshold ?? null,
    expiryWarningDays: data.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS,
  };
}

/** Every group with settings, keyed by name (one Query: groups are few). */
export async function listOfferGroups(ctx: Pick<Context, "db">): Promise<Map<string, OfferGroupSettings>> {
  const { data } = await ctx.db.entities.offerGroup.query.all({}).go({ pages: "all" });
  return new Map(
    data.map((item) => [
      item.offerGroup,
      {
        offerGroup: item.offerGroup,
        lowBalanceThreshold: item.lowBalanceThreshold ?? null,
        expiryWarningDays: item.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS,
      },
    ]),
  );
}
