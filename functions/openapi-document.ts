/**
 * The OpenAPI 3.1 document of the HTTP API (API.md "Machine-readable contract"), served
 * at `GET /openapi.json`. Generated, never written by hand: every route of the route table
 * (functions/routes.ts `ROUTES`; the operation table below is typed over it, so a route
 * without an operation does not compile), with
 * - path, query and body schemas converted from the very zod schemas that validate the
 *   requests (functions/schemas.ts) by zod 4's own JSON Schema output
 *   (`z.toJSONSchema(..., { target: "draft-2020-12", io: "input" })`: what a client may
 *   send, defaults not required), which is OpenAPI 3.1's schema dialect;
 * - response bodies from functions/response-schemas.ts, shared as `components.schemas`;
 * - the bearer API key on every route but the Stripe webhook and this document;
 * - the `Idempotency-Key` header where the handler reads it (`idempotencyOf`);
 * - each route's error statuses with the JSON error body and the codes each may carry.
 * Loads no runtime, AWS SDK or database code: the `openapi` function has no permissions.
 */
import * as z from "zod/mini";
import type { ErrorCode } from "../core/errors.js";
import { PORTAL_ROUTES, ROUTES, UNAUTHENTICATED_ROUTES } from "./routes.js";
import * as requests from "./schemas.js";
import * as responses from "./response-schemas.js";
import { STATUS_OF } from "./lambda-edge.js";

/** A JSON Schema, or any part of the document, as plain JSON. */
type Json = Record<string, unknown>;

/** A route key of the route table, e.g. `GET /offers/{offerId}`. */
export type RouteKey = (typeof ROUTES)[number]["route"];

/** Where `$ref`s to shared schemas point. */
const SCHEMAS = "#/components/schemas/";

/**
 * The named schemas of `components.schemas`: request bodies (as validated) and response
 * bodies. Shared response parts (Money, Instant, Order, LedgerEntry...) are named too, so
 * each appears once and the generated client types carry their names.
 */
const COMPONENTS = {
  // Requests.
  OfferInput: requests.offerBody,
  OfferGroupInput: requests.offerGroupBody,
  OrderRequest: requests.orderBody,
  RefundRequest: requests.refundBody,
  ConsumptionRequest: requests.consumptionBody,
  HoldRequest: requests.holdBody,
  CommitRequest: requests.commitBody,
  ReversalRequest: requests.reversalBody,
  GrantRequest: requests.grantBody,
  ExpiryCheckRequest: requests.expiryCheckBody,
  EmptyBody: requests.emptyBody,
  // Responses.
  Error: responses.errorResponse,
  Instant: responses.instantUtc,
  Money: responses.money,
  Offer: responses.offer,
  OfferList: responses.offerList,
  OfferGroupSettings: responses.offerGroupSettings,
  Payment: responses.payment,
  Order: responses.order,
  OrderWithPayment: responses.orderWithPayment,
  OrderPage: responses.orderPage,
  LedgerEntry: responses.ledgerEntry,
  LedgerPage: responses.ledgerPage,
  ConsumptionResult: responses.consumptionResult,
  Reservation: responses.reservation,
  CommitResult: responses.commitResult,
  ReservationPage: responses.reservationPage,
  ReversalResult: responses.reversalResult,
  Credits: responses.credits,
  SubscriptionCheck: responses.subscriptionCheck,
  Renewal: responses.renewal,
  PortalSessionRequest: requests.portalSessionBody,
  PortalSessionLink: responses.portalSessionLink,
  PortalSession: responses.portalSession,
  PortalOrderRequest: requests.portalOrderBody,
  AutoTopUp: responses.autoTopUp,
  AutoTopUpRequest: requests.autoTopUpBody,
  PaymentMethodSetup: responses.paymentMethodSetup,
  PaymentMethodSetupRequest: requests.paymentMethodSetupBody,
  CancelSubscriptionRequest: requests.cancelSubscriptionBody,
  Grant: responses.grant,
  ExpiryCheck: responses.expiryCheck,
  Event: responses.serviceEvent,
  EventPage: responses.eventPage,
  WebhookReceived: responses.webhookReceived,
} satisfies Record<string, z.core.$ZodType>;

