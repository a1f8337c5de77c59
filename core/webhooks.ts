/**
 * Stripe webhook events applied to orders (API.md `POST /webhooks/stripe`). The
 * original verified signatures and did nothing else (ORIGINAL-BEHAVIOUR.md §6).
 *
 * - `payment_intent.succeeded`, `checkout.session.completed` (paid),
 *   `checkout.session.async_payment_succeeded`: the PaymentIntent is read back from
 *   Stripe (events can be stale or forged with a leaked secret), must be `succeeded`,
 *   be one of the order's PaymentIntents (or carry its order's metadata at Stripe), and
 *   match the order's amount and currency; then the order is paid exactly once.
 * - `payment_intent.payment_failed`, `payment_intent.canceled`,
 *   `checkout.session.async_payment_failed`: an unpaid order becomes `refused` (lifecycle
 *   `paymentFailed`; not final: a later success still pays it), when the PaymentIntent
 *   is the order's current attempt. A paid order is left alone.
 * - Anything else, unknown orders and already-applied events are ignored (200).
 * Orders are found through `metadata.orderId` and `metadata.userId`, set on every
 * PaymentIntent and Checkout Session this service creates. Each change is written with
 * the event id in one transaction, so an event applies at most once.
 */
import type { Context } from "./context.js";
import type { OrderItem } from "./db/service.js";
import { conditionFailed, transactWrite } from "./db/transact.js";
import { fulfilOrder } from "./fulfilment.js";
import { noteAction, orderActions } from "./order-writes.js";
import type { StripeEvent } from "./payments/stripe-webhook.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { canTransition, transition } from "./rules/order-lifecycle.js";
import { webhookEventWrite } from "./webhook-events.js";

/** What handling an event did. */
export interface WebhookOutcome {
  outcome: "applied" | "ignored";
  /** Why, in a few words (logged). */
  reason: string;
  orderId?: string | undefined;
}

type EventObject = Record<string, unknown>;

const text = (value: unknown): string | undefined => (typeof value === "string" && value.length > 0 ? value : undefined);

function orderRef(object: EventObject): { userId: string; orderId: string } | undefined {
  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  const userId = text(metadata.userId);
  const orderId = text(metadata.orderId);
  return userId && orderId ? { userId, orderId } : undefined;
}

/**
 * Applies one verified Stripe event.
 * @throws PaymentProviderError / database errors when applying failed for a transient
 *   reason (the caller answers 5xx, Stripe delivers again)
 */
export async function handleStripeEvent(ctx: Context, event: StripeEvent): Promise<WebhookOutcome> {
  const object = event.data.object;
  switch (event.type) {
    case "payment_intent.succeeded":
      return confirmPayment(ctx, event, text(object.id), orderRef(object));
    case "checkout.session.completed":
      if (object.payment_status !== "paid") return { outcome: "ignored", reason: "checkout session awaits an asynchronous payment" };
      return confirmPayment(ctx, event, text(object.payment_intent), orderRef(object));
    case "checkout.session.async_payment_succeeded":
      return confirmPayment(ctx, event, text(object.payment_intent), orderRef(object));
    case "payment_intent.payment_failed":
    case "payment_intent.canceled": {
      const error = (object.last_payment_error ?? {}) as Record<string, unknown>;
      const message =
        event.type === "payment_intent.canceled"
          ? `payment cancelled (${text(object.cancellation_reason) ?? "no reason given"})`
          : `payment failed: ${text(error.message) ?? text(error.code) ?? "no reason given"}`;
      return refusePayment(ctx, event, text(object.id), orderRef(object), message);
    }
    case "checkout.session.async_payment_failed":
      return refusePayment(ctx, event, text(object.payment_intent), orderRef(object), "asynchronous checkout payment failed");
    default:
      return { outcome: "ignored", reason: `event type ${event.type} is not handled` };
  }
}

/**
 * Whether a succeeded PaymentIntent pays this order: it is one of the order's attempts,
 * or Stripe reports it with the order's own metadata (this service sets
 * `metadata.orderId`/`userId` on every PaymentIntent it creates, Checkout's included,
 * and the metadata was read back from Stripe, not taken from the event).
 */
function paysOrder(order: OrderItem, intent: { id: string; metadata: Record<string, string> }): boolean {
  if (order.paymentIntentIds.includes(intent.id)) return true;
  return intent.metadata.orderId === order.orderId && intent.metadata.userId === order.userId;
}

