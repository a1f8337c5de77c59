/**
 * Portal sessions (issue 14; API.md "Customer portal and operator console"): a link the
 * app gives its signed-in user, opening the customer portal for that one user, as Stripe's
 * Customer Portal does. The session is a token, a JWT signed with HMAC-SHA256 (library
 * `jose`) under the service's portal signing secret (SST secret `PortalSigningSecret`),
 * carrying the user id (`sub`), the scope (`portal`), the audience
 * (`user-credits-portal`), the expiry, and what the portal shows (`returnUrl`, `tags`).
 * It travels in the URL's fragment (`/portal#token=...`), which browsers never send to a
 * server, so it is in no query string and no access log; the portal page then sends it as
 * `Authorization: Bearer <token>` to the routes under `/portal/api/...`, which act for its
 * user only. An API key is never a portal token and a portal token never an API key: each
 * kind of route accepts its own (401 otherwise).
 */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { DomainError, ValidationError } from "./errors.js";
import {
  DEFAULT_PORTAL_TTL_SECONDS,
  MAX_PORTAL_TTL_SECONDS,
  MIN_PORTAL_SECRET_BYTES,
  MIN_PORTAL_TTL_SECONDS,
  PORTAL_AUDIENCE,
  PORTAL_SCOPE,
} from "./rules/portal.js";


/** What a portal session is for (API.md `POST /users/{userId}/portal-sessions`). */
export interface PortalSessionInput {
  userId: string;
  /** Where the portal's "back" link leads (the app). */
  returnUrl?: string | undefined;
  /** The offers shown: those with one of these tags (none: every offer the user may see). */
  tags?: string[] | undefined;
  /** Seconds, {@link MIN_PORTAL_TTL_SECONDS}..{@link MAX_PORTAL_TTL_SECONDS}; default {@link DEFAULT_PORTAL_TTL_SECONDS}. */
  ttlSeconds?: number | undefined;
}

/** A verified portal session: whom it acts for, until when, and what it shows. */
export interface PortalSession {
  userId: string;
  /** ISO 8601 instant. */
  expires: string;
  returnUrl?: string | undefined;
  tags?: string[] | undefined;
}

/**
 * Signs a portal session for `input.userId`, valid from `now` for `ttlSeconds`.
 * @param secret the portal signing secret (at least {@link MIN_PORTAL_SECRET_BYTES} bytes)
 * @returns the token and its expiry (ISO 8601)
 * @throws ValidationError naming `ttlSeconds` out of range; DomainError
 *   `service_unavailable` (503) when no usable secret is configured
 */
export async function mintPortalToken(secret: string | undefined, input: PortalSessionInput, now: Date): Promise<{ token: string; expires: string }> {
  const key = keyOf(secret);
  const ttl = input.ttlSeconds ?? DEFAULT_PORTAL_TTL_SECONDS;
  if (!Number.isSafeInteger(ttl) || ttl < MIN_PORTAL_TTL_SECONDS || ttl > MAX_PORTAL_TTL_SECONDS) {
    throw new ValidationError({ ttlSeconds: `an integer in ${MIN_PORTAL_TTL_SECONDS}..${MAX_PORTAL_TTL_SECONDS}` });
  }
  const issuedAt = Math.floor(now.getTime() / 1000);
  const expiresAt = issuedAt + ttl;
  const token = await new SignJWT({
    scope: PORTAL_SCOPE,
    ...(input.returnUrl !== undefined ? { returnUrl: input.returnUrl } : {}),
    ...(input.tags !== undefined ? { tags: input.tags } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(input.userId)
    .setAudience(PORTAL_AUDIENCE)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(key);
  return { token, expires: new Date(expiresAt * 1000).toISOString() };
}

/**
 * Verifies a portal token at `now`: the HS256 signature under `secret`, the audience, the
 * scope, a subject, and the expiry (no leeway).
 * @throws DomainError `unauthorized` (401) for a forged, altered, expired, or
 *   other-scoped token, or anything that is not a JWT; `service_unavailable` without a
 *   usable secret
 */
export async function verifyPortalToken(secret: string | undefined, token: string, now: Date): Promise<PortalSession> {
  const key = keyOf(secret);
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], audience: PORTAL_AUDIENCE, currentDate: now, requiredClaims: ["sub", "exp"] });
    if (payload.scope !== PORTAL_SCOPE || typeof payload.sub !== "string" || payload.sub === "" || typeof payload.exp !== "number") {
      throw new DomainError("unauthorized", "This token is not a portal session.");
    }
    const tags = Array.isArray(payload.tags) ? payload.tags.filter((tag): tag is string => typeof tag === "string") : undefined;
    return {
      userId: payload.sub,
      expires: new Date(payload.exp * 1000).toISOString(),
      ...(typeof payload.returnUrl === "string" ? { returnUrl: payload.returnUrl } : {}),
      ...(tags !== undefined ? { tags } : {}),
    };
  } catch (error) {
    if (error instanceof DomainError) throw error;
    if (error instanceof joseErrors.JOSEError) {
      const expired = error instanceof joseErrors.JWTExpired;
      throw new DomainError("unauthorized", expired ? "The portal session has expired: ask the app for a new link." : "A valid portal session token is required.");
    }
    throw error;
  }
}

/** The HMAC key of `secret`. */
function keyOf(secret: string | undefined): Uint8Array {
  const bytes = new TextEncoder().encode(secret ?? "");
  if (bytes.byteLength < MIN_PORTAL_SECRET_BYTES) {
    throw new DomainError("service_unavailable", `The customer portal is not configured: set the PortalSigningSecret secret (PORTAL_SIGNING_SECRET locally), at least ${MIN_PORTAL_SECRET_BYTES} bytes.`);
  }
  return bytes;
}
