/**
 * The portal session's terms, pure (issue 14; API.md "Customer portal and operator
 * console"): what core/portal-sessions.ts signs and checks, and what the request schema
 * (functions/schemas.ts) accepts, without the signing library.
 */

/** The scope claim of a portal token. */
export const PORTAL_SCOPE = "portal";
/** The audience of a portal token (a JWT of this service for another use is refused). */
export const PORTAL_AUDIENCE = "user-credits-portal";
/** A session's lifetime when the request leaves it out (API.md: 3600 s). */
export const DEFAULT_PORTAL_TTL_SECONDS = 3600;
/** The shortest lifetime accepted, seconds (issue 14: 60..86400). */
export const MIN_PORTAL_TTL_SECONDS = 60;
/** The longest lifetime accepted, seconds: a day. */
export const MAX_PORTAL_TTL_SECONDS = 86_400;
/** The shortest signing secret accepted: 32 bytes, HS256's key size (RFC 7518 §3.2). */
export const MIN_PORTAL_SECRET_BYTES = 32;
