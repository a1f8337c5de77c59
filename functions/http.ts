/**
 * The HTTP edge, written once: a Hono app per Lambda function (library `hono`, its
 * `hono/aws-lambda` adapter turns API Gateway HTTP API v2 events into requests,
 * base64 bodies included), with
 * - API key auth (`Authorization: Bearer <key>`, several keys for rotation, compared in
 *   constant time) on every route but the Stripe webhook;
 * - JSON bodies: over 1 MB -> 413, not `application/json` or content-coded -> 415,
 *   invalid JSON -> 400;
 * - validation with zod (the `zod/mini` schemas of functions/schemas.ts): 400
 *   `validation_error` naming each bad field;
 * - domain errors mapped to statuses in one table; anything unexpected -> 500 (or 503
 *   when transient) with no stack or secret in the body;
 * - unknown routes -> 404 `not_found`.
 * Handlers then read: parse -> validate -> call core -> map.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { Hono, type Context as HonoContext } from "hono";
import { routePath } from "hono/route";
import * as z from "zod/mini";
import { DomainError, InvariantViolation, isTransient, ValidationError } from "../core/errors.js";
import { hashRequest, type IdempotentRequest } from "../core/idempotency.js";
import type { PortalSession } from "../core/portal-sessions.js";
import { errorBody, STATUS_OF } from "./lambda-edge.js";
import { logger, runtime, type Runtime } from "./runtime.js";

export { errorBody, lambdaHandler, STATUS_OF } from "./lambda-edge.js";

/** Largest accepted body (API.md: 413 over 1 MB). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Hono environment of the handlers: the runtime, the raw body bytes, and (portal routes) the verified portal session. */
export type ApiEnv = { Variables: { runtime: Runtime; rawBody: Buffer; portal?: PortalSession } };

/**
 * A function's own check of the request's credentials, run where the API key is checked
 * (before the body is read): throws DomainError `unauthorized` to refuse.
 */
export type Authenticator = (c: HonoContext<ApiEnv>, rt: Runtime) => Promise<void>;

/** Maps any thrown value to a JSON error response. */
export function errorResponse(c: HonoContext, error: unknown): Response {
  if (error instanceof DomainError) {
    return c.json(errorBody(error.code, error.message, error.details), STATUS_OF[error.code]);
  }
  if (isTransient(error)) {
    logger.warn("transient failure", { error: error as Error });
    return c.json(errorBody("service_unavailable", "A dependency is temporarily unavailable; retry later."), 503);
  }
  if (error instanceof InvariantViolation) {
    logger.error("invariant violated; nothing was written", { error, context: error.context });
  } else {
    logger.error("unexpected failure", { error: error as Error });
  }
  return c.json(errorBody("internal_error", "Something went wrong."), 500);
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Constant-time check of a presented key against the valid ones (hashes compared, so lengths leak nothing). */
export function keyMatches(presented: string, valid: readonly string[]): boolean {
  const digest = sha256(presented);
  let match = false;
  for (const key of valid) match = timingSafeEqual(digest, sha256(key)) || match;
  return match;
}

/** The bearer token of the request's `Authorization` header, or undefined. */
export function bearerOf(c: HonoContext): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec((c.req.header("authorization") ?? "").trim());
  return match?.[1];
}

/** True when the request carries one of the runtime's API keys (compared in constant time). */
export function hasApiKey(c: HonoContext, rt: Pick<Runtime, "config">): boolean {
  const presented = bearerOf(c);
  return presented !== undefined && rt.config.apiKeys.length > 0 && keyMatches(presented, rt.config.apiKeys);
}

/**
 * A Hono app with the shared middleware. `auth: false` only for the Stripe webhook,
 * which is authenticated by its signature instead; a function for its own check (the
 * portal's: a portal token on its `/portal/api/` routes, the API key on the others).
 */
export function createApi(options: { auth: boolean | Authenticator } = { auth: true }): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.onError((error, c) => errorResponse(c, error));
  app.notFound((c) => c.json(errorBody("not_found", `No route ${c.req.method} ${c.req.path}.`), 404));
  app.use("*", async (c, next) => {
    const rt = await runtime();
    c.set("runtime", rt);
    if (options.auth === true && !hasApiKey(c, rt)) {
      return c.json(errorBody("unauthorized", "A valid API key is required (Authorization: Bearer <key>)."), 401);
    }
    if (typeof options.auth === "function") await options.auth(c, rt);
    const raw = Buffer.from(await c.req.arrayBuffer());
    if (raw.byteLength > MAX_BODY_BYTES) {
      return c.json(errorBody("payload_too_large", `The body is over ${MAX_BODY_BYTES} bytes.`), 413);
    }
    c.set("rawBody", raw);
    await next();
  });
  return app;
}

/**
 * Refuses (415 `unsupported_media_type`) a non-empty body sent with a content coding
 * (`Content-Encoding` other than `identity`): the service decodes none, and API Gateway
 * (HTTP API) passes the header and the coded bytes through as they came. An empty body
 * has nothing to decode and passes.
 */
