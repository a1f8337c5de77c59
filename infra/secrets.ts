/**
 * The service's secrets, set per stage with `npx sst secret set <Name> <value> --stage <stage>`
 * and never kept in the repo. Each is linked only to the functions whose code reads it
 * (`ACCESS` in infra/permissions.ts); handlers read it as `Resource.<Name>.value`
 * (functions/runtime.ts), so these names are part of the contract with the code. A
 * secret's link grants no IAM action (SST's `Secret.getSSTLink()` has no `include`).
 */
import type { SecretName } from "./permissions";

/** The bearer key(s) clients send (`Authorization: Bearer <key>`); comma-separated during a rotation. */
export const apiKey = new sst.Secret("ApiKey");

/** Stripe's secret API key (`sk_...`): creates, reads, cancels and refunds PaymentIntents and Checkout sessions. */
export const stripeSecretKey = new sst.Secret("StripeSecretKey");

/** The signing secret of the Stripe webhook endpoint (`whsec_...`): authenticates webhook calls. */
export const stripeWebhookSecret = new sst.Secret("StripeWebhookSecret");

/**
 * The key portal session tokens are signed with (HS256, at least 32 bytes: e.g.
 * `openssl rand -base64 48`): linked only to the portal function, which mints and checks
 * them (core/portal-sessions.ts). Changing it ends every open portal session.
 */
export const portalSigningSecret = new sst.Secret("PortalSigningSecret");

const byName: Record<SecretName, sst.Secret> = {
  ApiKey: apiKey,
  StripeSecretKey: stripeSecretKey,
  StripeWebhookSecret: stripeWebhookSecret,
  PortalSigningSecret: portalSigningSecret,
};

/** The secrets of `names`, to link. */
export function secretsNamed(names: readonly SecretName[]): sst.Secret[] {
  return names.map((name) => byName[name]);
}
