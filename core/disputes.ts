/**
 * Disputes (chargebacks) of an order's payment (API.md "Refunds and disputes started in
 * Stripe"):
 * - `charge.dispute.created` freezes the order's remaining tokens (ledger `adjust`,
 *   `-remaining`, `metadata.disputeId`; core/rules/give-back.ts `freezePlan`), the order
 *   becomes `disputed`, event `order.disputed`.
 * - `charge.dispute.closed` with any status but `lost` gives the frozen tokens back to the
 *   same grants by the one give-back rule (core/rules/give-back.ts `giveBackPlan`: the
 *   group's debt first; a grant already past its expiry loses them at once, and such a
 *   net-zero pair of entries is not written); the order is `paid` again (`expired` if all
 *   its grants have). `lost` keeps them removed, ends the order's grants and makes it
 *   `refunded`. Event `order.dispute_closed` with the status.
 * The dispute is read back from Stripe (events can be stale, forged or out of order): a
 * `closed` delivered before `created` applies both at once; each applies once, by
 * dispute id, recorded on the order.
 *
 * A renewing order (issue 13) is paid invoice by invoice, and a dispute is of one
 * invoice's charge, whose PaymentIntent carries no `metadata.orderId`: the invoice's
 * subscription names the order (core/subscriptions.ts `renewalOfPayment`). Only that
 * period's grants are frozen, given back or ended, the dispute is recorded with the
 * invoice (`invoiceId`), and the order keeps its status: its subscription goes on (a
 * `disputed` order would credit no later invoice, each paid for nothing while the dispute
 * lasts). The events are the same.
 */
import type { PaymentContext } from "./context.js";
import type { OrderItem } from "./db/service.js";
import { transactWrite } from "./db/transact.js";
import { PaymentNotFoundError } from "./errors.js";
import { orderActions } from "./order-writes.js";
import { endOrderGrants, grantFacts, readOrderGrants, takeFromGrant, TokenMovement, type OrderGrant } from "./order-tokens.js";
import { eventWrite } from "./events.js";
import { endScopeGrants } from "./refunds.js";
import { periodOfPayment, renewalOfPayment } from "./subscriptions.js";
import type { DisputeState } from "./payments/provider.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { isDue } from "./rules/balance-state.js";
import { freezePlan, giveBackPlan } from "./rules/give-back.js";
import { canTransition, noted, transition } from "./rules/order-lifecycle.js";

/** One dispute entry of an order as stored (core/rules/order-lifecycle.ts `OrderDispute`, with a renewing order's `invoiceId`). */
type DisputeEntry = NonNullable<OrderItem["disputes"]>[number];

/** Stripe dispute statuses that mean it is over (Stripe docs, "Dispute object": `status`). */
const CLOSED = new Set(["won", "lost", "warning_closed"]);

/** What applying a dispute event did. */
export interface DisputeOutcome {
  outcome: "applied" | "ignored";
  reason: string;
  orderId?: string | undefined;
}

/**
 * Applies what Stripe says of dispute `disputeId` now: opens it on its order (freeze),
 * closes it (give back, or end on `lost`), or both when the closing came first; once.
 * @throws PaymentProviderError when Stripe fails (5xx: Stripe delivers again)
 */
export async function applyDispute(ctx: PaymentContext, disputeId: string): Promise<DisputeOutcome> {
  let dispute: DisputeState;
  let metadata: Record<string, string>;
  try {
    dispute = await ctx.payments.retrieveDispute(disputeId);
    if (!dispute.paymentIntentId) return { outcome: "ignored", reason: "the dispute has no PaymentIntent" };
    metadata = (await ctx.payments.retrievePaymentIntent(dispute.paymentIntentId)).metadata;
  } catch (error) {
    if (error instanceof PaymentNotFoundError) return { outcome: "ignored", reason: `Stripe does not know dispute ${disputeId} or its payment` };
    throw error;
  }
  let { orderId, userId } = metadata;
  let invoiceId: string | undefined;
  if (!orderId || !userId) {
    const renewal = await renewalOfPayment(ctx, dispute.paymentIntentId);
    if (!renewal) return { outcome: "ignored", reason: "no order metadata on the disputed PaymentIntent, and no invoice of a renewing order of ours" };
    if (!renewal.period) return { outcome: "ignored", reason: `invoice ${renewal.invoiceId} credited no period of the renewing order`, orderId: renewal.orderId };
    ({ orderId, userId, invoiceId } = renewal);
  }
  const ref = { userId, orderId };
  let opened = await openDispute(ctx, ref, dispute, invoiceId);
  if (CLOSED.has(dispute.status)) opened = (await closeDispute(ctx, ref, dispute)) || opened;
  return { outcome: opened ? "applied" : "ignored", reason: opened ? `dispute ${dispute.status}` : "already applied", orderId };
}

/**
 * Freezes the order's tokens for `dispute` (a renewing order's: those of the period the
 * disputed payment paid), unless the order already knows it; true when it changed the order.
 */
