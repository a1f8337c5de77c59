/**
 * Grants: creating their items, and promotional grants (API.md `POST
 * /users/{userId}/grants`: tokens without an order, for trials and support, through a
 * ledger `adjust` entry).
 */
import type { Context } from "./context.js";
import { addGrant, rearmed } from "./rules/balance-state.js";
import { balanceWrites, mapView, readBalance } from "./balances.js";
import type { Db, GrantItem } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import { ValidationError } from "./errors.js";
import { expiryKeys } from "./rules/work-index.js";
import { newId } from "./ids.js";
import { ledgerEntryWrite, newLedgerEntry } from "./ledger.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";

/** A grant as the API shows it (API.md `Grant`). */
export interface Grant {
  grantId: string;
  userId: string;
  offerGroup: string;
  reason: GrantItem["reason"];
  orderId?: string;
  offerId?: string;
  tokens: number;
  starts: string;
  expires: string | null;
  status: GrantItem["status"];
  note?: string;
  createdAt: string;
}

/** The stored item as the API shape. */
export function toGrant(item: GrantItem): Grant {
  const grant: Grant = {
    grantId: item.grantId,
    userId: item.userId,
    offerGroup: item.offerGroup,
    reason: item.reason,
    tokens: item.tokens,
    starts: item.starts,
    expires: item.expires ?? null,
    status: item.status,
    createdAt: item.createdAt,
  };
  if (item.orderId !== undefined) grant.orderId = item.orderId;
  if (item.offerId !== undefined) grant.offerId = item.offerId;
  if (item.note !== undefined) grant.note = item.note;
  return grant;
}

/** The facts of a new grant. */
export interface NewGrant {
  grantId: string;
  userId: string;
  offerGroup: string;
  reason: GrantItem["reason"];
  orderId?: string | undefined;
  offerId?: string | undefined;
  orderOfferId?: string | undefined;
  tokens: number;
  starts: string;
  expires?: string | undefined;
  note?: string | undefined;
}

/** The item of a new grant: active, with its work index keys when it expires. */
export function grantItem(grant: NewGrant, now: Date): GrantItem {
  const item: GrantItem = {
    ...grant,
    status: "active",
    createdAt: now.toISOString(),
    ...(grant.expires ? expiryKeys(grant.userId, grant.grantId, grant.expires) : {}),
  };
  for (const key of Object.keys(item) as Array<keyof GrantItem>) if (item[key] === undefined) delete item[key];
  return item;
}

/** The transaction action that creates the grant's item (fails if the id exists). */
export function grantWrite(db: Db, grant: NewGrant, now: Date): TransactionItem {
  return commit(db.entities.grant.create(grantItem(grant, now)));
}

/** A promotional grant request. */
export interface PromotionalGrantInput {
  userId: string;
  offerGroup: string;
  /** Integer >= 1. */
  tokens: number;
  /** ISO instant in the future, or null for never. */
  expires: string | null;
  /** Why (kept on the grant and the ledger entry). */
  reason?: string | undefined;
}

/**
 * Adds tokens without an order: a grant (starting now) + a ledger `adjust` entry + the
 * balance, in one transaction; existing debt is repaid first. The group is re-armed for
 * its next low-balance crossing (its `lowBalanceLatched` cleared, core/rules/low-balance.ts).
 * @throws ValidationError when `expires` is not in the future
 */
export async function createPromotionalGrant(ctx: Context, input: PromotionalGrantInput): Promise<Grant> {
  const { userId, offerGroup, tokens } = input;
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    if (input.expires !== null && Date.parse(input.expires) <= now.getTime()) {
      throw new ValidationError({ expires: "must be in the future" });
    }
    const state = await readBalance(ctx, userId, offerGroup);
    const grant: NewGrant = {
      grantId: newId(now),
      userId,
      offerGroup,
      reason: "adjust",
      tokens,
      starts: now.toISOString(),
      expires: input.expires === null ? undefined : new Date(input.expires).toISOString(),
      note: input.reason,
    };
    const { next, debtRepaid } = addGrant(state, {
      grantId: grant.grantId,
      tokens,
      starts: grant.starts,
      ...(grant.expires ? { expires: grant.expires } : {}),
    });
    const entry = newLedgerEntry(
      {
        userId,
        offerGroup,
        tokens,
        reason: "adjust",
        grantId: grant.grantId,
        ...(debtRepaid > 0 ? { debtRepaid } : {}),
        ...(input.reason ? { metadata: { reason: input.reason } } : {}),
      },
      now,
    );
    const written = await transactWrite<string>(ctx.db, {
      // The balance item, and an overflow item when the grant (or what it pushes out of the map) spills.
      ...balanceWrites(ctx.db, mapView(state), rearmed(next), now),
      grant: grantWrite(ctx.db, grant, now),
      entry: ledgerEntryWrite(ctx.db, entry),
    });
    if (!written.committed) throw new RetryableConflict();
    return toGrant(grantItem(grant, now));
  });
}
