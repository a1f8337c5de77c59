/**
 * Expiry: grants whose instant has come lose their remaining tokens through a ledger
 * `expire` entry and a `credits.expired` event written in the same transaction as the
 * balance change and the grant's state change (conditional on the grant still being active, so each grant expires
 * once, whoever runs it: a consumption settling what is due, a per-user check, or the
 * daily job). The original's `checkForExpiredOrders` (ORIGINAL-BEHAVIOUR.md §3.4).
 *
 * Due grants spilled to overflow items (core/rules/balance-layout.ts) come first in key
 * order: they are read (a few items per Query) when the balance item's overflow summary
 * says some may be due, and the write refills the map from what was read. A grant that
 * left the balance item exhausted still has an `active` grant item until its expiry: the
 * balance item's `exhausted` note says from which grant id and at which instant; then one
 * Query of the user's grant items from that id finds them, and each is marked expired with
 * 0 tokens (and its `credits.expired` event), no ledger entry.
 */
import type { Context } from "./context.js";
import {
  balanceWrites,
  hasDueGrants,
  layoutFor,
  mapView,
  mergeOverflowWrites,
  overflowActionCount,
  readBalance,
  readBalances,
  readMoreOverflow,
  withAllGrants,
  type BalanceView,
} from "./balances.js";
import type { Db, GrantItem } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import { eventWrite } from "./events.js";
import { ledgerEntryWrite, newLedgerEntry } from "./ledger.js";
import { listOfferGroups } from "./offer-groups.js";
import { storeOrderChange } from "./order-writes.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { dueBound, isDue, type BalanceState, type ExhaustedGrants, type GrantState } from "./rules/balance-state.js";
import { planExpiry, type ExpiredGrant } from "./rules/expiry-plan.js";
import { canTransition, transition } from "./rules/order-lifecycle.js";
import { warningsFor, type Warning } from "./rules/warnings.js";

/**
 * Most grants expired in one transaction: 1 balance write + 3 actions per grant (grant,
 * ledger entry, event) + at most {@link EXPIRY_OVERFLOW_ACTIONS} overflow items <= 91 of DynamoDB's 100.
 */
export const GRANTS_PER_EXPIRY_TRANSACTION = 20;

/** Most overflow-item actions in one expiry transaction (more: the items are merged first). */
export const EXPIRY_OVERFLOW_ACTIONS = 30;

/** Most exhausted grants marked expired in one transaction: 2 actions each (grant, event) + the balance item. */
export const EXHAUSTED_PER_TRANSACTION = 45;

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
 * The named actions of expiring `expired` from `view` to `next`: the balance item and
 * overflow items (core/balances.ts `balanceWrites`, with `layout`), and per grant
 * `grant:<id>` (its status), `event:<id>` (`credits.expired`) and, when it still held
 * tokens, `entry:<id>` (its ledger `expire` entry).
 */