async function openDispute(ctx: PaymentContext, ref: { userId: string; orderId: string }, dispute: DisputeState, invoiceId: string | undefined): Promise<boolean> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get(ref).go({ consistent: true });
    if (!order || (order.disputes ?? []).some((known) => known.disputeId === dispute.id)) return false;
    if (order.renewal === "auto") return openPeriodDispute(ctx, order, dispute, invoiceId, now);
    if (order.paidPaymentIntentId !== undefined && order.paidPaymentIntentId !== dispute.paymentIntentId) return false; // a duplicate payment's
    if (!canTransition(order.status, "disputeOpened")) return false;
    const { grants, balances } = await readOrderGrants(ctx, order);
    const movement = new TokenMovement(balances, now);
    const frozen: Array<{ grantId: string; tokens: number }> = [];
    for (const group of new Set(grants.map(({ item }) => item.offerGroup))) {
      const plan = freezePlan({ state: movement.state(order.userId, group), orderId: order.orderId });
      if (plan.movements.length === 0) continue;
      movement.update(plan.next);
      for (const move of plan.movements) {
        const tokens = -move.tokens;
        frozen.push({ grantId: move.grantId, tokens });
        movement.entry({ userId: order.userId, offerGroup: group, tokens: -tokens, reason: "adjust", orderId: order.orderId, grantId: move.grantId, draws: [{ grantId: move.grantId, tokens }], metadata: { disputeId: dispute.id } });
      }
    }
    const tokens = frozen.reduce((sum, grant) => sum + grant.tokens, 0);
    const record: DisputeEntry = { disputeId: dispute.id, status: "open", frozen, createdAt: now.toISOString() };
    const next: OrderItem = {
      ...transition(order, "disputeOpened", { message: `dispute ${dispute.id} opened (${dispute.amount} ${dispute.currency}): ${tokens} tokens frozen`, now }),
      disputes: [...(order.disputes ?? []), record],
    };
    const change = orderActions(ctx.db, { from: order, to: next, trigger: "disputeOpened" }, now, { tokens, amount: dispute.amount, currency: dispute.currency });
    const written = await transactWrite(ctx.db, { ...change, ...movement.actions(ctx, 2) });
    if (!written.committed) throw new RetryableConflict("order or balance changed while freezing for a dispute");
    return true;
  });
}

/**
 * Opens `dispute` on the period of renewing order `order` that the disputed payment paid:
 * each grant of that period loses what it holds (ledger `adjust`, `metadata.disputeId`),
 * the dispute is recorded with its invoice, `order.disputed` is raised, and the order
 * keeps its status. False when the payment paid no period of the order, or the order is
 * not `paid` or `expired`.
 * @throws RetryableConflict when the order or a balance changed meanwhile
 */
async function openPeriodDispute(ctx: PaymentContext, order: OrderItem, dispute: DisputeState, invoiceId: string | undefined, now: Date): Promise<boolean> {
  if (order.status !== "paid" && order.status !== "expired") return false;
  const period = await periodOfPayment(ctx, order, dispute.paymentIntentId, invoiceId);
  if (!period) return false;
  const { grants, balances } = await readOrderGrants(ctx, { userId: order.userId, orderId: order.orderId, grantIds: period.grantIds });
  const movement = new TokenMovement(balances, now);
  const frozen = grants
    .map(({ item, state }) => ({ grantId: item.grantId, tokens: takeFromGrant(movement, order, item, state?.remaining ?? 0, "adjust", { disputeId: dispute.id }) }))
    .filter((grant) => grant.tokens > 0);
  const tokens = frozen.reduce((sum, grant) => sum + grant.tokens, 0);
  const record: DisputeEntry = { disputeId: dispute.id, status: "open", frozen, invoiceId: period.invoiceId, createdAt: now.toISOString() };
  const next: OrderItem = {
    ...noted(order, { message: `dispute ${dispute.id} opened (${dispute.amount} ${dispute.currency}) on the period paid by invoice ${period.invoiceId}: ${tokens} tokens frozen`, now }),
    disputes: [...(order.disputes ?? []), record],
  };
  const fields = { tokens, amount: dispute.amount, currency: dispute.currency };
  const written = await transactWrite(ctx.db, {
    ...orderActions(ctx.db, { from: order, to: next }, now),
    event: eventWrite(ctx.db, { type: "order.disputed", userId: order.userId, orderId: order.orderId, offerGroup: order.offerGroup, ...fields }, now).item,
    ...movement.actions(ctx, 2),
  });
  if (!written.committed) throw new RetryableConflict("order or balance changed while freezing a period for a dispute");
  return true;
}

/**
 * Closes the order's open record of `dispute`: tokens given back (not `lost`) or grants
 * ended (`lost`); for a renewing order's period (the record names its invoice), that
 * period's grants only, the order keeping its status. True when it changed the order.
 */
