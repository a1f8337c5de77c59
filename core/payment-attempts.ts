/**
 * Payment attempts: what Stripe says of an order's PaymentIntents and Checkout Sessions,
 * and applying it, whoever asks (the webhook, `POST .../pay`, `POST .../sync`, the daily
 * job's abandoned-order pass). The rule (API.md "Payment attempts never double-charge"):
 * money that reaches Stripe for an order ends in exactly one credit.
 *
 * - The first succeeded payment (one of the order's attempts, or a PaymentIntent that
 *   Stripe reports with the order's `metadata.orderId`/`userId`) pays the order, once
 *   (core/fulfilment.ts), and the order's other open attempts are then cancelled or
 *   expired.
 * - Any further succeeded payment for the same order is refunded at Stripe at once
 *   (idempotency key from the order and the PaymentIntent), with a history entry and an
 *   `order.refunded` event marked `duplicate`, recorded once.
 * - Before a new attempt, or before giving an order up, the current attempt is read: a
 *   succeeded one pays the order instead; an open one is cancelled (PaymentIntent) or
 *   expired (Checkout Session).
 * - An attempt whose answer was never stored on its order (the request failed after
 *   Stripe answered) is found again by replaying its request under the same Stripe
 *   idempotency key (core/rules/order-lifecycle.ts `recordedAttempt`).
 */
import type { PaymentContext } from "./context.js";
import { billingOf, customerOf, renewingPayment } from "./billing.js";
import { creditInvoice } from "./subscriptions.js";
import type { OrderItem } from "./db/service.js";
import { conditionFailed, transactWrite } from "./db/transact.js";
import { ConflictError, ignoreUnknown, NotFoundError } from "./errors.js";
import { eventWrite } from "./events.js";
import { fulfilOrder } from "./fulfilment.js";
import { noteAction, orderActions, recordPayment } from "./order-writes.js";
import type { Payment, PaymentIntentState, PaymentRequest } from "./payments/provider.js";
import { applyDispute } from "./disputes.js";
import { applyStripeRefunds, finishPendingRefunds } from "./refunds.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { noted } from "./rules/order-lifecycle.js";
import { webhookEventWrite, type WebhookEventRecord } from "./webhook-events.js";

/** Who applies a payment: a webhook event (recorded once by id), or a read-back of the attempts. */
export interface PaymentOrigin {
  /** `webhook`, `pay`, `sync` or `abandon` (for the history). */
  via: "webhook" | "pay" | "sync" | "abandon";
  /** The webhook event, recorded in the same transaction as its effect. */
  event?: { eventId: string; type: string } | undefined;
}

/** What applying a succeeded payment did. */
export interface PaymentOutcome {
  outcome: "applied" | "ignored";
  /** `order paid`, `duplicate payment refunded`, `already paid`, ... (logged). */
  reason: string;
  orderId: string;
}

/**
 * Whether a succeeded PaymentIntent pays this order: it is one of the order's attempts,
 * or Stripe reports it with the order's own metadata (this service sets
 * `metadata.orderId`/`userId` on every PaymentIntent it creates, Checkout's included;
 * the metadata is read back from Stripe, never taken from an event).
 */
export function paysOrder(order: Pick<OrderItem, "orderId" | "userId" | "paymentIntentIds">, intent: Pick<PaymentIntentState, "id" | "metadata">): boolean {
  if (order.paymentIntentIds.includes(intent.id)) return true;
  return intent.metadata.orderId === order.orderId && intent.metadata.userId === order.userId;
}

/**
 * What the provider needs to collect `order`'s total for attempt `attempt` (the same
 * request when replayed), with, for a renewing order, its customer and recurring price
 * (core/billing.ts: read from the table once made, so a replay sends the same request),
 * and for an automatic top-up's order, its customer.
 * @throws as core/billing.ts `renewingPayment` for a renewing order
 */
