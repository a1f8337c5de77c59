/**
 * `POST /webhooks/stripe`: the one route without an API key. The `Stripe-Signature` is
 * verified on the raw body bytes (base64-encoded bodies are decoded by the adapter
 * first); 200 once the event is applied or deliberately ignored, 400 for a bad or stale
 * signature, 5xx when applying failed for a transient reason so that Stripe delivers it
 * again (API.md).
 */
import { verifyStripeEvent } from "../core/payments/stripe-webhook.js";
import { handleStripeEvent } from "../core/webhooks.js";
import { createApi, lambdaHandler, refuseContentCoding } from "./http.js";
import { logger } from "./runtime.js";
import "./stripe-payments.js"; // applying an event reads the PaymentIntent, refunds, disputes

/** The function's app. */
export const app = createApi({ auth: false });

app.post("/webhooks/stripe", async (c) => {
  const { core, config } = c.get("runtime");
  refuseContentCoding(c); // the raw body is read here, not through parsedBody
  const event = verifyStripeEvent({
    rawBody: c.get("rawBody"),
    signature: c.req.header("stripe-signature"),
    secret: config.stripeWebhookSecret,
    now: core.clock.now(),
  });
  const outcome = await handleStripeEvent(core, event);
  logger.info("stripe webhook", { eventId: event.id, type: event.type, ...outcome });
  return c.json({ received: true, outcome: outcome.outcome, reason: outcome.reason }, 200);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
