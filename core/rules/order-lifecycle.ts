/**
 * The order lifecycle, pure: what an order holds, its statuses, and every transition
 * between them with what triggers it. "When is an order credited, refused, expired?"
 * is answered here and nowhere else; core/order-writes.ts is the one guarded write that
 * stores a transition (API.md "Orders and payment"; the original's `Order.status`,
 * ORIGINAL-BEHAVIOUR.md §3.3, whose transitions were scattered and unguarded).
 *
 * ```
 *   pending, error, refused ──paymentSucceeded──► paid ──grantsExpired──► expired
 *   pending, error, refused ──attemptFailed─────► error
 *   pending, error, refused ──paymentFailed─────► refused      pending, error ──abandoned──► refused
 *   pending, error, refused ──attemptStarted────► pending (a new attempt)
 *   paid, expired ──refunded──► refunded    paid, expired ──disputeOpened──► disputed
 *   disputed ──disputeClosed──► paid | expired (disputeClosedExpired)    disputed ──disputeLost──► refunded
 *   paid, expired ──renewalPaid──► paid (a renewing subscription's next period, also when paid late)
 * ```
 *
 * - An order is created `pending` (a free one is paid in the same transaction).
 * - `refused` and `error` are not final: a later success still pays the order, once.
 * - An order waiting for its payment (`pending`, `error`) carries the pending-order
 *   keys of the work index (core/rules/work-index.ts), so the daily job can abandon it;
 *   every other status leaves the index.
 * - Every transition appends one history entry (append-only history), moves `updatedAt`,
 *   and may raise one event in the same transaction.
 * - Refunds, disputes and their closings (issue 9) and renewals (issue 13) are in the
 *   table already, so that they land as callers of {@link transition}, not as new status
 *   writes; their events (`order.disputed`, `order.dispute_closed`, ...) come with them.
 *   Several payments per order are `renewalPaid` transitions (paid -> paid, or expired ->
 *   paid for a payment that came after the last period ended); partial refunds are
 *   history notes and fields of a `paid` order (core/order-writes.ts stores a change of
 *   fields without a trigger), not statuses.
 */
import type { Cycle } from "./cycles.js";
import { pendingKeys } from "./work-index.js";

/** Every status an order may have. */
export const ORDER_STATUSES = ["pending", "paid", "refused", "error", "expired", "refunded", "disputed"] as const;

/** One of {@link ORDER_STATUSES}. */
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** How an order is paid: Stripe PaymentIntent, Stripe Checkout, manual confirmation, or free. */
export const PAYMENT_PROVIDERS = ["stripe", "stripe_checkout", "manual", "free"] as const;

/** One of {@link PAYMENT_PROVIDERS}. */
export type OrderProvider = (typeof PAYMENT_PROVIDERS)[number];

/** One entry of an order's history (append-only). */
export interface OrderHistoryEntry {
  /** ISO 8601, UTC. */
  date: string;
  /** The status the entry was written at (the new one for a transition). */
  status: string;
  message: string;
  /** What the payment provider said, as JSON text (PaymentIntent id, status, amounts). */
  payload?: string | undefined;
}

/** One bundle item of an order, with its offer's terms copied at creation, and its grant once paid. */
export interface OrderBundleItem {
  offerId: string;
  offerGroup: string;
  quantity: number;
  tokenCount: number;
  /** item quantity × order quantity × item tokenCount. */
  tokens: number;
  appendDate: boolean;
  /**
   * The item's worth in this order, in integer minor units of the order's currency: its
   * offer's price in that currency × item quantity × order quantity, copied at creation
   * (refunds weigh the order's grants by it). Absent when the item's offer has no price in
   * that currency (or the product is not a safe integer), and on orders created before it.
   */
  value?: number | undefined;
  grantId?: string | undefined;
  starts?: string | undefined;
  expires?: string | undefined;
}

