/**
 * The customer portal's routes (issue 14; API.md "Customer portal and operator console"):
 * - `POST /users/{userId}/portal-sessions` (API key): mints a portal session for that
 *   user, a link `<this API>/portal#token=...` (core/portal-sessions.ts);
 * - `/portal/api/...` (the portal token only, as `Authorization: Bearer`): what the
 *   portal page shows and does, for the token's user and no other: the session, credits,
 *   the offers the user may buy, orders, the ledger, a subscription; an order (through
 *   Stripe Checkout, back to the portal); cancelling a renewing subscription. An API key
 *   there is refused (401), as a portal token is on every other route.
 * - `GET /portal`, `GET /console`, `GET /assets/{file}`: the two pages and their files
 *   (functions/pages.ts), loaded without credentials.
 * This function alone holds the portal signing secret (infra/permissions.ts).
 */
import type { Context as HonoContext } from "hono";
import { checkSubscription, getCredits } from "../core/credits.js";
import { DomainError, InvariantViolation } from "../core/errors.js";
import { listLedger } from "../core/ledger.js";
import { listOffers } from "../core/offers.js";
import { createOrder, getOrder, listOrders } from "../core/orders.js";
import { mintPortalToken, verifyPortalToken, type PortalSession } from "../core/portal-sessions.js";
import { cancelRenewal } from "../core/subscriptions.js";
import { pageFile } from "./pages.js";
import { PAGE_ROUTES } from "./routes.js";
import { bearerOf, createApi, errorBody, hasApiKey, honoPath, jsonBody, lambdaHandler, pathParams, queryParams, type ApiEnv } from "./http.js";
import { cancelSubscriptionBody, ledgerFilter, ledgerQuery, orderListQuery, portalOfferPath, portalOrderBody, portalOrderPath, portalSessionBody, userPath } from "./schemas.js";
import "./stripe-payments.js"; // the portal's orders go through Stripe Checkout; cancelling reaches Stripe

/**
 * The function's app: the routes under `/portal/api/` take a portal token (verified
 * before the body is read, the session kept for the route), the others the API key.
 */
export const app = createApi({
  auth: async (c, rt) => {
    if (c.req.path.startsWith("/portal/api/")) c.set("portal", await verifyPortalToken(rt.config.portalSigningSecret, bearerOf(c) ?? "", rt.core.clock.now()));
    else if (isPage(c.req.path)) return; // the pages load without credentials; what they fetch needs them
    else if (!hasApiKey(c, rt)) throw new DomainError("unauthorized", "A valid API key is required (Authorization: Bearer <key>).");
  },
});

/** The paths of `PAGE_ROUTES` (functions/routes.ts): exact ones, and prefixes of templated ones (`/assets/`). */
const PAGE_PATHS = PAGE_ROUTES.map(({ route }) => route.split(" ")[1]!.split("{")[0]!);

/** True for the paths of the pages and their files. */
function isPage(path: string): boolean {
  return PAGE_PATHS.some((page) => (page.endsWith("/") ? path.startsWith(page) : path === page));
}

app.get("/portal", (c) => page(c, "portal.html"));
app.get("/console", (c) => page(c, "console.html"));
app.get(honoPath("/assets/{file}"), (c) => page(c, c.req.param("file") ?? ""));

/** Answers file `name` of the pages (functions/pages.ts), or the JSON 404. */
function page(c: HonoContext<ApiEnv>, name: string): Response {
  const file = name.endsWith(".html") && c.req.path.startsWith("/assets/") ? undefined : pageFile(name);
  if (!file) return c.json(errorBody("not_found", `No file ${JSON.stringify(name)}.`), 404);
  return c.body(file.body, 200, file.headers);
}

/** The portal page's path (the page itself is served by this function; the token rides in its fragment). */
export const PORTAL_PATH = "/portal";

app.post(honoPath("/users/{userId}/portal-sessions"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const body = jsonBody(c, portalSessionBody);
  const { config, core } = c.get("runtime");
  const { token, expires } = await mintPortalToken(config.portalSigningSecret, { userId, ...body }, core.clock.now());
  return c.json({ url: `${originOf(c)}${PORTAL_PATH}#token=${token}`, expires }, 201);
});

app.get("/portal/api/session", async (c) => c.json(portalSession(c), 200));

app.get("/portal/api/credits", async (c) => {
  const { userId } = portalSession(c);
  return c.json(await getCredits(c.get("runtime").core, userId), 200);
});

app.get("/portal/api/offers", async (c) => {
  const { userId, tags } = portalSession(c);
  return c.json({ offers: await listOffers(c.get("runtime").core, { userId, tags }) }, 200);
});

app.get("/portal/api/orders", async (c) => {
  const { userId } = portalSession(c);
  return c.json(await listOrders(c.get("runtime").core, userId, queryParams(c, orderListQuery)), 200);
});

app.get(honoPath("/portal/api/orders/{orderId}"), async (c) => {
  const { userId } = portalSession(c);
  const { orderId } = pathParams(c, portalOrderPath);
  return c.json(await getOrder(c.get("runtime").core, userId, orderId), 200);
});

app.post("/portal/api/orders", async (c) => {
  const { userId } = portalSession(c);
  const body = jsonBody(c, portalOrderBody);
  const { core } = c.get("runtime");
  // Under Stripe, a hosted Checkout Session that comes back to the portal (no token in
  // these URLs: the page keeps it in session storage); under `manual`, a pending order.
  const back = `${originOf(c)}${PORTAL_PATH}`;
  const checkout = core.payments.name === "stripe" ? { successUrl: `${back}?checkout=success`, cancelUrl: `${back}?checkout=cancel` } : undefined;
  const result = await createOrder(core, { userId, ...body, checkout });
  return c.json(result, 201);
});

app.get("/portal/api/ledger", async (c) => {
  const { userId } = portalSession(c);
  return c.json(await listLedger(c.get("runtime").core, userId, ledgerFilter(queryParams(c, ledgerQuery))), 200);
});

app.get(honoPath("/portal/api/subscriptions/{offerId}"), async (c) => {
  const { userId } = portalSession(c);
  const { offerId } = pathParams(c, portalOfferPath);
  return c.json(await checkSubscription(c.get("runtime").core, userId, offerId), 200);
});

app.delete(honoPath("/portal/api/subscriptions/{offerId}"), async (c) => {
  const { userId } = portalSession(c);
  const { offerId } = pathParams(c, portalOfferPath);
  const { atPeriodEnd } = jsonBody(c, cancelSubscriptionBody);
  return c.json(await cancelRenewal(c.get("runtime").core, userId, offerId, atPeriodEnd), 200);
});

/**
 * The request's portal session, verified by the app's check before the route ran.
 * @throws InvariantViolation when a portal route is reached without one (cannot happen: the check refuses first)
 */
function portalSession(c: HonoContext<ApiEnv>): PortalSession {
  const session = c.get("portal");
  if (!session) throw new InvariantViolation("A portal route ran without a verified session.", { path: c.req.path });
  return session;
}

/**
 * The API's own origin, as the client reached it: API Gateway's domain (or the local
 * runner's host), with the scheme the client used (`X-Forwarded-Proto`, which API Gateway
 * sets; the Lambda adapter's URL always says https).
 */
function originOf(c: HonoContext): string {
  const url = new URL(c.req.url);
  const scheme = c.req.header("x-forwarded-proto")?.split(",")[0]?.trim();
  return `${scheme === "http" || scheme === "https" ? scheme : url.protocol.slice(0, -1)}://${url.host}`;
}

/** Lambda entry point. */
export const handler = lambdaHandler(app);
