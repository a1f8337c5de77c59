/**
 * Stripe webhook events applied to orders (API.md `POST /webhooks/stripe`). The
 * original verified signatures and did nothing else (ORIGINAL-BEHAVIOUR.md §6).
 *
 * - `payment_intent.succeeded`, `checkout.session.completed` (paid),
 *   `checkout.session.async_payment_succeeded`: the PaymentIntent is read back from
 *   Stripe (events can be stale or forged with a leaked secret), must be `succeeded`,
 *   be one of the order's PaymentIntents (or carry its order's metadata at Stripe), and
 *   match the order's amount and currency; then the order is paid exactly once, and a
 *   second payment for a paid order is refunded (core/payment-attempts.ts). A
 *   PaymentIntent Stripe does not know is ignored.
 * - `payment_intent.payment_failed`, `payment_intent.canceled`,
 *   `checkout.session.async_payment_failed`: an unpaid order becomes `refused` (lifecycle
 *   `paymentFailed`; not final: a later success still pays it), when the PaymentIntent
 *   is the order's current attempt. A paid order is left alone.
 * - `invoice.paid`: a renewing order's period is credited, once per invoice
 *   (core/subscriptions.ts); a subscription-mode `checkout.session.completed` credits
 *   nothing (its invoice does). `invoice.payment_failed` raises
 *   `subscription.payment_failed`; `customer.subscription.updated` / `.deleted` keep the
 *   subscription's state (`subscription.canceled` when it ends). `setup_intent.succeeded`
 *   saves the user's card for off-session payments (core/billing.ts).
 * - `charge.refunded`: refunds made in Stripe take tokens back (core/refunds.ts);
 *   `refund.failed` is noted on the order; `charge.dispute.created` / `.closed` freeze and
 *   give back or end the order's tokens (core/disputes.ts). Each reads the objects back
 *   from Stripe and applies once, by Stripe id, whatever the deliveries and their order.
 *   A renewal invoice's charge (its PaymentIntent carries no metadata of ours) leads to
 *   its order through the invoice's subscription, and only that invoice's period is
 *   refunded or disputed (core/subscriptions.ts `renewalOfPayment`).
 * - Anything else, unknown orders and already-applied events are ignored (200).
 * Orders are found through `metadata.orderId` and `metadata.userId`, set on every
 * PaymentIntent and Checkout Session this service creates (and on every renewing order's
 * Stripe Subscription, which its invoices carry). Each change is written with
 * the event id in one transaction, so an event applies at most once.
 */
import type { Context } from "./context.js";
import { conditionFailed, transactWrite } from "./db/transact.js";
import { PaymentNotFoundError } from "./errors.js";
import { orderActions } from "./order-writes.js";
import { applyDispute } from "./disputes.js";
import { applySucceededPayment } from "./payment-attempts.js";
import { applyStripeRefunds, recordRefundFailure } from "./refunds.js";
import { creditInvoice, invoiceFailed, syncRenewal } from "./subscriptions.js";
import { savePaymentMethod } from "./billing.js";
import type { PaymentIntentState } from "./payments/provider.js";
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
      // A subscription-mode session's order is credited by its invoice's `invoice.paid`.
      if (object.mode === "subscription") return { outcome: "ignored", reason: "a subscription is credited by invoice.paid" };
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
    case "invoice.paid": {
      const invoiceId = text(object.id);
      return invoiceId ? creditInvoice(ctx, invoiceId, { eventId: event.id, type: event.type }) : { outcome: "ignored", reason: "no invoice id" };
    }
    case "invoice.payment_failed": {
      const invoiceId = text(object.id);
      return invoiceId ? invoiceFailed(ctx, invoiceId, { eventId: event.id, type: event.type }) : { outcome: "ignored", reason: "no invoice id" };
    }
    case "setup_intent.succeeded": {
      const setupIntentId = text(object.id);
      return setupIntentId ? savePaymentMethod(ctx, setupIntentId) : { outcome: "ignored", reason: "no SetupIntent id" };
    }
    case "customer.subscription.updated":
    case "customer.subscription.deleted": {
      const subscriptionId = text(object.id);
      return subscriptionId ? syncRenewal(ctx, subscriptionId, { eventId: event.id, type: event.type }) : { outcome: "ignored", reason: "no subscription id" };
    }
    case "charge.refunded": {
      const paymentIntentId = text(object.payment_intent);
      if (!paymentIntentId) return { outcome: "ignored", reason: "a charge without a PaymentIntent" };
      return applyStripeRefunds(ctx, paymentIntentId);
    }
    case "charge.dispute.created":
    case "charge.dispute.closed": {
      const disputeId = text(object.id);
      return disputeId ? applyDispute(ctx, disputeId) : { outcome: "ignored", reason: "no dispute id" };
    }
    case "refund.failed": {
      const refundId = text(object.id);
      if (!refundId) return { outcome: "ignored", reason: "no refund id" };
      return recordRefundFailure(ctx, {
        id: refundId,
        amount: typeof object.amount === "number" ? object.amount : 0,
        metadata: Object.fromEntries(Object.entries((object.metadata ?? {}) as Record<string, unknown>).filter((pair): pair is [string, string] => typeof pair[1] === "string")),
        paymentIntentId: text(object.payment_intent),
        failureReason: text(object.failure_reason),
      });
    }
    default:
      return { outcome: "ignored", reason: `event type ${event.type} is not handled` };
  }
}

/**
 * Reads the PaymentIntent back from Stripe (events can be stale or forged with a leaked
 * secret) and, if it has succeeded, applies it (core/payment-attempts.ts: pays the order
 * once, or refunds a second payment). A PaymentIntent Stripe does not know (404) is
 * ignored (200: a retry cannot change that); a Stripe failure throws (5xx: Stripe
 * delivers again).
 */
async function confirmPayment(
  ctx: Context,
  event: StripeEvent,
  paymentIntentId: string | undefined,
  ref: { userId: string; orderId: string } | undefined,
): Promise<WebhookOutcome> {
  if (!paymentIntentId || !ref) return { outcome: "ignored", reason: "no PaymentIntent or order metadata" };
  let intent: PaymentIntentState;
  try {
    intent = await ctx.payments.retrievePaymentIntent(paymentIntentId);
  } catch (error) {
    if (error instanceof PaymentNotFoundError) {
      ctx.logger.warn("webhook event for a PaymentIntent Stripe does not know; ignored", { eventId: event.id, paymentIntentId, orderId: ref.orderId });
      return { outcome: "ignored", reason: `Stripe does not know PaymentIntent ${paymentIntentId}`, orderId: ref.orderId };
    }
    throw error;
  }
  if (intent.status !== "succeeded") {
    return { outcome: "ignored", reason: `PaymentIntent is ${intent.status}, not succeeded`, orderId: ref.orderId };
  }
  return applySucceededPayment(ctx, ref, intent, { via: "webhook", event: { eventId: event.id, type: event.type } });
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
