/**
 * The HTTP API: an API Gateway HTTP API (payload 2.0) in front of one Lambda function per
 * concern. Routes and handlers come from `functions/routes.ts`, which the local runner
 * serves too, so deployed and local routing cannot differ.
 */
import { DEFAULT_ROUTE, HTTP_FUNCTIONS, ROUTES, type HttpFunctionName } from "../functions/routes";
import { apiKey, stripeSecretKey, stripeWebhookSecret } from "./secrets";
import { table } from "./table";

/** What each function may touch (least privilege): the webhook needs no API key, the 404 nothing. */
const links: Record<HttpFunctionName, (sst.aws.Dynamo | sst.Secret)[]> = {
  offers: [table, apiKey, stripeSecretKey],
  orders: [table, apiKey, stripeSecretKey],
  consumption: [table, apiKey, stripeSecretKey],
  credits: [table, apiKey, stripeSecretKey],
  expiry: [table, apiKey, stripeSecretKey],
  webhook: [table, stripeSecretKey, stripeWebhookSecret],
  notFound: [],
};

/** `orders` -> `ApiOrders`: the component name, which also names the Lambda function in AWS. */
function componentName(name: HttpFunctionName): string {
  return `Api${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

/**
 * The Lambda function of each entry of `HTTP_FUNCTIONS`, by name. The timeout stays under
 * API Gateway's 30 s integration limit.
 */
export const functions = Object.fromEntries(
  (Object.keys(HTTP_FUNCTIONS) as HttpFunctionName[]).map((name) => [
    name,
    new sst.aws.Function(componentName(name), {
      handler: HTTP_FUNCTIONS[name],
      runtime: "nodejs22.x",
      architecture: "arm64",
      memory: "1024 MB",
      timeout: "25 seconds",
      link: links[name],
      environment: { TABLE_NAME: table.name, DEFAULT_CURRENCY: "usd" },
    }),
  ]),
) as Record<HttpFunctionName, sst.aws.Function>;

/**
 * The API: every route of `ROUTES` to its function, and `$default` (no route matched) to
 * the JSON 404. Authentication is the handlers' (bearer API key; a Stripe signature for
 * the webhook), not API Gateway's.
 */
export const api = new sst.aws.ApiGatewayV2("Api");

for (const { route, fn } of ROUTES) api.route(route, functions[fn].arn);
api.route(DEFAULT_ROUTE.route, functions[DEFAULT_ROUTE.fn].arn);
