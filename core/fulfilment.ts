/**
 * Fulfilment: an order becomes paid and its grants, ledger `purchase` entries, balances
 * and `order.paid` event are written, exactly once (the original's `afterExecute`/`updateAsPaid`,
 * which could credit twice and lost top-ups; ORIGINAL-BEHAVIOUR.md §3.3, §5).
 *
 * One transaction holds the order's transition to `paid` (lifecycle `paymentSucceeded`,
 * core/rules/order-lifecycle.ts: conditional on the order being as read, core/order-writes.ts),
 * every grant, every ledger entry, every touched balance (conditional on its version)
 * and the webhook event id when one is given; so a duplicate delivery, a
 * concurrent confirmation or a crash half-way cannot credit twice or leave a payment
 * uncredited. A group the purchase adds tokens to is re-armed for its next low-balance
 * crossing (its `lowBalanceLatched` cleared, core/rules/low-balance.ts; API.md "Events":
 * only purchases and grants re-arm it). Cost: one consistent read of the order, one
 * Query of the user's balances (which also gives the appendDate chain heads), one
 * transaction.
 */
import type { Context } from "./context.js";
import { balanceWrites, mapView, readBalances } from "./balances.js";
import type { Db, OrderItem } from "./db/service.js";
import { conditionFailed, transactWrite, type TransactionItem } from "./db/transact.js";
import { grantWrite } from "./grants.js";
import { newId } from "./ids.js";
import { ledgerEntryWrite, newLedgerEntry } from "./ledger.js";
import { orderActions } from "./order-writes.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { emptyBalance, rearmed, type BalanceState } from "./rules/balance-state.js";
import { eventWrite } from "./events.js";
import { canTransition, isPayable, transition } from "./rules/order-lifecycle.js";
import { planPurchase, type PaidPeriodDates, type PurchasePlan } from "./rules/purchase-plan.js";
import { webhookEventWrite, type WebhookEventRecord } from "./webhook-events.js";

/** Who confirmed the payment, for the order's history. */
export interface PaymentConfirmation {
  /** `stripe` (webhook), `manual` (operator confirm) or `free` (total 0). */
  source: "stripe" | "manual" | "free";
  message: string;
  /** What the provider said (JSON text) for the history. */
  payload?: string | undefined;
  /** The PaymentIntent that paid (kept on the order as `paidPaymentIntentId`). */
  paymentIntentId?: string | undefined;
  /** Stripe's receipt page of the payment (kept on the order as `receiptUrl`: the portal links to it). */
  receiptUrl?: string | undefined;
  /** The webhook event that confirmed it: recorded in the same transaction. */
  event?: WebhookEventRecord | undefined;
  /**
   * A last check on the order as read (the payment matches it): returns why it does not,
   * or undefined. A mismatch pays nothing.
   */
  check?: ((order: OrderItem) => string | undefined) | undefined;
}

/** The outcome of a fulfilment attempt. */
export type FulfilmentResult =
  | { applied: true; order: OrderItem }
  | { applied: false; reason: "unknown_order" | "already_paid" | "not_payable" | "duplicate_event"; order?: OrderItem }
  | { applied: false; reason: "renewing"; order: OrderItem }
  | { applied: false; reason: "mismatch"; detail: string; order: OrderItem };

/** A renewing order paid before: its next period is a renewal (`renewalPaid`), not its first payment. */
export const isRenewal = (order: Pick<OrderItem, "status" | "renewal">): boolean => order.renewal === "auto" && canTransition(order.status, "renewalPaid");

/**
 * The paid order after `plan`: lifecycle `paymentSucceeded` with the plan's notes before
 * it; or, for a renewing order paid before (a renewal period: `renewalPaid`, from `paid`,
 * or from `expired` when the last period ended before this one was paid), the new
 * period's dates and its grants added to the order's.
 */
function paidOrder(order: OrderItem, plan: PurchasePlan, confirmation: PaymentConfirmation, now: Date): OrderItem {
  const root = plan.grants[0]!;
  const expiries = plan.grants.map((grant) => grant.expires);
  const grantsExpire = expiries.some((at) => at === null)
    ? undefined
    : new Date(Math.max(...expiries.map((at) => at!.getTime()))).toISOString();
  const renewed = isRenewal(order);
  const note = { message: confirmation.message, payload: confirmation.payload || undefined, now };
  const { expires: _expires, grantsExpire: _grantsExpire, ...unpaid } = transition(order, renewed ? "renewalPaid" : "paymentSucceeded", { ...note, notes: plan.notes });
  return {
    ...unpaid,
    ...(confirmation.paymentIntentId && !renewed ? { paidPaymentIntentId: confirmation.paymentIntentId } : {}),
    ...(confirmation.receiptUrl && !renewed ? { receiptUrl: confirmation.receiptUrl } : {}),
    starts: root.starts.toISOString(),
    grantIds: [...(renewed ? order.grantIds : []), ...plan.grants.map((grant) => grant.grantId)],
    combinedItems: order.combinedItems.map((item, index) => {
      const grant = plan.grants.find((g) => g.itemIndex === index)!;
      return {
        ...item,
        grantId: grant.grantId,
        starts: grant.starts.toISOString(),
        ...(grant.expires ? { expires: grant.expires.toISOString() } : {}),
      };
    }),
    ...(root.expires ? { expires: root.expires.toISOString() } : {}),
    ...(grantsExpire ? { grantsExpire } : {}),
  };
}

