/**
 * The route table: every route of the HTTP API and the Lambda function serving it.
 * Read by `infra/api.ts` (API Gateway routes) and by the local runner (which turns a
 * request into the same API Gateway v2 event, routeKey and path parameters included),
 * so the deployed and local routing cannot differ. No runtime dependency: infra loads it.
 */

/** The HTTP functions: name -> handler module (relative to the project root). */
export const HTTP_FUNCTIONS = {
  offers: "functions/offers.handler",
  orders: "functions/orders.handler",
  consumption: "functions/consumption.handler",
  credits: "functions/credits.handler",
  expiry: "functions/expiry.handler",
  webhook: "functions/webhook.handler",
  portal: "functions/portal.handler",
  openapi: "functions/openapi.handler",
  notFound: "functions/not-found.handler",
} as const;

/** Name of an HTTP function. */
export type HttpFunctionName = keyof typeof HTTP_FUNCTIONS;

/** Every route (API Gateway route key `METHOD /path/{param}`) and its function. */
export const ROUTES = [
  { route: "PUT /offers/{offerId}", fn: "offers" },
  { route: "GET /offers/{offerId}", fn: "offers" },
  { route: "GET /offers", fn: "offers" },
  { route: "PUT /offer-groups/{offerGroup}", fn: "offers" },
  { route: "GET /offer-groups/{offerGroup}", fn: "offers" },
  { route: "POST /users/{userId}/orders", fn: "orders" },
  { route: "GET /users/{userId}/orders", fn: "orders" },
  { route: "GET /users/{userId}/orders/{orderId}", fn: "orders" },
  { route: "POST /users/{userId}/orders/{orderId}/confirm", fn: "orders" },
  { route: "POST /users/{userId}/orders/{orderId}/pay", fn: "orders" },
  { route: "POST /users/{userId}/orders/{orderId}/refund", fn: "orders" },
  { route: "POST /users/{userId}/orders/{orderId}/sync", fn: "orders" },
  { route: "DELETE /users/{userId}/subscriptions/{offerId}", fn: "orders" },
  { route: "POST /users/{userId}/payment-methods/setup", fn: "orders" },
  { route: "PUT /users/{userId}/auto-top-up/{offerGroup}", fn: "orders" },
  { route: "GET /users/{userId}/auto-top-up/{offerGroup}", fn: "orders" },
  { route: "DELETE /users/{userId}/auto-top-up/{offerGroup}", fn: "orders" },
  { route: "POST /users/{userId}/consumptions", fn: "consumption" },
  { route: "POST /users/{userId}/consumptions/{entryId}/reverse", fn: "consumption" },
  { route: "POST /users/{userId}/reservations", fn: "consumption" },
  { route: "POST /users/{userId}/reservations/{reservationId}/commit", fn: "consumption" },
  { route: "POST /users/{userId}/reservations/{reservationId}/release", fn: "consumption" },
  { route: "GET /users/{userId}/reservations", fn: "credits" },
  { route: "GET /users/{userId}/credits", fn: "credits" },
  { route: "GET /users/{userId}/ledger", fn: "credits" },
  { route: "GET /users/{userId}/subscriptions/{offerId}", fn: "credits" },
  { route: "POST /users/{userId}/grants", fn: "credits" },
  { route: "GET /users/{userId}/events", fn: "credits" },
  { route: "POST /users/{userId}/expiry-check", fn: "expiry" },
  { route: "POST /webhooks/stripe", fn: "webhook" },
  { route: "POST /users/{userId}/portal-sessions", fn: "portal" },
  { route: "GET /portal/api/session", fn: "portal" },
  { route: "GET /portal/api/credits", fn: "portal" },
  { route: "GET /portal/api/offers", fn: "portal" },
  { route: "GET /portal/api/orders", fn: "portal" },
  { route: "GET /portal/api/orders/{orderId}", fn: "portal" },
  { route: "POST /portal/api/orders", fn: "portal" },
  { route: "GET /portal/api/ledger", fn: "portal" },
  { route: "GET /portal/api/subscriptions/{offerId}", fn: "portal" },
  { route: "DELETE /portal/api/subscriptions/{offerId}", fn: "portal" },
  { route: "GET /openapi.json", fn: "openapi" },
] as const satisfies ReadonlyArray<{ route: string; fn: HttpFunctionName }>;

/**
 * The pages the API serves (issue 14): the customer portal, the operator console, and
 * their scripts and styles (functions/pages.ts). HTML and static files, not the JSON API:
 * they need no credentials and are not in the OpenAPI document.
 */
export const PAGE_ROUTES = [
  { route: "GET /portal", fn: "portal" },
  { route: "GET /console", fn: "portal" },
  { route: "GET /assets/{file}", fn: "portal" },
] as const satisfies ReadonlyArray<{ route: string; fn: HttpFunctionName }>;

/**
 * Files a function reads from its package besides its bundle, copied there by SST
 * (`copyFiles`, infra/api.ts; scripts/bundles.ts does the same for the bundle tests): the
 * pages the portal function serves (functions/pages.ts), by path from the project's root.
 */
export const PACKAGE_FILES: Readonly<Partial<Record<HttpFunctionName, ReadonlyArray<{ from: string; to: string }>>>> = {
  portal: [{ from: "functions/pages", to: "functions/pages" }],
};

/** The route key API Gateway uses for requests no route matches. */
export const DEFAULT_ROUTE = { route: "$default", fn: "notFound" } as const;

/**
 * The routes that need no API key: the Stripe webhook (it verifies a Stripe signature
 * instead) and the OpenAPI document (public, like the contract it describes).
 */
export const UNAUTHENTICATED_ROUTES: readonly string[] = ["POST /webhooks/stripe", "GET /openapi.json"];

/**
 * The routes that take a portal session token instead of an API key (functions/portal.ts,
 * core/portal-sessions.ts): everything under `/portal/api/`. An API key there is refused,
 * as a portal token is on every other route.
 */
export const PORTAL_ROUTES: readonly string[] = ROUTES.filter((route) => route.route.includes(" /portal/api/")).map((route) => route.route);