/** Name of a schema in `components.schemas`. */
type ComponentName = keyof typeof COMPONENTS;

/** A body's schema: a named one, or one written inline (bodies this service does not define). */
type BodySchema = ComponentName | { inline: Json };

/** What the document says about one route besides what the route table and the schemas say. */
interface Operation {
  operationId: string;
  tag: "Offers" | "Orders" | "Credits" | "Portal" | "Webhooks" | "Contract";
  summary: string;
  description?: string;
  /** zod schema of the path parameters (a strict object), as the handler validates them. */
  path?: z.core.$ZodType;
  /** zod schema of the query (a strict object), as the handler validates it. */
  query?: z.core.$ZodType;
  /** The JSON body: its schema and whether it may be left out (an empty body counts as `{}`). */
  body?: { schema: BodySchema; required: boolean };
  /** The handler reads an `Idempotency-Key` (functions/http.ts `idempotencyOf`). */
  idempotent?: boolean;
  /** The success answer. */
  ok: { status: 200 | 201; schema: BodySchema; description: string };
  /** Headers the route requires besides the API key. */
  headers?: Array<{ name: string; description: string }>;
  /** Error codes of this route besides those every route of its kind may answer ({@link commonErrors}). */
  errors?: ErrorCode[];
}

/** Codes of a refused order creation (API.md: 404, 409, 422, 502). */
const ORDER_REFUSALS: ErrorCode[] = [
  "not_found",
  "already_subscribed",
  "offer_locked",
  "quantity_limit_exceeded",
  "currency_not_offered",
  "start_in_past",
  "amount_out_of_range",
  "period_out_of_range",
  "not_renewable",
  "payment_provider_error",
];

/** Codes of a request with an `Idempotency-Key` reused with another body, or still running. */
const IDEMPOTENCY: ErrorCode[] = ["idempotency_conflict", "idempotency_in_progress"];

