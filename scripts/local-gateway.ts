/**
 * A local stand-in for API Gateway (HTTP API, payload format 2.0): matches a request
 * against the route table (Hono's TrieRouter), builds the same event API Gateway would
 * send (routeKey, path parameters, headers, query, cookies, body base64-encoded unless
 * textual) and writes the handler's response back. The event shape follows AWS's sample
 * (`test/fixtures/apigw-http-v2.json`).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context as LambdaContext } from "aws-lambda";
import { TrieRouter } from "hono/router/trie-router";
import { DEFAULT_ROUTE, PAGE_ROUTES, ROUTES, type HttpFunctionName } from "../functions/routes.js";
import { honoPath } from "../functions/http.js";

/** A Lambda handler of an HTTP function. */
export type HttpHandler = (event: APIGatewayProxyEventV2, context: LambdaContext) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Bodies API Gateway passes as text: textual content types, not content-coded (a coded
 * body is bytes whatever its type); any other body arrives base64-encoded, intact.
 */
function isTextual(contentType: string | undefined, contentEncoding: string | undefined): boolean {
  if (contentEncoding && contentEncoding.split(",").some((coding) => !/^\s*(identity)?\s*$/i.test(coding))) return false;
  if (!contentType) return true;
  return /^(text\/|application\/(json|xml|x-www-form-urlencoded|[\w.+-]+\+json))/i.test(contentType);
}

/** `decodeURIComponent(value)`, or `value` itself when it is malformed percent-encoding. */
function decodeOrRaw(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Matches method + path to a route: its key, function and decoded path parameters. A
 * parameter that is malformed percent-encoding (`%ff`, `%ED%A0%80`) is passed raw, as
 * API Gateway passes what it can: the handler re-reads the raw path and refuses it (400).
 */
export function createRouteMatcher() {
  const router = new TrieRouter<{ route: string; fn: HttpFunctionName }>();
  for (const entry of [...ROUTES, ...PAGE_ROUTES]) {
    const [method, path] = entry.route.split(" ") as [string, string];
    router.add(method, honoPath(path), entry);
  }
  return (method: string, path: string): { route: string; fn: HttpFunctionName; pathParameters?: Record<string, string> } => {
    const [matches] = router.match(method, path) as [[{ route: string; fn: HttpFunctionName }, Record<string, string>][]];
    const first = matches[0];
    if (!first) return { ...DEFAULT_ROUTE };
    const [entry, params] = first;
    const decoded = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, decodeOrRaw(v)]));
    return Object.keys(decoded).length > 0 ? { ...entry, pathParameters: decoded } : { ...entry };
  };
}

/**
 * The URL of a request from its target and `Host` header (`127.0.0.1` without one), or
 * `invalid` naming what cannot be read: `host` when the header is not `host[:port]`
 * (`a b`, empty, `[::1`, `a@b`, `a/b`), `path` when the target is neither a path nor an
 * absolute URL. The path is kept as sent, malformed percent-encoding and `//` included.
 */
export function requestUrl(target: string, host: string | undefined): { url: URL } | { invalid: Record<string, string> } {
  const authority = host ?? "127.0.0.1";
  let base: URL;
  try {
    base = new URL(`http://${authority}/`);
  } catch {
    return { invalid: { host: "is not a valid host[:port]" } };
  }
  if (base.username || base.password || base.pathname !== "/" || base.search || base.hash || /[\s/?#@\\]/.test(authority)) {
    return { invalid: { host: "is not a valid host[:port]" } };
  }
  try {
    if (target.startsWith("/")) return { url: new URL(`${base.origin}${target}`) };
    const absolute = new URL(target);
    if (absolute.protocol === "http:" || absolute.protocol === "https:") return { url: absolute };
  } catch {
    // Falls through: not a URL.
  }
  return { invalid: { path: "is not a valid request target" } };
}

/** Builds the API Gateway v2 event of a request. */
export function toGatewayEvent(input: {
  method: string;
  url: URL;
  headers: IncomingMessage["headers"];
  body: Buffer;
  sourceIp: string;
  route: { route: string; pathParameters?: Record<string, string> };
  now?: Date;
}): APIGatewayProxyEventV2 {
  const { method, url, body, route } = input;
  const now = input.now ?? new Date();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers)) {
    if (value !== undefined && name !== "cookie") headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : value;
  }
  // As API Gateway adds it (its own is "https"): the scheme the client used, here plain HTTP.
  headers["x-forwarded-proto"] = "http";
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const cookies = input.headers.cookie?.split(";").map((c) => c.trim()).filter(Boolean);
  const textual = isTextual(headers["content-type"], headers["content-encoding"]);
  const event: APIGatewayProxyEventV2 = {
    version: "2.0",
    routeKey: route.route,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ""),
    headers,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: headers.host ?? "127.0.0.1",
      domainPrefix: (headers.host ?? "127").split(".")[0]!,
      http: { method, path: url.pathname, protocol: "HTTP/1.1", sourceIp: input.sourceIp, userAgent: headers["user-agent"] ?? "" },
      requestId: randomUUID(),
      routeKey: route.route,
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: body.byteLength > 0 && !textual,
  };
  if (cookies && cookies.length > 0) event.cookies = cookies;
  if (Object.keys(query).length > 0) event.queryStringParameters = query;
  if (route.pathParameters) event.pathParameters = route.pathParameters;
  if (body.byteLength > 0) event.body = textual ? body.toString("utf8") : body.toString("base64");
  return event;
}

/** A minimal Lambda context for local invocations. */
export function localLambdaContext(functionName: string, timeoutMs = 30_000): LambdaContext {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Writes a handler's result as the HTTP response. */
export function writeGatewayResult(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  if (result.cookies && result.cookies.length > 0) headers["set-cookie"] = result.cookies;
  res.writeHead(result.statusCode ?? 200, headers);
  const body = result.body ?? "";
  res.end(result.isBase64Encoded ? Buffer.from(body, "base64") : body);
}
