/**
 * The offer catalog: upsert, read, list (the original's `loadOffers`; visibility rules
 * in core/rules/visibility.ts).
 */
import type { Context } from "./context.js";
import type { Cycle } from "./rules/cycles.js";
import type { Renewal } from "./rules/renewal.js";
import { readBalances } from "./balances.js";
import type { OfferItem } from "./db/service.js";
import { NotFoundError, ValidationError } from "./errors.js";
import { groupsUnlockedBy, visibleOffers } from "./rules/visibility.js";
import { standingGroups } from "./subscriptions.js";

/** A price: integer amount in minor units, lowercase ISO 4217 currency. */
export interface Price {
  amount: number;
  currency: string;
}

/** An offer's terms as written by `PUT /offers/{offerId}` (API.md "Offers"). */
export interface OfferInput {
  name: string;
  kind: "tokens" | "subscription" | "expertise";
  offerGroup: string;
  cycle: Cycle;
  customCycleSeconds: number | null;
  appendDate: boolean;
  /** `auto`: a Stripe Subscription renews it each cycle (core/rules/renewal.ts); `none`: bought once per period. */
  renewal: Renewal;
  tokenCount: number;
  prices: Price[];
  quantityLimit: number | null;
  tags: string[];
  unlockedBy: string[];
  overridingKey: string | null;
  weight: number;
  popular: number;
  combinedItems: Array<{ offerId: string; quantity: number }>;
  active: boolean;
}

/** An offer as the API shows it. */
export interface Offer extends OfferInput {
  offerId: string;
  createdAt: string;
  updatedAt: string;
}

/** The stored item as the API shape (absent optional fields become null). */
export function toOffer(item: OfferItem): Offer {
  return {
    offerId: item.offerId,
    name: item.name,
    kind: item.kind,
    offerGroup: item.offerGroup,
    cycle: item.cycle,
    customCycleSeconds: item.customCycleSeconds ?? null,
    appendDate: item.appendDate,
    renewal: item.renewal ?? "none",
    tokenCount: item.tokenCount,
    prices: item.prices,
    quantityLimit: item.quantityLimit ?? null,
    tags: item.tags,
    unlockedBy: item.unlockedBy,
    overridingKey: item.overridingKey ?? null,
    weight: item.weight,
    popular: item.popular,
    combinedItems: item.combinedItems,
    active: item.active,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

/**
 * Creates or replaces an offer. Bundle items must name existing offers that are not
 * bundles themselves, and not the offer itself.
 * @throws ValidationError naming `combinedItems[i].offerId` otherwise
 */
export async function upsertOffer(ctx: Context, offerId: string, input: OfferInput): Promise<Offer> {
  const now = ctx.clock.now().toISOString();
  const problems: Record<string, string> = {};
  if (input.combinedItems.length > 0) {
    const items = await getOffers(ctx, input.combinedItems.map((item) => item.offerId));
    input.combinedItems.forEach((item, index) => {
      const found = items.get(item.offerId);
      if (item.offerId === offerId) problems[`combinedItems[${index}].offerId`] = "a bundle cannot contain itself";
      else if (!found) problems[`combinedItems[${index}].offerId`] = "no such offer";
      else if (found.combinedItems.length > 0) problems[`combinedItems[${index}].offerId`] = "bundles cannot be nested";
    });
  }
  if (Object.keys(problems).length > 0) throw new ValidationError(problems);

  const existing = await ctx.db.entities.offer.get({ offerId }).go({ consistent: true });
  const item: OfferItem = {
    offerId,
    name: input.name,
    kind: input.kind,
    offerGroup: input.offerGroup,
    cycle: input.cycle,
    appendDate: input.appendDate,
    tokenCount: input.tokenCount,
    prices: input.prices,
    tags: input.tags,
    unlockedBy: input.unlockedBy,
    weight: input.weight,
    popular: input.popular,
    combinedItems: input.combinedItems,
    active: input.active,
    createdAt: existing.data?.createdAt ?? now,
    updatedAt: now,
    ...(input.cycle === "custom" && input.customCycleSeconds !== null ? { customCycleSeconds: input.customCycleSeconds } : {}),
    ...(input.quantityLimit !== null ? { quantityLimit: input.quantityLimit } : {}),
    ...(input.overridingKey !== null ? { overridingKey: input.overridingKey } : {}),
    ...(input.renewal === "auto" ? { renewal: input.renewal } : {}),
  };
  await ctx.db.entities.offer.put(item).go();
  return toOffer(item);
}

/** The offer, read consistently, or undefined. */
export async function findOffer(ctx: Pick<Context, "db">, offerId: string): Promise<OfferItem | undefined> {
  const { data } = await ctx.db.entities.offer.get({ offerId }).go({ consistent: true });
  return data ?? undefined;
}

/**
 * The offer, active or not.
 * @throws NotFoundError when there is none
 */
export async function getOffer(ctx: Pick<Context, "db">, offerId: string): Promise<Offer> {
  const item = await findOffer(ctx, offerId);
  if (!item) throw new NotFoundError("offer", offerId);
  return toOffer(item);
}

/** Several offers by id, in one batch read, keyed by id (missing ones are absent). */
export async function getOffers(ctx: Pick<Context, "db">, offerIds: readonly string[]): Promise<Map<string, OfferItem>> {
  const unique = [...new Set(offerIds)];
  if (unique.length === 0) return new Map();
  const { data } = await ctx.db.entities.offer.get(unique.map((offerId) => ({ offerId }))).go({ consistent: true });
  return new Map(data.map((item) => [item.offerId, item]));
}

/** The whole catalog, inactive and locked offers included (`GET /offers?all=true`). */
export async function listCatalog(ctx: Pick<Context, "db">): Promise<OfferItem[]> {
  const { data } = await ctx.db.entities.offer.query.catalog({}).go({ pages: "all" });
  return data;
}

/**
 * The offerGroups the user's active paid grants, and standing renewing subscriptions,
 * unlock now (core/rules/visibility.ts `groupsUnlockedBy`): two Queries at once.
 */
export async function unlockedGroups(ctx: Pick<Context, "db">, userId: string, now: Date): Promise<Set<string>> {
  const [balances, standing] = await Promise.all([readBalances(ctx, userId), standingGroups(ctx, userId)]);
  return groupsUnlockedBy(balances.values(), now, standing);
}

/** Filters of `GET /offers`. */
export interface OfferListQuery {
  userId?: string | undefined;
  tags?: string[] | undefined;
  allTags?: boolean | undefined;
  currency?: string | undefined;
  all?: boolean | undefined;
}

/** The offers a user (or an anonymous visitor) may see, or the whole catalog with `all`. */
export async function listOffers(ctx: Context, query: OfferListQuery): Promise<Offer[]> {
  const catalog = await listCatalog(ctx);
  if (query.all) return catalog.map(toOffer).sort((a, b) => (a.offerId < b.offerId ? -1 : 1));
  const groups = query.userId ? await unlockedGroups(ctx, query.userId, ctx.clock.now()) : new Set<string>();
  return visibleOffers({
    offers: catalog,
    unlockedGroups: groups,
    tags: query.tags ?? [],
    allTags: query.allTags ?? false,
    currency: query.currency,
  }).map(toOffer);
}
