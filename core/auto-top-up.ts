/**
 * Automatic top-up settings (issue 13; API.md "Renewing subscriptions and automatic
 * top-ups"): `PUT/GET/DELETE /users/{userId}/auto-top-up/{offerGroup}`. A group's setting
 * names the offer to order when its balance falls to the threshold, the currency of that
 * order, and how many top-ups a calendar month (UTC) may start.
 *
 * The threshold is written twice, in one transaction: on the setting (what the API
 * shows), and on the group's balance item (`topUpThreshold`, core/rules/balance-state.ts),
 * where the consumption, hold or commit that crosses it reads it with the balance and
 * writes `top_up.requested` in its own transaction (core/rules/low-balance.ts `withTopUp`).
 * Writing it moves the item's `grantSet`, so a consumption planned on a cached copy
 * without the new threshold (core/balance-cache.ts) fails its condition and plans again
 * on the item as it is. Writing a setting re-arms the top-up latch. Running a requested
 * top-up is core/top-ups.ts.
 */
import type { Context } from "./context.js";
import type { AutoTopUpItem, Db } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import { balanceWrite, readBalance } from "./balances.js";
import { billingOf } from "./billing.js";
import { DomainError, ValidationError } from "./errors.js";
import { findOffer } from "./offers.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { emptyBalance, MAX_TOKENS, type BalanceState } from "./rules/balance-state.js";
import { DEFAULT_MAX_PER_MONTH, MAX_PER_MONTH_LIMIT, usedInMonth } from "./rules/top-up.js";


/** A setting as asked (API.md: `{ offerId, threshold, maxPerMonth, enabled }`, plus `currency`). */
export interface AutoTopUpInput {
  offerId: string;
  /** Tokens, integer >= 0: a balance falling from above it to at or below it requests a top-up. */
  threshold: number;
  /** Top-ups started per calendar month (UTC), 1..{@link MAX_PER_MONTH_LIMIT}; default {@link DEFAULT_MAX_PER_MONTH}. */
  maxPerMonth?: number | undefined;
  /** Default true; false keeps the setting and stops requesting top-ups. */
  enabled?: boolean | undefined;
  /** Lowercase ISO 4217 of the top-up orders; default the service's default currency. */
  currency?: string | undefined;
}

/** A setting as the API shows it. */
export interface AutoTopUp {
  userId: string;
  offerGroup: string;
  offerId: string;
  currency: string;
  threshold: number;
  maxPerMonth: number;
  enabled: boolean;
  /** Top-ups started in the current calendar month (UTC). */
  usedThisMonth: number;
  createdAt: string;
  updatedAt: string;
}

/** The stored setting as the API shape, its count read for the month of `now`. */
export function toAutoTopUp(item: AutoTopUpItem, now: Date): AutoTopUp {
  return {
    userId: item.userId,
    offerGroup: item.offerGroup,
    offerId: item.offerId,
    currency: item.currency,
    threshold: item.threshold,
    maxPerMonth: item.maxPerMonth,
    enabled: item.enabled,
    usedThisMonth: usedInMonth(item, now),
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

/**
 * Stores the group's setting and puts its threshold on the balance item (removes it when
 * `enabled` is false), in one transaction; the month's count is kept.
 * @throws DomainError `not_renewable` (422) without a billing provider (the manual one
 *   cannot pay off-session); ValidationError naming `threshold`, `maxPerMonth` or
 *   `offerId` (no such active offer, an offer of another offerGroup, or a renewing one);
 *   DomainError `currency_not_offered` naming `currency`
 */
export async function putAutoTopUp(ctx: Context, userId: string, offerGroup: string, input: AutoTopUpInput): Promise<AutoTopUp> {
  billingOf(ctx);
  const maxPerMonth = input.maxPerMonth ?? DEFAULT_MAX_PER_MONTH;
  const enabled = input.enabled ?? true;
  const currency = input.currency ?? ctx.config.defaultCurrency;
  if (!Number.isSafeInteger(input.threshold) || input.threshold < 0 || input.threshold > MAX_TOKENS) throw new ValidationError({ threshold: `an integer in 0..${MAX_TOKENS}` });
  if (!Number.isSafeInteger(maxPerMonth) || maxPerMonth < 1 || maxPerMonth > MAX_PER_MONTH_LIMIT) throw new ValidationError({ maxPerMonth: `an integer in 1..${MAX_PER_MONTH_LIMIT}` });
  const offer = await findOffer(ctx, input.offerId);
  if (!offer || !offer.active) throw new ValidationError({ offerId: `no active offer ${JSON.stringify(input.offerId)}` });
  if (offer.offerGroup !== offerGroup) throw new ValidationError({ offerId: `an offer of offerGroup ${JSON.stringify(offerGroup)}; ${input.offerId} is of ${JSON.stringify(offer.offerGroup)}` });
  if (offer.renewal === "auto") throw new ValidationError({ offerId: "a one-time offer: a renewing one is bought as a subscription, not as a top-up" });
  if (!offer.prices.some((price) => price.currency === currency)) {
    throw new DomainError("currency_not_offered", `Offer ${input.offerId} has no price in ${currency}.`, { currency, offerId: input.offerId });
  }

  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const [existing, state] = await Promise.all([readSetting(ctx.db, userId, offerGroup), readBalance(ctx, userId, offerGroup)]);
    const item: AutoTopUpItem = {
      userId,
      offerGroup,
      offerId: input.offerId,
      currency,
      threshold: input.threshold,
      maxPerMonth,
      enabled,
      ...(existing?.month !== undefined ? { month: existing.month } : {}),
      ...(existing?.count !== undefined ? { count: existing.count } : {}),
      createdAt: existing?.createdAt ?? now.toISOString(),
      updatedAt: now.toISOString(),
    };
    // Under the month's count as read: a top-up counted meanwhile (core/top-ups.ts) is kept, never overwritten.
    const written = await transactWrite(ctx.db, {
      setting: commit(
        ctx.db.entities.autoTopUp.put(item).where((attr, op) =>
          existing
            ? [
                op.eq(attr.updatedAt, existing.updatedAt),
                existing.month === undefined ? op.notExists(attr.month) : op.eq(attr.month, existing.month),
                existing.count === undefined ? op.notExists(attr.count) : op.eq(attr.count, existing.count),
              ].join(" AND ")
            : op.notExists(attr.offerId),
        ),
      ),
      balance: thresholdWrite(ctx.db, state, enabled ? input.threshold : undefined, now),
    });
    if (!written.committed) throw new RetryableConflict("the balance changed while its top-up threshold was written");
    return toAutoTopUp(item, now);
  });
}

