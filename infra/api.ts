/**
 * The HTTP API: an API Gateway HTTP API (payload 2.0) in front of one Lambda function per
 * concern. Routes and handlers come from `functions/routes.ts`, which the local runner
 * serves too, so deployed and local routing cannot differ.
 */
import { DEFAULT_ROUTE, HTTP_FUNCTIONS, PACKAGE_FILES, PAGE_ROUTES, ROUTES, type HttpFunctionName } from "../functions/routes";
import { accessOf, statementsOf } from "./permissions";
import { secretsNamed } from "./secrets";
import { FUNCTION_DEFAULTS, runtimeEnvironment, stageSettings } from "./settings";
import { table, tableArns } from "./table";

const settings = stageSettings();


/** `orders` -> `ApiOrders`: the component name, which also names the Lambda function in AWS. */
function componentName(name: HttpFunctionName): string {
  return `Api${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

/**
 * The Lambda function of each entry of `HTTP_FUNCTIONS`, by name, with the secrets and IAM
 * actions its code uses (infra/permissions.ts) and nothing else. The timeout stays under
 * API Gateway's 30 s integration limit.
 */
export const functions = Object.fromEntries(
  (Object.keys(HTTP_FUNCTIONS) as HttpFunctionName[]).map((name) => {
    const access = accessOf(name);
    // The runtime's settings go where the table is granted: every function that builds
    // the runtime reads the table; the 404 (and anything else granted nothing) reads neither.
    const usesTable = access.actions.table !== undefined || access.actions.workIndex !== undefined;
    return [
      name,
      new sst.aws.Function(componentName(name), {
        handler: HTTP_FUNCTIONS[name],
        ...FUNCTION_DEFAULTS,
        timeout: "25 seconds",
        link: secretsNamed(access.secrets),
        permissions: statementsOf(access.actions, tableArns),
        environment: usesTable ? runtimeEnvironment(settings, table.name) : {},
        // Files it reads from its package (the portal's pages, functions/pages.ts).
        ...(PACKAGE_FILES[name] ? { copyFiles: PACKAGE_FILES[name]!.map((file) => ({ ...file })) } : {}),
      }),
    ];
  }),
) as Record<HttpFunctionName, sst.aws.Function>;

/**
 * The request headers a browser may send when CORS is on: the API key, the JSON body's
 * type, and the Idempotency-Key of `POST` routes (API.md, "Conventions"). Named, because
 * a `*` in `Access-Control-Allow-Headers` does not cover `Authorization` (Fetch standard).
 */
const CORS_HEADERS = ["authorization", "content-type", "idempotency-key"];

/**
 * The API: every route of `ROUTES` to its function, and `$default` (no route matched) to
 * the JSON 404. Authentication is the handlers' (bearer API key; a Stripe signature for
 * the webhook), not API Gateway's. CORS is off (a server-to-server API) unless the stage
 * names browser origins (infra/settings.ts): SST's `ApiGatewayV2` enables CORS for every
 * origin when `cors` is left out, so it is set to `false` explicitly.
 */
export const api = new sst.aws.ApiGatewayV2("Api", {
  cors:
    settings.corsOrigins.length > 0
      ? { allowOrigins: settings.corsOrigins, allowHeaders: CORS_HEADERS, allowMethods: ["GET", "POST", "PUT", "DELETE"] }
      : false,
});

for (const { route, fn } of [...ROUTES, ...PAGE_ROUTES]) api.route(route, functions[fn].arn);
api.route(DEFAULT_ROUTE.route, functions[DEFAULT_ROUTE.fn].arn);
