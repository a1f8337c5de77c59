/**
 * Expiry: grants whose instant has come lose their remaining tokens through a ledger
 * `expire` entry and a `credits.expired` event written in the same transaction as the
 * balance change and the grant's state change (conditional on the grant still being active, so each grant expires
 * once, whoever runs it: a consumption settling what is due, a per-user check, or the
 * daily job). The original's `checkForExpiredOrders` (ORIGINAL-BEHAVIOUR.md §3.4).
 */
import type { Context } from "./context.js";
import { balanceWrite, readBalance, readBalances } from "./balances.js";
import type { Db } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import { eventWrite } from "./events.js";
import { ledgerEntryWrite, newLedgerEntry } from "./ledger.js";
import { listOfferGroups } from "./offer-groups.js";
import { storeOrderChange } from "./order-writes.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { isDue, type BalanceState } from "./rules/balance-state.js";
import { planExpiry, type ExpiredGrant } from "./rules/expiry-plan.js";
import { canTransition, transition } from "./rules/order-lifecycle.js";
import { warningsFor, type Warning } from "./rules/warnings.js";

/** Most grants expired in one transaction: 1 balance write + 3 actions per grant (grant, ledger entry, event) <= 100. */
export const GRANTS_PER_EXPIRY_TRANSACTION = 33;

/** A grant that expired, as reported to callers (API.md `expired: Grant[]`). */
export interface ExpiredGrantReport {
  grantId: string;
  userId: string;
  offerGroup: string;
  orderId?: string | undefined;
  offerId?: string | undefined;
  tokens: number;
  /** Tokens removed: the grant's remaining at its expiry. */
  expiredTokens: number;
  starts: string;
  expires: string;
}

/**
 * The named actions of expiring `expired` from `state` to `next`: `balance`, and per
 * grant `grant:<id>` (its status), `event:<id>` (`credits.expired`) and, when it still
 * held tokens, `entry:<id>` (its ledger `expire` entry).
 */
function expiryActions(db: Db, state: BalanceState, expired: ExpiredGrant[], next: BalanceState, now: Date): Record<string, TransactionItem> {
  const actions: Record<string, TransactionItem> = { balance: balanceWrite(db, next, state.version, now) };
  let balance = state.balance;
  for (const { grant, tokens } of expired) {
    balance -= tokens;
    actions[`event:${grant.grantId}`] = eventWrite(
      db,
      {
        type: "credits.expired",
        userId: state.userId,
        offerGroup: state.offerGroup,
        grantId: grant.grantId,
        ...(grant.orderId ? { orderId: grant.orderId } : {}),
        balance,
        expires: grant.expires!,
      },
      now,
    ).item;
    actions[`grant:${grant.grantId}`] = commit(
      db.entities.grant
        .patch({ userId: state.userId, grantId: grant.grantId })
        .set({ status: "expired", expiredAt: now.toISOString(), expiredTokens: tokens })
        .remove(["expiryBucket", "expirySort"])
        .where((attr, op) => op.eq(attr.status, "active")),
    );
    if (tokens > 0) {
      const entry = newLedgerEntry(
        {
          userId: state.userId,
          offerGroup: state.offerGroup,
          tokens: -tokens,
          reason: "expire",
          grantId: grant.grantId,
          ...(grant.orderId ? { orderId: grant.orderId } : {}),
          draws: [{ grantId: grant.grantId, tokens }],
        },
        now,
      );
      actions[`entry:${grant.grantId}`] = ledgerEntryWrite(db, entry);
    }
  }
  return actions;
}

/**
 * Expires the grants of `state` that are due at `now` (at most
 * {@link GRANTS_PER_EXPIRY_TRANSACTION}) in one transaction.
 * @returns the grants expired (empty if none was due)
 * @throws RetryableConflict when the balance changed since `state` was read
 */