/**
 * The group's setting.
 * @throws DomainError `not_found` (404) when the group has none
 */
export async function getAutoTopUp(ctx: Pick<Context, "db" | "clock">, userId: string, offerGroup: string): Promise<AutoTopUp> {
  const item = await readSetting(ctx.db, userId, offerGroup);
  if (!item) throw noSetting(offerGroup);
  return toAutoTopUp(item, ctx.clock.now());
}

/**
 * Deletes the group's setting and takes its threshold off the balance item, in one
 * transaction. A top-up already requested finds no setting and starts nothing.
 * @returns the setting as it was, `enabled` false
 * @throws DomainError `not_found` (404) when the group has none
 */
export async function deleteAutoTopUp(ctx: Pick<Context, "db" | "clock">, userId: string, offerGroup: string): Promise<AutoTopUp> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const [existing, state] = await Promise.all([readSetting(ctx.db, userId, offerGroup), readBalance(ctx, userId, offerGroup)]);
    if (!existing) throw noSetting(offerGroup);
    const written = await transactWrite(ctx.db, {
      setting: commit(ctx.db.entities.autoTopUp.delete({ userId, offerGroup }).where((attr, op) => op.eq(attr.updatedAt, existing.updatedAt))),
      balance: thresholdWrite(ctx.db, state, undefined, now),
    });
    if (!written.committed) throw new RetryableConflict("the setting or the balance changed while the setting was deleted");
    return { ...toAutoTopUp(existing, now), enabled: false };
  });
}

/** The 404 of a group without a setting, naming the group. */
function noSetting(offerGroup: string): DomainError {
  return new DomainError("not_found", `No automatic top-up is set for offerGroup ${JSON.stringify(offerGroup)}.`, { offerGroup });
}

/** The group's setting as stored (read consistently), or undefined. */
export async function readSetting(db: Db, userId: string, offerGroup: string): Promise<AutoTopUpItem | undefined> {
  const { data } = await db.entities.autoTopUp.get({ userId, offerGroup }).go({ consistent: true });
  return data ?? undefined;
}

/**
 * The transaction action that puts `threshold` on the balance item as `topUpThreshold`
 * (undefined: removes it) and clears the top-up latch, under the version read, moving
 * `grantSet` with the version so that plans made on copies without it fail and plan again.
 * A group with no balance item yet gets one holding nothing; undefined when there is
 * nothing to write.
 */
function thresholdWrite(db: Db, state: BalanceState, threshold: number | undefined, now: Date): TransactionItem | undefined {
  if (state.version === 0) {
    if (threshold === undefined) return undefined;
    return balanceWrite(db, { ...emptyBalance(state.userId, state.offerGroup), topUpThreshold: threshold }, 0, now);
  }
  const version = state.version + 1;
  return commit(
    db.entities.balance
      .patch({ userId: state.userId, offerGroup: state.offerGroup })
      .data((attr, op) => {
        if (threshold === undefined) op.remove(attr.topUpThreshold);
        else op.set(attr.topUpThreshold, threshold);
        op.remove(attr.topUpLatched);
        op.set(attr.version, version);
        op.set(attr.grantSet, version);
        op.set(attr.updatedAt, now.toISOString());
      })
      .where((attr, op) => op.eq(attr.version, state.version)),
  );
}
