/**
 * The secrets of the fuzz run: the API keys of a rotation and the Stripe webhook secret.
 * They are recognisable on purpose, so that every error body can be searched for them;
 * hostile requests also carry them in the wrong place (a webhook secret as an API key,
 * an API key as a webhook secret).
 */

/** The two API keys of a rotation; both are valid. */
export const API_KEYS = ["fuzz-key-A-123456", "fuzz-key-B-654321"] as const;

/** The Stripe webhook signing secret. */
export const WEBHOOK_SECRET = "whsec_fuzz_secret_value";

/** The portal signing secret (core/portal-sessions.ts): portal tokens of the seeded user are signed with it. */
export const PORTAL_SECRET = "fuzz-portal-signing-secret-0123456789abcdef";
