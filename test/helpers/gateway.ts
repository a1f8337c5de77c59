/**
 * API Gateway HTTP API (payload 2.0) events for calling handlers directly, made from
 * AWS's sample event (test/fixtures/apigw-http-v2.json) with the request laid over it.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import sample from "../fixtures/apigw-http-v2.json" with { type: "json" };
import { localLambdaContext } from "../../scripts/local-gateway.js";

/** A request to turn into an event. */
export interface ApiRequest {
  method: string;
  /** Path with query string, e.g. `/users/u1/ledger?limit=2`. */
  path: string;
  headers?: Record<string, string>;
  /** A string body, or an object sent as JSON. */
  body?: string | object;
  /** Deliver the body base64-encoded, as API Gateway does for binary content. */
  base64?: boolean;
  routeKey?: string;
}

/** The event API Gateway would send for `request`. */
export function apiEvent(request: ApiRequest): APIGatewayProxyEventV2 {
  const url = new URL(request.path, "https://id.execute-api.us-east-1.amazonaws.com");
  const event = structuredClone(sample) as unknown as APIGatewayProxyEventV2;
  const body = request.body === undefined ? undefined : typeof request.body === "string" ? request.body : JSON.stringify(request.body);
  const headers: Record<string, string> = { host: url.host, "user-agent": "test" };
  if (typeof request.body === "object") headers["content-type"] = "application/json";
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  event.routeKey = request.routeKey ?? "$default";
  event.requestContext.routeKey = event.routeKey;
  event.rawPath = url.pathname;
  event.rawQueryString = url.search.replace(/^\?/, "");
  event.headers = headers;
  delete event.cookies;
  event.queryStringParameters = Object.fromEntries(url.searchParams);
  event.requestContext.http = { ...event.requestContext.http, method: request.method, path: url.pathname };
  delete event.pathParameters;
  if (body === undefined) {
    delete event.body;
    event.isBase64Encoded = false;
  } else {
    event.body = request.base64 ? Buffer.from(body).toString("base64") : body;
    event.isBase64Encoded = Boolean(request.base64);
  }
  return event;
}

/** A handler's response with its JSON body parsed. */
export interface ApiResponse {
  status: number;
  headers: Record<string, unknown>;
  /** The JSON body parsed, or the text of another media type. */
  body: any;
}

/** A response body: JSON parsed, or, for another media type (the pages: HTML, scripts, styles), the text. */
function parsed(text: string, contentType: string): unknown {
  return contentType === "" || contentType.includes("json") ? JSON.parse(text) : text;
}

/** Calls a Lambda handler with the event of `request`. */
export async function invoke(
  handler: (event: APIGatewayProxyEventV2, context: any) => Promise<APIGatewayProxyStructuredResultV2>,
  request: ApiRequest,
): Promise<ApiResponse> {
  const result = await handler(apiEvent(request), localLambdaContext("test"));
  const text = result.isBase64Encoded ? Buffer.from(result.body ?? "", "base64").toString("utf8") : (result.body ?? "");
  return { status: result.statusCode ?? 200, headers: result.headers ?? {}, body: text ? parsed(text, String(result.headers?.["content-type"] ?? "")) : undefined };
}
