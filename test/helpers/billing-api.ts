/**
 * The HTTP API in process against the Stripe stand-in, for the billing tests (renewing
 * subscriptions, refunds per period, automatic top-ups; issue 13): a table of the test
 * file's own, one manual clock (which the stand-in's clock can follow, as Stripe's test
 * clocks do), the runtime built with the real `stripe` SDK pointed at the stand-in, the
 * HTTP handlers imported after it (the portal's with its signing secret), the catalog put through `PUT /offers`, and the ledger
 * invariants checked after each test.
 */
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { ManualClock } from "../../core/clock.js";
import type { EventBus } from "../../core/events.js";
import type { HttpFunctionName } from "../../functions/routes.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { createTestDb } from "./db.js";
import { invoke, type ApiRequest, type ApiResponse } from "./gateway.js";
import { invariantViolations } from "./invariants.js";
import { signedDelivery, StripeStandIn } from "./stripe-stand-in.js";

type Json = Record<string, any>;

/** The portal signing secret of the billing tests' runtime (core/portal-sessions.ts). */
export const PORTAL_SIGNING_SECRET = "billing-api-portal-signing-secret-0123456789";
type Handler = (event: never, context: never) => Promise<unknown>;

/** What a billing test file drives. */
export interface BillingApi {
  /** The service's clock (set it, and `stripe.now`, to move time). */
  readonly clock: ManualClock;
  readonly stripe: StripeStandIn;
  /** The test file's table (its client counts requests: `table.requests`). */
  readonly table: Awaited<ReturnType<typeof createTestDb>>;
  /** One request to function `fn`, with the API key. */
  call(fn: HttpFunctionName, method: string, path: string, body?: object, headers?: Record<string, string>): Promise<ApiResponse>;
  /** Posts `event` to the webhook as Stripe does: signed over the raw body, at the service's time. */
  deliver(event: Json): Promise<ApiResponse>;
  /** One request to function `fn` exactly as given (no API key added). */
  send(fn: HttpFunctionName, request: ApiRequest): Promise<ApiResponse>;
}

/**
 * Sets the API up for the calling test file (vitest hooks).
 * @param options.label the table's label; also names the API key and webhook secret
 * @param options.start the clock's first instant (ISO 8601)
 * @param options.offers the catalog, by offer id (`PUT /offers/{offerId}` bodies)
 * @param options.bus the event bus the runtime publishes to (read once the hooks before this one ran)
 */
export function useBillingApi(options: { label: string; start: string; offers: Record<string, Json>; bus?: () => EventBus }): BillingApi {
  const key = `key-${options.label}-0123456789`;
  const webhookSecret = `whsec_${options.label}_secret`;
  const clock = new ManualClock(options.start);
  const stripe = new StripeStandIn();
  const handlers = {} as Record<HttpFunctionName, Handler>;
  let table: Awaited<ReturnType<typeof createTestDb>> | undefined;

  const call = (fn: HttpFunctionName, method: string, path: string, body?: object, headers: Record<string, string> = {}) => {
    const request: ApiRequest = { method, path, headers: { authorization: `Bearer ${key}`, ...headers }, ...(body ? { body } : {}) };
    return invoke(handlers[fn] as never, request);
  };
  const deliver = (event: Json) => {
    const { body, signature } = signedDelivery(event, webhookSecret, Math.floor(clock.now().getTime() / 1000));
    return invoke(handlers.webhook as never, { method: "POST", path: "/webhooks/stripe", headers: { "stripe-signature": signature, "content-type": "application/json" }, body });
  };

  beforeAll(async () => {
    await stripe.start();
    table = await createTestDb(options.label);
    const runtime = buildRuntime(
      {
        apiKeys: [key],
        stripeSecretKey: `sk_test_${options.label}`,
        stripeApiUrl: stripe.url,
        stripeWebhookSecret: webhookSecret,
        portalSigningSecret: PORTAL_SIGNING_SECRET,
        defaultCurrency: "usd",
        tableName: table.tableName,
        dynamoEndpoint: table.endpoint,
      },
      clock,
      table.client,
    );
    setRuntime(options.bus ? { ...runtime, bus: options.bus() } : runtime);
    handlers.offers = (await import("../../functions/offers.js")).handler as never;
    handlers.orders = (await import("../../functions/orders.js")).handler as never;
    handlers.consumption = (await import("../../functions/consumption.js")).handler as never;
    handlers.credits = (await import("../../functions/credits.js")).handler as never;
    handlers.webhook = (await import("../../functions/webhook.js")).handler as never;
    handlers.portal = (await import("../../functions/portal.js")).handler as never;
    for (const [offerId, body] of Object.entries(options.offers)) expect((await call("offers", "PUT", `/offers/${offerId}`, body)).status, offerId).toBe(200);
  });
  afterAll(async () => {
    setRuntime(undefined);
    await stripe.stop();
  });
  afterEach(async () => {
    if (table) expect(await invariantViolations(table.client, table.tableName)).toEqual([]);
  });

  return {
    clock,
    stripe,
    get table() {
      if (!table) throw new Error("the billing API is not set up yet (beforeAll)");
      return table;
    },
    call,
    deliver,
    send: (fn, request) => invoke(handlers[fn] as never, request),
  };
}