export async function paymentRequestOf(ctx: PaymentContext, order: OrderItem, attempt: number): Promise<PaymentRequest> {
  const request = paymentRequest(order, attempt);
  if (order.renewal === "auto") return { ...request, renewing: await renewingPayment(ctx, order) };
  // An automatic top-up's PaymentIntent is the customer's, so that their saved card can pay it off-session.
  if (order.topUpEventId !== undefined) return { ...request, customerId: await customerOf(ctx, order.userId) };
  return request;
}

/** What the provider needs to collect a one-time `order`'s total for attempt `attempt` (the same request when replayed). */
export function paymentRequest(order: OrderItem, attempt: number): PaymentRequest {
  return {
    orderId: order.orderId,
    userId: order.userId,
    offerId: order.offerId,
    offerName: order.offerName,
    amount: order.total.amount,
    currency: order.total.currency,
    attempt,
    checkout: order.provider === "stripe_checkout" ? order.checkout : undefined,
  };
}

/**
 * A succeeded PaymentIntent of a renewing order (found by sync, `pay` or the daily job's
 * abandoned-order pass, never by the webhook: its metadata is empty) credits the
 * invoice it paid, as `invoice.paid` does (core/subscriptions.ts), never the order
 * directly: so a late `invoice.paid` finds it credited, and the period has Stripe's dates.
 */
async function creditRenewalPayment(ctx: PaymentContext, order: OrderItem, intent: PaymentIntentState, origin: PaymentOrigin): Promise<PaymentOutcome> {
  const invoiceId = await billingOf(ctx).invoiceOfPayment(intent.id);
  if (!invoiceId) return { outcome: "ignored", reason: `PaymentIntent ${intent.id} paid no invoice of the renewing order`, orderId: order.orderId };
  const credited = await creditInvoice(ctx, invoiceId, origin.event);
  return { outcome: credited.outcome, reason: credited.reason, orderId: order.orderId };
}

const webhookRecord = (order: { userId: string; orderId: string }, origin: PaymentOrigin, outcome: string): WebhookEventRecord | undefined =>
  origin.event && { eventId: origin.event.eventId, type: origin.event.type, userId: order.userId, orderId: order.orderId, outcome };

/**
 * Applies a PaymentIntent that Stripe reports `succeeded`: pays the order once (amount
 * and currency checked), or, when the order was already paid by another payment,
 * refunds this one. A mismatch (wrong amount, currency, or a PaymentIntent that is not
 * the order's) pays nothing and is noted on the order.
 * @param intent the PaymentIntent as read back from Stripe, status `succeeded`
 * @throws PaymentProviderError (the refund of a duplicate failed: retried by the next
 *   delivery or sync); database errors
 */
export async function applySucceededPayment(
  ctx: PaymentContext,
  ref: { userId: string; orderId: string },
  intent: PaymentIntentState,
  origin: PaymentOrigin,
): Promise<PaymentOutcome> {
  const payload = JSON.stringify({
    ...(origin.event ? { eventId: origin.event.eventId } : { via: origin.via }),
    paymentIntentId: intent.id,
    status: intent.status,
    amountReceived: intent.amountReceived,
    currency: intent.currency,
  });
  const result = await fulfilOrder(ctx, ref.userId, ref.orderId, {
    source: "stripe",
    message: `payment succeeded (${intent.id})`,
    payload,
    paymentIntentId: intent.id,
    receiptUrl: intent.receiptUrl,
    event: webhookRecord(ref, origin, "paid"),
    check: (order) => {
      if (!paysOrder(order, intent)) return `PaymentIntent ${intent.id} is not one of this order's`;
      if (intent.currency !== order.total.currency) return `currency ${intent.currency} differs from the order's ${order.total.currency}`;
      if (intent.amountReceived !== order.total.amount) return `amount received ${intent.amountReceived} differs from the order's total ${order.total.amount}`;
      return undefined;
    },
  });
  const outcome = (outcome: PaymentOutcome["outcome"], reason: string): PaymentOutcome => ({ outcome, reason, orderId: ref.orderId });
  if (result.applied) {
    await closeOtherAttempts(ctx, result.order, intent.id);
    await catchUp(ctx, intent);
    return outcome("applied", "order paid");
  }
  if (result.reason === "unknown_order") return outcome("ignored", "unknown order");
  if (result.reason === "renewing") return creditRenewalPayment(ctx, result.order, intent, origin);
  if (result.reason === "duplicate_event") return outcome("ignored", "duplicate event");
  if (result.reason === "mismatch") {
    const record = webhookRecord(result.order, origin, "inconsistent");
    const written = await transactWrite(ctx.db, {
      order: noteAction(ctx.db, result.order, { message: `inconsistent payment, not credited: ${result.detail}`, payload }, ctx.clock.now()),
      webhookEvent: record && webhookEventWrite(ctx.db, record, ctx.clock.now()),
    });
    if (!written.committed && !conditionFailed(written, "webhookEvent")) throw new RetryableConflict("could not note an inconsistent payment");
    return outcome("ignored", result.detail);
  }
  // Paid already (or since refunded, disputed, expired): by this payment, or by another one.
  const order = result.order!;
  if (order.paidPaymentIntentId === intent.id) {
    // A redelivery after a catch-up failed (5xx) does it again; both apply each refund and dispute once.
    await catchUp(ctx, intent);
    return outcome("ignored", "already paid");
  }
  if (!order.paidPaymentIntentId || !paysOrder(order, intent)) {
    return outcome("ignored", result.reason.replace(/_/g, " "));
  }
  return refundDuplicate(ctx, order, intent, origin);
}