export function refuseContentCoding(c: HonoContext<ApiEnv>): void {
  const header = c.req.header("content-encoding") ?? "";
  const codings = header.split(",").map((coding) => coding.trim().toLowerCase()).filter(Boolean);
  if (c.get("rawBody").byteLength > 0 && codings.some((coding) => coding !== "identity")) {
    throw new DomainError("unsupported_media_type", "The body must not be content-encoded (Content-Encoding: identity, or none).", {
      "content-encoding": header,
    });
  }
}

/** Hono path syntax (`:id`) from API Gateway's (`{id}`). */
export function honoPath(route: string): string {
  return route.replace(/\{(\w+)\}/g, ":$1");
}

/**
 * Turns zod issues into `{ field: message }`, field paths dotted (`prices.0.amount`). The
 * map has no prototype, so that fields named `__proto__` or `constructor` are named too.
 */
export function fieldErrors(error: z.core.$ZodError, prefix?: string): Record<string, string> {
  const details: Record<string, string> = Object.create(null);
  for (const issue of error.issues) {
    const keys =
      issue.code === "unrecognized_keys" ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
    for (const path of keys) {
      const field = [prefix, ...path.map(String)].filter(Boolean).join(".") || prefix || "body";
      if (!(field in details)) details[field] = issue.code === "unrecognized_keys" ? "unknown field" : issue.message;
    }
  }
  return details;
}

/**
 * Validates `value` against `schema` (any zod 4 schema, `zod/mini` or classic); throws a
 * ValidationError naming each bad field.
 */
export function validate<S extends z.core.$ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const result = z.safeParse(schema, value);
  if (!result.success) throw new ValidationError(fieldErrors(result.error, prefix));
  return result.data;
}

/**
 * The request's JSON body, validated. An empty body counts as `{}` (routes without a
 * body); a body that is not `application/json`, or is content-coded -> 415; invalid JSON -> 400.
 */
export function jsonBody<S extends z.core.$ZodType>(c: HonoContext<ApiEnv>, schema: S): z.output<S> {
  return validate(schema, parsedBody(c));
}

/**
 * The parsed JSON body (`{}` when empty), checking the content type and coding. Called
 * after the path parameters are checked, so a bad path (400) answers before them (415).
 */
export function parsedBody(c: HonoContext<ApiEnv>): unknown {
  const raw = c.get("rawBody");
  if (raw.byteLength === 0) return {};
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    throw new DomainError("unsupported_media_type", "The body must be application/json.", { "content-type": type || null });
  }
  refuseContentCoding(c);
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new ValidationError({ body: "invalid JSON" });
  }
}

/** True when `encoded` is valid percent-encoded UTF-8 (Hono keeps a malformed escape such as `%E0%A4%A` or `%ED%A0%80` literally). */
function decodes(encoded: string): boolean {
  try {
    decodeURIComponent(encoded);
    return true;
  } catch {
    return false;
  }
}

/** The path parameters, validated; a parameter whose raw segment is malformed percent-encoding is refused. */
export function pathParams<S extends z.core.$ZodType>(c: HonoContext<ApiEnv>, schema: S): z.output<S> {
  const names = routePath(c).split("/");
  const segments = new URL(c.req.url).pathname.split("/");
  const malformed: Record<string, string> = Object.create(null);
  names.forEach((name, i) => {
    if (name.startsWith(":") && !decodes(segments[i] ?? "")) malformed[name.slice(1)] = "malformed percent-encoding";
  });
  if (Object.keys(malformed).length > 0) throw new ValidationError(malformed);
  return validate(schema, c.req.param());
}

/** The query parameters (first value of each), validated; malformed percent-encoding is refused. */
export function queryParams<S extends z.core.$ZodType>(c: HonoContext<ApiEnv>, schema: S): z.output<S> {
  const malformed: Record<string, string> = Object.create(null);
  for (const pair of new URL(c.req.url).search.replace(/^\?/, "").split("&")) {
    const [name = "", value = ""] = pair.replace(/\+/g, " ").split(/=(.*)/s);
    if (!decodes(name) || !decodes(value)) malformed[decodes(name) ? decodeURIComponent(name) : name] = "malformed percent-encoding";
  }
  if (Object.keys(malformed).length > 0) throw new ValidationError(malformed);
  return validate(schema, c.req.query());
}

/**
 * `""` when the Lambda event carries header `name` with an empty value: the adapter drops
 * empty headers from the request, which would turn an empty `Idempotency-Key` into none.
 */
function emptyEventHeader(c: HonoContext<ApiEnv>, name: string): "" | undefined {
  const event = (c.env as { event?: Partial<APIGatewayProxyEventV2> } | undefined)?.event;
  const found = Object.entries(event?.headers ?? {}).some(([header, value]) => header.toLowerCase() === name && value === "");
  return found ? "" : undefined;
}

/**
 * The `Idempotency-Key` of the request (1-255 characters) scoped to `scope`, with the
 * hash of the parsed body, or undefined without the header.
 */
export function idempotencyOf(c: HonoContext<ApiEnv>, scope: string, body: unknown): IdempotentRequest | undefined {
  const key = c.req.header("idempotency-key") ?? emptyEventHeader(c, "idempotency-key");
  if (key === undefined) return undefined;
  if (key.length < 1 || key.length > 255) throw new ValidationError({ "Idempotency-Key": "must be 1-255 characters" });
  return { scope, key, requestHash: hashRequest(body) };
}