/** Every route of the route table, described (API.md). */
const OPERATIONS: Record<RouteKey, Operation> = {
  "PUT /offers/{offerId}": {
    operationId: "putOffer",
    tag: "Offers",
    summary: "Create or replace an offer",
    description: "The order copies the offer's terms when it is created: editing an offer never changes orders already placed.",
    path: requests.offerPath,
    body: { schema: "OfferInput", required: true },
    ok: { status: 200, schema: "Offer", description: "The offer as stored." },
  },
  "GET /offers/{offerId}": {
    operationId: "getOffer",
    tag: "Offers",
    summary: "Read an offer",
    path: requests.offerPath,
    ok: { status: 200, schema: "Offer", description: "The offer." },
    errors: ["not_found"],
  },
  "GET /offers": {
    operationId: "listOffers",
    tag: "Offers",
    summary: "The offers a user may see and buy",
    description:
      "Active regular offers plus those unlocked by the user's active grants, with `overridingKey` replacement applied, then the `tags` filter " +
      "(comma-separated; any tag, or all with `allTags=true`). Without `userId`: regular offers only. `all=true`: every offer, inactive and locked included.",
    query: requests.offerQuery,
    ok: { status: 200, schema: "OfferList", description: "The offers." },
  },
  "PUT /offer-groups/{offerGroup}": {
    operationId: "putOfferGroup",
    tag: "Offers",
    summary: "Set an offerGroup's warning settings",
    path: requests.offerGroupPath,
    body: { schema: "OfferGroupInput", required: false },
    ok: { status: 200, schema: "OfferGroupSettings", description: "The settings in effect." },
  },
  "GET /offer-groups/{offerGroup}": {
    operationId: "getOfferGroup",
    tag: "Offers",
    summary: "Read an offerGroup's warning settings",
    path: requests.offerGroupPath,
    ok: { status: 200, schema: "OfferGroupSettings", description: "The settings in effect (defaults when never set)." },
  },
  "POST /users/{userId}/orders": {
    operationId: "createOrder",
    tag: "Orders",
    summary: "Order an offer",
    description:
      "Without `checkout`: a Stripe PaymentIntent (`payment.clientSecret`); with `checkout`: a Stripe Checkout Session (`payment.url`); " +
      "with the manual provider: nothing to collect online. A free order (total 0) is paid at once (`payment: null`).",
    path: requests.userPath,
    body: { schema: "OrderRequest", required: true },
    idempotent: true,
    ok: { status: 201, schema: "OrderWithPayment", description: "The order and how to pay it." },
    errors: [...ORDER_REFUSALS, ...IDEMPOTENCY],
  },
  "GET /users/{userId}/orders": {
    operationId: "listOrders",
    tag: "Orders",
    summary: "A user's orders, newest first",
    path: requests.userPath,
    query: requests.orderListQuery,
    ok: { status: 200, schema: "OrderPage", description: "A page of orders." },
  },
  "GET /users/{userId}/orders/{orderId}": {
    operationId: "getOrder",
    tag: "Orders",
    summary: "Read an order",
    path: requests.userOrderPath,
    ok: { status: 200, schema: "Order", description: "The order." },
    errors: ["not_found"],
  },
  "POST /users/{userId}/orders/{orderId}/confirm": {
    operationId: "confirmOrder",
    tag: "Orders",
    summary: "Mark a manual order paid",
    description: "Only for the `manual` payment provider (bank transfer, invoice, local runs).",
    path: requests.userOrderPath,
    body: { schema: "EmptyBody", required: false },
    ok: { status: 200, schema: "Order", description: "The order, paid." },
    errors: ["not_found", "conflict"],
  },
  "POST /users/{userId}/orders/{orderId}/pay": {
    operationId: "payOrder",
    tag: "Orders",
    summary: "A new payment attempt for an unpaid order",
    description: "The current attempt is read at Stripe first: if it succeeded the order is paid through it (409); otherwise it is cancelled before the new one.",
    path: requests.userOrderPath,
    body: { schema: "EmptyBody", required: false },
    ok: { status: 200, schema: "OrderWithPayment", description: "The order and its new payment." },
    errors: ["not_found", "conflict", "payment_provider_error"],
  },
  "POST /users/{userId}/orders/{orderId}/refund": {
    operationId: "refundOrder",
    tag: "Orders",
    summary: "Refund an order",
    description:
      "Every grant of the order loses its remaining tokens and ends. Money: `unused` returns the unused share, `full` what earlier refunds left.",
    path: requests.userOrderPath,
    body: { schema: "RefundRequest", required: true },
    idempotent: true,
    ok: { status: 200, schema: "Order", description: "The order, refunded." },
    errors: ["not_found", "conflict", "payment_provider_error", ...IDEMPOTENCY],
  },
  "POST /users/{userId}/orders/{orderId}/sync": {
    operationId: "syncOrder",
    tag: "Orders",
    summary: "Read the order's payment attempts back from Stripe and apply them",
    path: requests.userOrderPath,
    body: { schema: "EmptyBody", required: false },
    ok: { status: 200, schema: "Order", description: "The order as it is afterwards." },
    errors: ["not_found", "conflict", "payment_provider_error"],
  },
  "DELETE /users/{userId}/subscriptions/{offerId}": {
    operationId: "cancelSubscription",
    tag: "Orders",
    summary: "Cancel a renewing subscription",
    description: "At Stripe: at the end of the paid period by default (it renews no more; the period keeps its tokens), or at once with `atPeriodEnd: false`.",
    path: requests.userOfferPath,
    body: { schema: "CancelSubscriptionRequest", required: false },
    ok: { status: 200, schema: "Renewal", description: "The subscription as Stripe left it." },
    errors: ["not_found", "payment_provider_error"],
  },
  "POST /users/{userId}/payment-methods/setup": {
    operationId: "setupPaymentMethod",
    tag: "Orders",
    summary: "Save a card for off-session payments",
    description: "The user's Stripe Customer is made on first need. Without `checkout`: a SetupIntent (usage `off_session`) whose client secret the app confirms with Stripe.js; with it: a Checkout Session in setup mode. The card is saved when `setup_intent.succeeded` arrives.",
    path: requests.userPath,
    body: { schema: "PaymentMethodSetupRequest", required: false },
    ok: { status: 201, schema: "PaymentMethodSetup", description: "How the buyer saves the card." },
    errors: ["not_renewable", "payment_provider_error"],
  },
  "PUT /users/{userId}/auto-top-up/{offerGroup}": {
    operationId: "putAutoTopUp",
    tag: "Orders",
    summary: "Top the group up automatically when its balance runs low",
    description:
      "When a consumption, hold or commit takes the group's balance from above `threshold` to at or below it, the service (from the event, not in that request) orders `offerId` and pays it off-session with the saved card (POST /users/{userId}/payment-methods/setup): once per crossing, at most `maxPerMonth` (default 10) per calendar month (UTC). Events `top_up.succeeded` / `top_up.failed`. `enabled: false` keeps the setting and stops requesting.",
    path: requests.userGroupPath,
    body: { schema: "AutoTopUpRequest", required: true },
    ok: { status: 200, schema: "AutoTopUp", description: "The setting." },
    errors: ["validation_error", "currency_not_offered", "not_renewable"],
  },
  "GET /users/{userId}/auto-top-up/{offerGroup}": {
    operationId: "getAutoTopUp",
    tag: "Orders",
    summary: "Read the group's automatic top-up",
    path: requests.userGroupPath,
    ok: { status: 200, schema: "AutoTopUp", description: "The setting, with the top-ups started this month." },
    errors: ["not_found"],
  },
  "DELETE /users/{userId}/auto-top-up/{offerGroup}": {
    operationId: "deleteAutoTopUp",
    tag: "Orders",
    summary: "Stop topping the group up automatically",
    path: requests.userGroupPath,
    body: { schema: "EmptyBody", required: false },
    ok: { status: 200, schema: "AutoTopUp", description: "The setting as it was, `enabled` false." },
    errors: ["not_found"],
  },
  "POST /users/{userId}/portal-sessions": {
    operationId: "createPortalSession",
    tag: "Portal",
    summary: "Open the customer portal for one user",
    description:
      "A link the app gives its signed-in user: `<API>/portal#token=...`, valid `ttlSeconds` (60..86400, default 3600). The token (HS256, user id, expiry, scope `portal`) rides in the URL fragment, so it reaches no server log; the portal page sends it to the routes under `/portal/api/`, which act for that user only.",
    path: requests.userPath,
    body: { schema: "PortalSessionRequest", required: false },
    ok: { status: 201, schema: "PortalSessionLink", description: "The portal link and when it expires." },
  },
  "GET /portal/api/session": {
    operationId: "portalSession",
    tag: "Portal",
    summary: "Whom the portal token acts for",
    ok: { status: 200, schema: "PortalSession", description: "The session." },
  },
  "GET /portal/api/credits": {
    operationId: "portalCredits",
    tag: "Portal",
    summary: "The session user's balances, grants and subscriptions",
    ok: { status: 200, schema: "Credits", description: "As GET /users/{userId}/credits." },
  },
  "GET /portal/api/offers": {
    operationId: "portalOffers",
    tag: "Portal",
    summary: "The offers the session user may buy",
    description: "The same visibility rules as GET /offers?userId=, with the session's tags.",
    ok: { status: 200, schema: "OfferList", description: "The offers." },
  },
  "GET /portal/api/orders": {
    operationId: "portalOrders",
    tag: "Portal",
    summary: "The session user's orders, newest first",
    query: requests.orderListQuery,
    ok: { status: 200, schema: "OrderPage", description: "A page of orders." },
  },
  "GET /portal/api/orders/{orderId}": {
    operationId: "portalOrder",
    tag: "Portal",
    summary: "One of the session user's orders",
    path: requests.portalOrderPath,
    ok: { status: 200, schema: "Order", description: "The order." },
  },
  "POST /portal/api/orders": {
    operationId: "portalCreateOrder",
    tag: "Portal",
    summary: "Buy an offer for the session user",
    description: "Under Stripe, a Checkout Session that comes back to the portal; under the manual provider, a pending order awaiting the operator's confirmation.",
    body: { schema: "PortalOrderRequest", required: true },
    ok: { status: 201, schema: "OrderWithPayment", description: "The order and how to pay it." },
    errors: ORDER_REFUSALS,
  },
  "GET /portal/api/ledger": {
    operationId: "portalLedger",
    tag: "Portal",
    summary: "The session user's ledger, newest first",
    query: requests.ledgerQuery,
    ok: { status: 200, schema: "LedgerPage", description: "A page of ledger entries." },
  },
  "GET /portal/api/subscriptions/{offerId}": {
    operationId: "portalSubscription",
    tag: "Portal",
    summary: "Whether the session user holds the offer",
    path: requests.portalOfferPath,
    ok: { status: 200, schema: "SubscriptionCheck", description: "As GET /users/{userId}/subscriptions/{offerId}." },
  },
  "DELETE /portal/api/subscriptions/{offerId}": {
    operationId: "portalCancelSubscription",
    tag: "Portal",
    summary: "Cancel the session user's renewing subscription",
    description: "At the end of the paid period by default, or at once with `atPeriodEnd: false`.",
    path: requests.portalOfferPath,
    body: { schema: "CancelSubscriptionRequest", required: false },
    ok: { status: 200, schema: "Renewal", description: "The subscription as Stripe left it." },
    errors: ["not_renewable", "payment_provider_error"],
  },
  "POST /users/{userId}/consumptions": {
    operationId: "consume",
    tag: "Credits",
    summary: "Spend tokens",
    description:
      "Drawn from the group's active grants, the one that expires first first. Balance too low: 402, nothing recorded; " +
      "with `allowOverdraft` the uncovered part becomes the group's debt.",
    path: requests.userPath,
    body: { schema: "ConsumptionRequest", required: true },
    idempotent: true,
    ok: { status: 201, schema: "ConsumptionResult", description: "The ledger entry and the balance after it." },
    errors: ["insufficient_credits", ...IDEMPOTENCY],
  },
  "POST /users/{userId}/consumptions/{entryId}/reverse": {
    operationId: "reverseConsumption",
    tag: "Credits",
    summary: "Give back all or part of a consumption (the call it paid for failed)",
    description:
      "Ledger `reverse` entry: the part that went into debt is reversed first, as debt; the rest goes back to the grants the entry drew from, " +
      "the latest drawn first (a grant past its expiry loses them at once, `expire`; a refunded or disputed order's grant gets none). " +
      "`tokens` left out: all that is left. The sum reversed never exceeds what the entry consumed (409 `conflict`, `details.left`).",
    path: requests.userEntryPath,
    body: { schema: "ReversalRequest", required: false },
    idempotent: true,
    ok: { status: 201, schema: "ReversalResult", description: "The `reverse` entry and the balance after it." },
    errors: ["not_found", "conflict", ...IDEMPOTENCY],
  },
  "POST /users/{userId}/reservations": {
    operationId: "hold",
    tag: "Credits",
    summary: "Hold tokens for work whose cost is known at its end",
    description:
      "Drawn at once from the group's grants in drain order (ledger `hold`): nobody else can spend them and `balance` no longer counts them " +
      "(`held` does) until the reservation is committed, released, or expires (`ttlSeconds`, default 300). Balance too low: 402, nothing held.",
    path: requests.userPath,
    body: { schema: "HoldRequest", required: true },
    idempotent: true,
    ok: { status: 201, schema: "Reservation", description: "The reservation, status `held`." },
    errors: ["insufficient_credits", "conflict", ...IDEMPOTENCY],
  },
  "POST /users/{userId}/reservations/{reservationId}/commit": {
    operationId: "commitReservation",
    tag: "Credits",
    summary: "Spend what the held work used",
    description:
      "One transaction: the whole hold goes back (ledger `release`) and `tokens` are consumed (ledger `consume` with `reservationId`), " +
      "drawn first from the hold's own grants. More than held: the extra is drawn like a consumption (402 without `allowOverdraft`, the hold stays). " +
      "Past its expiry: 409 `reservation_expired`; committed or released already: 409 `conflict` (or the stored answer under the same key).",
    path: requests.userReservationPath,
    body: { schema: "CommitRequest", required: true },
    idempotent: true,
    ok: { status: 200, schema: "CommitResult", description: "The reservation (`committed`), the `consume` entry and the balance after it." },
    errors: ["not_found", "conflict", "reservation_expired", "insufficient_credits", ...IDEMPOTENCY],
  },
  "POST /users/{userId}/reservations/{reservationId}/release": {
    operationId: "releaseReservation",
    tag: "Credits",
    summary: "Give held tokens back (the work failed or was cancelled)",
    description: "All held tokens go back to their grants (ledger `release`). Releasing again answers 200 again; releasing a committed reservation: 409.",
    path: requests.userReservationPath,
    body: { schema: "EmptyBody", required: false },
    idempotent: true,
    ok: { status: 200, schema: "Reservation", description: "The reservation, `released` (or `expired` when it had expired)." },
    errors: ["not_found", "conflict", ...IDEMPOTENCY],
  },
  "GET /users/{userId}/reservations": {
    operationId: "listReservations",
    tag: "Credits",
    summary: "A user's reservations, oldest first",
    description: "A hold past its expiry is listed `held` until a request touching its group, or the daily job, releases it.",
    path: requests.userPath,
    query: requests.reservationListQuery,
    ok: { status: 200, schema: "ReservationPage", description: "A page of reservations." },
  },
  "GET /users/{userId}/credits": {
    operationId: "getCredits",
    tag: "Credits",
    summary: "What a user holds now",
    path: requests.userPath,
    ok: { status: 200, schema: "Credits", description: "Balances per offerGroup, their grants, and running subscriptions." },
  },
  "GET /users/{userId}/ledger": {
    operationId: "listLedger",
    tag: "Credits",
    summary: "A user's token movements, oldest first",
    description: "`from` inclusive, `to` exclusive.",
    path: requests.userPath,
    query: requests.ledgerQuery,
    ok: { status: 200, schema: "LedgerPage", description: "A page of ledger entries." },
  },
  "GET /users/{userId}/subscriptions/{offerId}": {
    operationId: "checkSubscription",
    tag: "Credits",
    summary: "Whether the user holds an active grant from a paid order of the offer",
    path: requests.userOfferPath,
    ok: { status: 200, schema: "SubscriptionCheck", description: "Subscribed or not, and the current period's order." },
  },
  "POST /users/{userId}/grants": {
    operationId: "createGrant",
    tag: "Credits",
    summary: "Give tokens without an order (trials, support)",
    path: requests.userPath,
    body: { schema: "GrantRequest", required: true },
    ok: { status: 201, schema: "Grant", description: "The grant (ledger `adjust`)." },
  },
  "GET /users/{userId}/events": {
    operationId: "listEvents",
    tag: "Credits",
    summary: "The events published about a user, oldest first",
    path: requests.userPath,
    query: requests.eventListQuery,
    ok: { status: 200, schema: "EventPage", description: "A page of events." },
  },
  "POST /users/{userId}/expiry-check": {
    operationId: "checkExpiry",
    tag: "Credits",
    summary: "Expire what is due and list the warnings that hold now",
    path: requests.userPath,
    body: { schema: "ExpiryCheckRequest", required: false },
    ok: { status: 200, schema: "ExpiryCheck", description: "The grants expired by this call and the warnings." },
  },
  "POST /webhooks/stripe": {
    operationId: "stripeWebhook",
    tag: "Webhooks",
    summary: "Stripe webhook endpoint",
    description: "A Stripe Event, signed (`Stripe-Signature`, verified on the raw body); no API key. 5xx when applying it failed for a transient reason, so that Stripe delivers it again.",
    headers: [{ name: "Stripe-Signature", description: "Stripe's signature of the raw body." }],
    body: { schema: { inline: { type: "object", description: "A Stripe Event (https://docs.stripe.com/api/events/object)." } }, required: true },
    ok: { status: 200, schema: "WebhookReceived", description: "Applied, or deliberately ignored." },
    errors: ["invalid_signature"],
  },
  "GET /openapi.json": {
    operationId: "getOpenApiDocument",
    tag: "Contract",
    summary: "This OpenAPI 3.1 document",
    description: "Generated from the schemas that validate the requests. No API key.",
    ok: { status: 200, schema: { inline: { type: "object", description: "An OpenAPI 3.1 document." } }, description: "The document." },
  },
};