/**
 * What happened to a payment at Stripe before it was applied, applied now: its refunds
 * (their `charge.refunded` found no paid order then) and its disputes. Each applies once
 * (by Stripe id), so running it again changes nothing.
 * @throws PaymentProviderError when Stripe fails (the caller answers 5xx; a redelivery runs it again)
 */
async function catchUp(ctx: PaymentContext, intent: PaymentIntentState): Promise<void> {
  if (intent.amountRefunded > 0) await applyStripeRefunds(ctx, intent.id);
  if (intent.disputed) for (const dispute of await ctx.payments.listDisputes(intent.id)) await applyDispute(ctx, dispute.id);
}

/**
 * Refunds a second succeeded payment for an order another payment already paid, and
 * records it once on the order (`duplicatePayments`, a history entry, an
 * `order.refunded` event with `duplicate: true`). The Stripe idempotency key
 * (`duplicate-<orderId>-<paymentIntentId>`) makes a repeated call return the same refund.
 */
async function refundDuplicate(ctx: PaymentContext, order: OrderItem, intent: PaymentIntentState, origin: PaymentOrigin): Promise<PaymentOutcome> {
  const done = (reason: string): PaymentOutcome => ({ outcome: reason === "duplicate payment refunded" ? "applied" : "ignored", reason, orderId: order.orderId });
  if ((order.duplicatePayments ?? []).some((payment) => payment.paymentIntentId === intent.id)) return done("duplicate payment already refunded");
  const refund = await ctx.payments.refund({
    paymentIntentId: intent.id,
    amount: intent.amountReceived,
    idempotencyKey: `duplicate-${order.orderId}-${intent.id}`,
    metadata: { orderId: order.orderId, userId: order.userId, duplicate: "true" },
    reason: "duplicate",
  });
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: current } = await ctx.db.entities.order.get({ userId: order.userId, orderId: order.orderId }).go({ consistent: true });
    if (!current) throw new NotFoundError("order", order.orderId);
    if ((current.duplicatePayments ?? []).some((payment) => payment.paymentIntentId === intent.id)) return done("duplicate payment already refunded");
    const next: OrderItem = {
      ...noted(current, {
        message: `a second payment (${intent.id}, ${intent.amountReceived} ${intent.currency}) for this paid order was refunded (${refund.id})`,
        payload: JSON.stringify({ paymentIntentId: intent.id, refundId: refund.id, amount: refund.amount, via: origin.via }),
        now,
      }),
      duplicatePayments: [...(current.duplicatePayments ?? []), { paymentIntentId: intent.id, refundId: refund.id, amount: refund.amount, createdAt: now.toISOString() }],
    };
    const record = webhookRecord(current, origin, "duplicate_refunded");
    const written = await transactWrite(ctx.db, {
      order: orderActions(ctx.db, { from: current, to: next }, now).order,
      event: eventWrite(
        ctx.db,
        { type: "order.refunded", userId: current.userId, orderId: current.orderId, offerGroup: current.offerGroup, amount: refund.amount, currency: refund.currency, tokens: 0, duplicate: true },
        now,
      ).item,
      webhookEvent: record && webhookEventWrite(ctx.db, record, now),
    });
    if (written.committed) return done("duplicate payment refunded");
    if (conditionFailed(written, "webhookEvent")) return done("duplicate event");
    throw new RetryableConflict("order changed while recording a duplicate payment");
  });
}

