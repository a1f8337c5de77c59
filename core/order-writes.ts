/**
 * The one write of an order's transition (core/rules/order-lifecycle.ts decides which
 * transitions exist): the order as the transition made it, stored only if the order is
 * still as it was read (same status, same `updatedAt`), or, for a new order, only if none
 * exists; with the event the transition raises, in the same transaction. A writer that
 * lost the race (a webhook paid the order meanwhile) sees its write refused and reads
 * again; no transition overwrites another.
 */
import type { Db, OrderItem } from "./db/service.js";
import type { Payment } from "./payments/provider.js";
import { commit, isConditionFailure, transactWrite, type TransactionItem } from "./db/transact.js";
import { eventWrite, type EventDraft } from "./events.js";
import { canTransition, TRANSITIONS, type HistoryNote, type Trigger } from "./rules/order-lifecycle.js";

/**
 * A change to store: the order as read (null for a new order), the order after it, and
 * the lifecycle trigger that moved its status. Without a trigger, a new order is created
 * `pending` (core/rules/order-lifecycle.ts `created`), or an existing one keeps its
 * status and only fields change (a payment attempt recorded on a pending order).
 */
export interface OrderChange {
  from: OrderItem | null;
  to: OrderItem;
  trigger?: Trigger | undefined;
}

/** The write of `change`: a put guarded by the status and `updatedAt` read, or the create of a new order. */
function orderWrite(db: Db, { from, to }: OrderChange) {
  return from
    ? db.entities.order.put(to).where((attr, op) => `${op.eq(attr.status, from.status)} AND ${op.eq(attr.updatedAt, from.updatedAt)}`)
    : db.entities.order.create(to);
}

/**
 * The transaction actions of `change`: `order` (the guarded put, or the create of a new
 * order) and `orderEvent` (the event the transition raises, if any, with `eventFields`:
 * a refund's amount and tokens, a dispute's status).
 * @throws RangeError when `change` moves the status other than by its trigger's
 *   transition (a programming error)
 */
export function orderActions(
  db: Db,
  change: OrderChange,
  now: Date,
  eventFields: Pick<EventDraft, "amount" | "currency" | "tokens" | "status" | "duplicate"> = {},
): { order: TransactionItem; orderEvent: TransactionItem | undefined } {
  const { from, to, trigger } = change;
  const transition = trigger ? TRANSITIONS[trigger] : undefined;
  const allowed = transition
    ? to.status === transition.to && (from === null || canTransition(from.status, trigger!))
    : to.status === (from?.status ?? "pending");
  if (!allowed) throw new RangeError(`order ${to.orderId}: ${from?.status ?? "new"} -> ${to.status} is not ${trigger ?? "a change of fields"}`);
  const order = commit(orderWrite(db, change));
  const event = transition && "event" in transition ? transition.event : undefined;
  const orderEvent = event ? eventWrite(db, { type: event, userId: to.userId, orderId: to.orderId, offerGroup: to.offerGroup, ...eventFields }, now).item : undefined;
  return { order, orderEvent };
}

/**
 * Stores `change` on its own (one conditional write, or a transaction when it raises an event).
 * @returns true when stored; false when the order moved on since it was read (or, new, exists)
 * @throws RangeError as {@link orderActions}; database errors other than the condition
 */
export async function storeOrderChange(db: Db, change: OrderChange, now: Date): Promise<boolean> {
  const actions = orderActions(db, change, now);
  if (actions.orderEvent) return (await transactWrite(db, actions)).committed;
  try {
    await orderWrite(db, change).go();
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * The transaction action that adds a note to an order's history without changing its
 * status (an inconsistent payment, ...). History is append-only, so a note needs no
 * guard; it moves `updatedAt`, so a transition planned on the order before the note is
 * refused and planned again.
 */
export function noteAction(db: Db, order: Pick<OrderItem, "userId" | "orderId" | "status">, note: HistoryNote, now: Date): TransactionItem {
  const at = now.toISOString();
  return commit(
    db.entities.order
      .patch({ userId: order.userId, orderId: order.orderId })
      .append({ history: [{ date: at, status: order.status, message: note.message, ...(note.payload !== undefined ? { payload: note.payload } : {}) }] })
      .set({ updatedAt: at }),
  );
}

/**
 * Records the payment of attempt `attempt` (a PaymentIntent or a Checkout Session) on
 * the order: the current `paymentIntentId` / `checkoutSessionId`, the lists of every
 * attempt's, and `recordedAttempt`. Stored only while the order is still at that attempt
 * and the attempt is not recorded yet; the status is not guarded (a webhook may have paid
 * the order meanwhile: the PaymentIntent still belongs on it). Moves `updatedAt`, so a
 * transition planned before it is refused and planned again.
 * @param order the order as read, at `attempt` (its lists are extended)
 * @returns the order with the payment recorded; null when the order is at another attempt
 *   or already has it
 * @throws database errors other than the condition
 */
export async function recordPayment(db: Db, order: OrderItem, attempt: number, payment: Payment, now: Date): Promise<OrderItem | null> {
  const fields: { -readonly [K in keyof OrderItem]?: OrderItem[K] } = { recordedAttempt: attempt, updatedAt: now.toISOString() };
  if (payment.provider === "stripe") {
    fields.paymentIntentId = payment.paymentIntentId;
    fields.paymentIntentIds = order.paymentIntentIds.includes(payment.paymentIntentId) ? order.paymentIntentIds : [...order.paymentIntentIds, payment.paymentIntentId];
    if (payment.subscriptionId) fields.subscriptionId = payment.subscriptionId;
  } else if (payment.provider === "stripe_checkout") {
    const ids = order.checkoutSessionIds ?? [];
    fields.checkoutSessionId = payment.checkoutSessionId;
    fields.checkoutSessionIds = ids.includes(payment.checkoutSessionId) ? ids : [...ids, payment.checkoutSessionId];
  }
  try {
    await db.entities.order
      .patch({ userId: order.userId, orderId: order.orderId })
      .set(fields)
      .where((attr, op) => `${op.eq(attr.attempt, attempt)} AND (${op.notExists(attr.recordedAttempt)} OR ${op.ne(attr.recordedAttempt, attempt)})`)
      .go();
    return { ...order, ...fields };
  } catch (error) {
    if (isConditionFailure(error)) return null;
    throw error;
  }
}