/** A payment for an order that was already paid, refunded at once (API.md "Payment attempts never double-charge"). */
export interface DuplicatePayment {
  paymentIntentId: string;
  /** The Stripe Refund that returned it. */
  refundId: string;
  /** Integer, minor units of the order's currency. */
  amount: number;
  /** ISO 8601, UTC. */
  createdAt: string;
}

/** Tokens taken from (or given back to) one grant of the order. */
export interface GrantTokens {
  grantId: string;
  tokens: number;
}

/**
 * One refund of the order's payment (API.md `refunds`): asked through the API
 * (`source: "api"`, recorded `pending` before Stripe is called) or made in Stripe
 * (`source: "stripe"`, from `charge.refunded`).
 */
export interface OrderRefund {
  /** 1, 2, ... per order; with the order id, the Stripe idempotency key and `metadata.refundNumber`. */
  number: number;
  /** The Stripe Refund; absent while pending, and for the manual provider (no money moved): the API shows null. */
  refundId?: string | undefined;
  /** Integer, minor units of the order's currency. */
  amount: number;
  /** Tokens removed by this refund. */
  tokens: number;
  /** Tokens the refund should have taken back but that were already spent. */
  tokensShort: number;
  source: "api" | "stripe";
  /** `pending` until Stripe answered; `failed` when Stripe could not pay it out (`refund.failed`). */
  status: "pending" | "succeeded" | "failed";
  /** Tokens taken per grant (what later refunds count as clawed back). */
  grants: GrantTokens[];
  reason?: string | undefined;
  /** A renewing order's refund is of one paid period: the invoice that paid it (issue 13). */
  invoiceId?: string | undefined;
  createdAt: string;
}

/** One dispute (chargeback) of the order's payment. */
export interface OrderDispute {
  disputeId: string;
  /** `open` while disputed, then Stripe's closing status (`won`, `lost`, `warning_closed`, ...). */
  status: string;
  /** Tokens frozen per grant when it opened. */
  frozen: GrantTokens[];
  /** A renewing order's dispute is of one paid period's charge: the invoice that paid it (issue 13). */
  invoiceId?: string | undefined;
  createdAt: string;
  closedAt?: string | undefined;
}

/**
 * An order as stored: a user's intent to buy an offer, with the offer's terms copied at
 * creation (core/db/order.ts stores exactly this shape, checked at compile time).
 * Money is in integer minor units; dates are ISO 8601 UTC strings.
 */
export interface OrderRecord {
  userId: string;
  orderId: string;
  offerId: string;
  offerName: string;
  offerGroup: string;
  kind: string;
  status: OrderStatus;
  quantity: number;
  total: { amount: number; currency: string };
  tokenCount: number;
  /** tokenCount × quantity, for the order's own offerGroup. */
  tokens: number;
  cycle: Cycle;
  customCycleSeconds?: number | undefined;
  appendDate: boolean;
  /** `auto`: a renewing order, paid period by period through a Stripe Subscription (issue 13); absent otherwise. */
  renewal?: "auto" | undefined;
  /** A renewing order's Stripe Subscription (`sub_...`), once Stripe made it. */
  subscriptionId?: string | undefined;
  /** Stripe's receipt page of the payment that paid it (issue 14: the portal links to it). */
  receiptUrl?: string | undefined;
  /** An automatic top-up's order: the `top_up.requested` event it answers (issue 13). */
  topUpEventId?: string | undefined;
  /** The start the buyer asked for (a future instant), if any. */
  requestedStarts?: string | undefined;
  starts?: string | undefined;
  expires?: string | undefined;
  /** Latest expiry among all the order's grants; absent while unpaid or if one never expires. */
  grantsExpire?: string | undefined;
  combinedItems: OrderBundleItem[];
  history: OrderHistoryEntry[];
  provider: OrderProvider;
  paymentIntentId?: string | undefined;
  /** Every PaymentIntent ever created for this order (retries), newest last. */
  paymentIntentIds: string[];
  checkoutSessionId?: string | undefined;
  /** Every Checkout Session ever created for this order, newest last. */
  checkoutSessionIds?: string[] | undefined;
  /** The Checkout URLs the order was created with (a replayed attempt sends them again). */
  checkout?: { successUrl: string; cancelUrl: string } | undefined;
  /** The current payment attempt (1, 2, ...); its Stripe idempotency key derives from it. */
  attempt: number;
  /**
   * The attempt whose PaymentIntent or Checkout Session is recorded here. Below `attempt`,
   * the current attempt was started (and recorded as started before Stripe was called)
   * but its answer was never stored: replaying the attempt's request under the same
   * idempotency key finds it (core/payment-attempts.ts).
   */
  recordedAttempt?: number | undefined;
  /** The PaymentIntent that paid the order (the first succeeded payment). */
  paidPaymentIntentId?: string | undefined;
  /** Further succeeded payments for this order, each refunded automatically. */
  duplicatePayments?: DuplicatePayment[] | undefined;
  /** Refunds of the order's payment, oldest first (API.md "The order lists its refunds"). */
  refunds?: OrderRefund[] | undefined;
  /** Disputes (chargebacks) of the order's payment, oldest first. */
  disputes?: OrderDispute[] | undefined;
  grantIds: string[];
  /** When the order last became pending; present while it waits for its payment. */
  pendingSince?: string | undefined;
  /** Pending-order partition of the work index, present while it waits for its payment. */
  pendingBucket?: string | undefined;
  /** Pending-order sort key of the work index. */
  pendingSort?: string | undefined;
  createdAt: string;
  updatedAt: string;
}