/**
 * After the order was paid by `paidIntentId`: cancels its other PaymentIntents and
 * expires its open Checkout Sessions, so that none can be paid any more. One that
 * succeeded meanwhile is refunded as a duplicate. Failures are logged, not thrown: the
 * order is paid, and a later success of an attempt left open is refunded when its event
 * arrives.
 */
async function closeOtherAttempts(ctx: PaymentContext, order: OrderItem, paidIntentId: string): Promise<void> {
  const ref = { userId: order.userId, orderId: order.orderId };
  try {
    for (const paymentIntentId of order.paymentIntentIds.filter((id) => id !== paidIntentId)) {
      const state = await ctx.payments.cancelPaymentIntent(paymentIntentId).catch(ignoreUnknown);
      if (state?.status === "succeeded") await applySucceededPayment(ctx, ref, state, { via: "sync" });
    }
    for (const sessionId of order.checkoutSessionIds ?? []) {
      const session = await ctx.payments.expireCheckoutSession(sessionId).catch(ignoreUnknown);
      if (session?.status === "complete" && session.paymentIntentId && session.paymentIntentId !== paidIntentId) {
        const state = await ctx.payments.retrievePaymentIntent(session.paymentIntentId);
        if (state.status === "succeeded") await applySucceededPayment(ctx, ref, state, { via: "sync" });
      }
    }
  } catch (error) {
    ctx.logger.warn("could not close a paid order's other payment attempts", { orderId: order.orderId, error });
  }
}

/**
 * The order with its current attempt's payment recorded: an attempt that was started
 * (recorded before Stripe was called) but whose answer was never stored is replayed under
 * the same Stripe idempotency key, which returns the same PaymentIntent or Checkout
 * Session, and stored. An attempt that failed at Stripe (`error`) has nothing to find.
 * @throws PaymentProviderError when Stripe fails
 */
async function withCurrentAttempt(ctx: PaymentContext, order: OrderItem): Promise<OrderItem> {
  if (order.recordedAttempt === undefined || order.recordedAttempt >= order.attempt) return order;
  if (order.status !== "pending" && order.status !== "refused") return order;
  if (order.provider !== "stripe" && order.provider !== "stripe_checkout") return order;
  const payment: Payment = await ctx.payments.createPayment(await paymentRequestOf(ctx, order, order.attempt));
  const recorded = await recordPayment(ctx.db, order, order.attempt, payment, ctx.clock.now());
  if (recorded) return recorded;
  // Recorded meanwhile by another request, or the order moved to another attempt: as it is now.
  const { data } = await ctx.db.entities.order.get({ userId: order.userId, orderId: order.orderId }).go({ consistent: true });
  return data ?? order;
}

/** What closing an order's current attempt found. */
export type ClosedAttempt =
  | { state: "closed"; order: OrderItem }
  | { state: "succeeded"; order: OrderItem; intent: PaymentIntentState }
  | { state: "processing"; order: OrderItem };

/**
 * Closes the order's current attempt before a new one or before the order is given up:
 * reads it at Stripe; a succeeded one is returned (the caller pays the order with it,
 * never starts another), a `processing` one too (not cancellable: wait); an open
 * PaymentIntent is cancelled, an open Checkout Session expired.
 * @throws PaymentProviderError when Stripe fails (nothing is closed then)
 */