/** Error codes a route may answer whatever it does: validation, key, route, size, media type, server. */
function commonErrors(route: RouteKey, operation: Operation): ErrorCode[] {
  if (route === "GET /openapi.json") return ["internal_error"];
  const body: ErrorCode[] = operation.body ? ["payload_too_large", "unsupported_media_type"] : [];
  if (route === "POST /webhooks/stripe") return [...body, "internal_error", "service_unavailable"];
  return ["validation_error", "unauthorized", "not_found", ...body, "internal_error", "service_unavailable"];
}

/** A JSON Schema from zod (draft 2020-12, the request side), without `$schema` (the document's dialect applies). */
function jsonSchema(schema: z.core.$ZodType): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input" }) as Json;
  return rest;
}

/** `components.schemas`: each named schema, referring to the others by `$ref`. */
function componentSchemas(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { target: "draft-2020-12", io: "input", uri: (id) => `${SCHEMAS}${id}` });
  // Each comes with its own `$schema` and a fragment-only `$id`; inside the document it needs neither.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...rest }]) => [id, rest as Json]));
}

/** What each parameter means (API.md), where its schema has no description of its own. */
const PARAMETER_NOTES: Record<"path" | "query", Record<string, string>> = {
  path: {
    userId: "The customer's own user id (1-128 printable characters), percent-encoded.",
    offerId: "An offer id chosen by the operator.",
    offerGroup: "An offerGroup chosen by the operator.",
    orderId: "An order id (ULID).",
    reservationId: "A reservation id (ULID), as the hold answered it.",
    entryId: "A ledger entry id (ULID): a `consume` entry.",
  },
  query: {
    userId: "List the offers this user may see and buy (regular ones plus those their grants unlock); without it, regular offers only.",
    tags: "Comma-separated tags: offers with any of them (all of them with `allTags=true`); empty filters nothing.",
    allTags: "`true`: offers must carry every tag of `tags`.",
    all: "`true`: every offer, inactive and locked included (catalog administration).",
    currency: "Only offers with a price in this currency.",
    offerGroup: "Only this offerGroup's entries (or reservations).",
    status: "Only reservations with this status.",
    from: "Entries created at or after this instant.",
    to: "Entries created before this instant.",
    limit: "Page size, 1-1000 (default 100).",
    cursor: "The `cursor` of the previous page.",
  },
};