/** What a transition reads and writes of an order (a stored order fits). */
export type LifecycleOrder = Pick<OrderRecord, "userId" | "orderId" | "status" | "history" | "updatedAt" | "pendingSince" | "pendingBucket" | "pendingSort">;

/** The events a transition raises (API.md "Events"). */
export type OrderEventType = "order.paid" | "order.refused" | "order.refunded" | "order.disputed" | "order.dispute_closed";

/** One transition: the statuses it leaves from, the one it reaches, the event it raises. */
export interface Transition {
  from: readonly OrderStatus[];
  to: OrderStatus;
  event?: OrderEventType;
}

/**
 * Every transition, by what triggers it. A status change that is not here does not
 * happen. Who triggers each:
 * - `attemptStarted`: a new payment attempt (POST .../pay, or a retried creation).
 * - `attemptFailed`: the provider failed to start an attempt (502 to the caller).
 * - `paymentSucceeded`: the payment is confirmed (Stripe webhook, manual confirmation,
 *   a free order at creation); core/fulfilment.ts writes the grants with it.
 * - `paymentFailed`: Stripe reports the current attempt failed or was cancelled.
 * - `abandoned`: unpaid for `ABANDON_ORDERS_AFTER_DAYS` (the daily job).
 * - `grantsExpired`: every grant of the order has expired (informational: credits are
 *   decided by grants).
 * - `refunded`, `disputeOpened`, `disputeClosed`, `disputeClosedExpired`, `disputeLost`:
 *   refunds and chargebacks (issue 9).
 * - `renewalPaid`: a renewing subscription's invoice is paid (issue 13).
 */
export const TRANSITIONS = {
  attemptStarted: { from: ["pending", "error", "refused"], to: "pending" },
  attemptFailed: { from: ["pending", "error", "refused"], to: "error" },
  paymentSucceeded: { from: ["pending", "error", "refused"], to: "paid", event: "order.paid" },
  paymentFailed: { from: ["pending", "error", "refused"], to: "refused", event: "order.refused" },
  abandoned: { from: ["pending", "error"], to: "refused", event: "order.refused" },
  grantsExpired: { from: ["paid"], to: "expired" },
  refunded: { from: ["paid", "expired"], to: "refunded", event: "order.refunded" },
  disputeOpened: { from: ["paid", "expired"], to: "disputed", event: "order.disputed" },
  disputeClosed: { from: ["disputed"], to: "paid", event: "order.dispute_closed" },
  disputeClosedExpired: { from: ["disputed"], to: "expired", event: "order.dispute_closed" },
  disputeLost: { from: ["disputed"], to: "refunded", event: "order.dispute_closed" },
  renewalPaid: { from: ["paid", "expired"], to: "paid" },
} as const satisfies Record<string, Transition>;