export async function closeCurrentAttempt(ctx: PaymentContext, read: OrderItem): Promise<ClosedAttempt> {
  const order = await withCurrentAttempt(ctx, read);
  // A renewing order's first payment is its subscription's first invoice: an unpaid one is
  // closed by cancelling the subscription (Stripe voids the invoice; its PaymentIntent is
  // the invoice's to close, not ours).
  if (order.renewal === "auto" && order.subscriptionId) {
    const billing = billingOf(ctx);
    const subscription = await billing.retrieveSubscription(order.subscriptionId).catch(ignoreUnknown);
    if (subscription?.status === "incomplete") {
      await billing.cancelSubscription(order.subscriptionId, false);
      return { state: "closed", order };
    }
    if (subscription && order.paymentIntentId) {
      const intent = await ctx.payments.retrievePaymentIntent(order.paymentIntentId).catch(ignoreUnknown);
      if (intent?.status === "succeeded") return { state: "succeeded", order, intent };
      if (intent?.status === "processing") return { state: "processing", order };
    }
    return { state: "closed", order };
  }
  if (order.provider === "stripe_checkout" && order.checkoutSessionId) {
    const session = await ctx.payments.expireCheckoutSession(order.checkoutSessionId).catch(ignoreUnknown);
    if (session?.status === "complete" && session.paymentIntentId) {
      const intent = await ctx.payments.retrievePaymentIntent(session.paymentIntentId);
      if (intent.status === "succeeded") return { state: "succeeded", order, intent };
      if (intent.status === "processing") return { state: "processing", order };
    }
    return { state: "closed", order };
  }
  if (order.paymentIntentId) {
    const intent = await ctx.payments.cancelPaymentIntent(order.paymentIntentId).catch(ignoreUnknown);
    if (intent?.status === "succeeded") return { state: "succeeded", order, intent };
    if (intent?.status === "processing") return { state: "processing", order };
  }
  return { state: "closed", order };
}

/**
 * `POST /users/{userId}/orders/{orderId}/sync`: reads every payment attempt of the order
 * back from Stripe (its PaymentIntents and Checkout Sessions) and applies what it finds
 * exactly as the webhook would: a succeeded attempt (amount and currency checked) pays the
 * order once, any further one is refunded (the original's `afterExecute`, for apps that
 * confirm on the customer's return and for operators); then finishes the order's API
 * refunds still pending at Stripe (core/refunds.ts).
 * @returns the order as it is afterwards
 * @throws NotFoundError; ConflictError for a manual or free order (nothing at Stripe);
 *   PaymentProviderError when Stripe fails
 */
export async function syncOrder(ctx: PaymentContext, userId: string, orderId: string): Promise<OrderItem> {
  const read = async () => {
    const { data } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
    if (!data) throw new NotFoundError("order", orderId);
    return data;
  };
  const order = await withCurrentAttempt(ctx, await read());
  if (order.provider === "manual" || order.provider === "free") {
    throw new ConflictError(`A ${order.provider} order has no payment at Stripe to sync.`);
  }
  const intents = new Set(order.paymentIntentIds);
  for (const sessionId of order.checkoutSessionIds ?? (order.checkoutSessionId ? [order.checkoutSessionId] : [])) {
    const session = await ctx.payments.retrieveCheckoutSession(sessionId).catch(ignoreUnknown);
    if (session?.paymentIntentId) intents.add(session.paymentIntentId);
  }
  if (order.paidPaymentIntentId) intents.add(order.paidPaymentIntentId);
  // The payment that paid the order first, so that only further ones count as duplicates.
  const ordered = [...intents].sort((a, b) => (a === order.paidPaymentIntentId ? -1 : b === order.paidPaymentIntentId ? 1 : 0));
  for (const paymentIntentId of ordered) {
    const intent = await ctx.payments.retrievePaymentIntent(paymentIntentId).catch(ignoreUnknown);
    if (intent?.status === "succeeded") await applySucceededPayment(ctx, { userId, orderId }, intent, { via: "sync" });
  }
  await finishPendingRefunds(ctx, await read());
  return read();
}
