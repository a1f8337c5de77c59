/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the API (functions/openapi-document.ts),
 * without an API key (API.md "Machine-readable contract"). The function reads nothing but
 * the document: no configuration, secrets, database or runtime (functions/runtime.ts), so
 * it needs no permission and its bundle holds hono and zod only. Its own edge, small: a
 * request whose headers cannot be read gets a JSON 400 naming them, any other route a JSON
 * 404 (as functions/http.ts answers for the other functions), a body on the GET is ignored.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context as LambdaContext } from "aws-lambda";
import { Hono } from "hono";
import { handle } from "hono/aws-lambda";
import { openApiDocument } from "./openapi-document.js";

/** The JSON error body (API.md "Errors"), for the codes this function answers. */
function errorBody(code: "validation_error" | "not_found" | "internal_error", message: string, details?: Record<string, string>) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** The function's app. */
export const app = new Hono();
app.get("/openapi.json", (c) => c.json(openApiDocument(), 200, { "cache-control": "public, max-age=300" }));
app.notFound((c) => c.json(errorBody("not_found", `No route ${c.req.method} ${c.req.path}.`), 404));
app.onError((_error, c) => c.json(errorBody("internal_error", "Something went wrong."), 500));

const adapter = handle(app);

/** The headers of `event` that cannot be put on a Fetch `Request` (the adapter would throw), each with why. */
function unreadableHeaders(event: APIGatewayProxyEventV2): Record<string, string> | undefined {
  const details: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (!value) continue;
    try {
      // The adapter percent-encodes non-ASCII values (which throws on lone surrogates).
      new Headers([[name, /[^\x00-\x7F]/.test(value) ? encodeURIComponent(value) : value]]);
    } catch {
      details[name] = "is not a valid HTTP header";
    }
  }
  return Object.keys(details).length > 0 ? details : undefined;
}

/**
 * Lambda entry point (API Gateway HTTP API v2 events): the document on `GET /openapi.json`
 * with `content-type: application/json`, JSON errors otherwise.
 */
export async function handler(event: APIGatewayProxyEventV2, context?: LambdaContext): Promise<APIGatewayProxyStructuredResultV2> {
  const unreadable = unreadableHeaders(event);
  if (unreadable) {
    const body = errorBody("validation_error", "The request could not be read.", unreadable);
    return { statusCode: 400, headers: { "content-type": "application/json" }, body: JSON.stringify(body), isBase64Encoded: false };
  }
  // A GET or HEAD with a body cannot become a Fetch Request; the body means nothing here.
  const method = event.requestContext?.http?.method?.toUpperCase();
  const input = (method === "GET" || method === "HEAD") && event.body ? { ...event, body: undefined, isBase64Encoded: false } : event;
  return (await adapter(input as never, context as never)) as APIGatewayProxyStructuredResultV2;
}
