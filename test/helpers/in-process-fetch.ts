/**
 * A `fetch` that serves requests with the Lambda handlers in this process, routed as
 * API Gateway routes them (the route table, through scripts/local-gateway.ts, as `npm
 * start` does): for HTTP clients such as openapi-fetch (`createClient({ fetch })`) in
 * tests, without a server. The handlers use the process's runtime (`setRuntime`).
 */
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { HTTP_FUNCTIONS, type HttpFunctionName } from "../../functions/routes.js";
import { createRouteMatcher, localLambdaContext, toGatewayEvent, type HttpHandler } from "../../scripts/local-gateway.js";

/** The Lambda handler of every HTTP function, imported as the deployed functions name them. */
export async function loadHandlers(): Promise<Record<HttpFunctionName, HttpHandler>> {
  const handlers = {} as Record<HttpFunctionName, HttpHandler>;
  for (const [name, path] of Object.entries(HTTP_FUNCTIONS) as Array<[HttpFunctionName, string]>) {
    const [file, exported] = path.split(".") as [string, string];
    // One variable segment (`functions/<module>`): the form of dynamic import Vite (vitest) can resolve.
    const base = file.slice(file.lastIndexOf("/") + 1);
    const module = (await import(`../../functions/${base}.ts`)) as Record<string, HttpHandler>;
    handlers[name] = module[exported]!;
  }
  return handlers;
}

/** One request served, with the route key it matched (`$default` when none). */
export interface Exchange {
  route: string;
  method: string;
  path: string;
  status: number;
  /** The parsed JSON body of the response (undefined when empty). */
  body: unknown;
}

/**
 * A fetch over `handlers`; each exchange is passed to `onExchange` (the response body
 * parsed as JSON) before the response is returned.
 */
export function inProcessFetch(handlers: Record<HttpFunctionName, HttpHandler>, onExchange?: (exchange: Exchange) => void): (request: Request) => Promise<Response> {
  const match = createRouteMatcher();
  return async (request: Request) => {
    const url = new URL(request.url);
    const method = request.method.toUpperCase();
    const route = match(method, url.pathname);
    const event = toGatewayEvent({
      method,
      url,
      headers: Object.fromEntries(request.headers),
      body: Buffer.from(await request.arrayBuffer()),
      sourceIp: "127.0.0.1",
      route,
    });
    const result: APIGatewayProxyStructuredResultV2 = await handlers[route.fn](event, localLambdaContext(route.fn));
    const bytes = result.isBase64Encoded ? Buffer.from(result.body ?? "", "base64") : Buffer.from(result.body ?? "", "utf8");
    const text = bytes.toString("utf8");
    onExchange?.({ route: route.route, method, path: url.pathname, status: result.statusCode ?? 200, body: text ? JSON.parse(text) : undefined });
    const headers = new Headers();
    for (const [name, value] of Object.entries(result.headers ?? {})) headers.set(name, String(value));
    return new Response(bytes.byteLength > 0 ? bytes : null, { status: result.statusCode ?? 200, headers });
  };
}
