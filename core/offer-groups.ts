/**
 * Offer group settings (API.md `PUT/GET /offer-groups/{offerGroup}`): the thresholds
 * behind warnings (core/rules/warnings.ts). Unset values fall back to the defaults: no
 * low-balance threshold, a 7-day expiry warning.
 */
import type { Context } from "./context.js";
import type { OfferGroupSettingsItem } from "./db/service.js";
import { DEFAULT_EXPIRY_WARNING_DAYS, defaultSettings, type OfferGroupSettings } from "./rules/warnings.js";

/** The stored settings as in effect (unset values take the defaults). */
function toSettings(item: OfferGroupSettingsItem): OfferGroupSettings {
  return {
    offerGroup: item.offerGroup,
    lowBalanceThreshold: item.lowBalanceThreshold ?? null,
    expiryWarningDays: item.expiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS,
  };
}

/** Sets a group's settings (both replaced). */
export async function putOfferGroup(
  ctx: Pick<Context, "db" | "clock">,
  offerGroup: string,
  input: { lowBalanceThreshold: number | null; expiryWarningDays: number },
): Promise<OfferGroupSettings> {
  await ctx.db.entities.offerGroupSettings
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
  const { data } = await ctx.db.entities.offerGroupSettings.get({ offerGroup }).go();
  return data ? toSettings(data) : defaultSettings(offerGroup);
}

/** Every group with settings, keyed by name (one Query: groups are few). */
export async function listOfferGroups(ctx: Pick<Context, "db">): Promise<Map<string, OfferGroupSettings>> {
  const { data } = await ctx.db.entities.offerGroupSettings.query.all({}).go({ pages: "all" });
  return new Map(data.map((item) => [item.offerGroup, toSettings(item)]));
}