async function closeDispute(ctx: PaymentContext, ref: { userId: string; orderId: string }, dispute: DisputeState): Promise<boolean> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get(ref).go({ consistent: true });
    const record: DisputeEntry | undefined = order?.disputes?.find((known) => known.disputeId === dispute.id);
    if (!order || !record || record.status !== "open") return false;
    const invoiceId = record.invoiceId;
    if (!invoiceId && order.status !== "disputed") return false;
    const grantIds = invoiceId ? (await ctx.db.entities.renewalInvoice.get({ userId: order.userId, orderId: order.orderId, invoiceId }).go({ consistent: true })).data?.grantIds : order.grantIds;
    if (!grantIds) return false;
    const { grants, balances } = await readOrderGrants(ctx, { userId: order.userId, orderId: order.orderId, grantIds });
    const movement = new TokenMovement(balances, now);
    const lost = dispute.status === "lost";
    const of = invoiceId ? ` (the period paid by invoice ${invoiceId})` : "";
    let message: string;
    let tokens = 0;
    let trigger: "disputeLost" | "disputeClosed" | "disputeClosedExpired";
    if (lost) {
      const ended = invoiceId ? endScopeGrants(movement, order, grants, { invoiceId }, "refund", { disputeId: dispute.id }) : endOrderGrants(movement, order, grants, "refund", { disputeId: dispute.id });
      tokens = ended.reduce((sum, grant) => sum + grant.tokens, 0);
      trigger = "disputeLost";
      message = `dispute ${dispute.id}${of} lost: the frozen tokens stay removed, the ${invoiceId ? "period's" : "order's"} grants end`;
    } else {
      const given = giveBack(movement, order, grants, record, dispute.id, now);
      tokens = given.tokens;
      const allExpired = grants.length > 0 && grants.every(({ item }) => item.status === "expired" || isDue(item, now));
      trigger = allExpired ? "disputeClosedExpired" : "disputeClosed";
      message = `dispute ${dispute.id}${of} closed (${dispute.status}): ${tokens} tokens given back${given.expired > 0 ? `, ${given.expired} of them past their grant's expiry and expired at once` : ""}`;
    }
    const disputes = (order.disputes ?? []).map((known) => (known === record ? { ...known, status: dispute.status, closedAt: now.toISOString() } : known));
    const fields = { status: dispute.status, tokens };
    // A renewing order's period: the order keeps its status, the event is written beside it.
    const actions = invoiceId
      ? {
          ...orderActions(ctx.db, { from: order, to: { ...noted(order, { message, now }), disputes } }, now),
          event: eventWrite(ctx.db, { type: "order.dispute_closed", userId: order.userId, orderId: order.orderId, offerGroup: order.offerGroup, ...fields }, now).item,
        }
      : orderActions(ctx.db, { from: order, to: { ...transition(order, trigger, { message, now }), disputes }, trigger }, now, fields);
    const written = await transactWrite(ctx.db, { ...actions, ...movement.actions(ctx, 2) });
    if (!written.committed) throw new RetryableConflict("order or balance changed while closing a dispute");
    return true;
  });
}

/**
 * Gives the tokens `record` froze back to the same grants, group by group, by the one
 * give-back rule (core/rules/give-back.ts `giveBackPlan`: the group's debt first; a grant
 * already past its expiry loses them at once, and such a net-zero pair of entries is not
 * written).
 * @returns the tokens given back, and those of them that expired at once
 */
function giveBack(movement: TokenMovement, order: OrderItem, grants: readonly OrderGrant[], record: DisputeEntry, disputeId: string, now: Date): { tokens: number; expired: number } {
  let tokens = 0;
  let expired = 0;
  for (const group of new Set(grants.map(({ item }) => item.offerGroup))) {
    const giveBacks = record.frozen
      .map((frozen) => ({ frozen, item: grants.find((grant) => grant.item.grantId === frozen.grantId)?.item }))
      .filter(({ item }) => item?.offerGroup === group)
      .map(({ frozen, item }) => ({ grant: grantFacts(item!), tokens: frozen.tokens, orderRefundedOrDisputed: false }));
    if (giveBacks.length === 0) continue;
    const plan = giveBackPlan({ state: movement.state(order.userId, group), grants: giveBacks, now });
    movement.update(plan.next);
    for (const move of plan.movements) {
      const item = grants.find((grant) => grant.item.grantId === move.grantId)!.item;
      // Given back and expired at once, with no debt repaid: a net-zero pair, not written
      // (the grant item still ends as expired, with nothing more expired on it).
      if (move.expired > 0 && move.expired === move.tokens && move.debtRepaid === 0) {
        movement.expire(item, 0);
        expired += move.expired;
        continue;
      }
      if (move.expired > 0) movement.expire(item, move.expired);
      movement.entry({ userId: order.userId, offerGroup: group, tokens: move.tokens, reason: "adjust", orderId: order.orderId, grantId: move.grantId, ...(move.debtRepaid > 0 ? { debtRepaid: move.debtRepaid } : {}), metadata: { disputeId } });
      if (move.expired > 0) {
        expired += move.expired;
        movement.entry({ userId: order.userId, offerGroup: group, tokens: -move.expired, reason: "expire", orderId: order.orderId, grantId: move.grantId, draws: [{ grantId: move.grantId, tokens: move.expired }], metadata: { disputeId } });
      }
    }
    tokens += plan.movements.reduce((sum, move) => sum + move.tokens, 0);
  }
  return { tokens, expired };
}