/** The parameters (`in` path or query) described by a strict zod object. */
function parameters(where: "path" | "query", schema: z.core.$ZodType | undefined): Json[] {
  if (!schema) return [];
  const object = jsonSchema(schema) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property as Json & { description?: string };
    const note = description ?? PARAMETER_NOTES[where][name];
    return {
      name,
      in: where,
      required: where === "path" || (object.required ?? []).includes(name),
      ...(note ? { description: note } : {}),
      schema: rest,
    };
  });
}

/** `{ $ref }` to a named schema. */
const ref = (name: ComponentName) => ({ $ref: `${SCHEMAS}${name}` });

/** The schema object of a body: a `$ref`, or the inline schema. */
const bodySchema = (schema: BodySchema) => (typeof schema === "string" ? ref(schema) : schema.inline);

/** The error responses of a route: one per status, naming the codes it may carry. */
function errorResponses(codes: ErrorCode[]): Record<string, Json> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) byStatus.set(STATUS_OF[code], [...(byStatus.get(STATUS_OF[code]) ?? []), code]);
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, list]) => [
        String(status),
        { description: list.map((code) => `\`${code}\``).join(", "), content: { "application/json": { schema: ref("Error") } } },
      ]),
  );
}

/** The OpenAPI operation object of `route`. */
function operationObject(route: RouteKey, operation: Operation): Json {
  const params: Json[] = [
    ...parameters("path", operation.path),
    ...parameters("query", operation.query),
    ...(operation.idempotent ? [{ $ref: "#/components/parameters/IdempotencyKey" }] : []),
    ...(operation.headers ?? []).map(({ name, description }) => ({ name, in: "header", required: true, description, schema: { type: "string" } })),
  ];
  const json = (schema: BodySchema) => ({ "application/json": { schema: bodySchema(schema) } });
  return {
    operationId: operation.operationId,
    tags: [operation.tag],
    summary: operation.summary,
    ...(operation.description ? { description: operation.description } : {}),
    ...(UNAUTHENTICATED_ROUTES.includes(route) ? { security: [] } : PORTAL_ROUTES.includes(route) ? { security: [{ portalToken: [] }] } : {}),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(operation.body ? { requestBody: { required: operation.body.required, content: json(operation.body.schema) } } : {}),
    responses: {
      [String(operation.ok.status)]: { description: operation.ok.description, content: json(operation.ok.schema) },
      ...errorResponses([...commonErrors(route, operation), ...(operation.errors ?? [])]),
    },
  };
}