/**
 * The named actions that pay `order` from the `balances` read: `order` and `orderEvent`
 * (`order.paid`), `balance:<offerGroup>` per touched group (and `overflow:<offerGroup>:<itemKey>`
 * for the grants it spills to an overflow item), `grant:<grantId>` and
 * `entry:<grantId>` (its ledger `purchase` entry) per grant, and `webhookEvent` when a
 * webhook event confirmed it. A renewing order's period (issue 13) dates every grant
 * with it; on an order already paid it is a renewal: the order keeps its status, gets a
 * history note and the period's grants, and `orderEvent` is `subscription.renewed`.
 * @param newOrder true for a free order created and paid in the same transaction
 * @param period a renewing order's paid period (Stripe's invoice line period)
 */
export function purchaseWrites(input: {
  db: Db;
  order: OrderItem;
  balances: ReadonlyMap<string, BalanceState>;
  confirmation: PaymentConfirmation;
  now: Date;
  newOrder?: boolean;
  period?: PaidPeriodDates | undefined;
}): { actions: Record<string, TransactionItem | undefined>; paid: OrderItem; grants: PurchasePlan["grants"] } {
  const { db, order, balances, confirmation, now } = input;
  const plan = planPurchase({ order, balances, now, newGrantId: () => newId(now), period: input.period });
  const paid = paidOrder(order, plan, confirmation, now);

  const renewal = isRenewal(order);
  if (renewal && !input.period) throw new RangeError(`order ${order.orderId} is ${order.status}: only a renewing order's next period can be paid`);
  const actions: Record<string, TransactionItem | undefined> = renewal
    ? {
        ...orderActions(db, { from: order, to: paid, trigger: "renewalPaid" }, now),
        orderEvent: eventWrite(db, { type: "subscription.renewed", userId: order.userId, orderId: order.orderId, offerGroup: order.offerGroup, expires: paid.expires }, now).item,
      }
    : orderActions(db, { from: input.newOrder ? null : order, to: paid, trigger: "paymentSucceeded" }, now);
  // Groups receiving tokens are re-armed for their next low-balance crossing (a 0-token period root is no top-up).
  const toppedUp = new Set(plan.grants.filter((grant) => grant.tokens > 0).map((grant) => grant.offerGroup));
  for (const [group, planned] of plan.balances) {
    // The balance item, and the overflow items of grants it spills (core/balances.ts).
    const before = balances.get(group) ?? emptyBalance(order.userId, group);
    const next = toppedUp.has(group) ? rearmed(planned) : planned;
    for (const [name, action] of Object.entries(balanceWrites(db, mapView(before), next, now))) {
      actions[name === "balance" ? `balance:${group}` : `overflow:${group}:${name.slice("overflow:".length)}`] = action;
    }
  }
  for (const grant of plan.grants) {
    actions[`grant:${grant.grantId}`] = grantWrite(
      db,
      {
        grantId: grant.grantId,
        userId: order.userId,
        offerGroup: grant.offerGroup,
        reason: "purchase",
        orderId: order.orderId,
        offerId: grant.offerId,
        orderOfferId: order.offerId,
        tokens: grant.tokens,
        starts: grant.starts.toISOString(),
        expires: grant.expires?.toISOString(),
      },
      now,
    );
    actions[`entry:${grant.grantId}`] = ledgerEntryWrite(
      db,
      newLedgerEntry(
        {
          userId: order.userId,
          offerGroup: grant.offerGroup,
          tokens: grant.tokens,
          reason: "purchase",
          orderId: order.orderId,
          grantId: grant.grantId,
          ...(grant.debtRepaid > 0 ? { debtRepaid: grant.debtRepaid } : {}),
        },
        now,
      ),
    );
  }
  actions.webhookEvent = confirmation.event && webhookEventWrite(db, confirmation.event, now);
  return { actions, paid, grants: plan.grants };
}

/**
 * Marks the order paid and credits it, exactly once (an order is payable while
 * `pending`, `error` or `refused`: core/rules/order-lifecycle.ts `isPayable`).
 * @returns applied with the paid order, or why nothing was done (unknown order, a
 *   renewing order (credited by its invoices), already paid, not payable
 *   (expired/refunded), event already processed)
 */
export async function fulfilOrder(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  orderId: string,
  confirmation: PaymentConfirmation,
): Promise<FulfilmentResult> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
    if (!order) return { applied: false, reason: "unknown_order" };
    // A renewing order is paid period by period, by its invoices (core/subscriptions.ts), never here.
    if (order.renewal === "auto") return { applied: false, reason: "renewing", order };
    if (order.status === "paid") return { applied: false, reason: "already_paid", order };
    if (!isPayable(order.status)) return { applied: false, reason: "not_payable", order };
    const mismatch = confirmation.check?.(order);
    if (mismatch !== undefined) return { applied: false, reason: "mismatch", detail: mismatch, order };

    const balances = await readBalances(ctx, userId);
    const { actions, paid } = purchaseWrites({ db: ctx.db, order, balances, confirmation, now });
    const written = await transactWrite(ctx.db, actions);
    if (written.committed) return { applied: true, order: paid };
    if (conditionFailed(written, "webhookEvent")) return { applied: false, reason: "duplicate_event", order };
    throw new RetryableConflict("order or balance changed while paying");
  });
}