export async function expireDueGrants(ctx: Pick<Context, "db">, state: BalanceState, now: Date): Promise<ExpiredGrantReport[]> {
  const plan = planExpiry({ state, now, limit: GRANTS_PER_EXPIRY_TRANSACTION });
  if (plan.expired.length === 0) return [];
  const result = await transactWrite(ctx.db, expiryActions(ctx.db, state, plan.expired, plan.next, now));
  if (!result.committed) throw new RetryableConflict("balance changed while expiring");
  await markOrdersExpired(ctx, state.userId, plan.expired, now);
  return plan.expired.map(({ grant, tokens }) => ({
    grantId: grant.grantId,
    userId: state.userId,
    offerGroup: state.offerGroup,
    orderId: grant.orderId,
    offerId: grant.offerId,
    tokens: grant.tokens,
    expiredTokens: tokens,
    starts: grant.starts,
    expires: grant.expires!,
  }));
}

/**
 * Orders whose every grant has expired become `expired` (lifecycle `grantsExpired`;
 * informational: credits are decided by grants). Best effort and idempotent: an order
 * that is not paid, or still has a grant running, or moved on meanwhile, is left alone.
 */
async function markOrdersExpired(ctx: Pick<Context, "db">, userId: string, expired: ExpiredGrant[], now: Date): Promise<void> {
  const orderIds = new Set(expired.map(({ grant }) => grant.orderId).filter((id): id is string => Boolean(id)));
  for (const orderId of orderIds) {
    const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
    if (!order || !canTransition(order.status, "grantsExpired") || !order.grantsExpire || order.grantsExpire > now.toISOString()) continue;
    const next = transition(order, "grantsExpired", { message: "all its grants have expired", now });
    await storeOrderChange(ctx.db, { from: order, to: next, trigger: "grantsExpired" }, now);
  }
}

/**
 * Expires every due grant of one (user, offerGroup), retrying on conflicts.
 * @returns the grants expired
 */
export async function expireGroup(ctx: Pick<Context, "db" | "clock">, userId: string, offerGroup: string): Promise<ExpiredGrantReport[]> {
  const reports: ExpiredGrantReport[] = [];
  await retryOnConflict(async () => {
    for (;;) {
      const now = ctx.clock.now();
      const state = await readBalance(ctx, userId, offerGroup);
      const done = await expireDueGrants(ctx, state, now);
      reports.push(...done);
      if (done.length < GRANTS_PER_EXPIRY_TRANSACTION) return;
    }
  });
  return reports;
}

/** Expires every due grant of every group of the user. */
export async function expireUser(ctx: Pick<Context, "db" | "clock">, userId: string): Promise<ExpiredGrantReport[]> {
  const now = ctx.clock.now();
  const balances = await readBalances(ctx, userId);
  const reports: ExpiredGrantReport[] = [];
  for (const state of balances.values()) {
    if (state.grants.some((grant) => isDue(grant, now))) reports.push(...(await expireGroup(ctx, userId, state.offerGroup)));
  }
  return reports;
}

/**
 * The per-user expiry check (the original's `checkForExpiredOrders(userId, warn, low)`,
 * which in practice did nothing, ORIGINAL-BEHAVIOUR.md §5.1): expires the grants whose
 * date has passed, then lists every warning that holds now (core/rules/warnings.ts
 * `warningsFor`: expiring within `warnMs`, default the group's `expiryWarningDays`; at or
 * below `min`, default the group's `lowBalanceThreshold`).
 */
export async function checkUserExpiry(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  options: { warnMs?: number | undefined; low?: ReadonlyArray<{ offerGroup: string; min: number }> | undefined } = {},
): Promise<{ expired: Array<ExpiredGrantReport & { status: "expired" }>; warnings: Warning[] }> {
  const expired = await expireUser(ctx, userId);
  const now = ctx.clock.now();
  const [balances, settings] = await Promise.all([readBalances(ctx, userId), listOfferGroups(ctx)]);
  const warnings = warningsFor({ balances: balances.values(), settings, now, warnMs: options.warnMs, low: options.low });
  return { expired: expired.map((report) => ({ ...report, status: "expired" as const })), warnings };
}