/** The document's `paths`: one path item per path template, one operation per route. */
function paths(): Record<string, Record<string, Json>> {
  const items: Record<string, Record<string, Json>> = {};
  for (const { route } of ROUTES) {
    const [method, path] = route.split(" ") as [string, string];
    (items[path] ??= {})[method.toLowerCase()] = operationObject(route, OPERATIONS[route]);
  }
  return items;
}

/** Builds the document (see the module comment). Pure; the result is a plain JSON object. */
function buildDocument(): Json {
  return {
    openapi: "3.1.0",
    info: {
      title: "user-credits",
      version: "1",
      description:
        "Pay-as-you-go credits: offers, Stripe payments, real-time token consumption, expiry. JSON in and out; money as " +
        "`{ amount, currency }` in minor units; dates ISO 8601 UTC; lists take `limit` and `cursor` and return `cursor: null` on the last page.",
    },
    tags: [
      { name: "Offers", description: "The catalog and per-group settings." },
      { name: "Orders", description: "Orders and their payment." },
      { name: "Credits", description: "Balances, consumption, ledger, grants, events." },
      { name: "Portal", description: "The customer portal: sessions minted with the API key, then routes that take the session's token and act for its user only." },
      { name: "Webhooks", description: "Deliveries from Stripe." },
      { name: "Contract", description: "This document." },
    ],
    security: [{ apiKey: [] }],
    paths: paths(),
    components: {
      schemas: componentSchemas(),
      parameters: {
        IdempotencyKey: {
          name: "Idempotency-Key",
          in: "header",
          required: false,
          description:
            "1-255 characters, scoped to the user and the route (Stripe's semantics): a repeat with the same body returns the stored status and body and changes nothing; " +
            "another body: 409 `idempotency_conflict`; while the first is running: 409 `idempotency_in_progress`. Kept at least 24 hours.",
          schema: { type: "string", minLength: 1, maxLength: 255 },
        },
      },
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <API key>`; several keys may be valid at once (rotation)." },
        portalToken: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "`Authorization: Bearer <portal token>`: the token of a portal session (`POST /users/{userId}/portal-sessions`), for the routes under `/portal/api/` only.",
        },
      },
    },
  };
}

let built: Json | undefined;

/**
 * The OpenAPI 3.1 document of the HTTP API, built on first use and kept (it depends on
 * code only). Callers must not modify it.
 */
export function openApiDocument(): Json {
  built ??= buildDocument();
  return built;
}
