/**
 * The Stripe event types the webhook endpoint handles (API.md `POST /webhooks/stripe`):
 * the list to enable on the endpoint in the Stripe dashboard, printed by the deploy
 * (sst.config.ts output `stripeWebhookEvents`) and the README. No imports, so the SST
 * config can read it. core/webhooks.ts handles each (tested).
 */
export const STRIPE_WEBHOOK_EVENTS = [
  "payment_intent.succeeded",
  "payment_intent.payment_failed",
  "payment_intent.canceled",
  "checkout.session.completed",
  "checkout.session.async_payment_succeeded",
  "checkout.session.async_payment_failed",
  "charge.refunded",
  "charge.dispute.created",
  "charge.dispute.closed",
  "refund.failed",
] as const;

/** One of {@link STRIPE_WEBHOOK_EVENTS}. */
export type StripeWebhookEvent = (typeof STRIPE_WEBHOOK_EVENTS)[number];
