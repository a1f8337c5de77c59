/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the API (functions/openapi-document.ts),
 * without an API key (API.md "Machine-readable contract"). The function reads nothing but
 * the document: no configuration, secrets, database or runtime (functions/runtime.ts), so
 * it needs no permission and its bundle holds hono and zod only. Its edge is the
 * runtime-free one of functions/lambda-edge.ts: a request whose headers cannot be read gets
 * a JSON 400 naming them, any other route a JSON 404, a body on the GET is ignored.
 */
import { Hono } from "hono";
import { errorBody, lambdaHandler } from "./lambda-edge.js";
import { openApiDocument } from "./openapi-document.js";

/** The function's app. */
export const app = new Hono();
app.get("/openapi.json", (c) => c.json(openApiDocument(), 200, { "cache-control": "public, max-age=300" }));
app.notFound((c) => c.json(errorBody("not_found", `No route ${c.req.method} ${c.req.path}.`), 404));
app.onError((_error, c) => c.json(errorBody("internal_error", "Something went wrong."), 500));

/**
 * Lambda entry point (API Gateway HTTP API v2 events): the document on `GET /openapi.json`
 * with `content-type: application/json`, JSON errors otherwise.
 */
export const handler = lambdaHandler(app);
