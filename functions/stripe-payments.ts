/**
 * Stripe for the functions that call it: imported (for its effect) by the handlers that
 * create, read, cancel or refund Stripe payments (functions/orders.ts, functions/webhook.ts,
 * functions/daily-job.ts, functions/publisher.ts for automatic top-ups), it registers the Stripe provider with the runtime. Only their
 * bundles hold the `stripe` SDK (scripts/bundles.ts, test/bundles.test.ts); any other
 * function configured with a Stripe key gets a provider that refuses every call with an
 * InvariantViolation (functions/runtime.ts).
 */
import { createStripeProvider } from "../core/payments/stripe.js";
import { provideAdapters } from "./runtime.js";

provideAdapters({ stripe: createStripeProvider });