/** What triggers a transition: a key of {@link TRANSITIONS}. */
export type Trigger = keyof typeof TRANSITIONS;

/** Statuses that wait for a payment: they carry the pending-order keys. */
const AWAITING_PAYMENT: readonly OrderStatus[] = ["pending", "error"];

/** True when `trigger` may move an order that is `status` now. */
export function canTransition(status: OrderStatus, trigger: Trigger): boolean {
  return (TRANSITIONS[trigger].from as readonly OrderStatus[]).includes(status);
}

/** True when a confirmed payment would pay an order that is `status` now: pending, or after a failed attempt (not final). */
export function isPayable(status: OrderStatus): boolean {
  return canTransition(status, "paymentSucceeded");
}

/** True when the order waits for its payment (it is on the pending-order index). */
export function awaitsPayment(status: OrderStatus): boolean {
  return AWAITING_PAYMENT.includes(status);
}

/** The history entry of a transition or a note. */
export interface HistoryNote {
  message: string;
  /** What the provider said, as JSON text. */
  payload?: string | undefined;
}

/**
 * The order after `trigger` at `now`: status, one history entry (after `notes`, entries
 * written at the current status, e.g. a requested start that had passed), `updatedAt`,
 * and the pending-order keys: fresh when a payment attempt starts, kept while the order
 * still waits for its payment, removed otherwise. Other fields are the caller's.
 * @throws RangeError when `trigger` does not apply to the order's status (a caller must
 *   check {@link canTransition} first: this is a programming error, not a refusal)
 */
export function transition<O extends LifecycleOrder>(
  order: O,
  trigger: Trigger,
  entry: HistoryNote & { now: Date; notes?: readonly string[] },
): O {
  if (!canTransition(order.status, trigger)) {
    throw new RangeError(`order ${order.orderId}: ${trigger} does not apply to a ${order.status} order`);
  }
  const to = TRANSITIONS[trigger].to;
  const at = entry.now.toISOString();
  const { pendingSince: _since, pendingBucket: _bucket, pendingSort: _sort, ...rest } = order;
  const keys =
    trigger === "attemptStarted"
      ? pendingKeys(order.userId, order.orderId, entry.now)
      : awaitsPayment(to) && order.pendingSince !== undefined
        ? { pendingSince: order.pendingSince, pendingBucket: order.pendingBucket, pendingSort: order.pendingSort }
        : {};
  return {
    ...rest,
    ...keys,
    status: to,
    history: [
      ...order.history,
      ...(entry.notes ?? []).map((message) => ({ date: at, status: order.status, message })),
      { date: at, status: to, message: entry.message, ...(entry.payload !== undefined ? { payload: entry.payload } : {}) },
    ],
    updatedAt: at,
  } as O;
}

/**
 * The order with a note appended to its history at its current status (a duplicate
 * payment refunded, an inconsistent payment, a refund that failed...), `updatedAt` moved;
 * the status does not change.
 */
export function noted<O extends LifecycleOrder>(order: O, note: HistoryNote & { now: Date }): O {
  const at = note.now.toISOString();
  return {
    ...order,
    history: [...order.history, { date: at, status: order.status, message: note.message, ...(note.payload !== undefined ? { payload: note.payload } : {}) }],
    updatedAt: at,
  };
}

/**
 * A new order's lifecycle fields: `pending` since `now`, on the pending-order index,
 * with its first history entry.
 */
export function created(input: { userId: string; orderId: string; now: Date }): Pick<OrderRecord, "status" | "history" | "createdAt" | "updatedAt" | "pendingSince" | "pendingBucket" | "pendingSort"> {
  const at = input.now.toISOString();
  return {
    status: "pending",
    history: [{ date: at, status: "pending", message: "created" }],
    createdAt: at,
    updatedAt: at,
    ...pendingKeys(input.userId, input.orderId, input.now),
  };
}