async function confirmPayment(
  ctx: Context,
  event: StripeEvent,
  paymentIntentId: string | undefined,
  ref: { userId: string; orderId: string } | undefined,
): Promise<WebhookOutcome> {
  if (!paymentIntentId || !ref) return { outcome: "ignored", reason: "no PaymentIntent or order metadata" };

  // A. Ask Stripe for the PaymentIntent's current state (a transient failure throws: 5xx).
  const intent = await ctx.payments.retrievePaymentIntent(paymentIntentId);
  if (intent.status !== "succeeded") {
    return { outcome: "ignored", reason: `PaymentIntent is ${intent.status}, not succeeded`, orderId: ref.orderId };
  }
  const payload = JSON.stringify({
    eventId: event.id,
    paymentIntentId: intent.id,
    status: intent.status,
    amountReceived: intent.amountReceived,
    currency: intent.currency,
  });

  // B. Pay the order once, if the payment is the order's and matches it.
  const result = await fulfilOrder(ctx, ref.userId, ref.orderId, {
    source: "stripe",
    message: `payment succeeded (${intent.id})`,
    payload,
    event: { eventId: event.id, type: event.type, userId: ref.userId, orderId: ref.orderId, outcome: "paid" },
    check: (order) => {
      if (!paysOrder(order, intent)) return `PaymentIntent ${intent.id} is not one of this order's`;
      if (intent.currency !== order.total.currency) return `currency ${intent.currency} differs from the order's ${order.total.currency}`;
      if (intent.amountReceived !== order.total.amount) return `amount received ${intent.amountReceived} differs from the order's total ${order.total.amount}`;
      return undefined;
    },
  });
  if (result.applied) return { outcome: "applied", reason: "order paid", orderId: ref.orderId };
  if (result.reason === "mismatch") {
    await noteOnOrder(ctx, result.order, event, `inconsistent payment, not credited: ${result.detail}`, payload);
    return { outcome: "ignored", reason: result.detail, orderId: ref.orderId };
  }
  return { outcome: "ignored", reason: result.reason.replace(/_/g, " "), orderId: ref.orderId };
}

async function refusePayment(
  ctx: Context,
  event: StripeEvent,
  paymentIntentId: string | undefined,
  ref: { userId: string; orderId: string } | undefined,
  message: string,
): Promise<WebhookOutcome> {
  if (!paymentIntentId || !ref) return { outcome: "ignored", reason: "no PaymentIntent or order metadata" };
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get(ref).go({ consistent: true });
    if (!order) return { outcome: "ignored", reason: "unknown order", orderId: ref.orderId };
    // Only the current attempt's failure counts: cancelling an earlier attempt (a retry)
    // also sends `payment_intent.canceled`. Checkout creates its PaymentIntent itself.
    const current = order.provider === "stripe_checkout" ? order.paymentIntentId ?? paymentIntentId : order.paymentIntentId;
    if (current !== paymentIntentId) {
      return { outcome: "ignored", reason: `PaymentIntent ${paymentIntentId} is not the order's current attempt`, orderId: ref.orderId };
    }
    if (!canTransition(order.status, "paymentFailed")) {
      return { outcome: "ignored", reason: `order is ${order.status}`, orderId: ref.orderId };
    }
    const refused = transition(order, "paymentFailed", { message, payload: JSON.stringify({ eventId: event.id, paymentIntentId }), now });
    const written = await transactWrite(ctx.db, {
      ...orderActions(ctx.db, { from: order, to: refused, trigger: "paymentFailed" }, now),
      webhookEvent: webhookEventWrite(ctx.db, { eventId: event.id, type: event.type, ...ref, outcome: "refused" }, now),
    });
    if (written.committed) return { outcome: "applied", reason: "order refused", orderId: ref.orderId };
    if (conditionFailed(written, "webhookEvent")) return { outcome: "ignored", reason: "duplicate event", orderId: ref.orderId };
    throw new RetryableConflict("order changed while refusing");
  });
}

/** Adds a history entry to an unpaid order (an inconsistent payment), once per event. */
async function noteOnOrder(ctx: Context, order: OrderItem, event: StripeEvent, message: string, payload: string): Promise<void> {
  const now = ctx.clock.now();
  await transactWrite(ctx.db, {
    order: noteAction(ctx.db, order, { message, payload }, now),
    webhookEvent: webhookEventWrite(ctx.db, { eventId: event.id, type: event.type, userId: order.userId, orderId: order.orderId, outcome: "inconsistent" }, now),
  });
}
