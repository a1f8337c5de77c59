/**
 * The service's secrets, set per stage with `npx sst secret set <Name> <value>` and never
 * kept in the repo. Each is linked only to the functions that need it; handlers read it
 * as `Resource.<Name>.value` (functions/runtime.ts), so these names are part of the
 * contract with the code.
 */

/** The bearer key(s) clients send (`Authorization: Bearer <key>`); comma-separated during a rotation. */
export const apiKey = new sst.Secret("ApiKey");

/** Stripe's secret API key (`sk_...`): creates and reads PaymentIntents and Checkout sessions. */
export const stripeSecretKey = new sst.Secret("StripeSecretKey");

/** The signing secret of the Stripe webhook endpoint (`whsec_...`): authenticates webhook calls. */
export const stripeWebhookSecret = new sst.Secret("StripeWebhookSecret");
