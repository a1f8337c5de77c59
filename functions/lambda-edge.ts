/**
 * The edge of every Lambda function of the HTTP API that holds no runtime: the error
 * table, the JSON error body, and the Lambda handler of a Hono app (library `hono`, its
 * `hono/aws-lambda` adapter for API Gateway HTTP API v2 events). Nothing here reads
 * configuration, secrets or the database, so the functions that need none of them (the
 * JSON 404, the OpenAPI document) load it without functions/runtime.ts and its AWS SDK;
 * functions/http.ts builds the API-key, body and validation layers on top of it.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context as LambdaContext } from "aws-lambda";
import type { Env, Hono } from "hono";
import { handle } from "hono/aws-lambda";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode } from "../core/errors.js";

/** HTTP status of each error code (API.md error table). */
export const STATUS_OF: Record<ErrorCode, ContentfulStatusCode> = {
  validation_error: 400,
  invalid_signature: 400,
  unauthorized: 401,
  insufficient_credits: 402,
  not_found: 404,
  conflict: 409,
  reservation_expired: 409,
  idempotency_conflict: 409,
  idempotency_in_progress: 409,
  already_subscribed: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  offer_locked: 422,
  quantity_limit_exceeded: 422,
  currency_not_offered: 422,
  start_in_past: 422,
  amount_out_of_range: 422,
  period_out_of_range: 422,
  not_renewable: 422,
  internal_error: 500,
  payment_provider_error: 502,
  service_unavailable: 503,
};

/** The JSON error body (API.md "Errors"). */
export function errorBody(code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/**
 * The headers of `event` the adapter cannot put on a request, each with what is wrong: a
 * NUL, CR or LF in the value, an invalid name, a lone surrogate (the adapter
 * percent-encodes non-ASCII values, which throws on those). Undefined when all are fine.
 */
function unreadableHeaders(event: APIGatewayProxyEventV2): Record<string, string> | undefined {
  const details: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (!value) continue;
    try {
      new Headers([[name, /[^\x00-\x7F]/.test(value) ? encodeURIComponent(value) : value]]);
    } catch {
      details[name] = "is not a valid HTTP header";
    }
  }
  return Object.keys(details).length > 0 ? details : undefined;
}

/** A JSON error result, for answers given before the app runs. */
function errorResult(status: number, body: ReturnType<typeof errorBody>): APIGatewayProxyStructuredResultV2 {
  return { statusCode: status, headers: { "content-type": "application/json" }, body: JSON.stringify(body), isBase64Encoded: false };
}

/**
 * The Lambda handler (API Gateway HTTP API v2 events) of an app. A body sent with GET
 * or HEAD is dropped (it has no meaning, and the Fetch API refuses it); headers that
 * cannot be put on a request get a 400 naming them; an event the adapter still cannot
 * turn into a request gets a JSON error, never plain text.
 */
export function lambdaHandler<E extends Env>(app: Hono<E>) {
  const handler = handle(app);
  return async (event: APIGatewayProxyEventV2, context?: LambdaContext): Promise<APIGatewayProxyStructuredResultV2> => {
    const unreadable = unreadableHeaders(event);
    if (unreadable) return errorResult(400, errorBody("validation_error", "The request could not be read.", unreadable));
    const method = event.requestContext?.http?.method?.toUpperCase();
    const input = (method === "GET" || method === "HEAD") && event.body ? { ...event, body: undefined, isBase64Encoded: false } : event;
    const result = (await handler(input as never, context as never)) as APIGatewayProxyStructuredResultV2;
    const type = String((result.headers ?? {})["content-type"] ?? "");
    if ((result.statusCode ?? 200) >= 400 && !type.startsWith("application/json")) {
      return result.statusCode === 400
        ? errorResult(400, errorBody("validation_error", "The request could not be read.", { request: "could not be read" }))
        : errorResult(500, errorBody("internal_error", "Something went wrong."));
    }
    return result;
  };
}