function expiryActions(
  db: Db,
  view: BalanceView,
  expired: ExpiredGrant[],
  next: BalanceState,
  layout: ReturnType<typeof layoutFor>,
  now: Date,
): Record<string, TransactionItem> {
  const state = view.state;
  const actions: Record<string, TransactionItem> = balanceWrites(db, view, next, now, layout);
  let balance = state.balance;
  for (const { grant, tokens } of expired) {
    balance -= tokens;
    Object.assign(actions, expiredGrantActions(db, state, grant, balance, now, tokens));
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

/** `event:<id>` (`credits.expired`, with the balance after it) and `grant:<id>` (status `expired`, only if still active) of one grant. */
function expiredGrantActions(
  db: Db,
  state: Pick<BalanceState, "userId" | "offerGroup">,
  grant: Pick<GrantState, "grantId" | "orderId" | "expires"> & { tokens?: number },
  balance: number,
  now: Date,
  expiredTokens = 0,
): Record<string, TransactionItem> {
  return {
    [`event:${grant.grantId}`]: eventWrite(
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
    ).item,
    [`grant:${grant.grantId}`]: commit(
      db.entities.grant
        .patch({ userId: state.userId, grantId: grant.grantId })
        .set({ status: "expired", expiredAt: now.toISOString(), expiredTokens: expiredTokens })
        .remove(["expiryBucket", "expirySort"])
        .where((attr, op) => op.eq(attr.status, "active")),
    ),
  };
}

/**
 * Expires the grants of `state` that are due at `now` (at most
 * {@link GRANTS_PER_EXPIRY_TRANSACTION}), in the map or spilled, in one transaction.
 * @param state the balance as read (its map)
 * @returns the grants expired (empty if none was due)
 * @throws RetryableConflict when the balance changed since `state` was read (or small
 *   overflow items were merged first: read again)
 */
export async function expireDueGrants(ctx: Pick<Context, "db">, state: BalanceState, now: Date): Promise<ExpiredGrantReport[]> {
  const limit = GRANTS_PER_EXPIRY_TRANSACTION;
  // A. The spilled grants that may be due come first in key order: read them, enough for one transaction.
  let view: BalanceView = mapView(state);
  const dueInHand = (current: BalanceView) => current.state.grants.filter((grant) => isDue(grant, now)).length;
  while (view.state.spilled && view.state.spilled.from < dueBound(now) && dueInHand(view) < limit) view = await readMoreOverflow(ctx, view);

  // B. Plan, and lay out (reading on while the overflow's smallest key is not settled).
  let plan = planExpiry({ state: view.state, now, limit });
  if (plan.expired.length === 0) return [];
  let layout = layoutFor(view, plan.next, now);
  while (!layout.complete) {
    view = await readMoreOverflow(ctx, view);
    plan = planExpiry({ state: view.state, now, limit });
    layout = layoutFor(view, plan.next, now);
  }
  if (overflowActionCount(layout) > EXPIRY_OVERFLOW_ACTIONS) {
    const merge = mergeOverflowWrites(ctx.db, view, now);
    if (merge && (await transactWrite(ctx.db, merge)).committed) throw new RetryableConflict("merged small overflow items; read again");
    if (!merge) throw new RangeError("an expiry would rewrite too many overflow items at once");
    throw new RetryableConflict("balance changed while merging overflow items");
  }

  // C. One transaction.
  const result = await transactWrite(ctx.db, expiryActions(ctx.db, view, plan.expired, plan.next, layout, now));
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
 * Marks expired (0 tokens, no ledger entry) the grants that left `state` exhausted and
 * are due at `now`, found through its `exhausted` note (one Query of the user's grant
 * items from the note's grant id), at most {@link EXHAUSTED_PER_TRANSACTION}, and renews
 * the note (from the grants still waiting; grants of the group that did not leave may be
 * counted in, which only widens the next Query), in one transaction.
 * @param state the balance as read, with no due grant left in it (expire those first)
 * @returns the grants expired
 * @throws RetryableConflict when the balance changed since `state` was read
 */
export async function expireExhaustedGrants(ctx: Pick<Context, "db">, state: BalanceState, now: Date): Promise<ExpiredGrantReport[]> {
  const note = state.exhausted;
  if (!note || Date.parse(note.due) > now.getTime() || state.version === 0) return [];
  const { userId, offerGroup } = state;
  const { data } = await ctx.db.entities.grant.query
    .byUser({ userId })
    .between({ grantId: note.since }, { grantId: "~" })
    .where((attr, op) => `${op.eq(attr.offerGroup, offerGroup)} AND ${op.eq(attr.status, "active")} AND ${op.exists(attr.expires)}`)
    .go({ consistent: true, pages: "all" });
  const inMap = new Set(state.grants.map((grant) => grant.grantId));
  const waiting = data.filter((grant) => !inMap.has(grant.grantId));
  const due = waiting.filter((grant) => isDue(grant, now)).slice(0, EXHAUSTED_PER_TRANSACTION);
  const dueIds = new Set(due.map((grant) => grant.grantId));
  let renewed: ExhaustedGrants | undefined;
  for (const grant of waiting) {
    if (dueIds.has(grant.grantId)) continue;
    renewed = {
      since: renewed && renewed.since < grant.grantId ? renewed.since : grant.grantId,
      due: renewed && Date.parse(renewed.due) <= Date.parse(grant.expires!) ? renewed.due : grant.expires!,
    };
  }
  const noteWrite = ctx.db.entities.balance.patch({ userId, offerGroup }).add({ version: 1 }).set({ updatedAt: now.toISOString() });
  const actions: Record<string, TransactionItem> = {
    balance: commit(
      (renewed ? noteWrite.set({ exhausted: renewed }) : noteWrite.remove(["exhausted"])).where((attr, op) => op.eq(attr.version, state.version)),
    ),
  };
  for (const grant of due) Object.assign(actions, expiredGrantActions(ctx.db, state, grant, state.balance, now));
  const result = await transactWrite(ctx.db, actions);
  if (!result.committed) throw new RetryableConflict("balance changed while expiring exhausted grants");
  const expired = due.map((grant): ExpiredGrant => ({ grant: toGrantState(grant), tokens: 0 }));
  await markOrdersExpired(ctx, userId, expired, now);
  return due.map((grant) => ({
    grantId: grant.grantId,
    userId,
    offerGroup,
    orderId: grant.orderId,
    offerId: grant.offerId,
    tokens: grant.tokens,
    expiredTokens: 0,
    starts: grant.starts,
    expires: grant.expires!,
  }));
}

function toGrantState(item: GrantItem): GrantState {
  return { grantId: item.grantId, orderId: item.orderId, offerId: item.offerId, orderOfferId: item.orderOfferId, tokens: item.tokens, remaining: 0, starts: item.starts, expires: item.expires };
}

/** True when the group has something to expire at `now`: a due grant (map or spilled), or an exhausted one waiting. */
export function hasExpiryWork(state: BalanceState, now: Date): boolean {
  return hasDueGrants(state, now) || (state.exhausted !== undefined && Date.parse(state.exhausted.due) <= now.getTime());
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
 * Expires every due grant of one (user, offerGroup), in the map, spilled, or left
 * exhausted, retrying on conflicts.
 * @returns the grants expired
 */
export async function expireGroup(ctx: Pick<Context, "db" | "clock">, userId: string, offerGroup: string): Promise<ExpiredGrantReport[]> {
  const reports: ExpiredGrantReport[] = [];
  await retryOnConflict(async () => {
    for (;;) {
      const now = ctx.clock.now();
      const state = await readBalance(ctx, userId, offerGroup);
      const exhaustedDue = state.exhausted !== undefined && Date.parse(state.exhausted.due) <= now.getTime();
      if (hasDueGrants(state, now)) {
        const expired = await expireDueGrants(ctx, state, now);
        reports.push(...expired);
        // A full transaction: more may be due. Exhausted grants waiting: read again first.
        if (expired.length >= GRANTS_PER_EXPIRY_TRANSACTION || (expired.length > 0 && exhaustedDue)) continue;
        if (expired.length > 0) return;
      }
      const done = await expireExhaustedGrants(ctx, state, now);
      reports.push(...done);
      if (done.length < EXHAUSTED_PER_TRANSACTION) return;
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
    if (hasExpiryWork(state, now)) reports.push(...(await expireGroup(ctx, userId, state.offerGroup)));
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
  // Warnings read every grant of a group (its spilled ones too).
  const states = await Promise.all([...balances.values()].map((state) => withAllGrants(ctx, state)));
  const warnings = warningsFor({ balances: states, settings, now, warnMs: options.warnMs, low: options.low });
  return { expired: expired.map((report) => ({ ...report, status: "expired" as const })), warnings };
}
