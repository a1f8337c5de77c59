/**
 * A small local stand-in for the Stripe endpoints this service calls, for the real
 * `stripe` SDK pointed at it through `STRIPE_API_URL`:
 *   POST /v1/payment_intents, GET /v1/payment_intents/:id,
 *   POST /v1/payment_intents/:id/cancel, POST /v1/checkout/sessions,
 *   GET /v1/checkout/sessions/:id, POST /v1/checkout/sessions/:id/expire,
 *   POST /v1/refunds, GET /v1/refunds/:id, GET /v1/refunds?charge=|payment_intent=,
 *   GET /v1/charges/:id, GET /v1/disputes/:id, GET /v1/disputes?payment_intent=.
 * Billing (API version 2026-10-28.endive):
 *   POST|GET /v1/customers(/:id), GET /v1/customers/:id/payment_methods,
 *   POST /v1/products, GET /v1/products/:id, POST /v1/prices, GET /v1/prices(/:id),
 *   POST|GET /v1/subscriptions, GET|POST|DELETE /v1/subscriptions/:id,
 *   GET /v1/invoices(/:id), GET /v1/invoice_payments(/:id),
 *   POST /v1/setup_intents, GET /v1/setup_intents/:id, GET /v1/payment_methods/:id,
 *   POST /v1/payment_intents with `confirm=true` (off-session payments with a saved card),
 *   POST /v1/payment_intents/:id/confirm (`off_session=true`, a saved card: automatic top-ups),
 *   POST /v1/checkout/sessions with `mode=subscription` or `mode=setup`.
 * Objects are Stripe's own example objects (test/fixtures/stripe-objects.json) with the
 * request's values laid over them. Idempotency keys behave as Stripe documents: the
 * same key and parameters replay the first response; other parameters -> 400
 * `idempotency_error`. Tests drive payments (`succeed`, `fail`, `completeSession`),
 * what happens in the dashboard or at the card network (`dashboardRefund`,
 * `openDispute`, `closeDispute`, `failRefund`), inject failures (`failNext`), read the
 * request log, and build signed webhook events. Billing drivers move time as Stripe's
 * test clocks do: `now` (the stand-in's clock) dates what it creates, `renew` starts a
 * subscription's next period, `retryInvoice` is a Smart Retry, and `payFirstInvoice`,
 * `completeSubscriptionSession`, `completeSetupSession`, `confirmSetupIntent`,
 * `declineCard`/`acceptCard` stand for what the buyer and the card do.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { parse } from "qs";
// UTC calendar math as core/rules/cycles.ts does it (end-of-month clamping: Jan 31 + 1 month = Feb 28).
import { UTCDateMini as UTCDate } from "@date-fns/utc/date/mini";
import { addDays, addMonths, addYears } from "date-fns";
import Stripe from "stripe";
import objects from "../fixtures/stripe-objects.json" with { type: "json" };

type Json = Record<string, unknown>;

/** One request the stand-in received. */
export interface StandInRequest {
  method: string;
  path: string;
  params: Json;
  idempotencyKey?: string;
  stripeVersion?: string;
}

const clone = <T>(value: T): T => structuredClone(value);
const id = (prefix: string) => `${prefix}_${randomBytes(12).toString("hex")}`;

/** How a renewal or a retried invoice ends: its PaymentIntent succeeds, or the card declines. */
export type InvoiceOutcome = "paid" | "failed";

/**
 * How a card answers off-session payments after `declineCard` (Stripe docs, "Error codes"
 * and "Decline codes"): `code` is the error's `code` (`card_declined`,
 * `authentication_required`, `expired_card`, ...), `declineCode` its `decline_code`
 * (default `authentication_required` for that code, `generic_decline` otherwise).
 */
export interface CardDecline {
  code: string;
  declineCode?: string;
  /** The error's message; default "Your card was declined." */
  message?: string;
}

/** What a billing driver returns: the objects its webhook events carry (`customer.subscription.*`, `invoice.*`, `payment_intent.*`). */
export interface BillingStep {
  subscription: Json;
  invoice: Json;
  paymentIntent: Json;
}

type Reply = { status: number; body: Json };

/** A Stripe error answer (`{ error }` with its HTTP status), thrown inside the billing routes. */
class StripeErrorReply extends Error {
  constructor(
    readonly status: number,
    readonly error: Json,
  ) {
    super(String(error.message));
  }
}

const invalidRequest = (message: string, extra: Json = {}) => new StripeErrorReply(400, { type: "invalid_request_error", message, ...extra });

/** Stripe's "No such ..." answer: 404 for the object in the URL, 400 for one named by a parameter. */
const noSuch = (what: string, value: string, param = "id") =>
  new StripeErrorReply(param === "id" ? 404 : 400, { type: "invalid_request_error", code: "resource_missing", message: `No such ${what}: '${value}'`, param });

/** Days before the next Smart Retry of a failed invoice (`next_payment_attempt`; the stand-in's choice, Stripe's schedule is configurable). */
const RETRY_AFTER_SECONDS = 24 * 60 * 60;

/**
 * The boundary `n` periods after the billing cycle anchor, in Unix seconds: period n of a
 * subscription runs from boundary(n) to boundary(n + 1), always counted from the anchor,
 * so a monthly subscription anchored on Jan 31 renews Feb 28 (29), Mar 31, Apr 30 (Stripe
 * docs, "Set the subscription billing renewal date").
 */
function periodBoundary(anchor: number, interval: string, count: number, n: number): number {
  const from = new UTCDate(anchor * 1000);
  const steps = count * n;
  let to: Date;
  switch (interval) {
    case "day":
      to = addDays(from, steps);
      break;
    case "week":
      to = addDays(from, 7 * steps);
      break;
    case "month":
      to = addMonths(from, steps);
      break;
    case "year":
      to = addYears(from, steps);
      break;
    default:
      throw new Error(`unknown recurring interval ${interval}`);
  }
  return Math.floor(to.getTime() / 1000);
}

/** `metadata` laid over `current` as Stripe updates it: an empty value unsets a key, an empty `metadata` unsets all. */
function mergeMetadata(current: unknown, update: unknown): Json {
  if (update === undefined) return (current as Json | undefined) ?? {};
  if (update === "") return {};
  const merged: Json = { ...((current as Json | undefined) ?? {}) };
  for (const [key, value] of Object.entries(update as Json)) {
    if (value === "") delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** The `expand[]` paths of a request. */
const expandPaths = (params: Json): string[] => ([] as unknown[]).concat(params.expand ?? []).map(String);

/** A Stripe list object; `limit` as Stripe pages (default 10, at most 100), newest first. */
function listOf(url: string, data: Json[], params: Json = {}): Json {
  const limit = Math.min(Math.max(Number(params.limit ?? 10) || 10, 1), 100);
  return { object: "list", data: data.slice(0, limit), has_more: data.length > limit, url };
}

/** A running stand-in. */
export class StripeStandIn {
  readonly paymentIntents = new Map<string, Json>();
  readonly checkoutSessions = new Map<string, Json>();
  readonly charges = new Map<string, Json>();
  readonly refunds = new Map<string, Json>();
  readonly disputes = new Map<string, Json>();
  readonly customers = new Map<string, Json>();
  readonly products = new Map<string, Json>();
  readonly prices = new Map<string, Json>();
  readonly subscriptions = new Map<string, Json>();
  readonly invoices = new Map<string, Json>();
  readonly invoicePayments = new Map<string, Json>();
  readonly setupIntents = new Map<string, Json>();
  readonly paymentMethods = new Map<string, Json>();
  readonly requests: StandInRequest[] = [];
  /** Billing cycle per subscription: its anchor (Unix seconds), interval and the current period's index. */
  private readonly cycles = new Map<string, { anchor: number; interval: string; count: number; period: number }>();
  /** What a subscription-mode Checkout Session sells, until the buyer pays it. */
  private readonly sessionPlans = new Map<string, { items: Json[]; metadata: Json }>();
  /** Cards that decline off-session payments (`declineCard`). */
  private readonly declines = new Map<string, CardDecline>();
  private clock: Date | undefined;
  private readonly idempotency = new Map<string, { hash: string; status: number; body: Json }>();
  private failures: Array<{ status: number; type: string; message: string; code?: string } | null> = [];
  private delays: number[] = [];
  private server?: Server;
  url = "";

  /**
   * The stand-in's clock: what it creates is dated by it (`created`, periods, `paid_at`).
   * Real time unless a test sets it; `renew` and `retryInvoice` move it forward to the
   * moment Stripe would act, as Stripe's test clocks advance time.
   */
  get now(): Date {
    return new Date(this.clock?.getTime() ?? Date.now());
  }

  set now(value: Date) {
    this.clock = new Date(value.getTime());
  }

  /** The clock in Unix seconds. */
  private seconds(): number {
    return Math.floor(this.now.getTime() / 1000);
  }

  /** Starts listening on 127.0.0.1 (a free port). */
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        // The SDK sends GET and DELETE parameters in the query string, others in the form body.
        const inQuery = req.method === "GET" || req.method === "DELETE";
        const params = parse(inQuery ? url.search.replace(/^\?/, "") : Buffer.concat(chunks).toString("utf8")) as Json;
        const idempotencyKey = req.headers["idempotency-key"] as string | undefined;
        this.requests.push({
          method: req.method ?? "GET",
          path: url.pathname,
          params,
          ...(idempotencyKey ? { idempotencyKey } : {}),
          ...(req.headers["stripe-version"] ? { stripeVersion: String(req.headers["stripe-version"]) } : {}),
        });
        const { status, body, replayed } = this.respond(req.method ?? "GET", url.pathname, params, idempotencyKey);
        const delay = this.delays.shift() ?? 0;
        if (delay > 0) {
          setTimeout(() => {
            if (!res.destroyed) {
              res.writeHead(status, { "content-type": "application/json" });
              res.end(JSON.stringify(body));
            }
          }, delay);
          return;
        }
        res.writeHead(status, {
          "content-type": "application/json",
          "request-id": id("req"),
          ...(replayed ? { "idempotent-replayed": "true" } : {}),
          ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}),
        });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    return this;
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next `count` requests (after `skip` that go through) fail with this error (e.g. 500 api_error, 402 card_error). */
  failNext(count: number, error: { status: number; type: string; message: string; code?: string } = { status: 500, type: "api_error", message: "stand-in failure" }, skip = 0): void {
    for (let i = 0; i < skip; i++) this.failures.push(null);
    for (let i = 0; i < count; i++) this.failures.push(error);
  }

  /** The next `count` responses are sent only after `ms` milliseconds (the request still takes effect at once). */
  delayNext(count: number, ms: number): void {
    for (let i = 0; i < count; i++) this.delays.push(ms);
  }

  /** Requests for `path` (and method), e.g. `requestsTo("POST", "/v1/payment_intents")`. */
  requestsTo(method: string, path: string): StandInRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  /** Marks a PaymentIntent succeeded, as Stripe does when the buyer pays; returns it. */
  succeed(paymentIntentId: string, overrides: { amountReceived?: number; currency?: string } = {}): Json {
    const intent = this.intent(paymentIntentId);
    intent.status = "succeeded";
    intent.amount_received = overrides.amountReceived ?? intent.amount;
    if (overrides.currency) intent.currency = overrides.currency;
    const charge = clone(objects.charge) as Json;
    Object.assign(charge, {
      id: id("ch"),
      amount: intent.amount_received,
      amount_captured: intent.amount_received,
      amount_refunded: 0,
      captured: true,
      paid: true,
      refunded: false,
      disputed: false,
      currency: intent.currency,
      payment_intent: paymentIntentId,
      metadata: clone(intent.metadata),
      status: "succeeded",
      created: this.seconds(),
      livemode: false,
    });
    this.charges.set(charge.id as string, charge);
    intent.latest_charge = charge.id;
    intent.last_payment_error = null;
    intent.next_action = null;
    return clone(intent);
  }

  /** The buyer pays a Checkout Session: its PaymentIntent succeeds, the session completes; returns the session. */
  completeSession(sessionId: string): Json {
    const session = this.session(sessionId);
    this.succeed(session.payment_intent as string);
    Object.assign(session, { status: "complete", payment_status: "paid" });
    return clone(session);
  }

  /** The Checkout Session as stored. */
  session(sessionId: string): Json {
    const session = this.checkoutSessions.get(sessionId);
    if (!session) throw new Error(`no Checkout Session ${sessionId}`);
    return session;
  }

  /** The charge of a succeeded PaymentIntent, as stored. */
  chargeOf(paymentIntentId: string): Json {
    const chargeId = this.intent(paymentIntentId).latest_charge as string | null;
    const charge = chargeId ? this.charges.get(chargeId) : undefined;
    if (!charge) throw new Error(`PaymentIntent ${paymentIntentId} has no charge`);
    return charge;
  }

  /**
   * A refund made in the Stripe dashboard (no metadata of ours): the charge's
   * `amount_refunded` grows; returns the charge, as a `charge.refunded` event carries it.
   */
  dashboardRefund(paymentIntentId: string, amount?: number): Json {
    const charge = this.chargeOf(paymentIntentId);
    const result = this.createRefund({ payment_intent: paymentIntentId, ...(amount !== undefined ? { amount: String(amount) } : {}) });
    if (result.status !== 200) throw new Error(`refund refused: ${JSON.stringify(result.body)}`);
    return clone(charge);
  }

  /** Stripe could not pay a refund out (`refund.failed`); returns the refund. */
  failRefund(refundId: string, reason = "expired_or_canceled_card"): Json {
    const refund = this.refunds.get(refundId);
    if (!refund) throw new Error(`no refund ${refundId}`);
    Object.assign(refund, { status: "failed", failure_reason: reason });
    return clone(refund);
  }

  /** The card network opens a dispute on the PaymentIntent's charge; returns the dispute. */
  openDispute(paymentIntentId: string, amount?: number): Json {
    const charge = this.chargeOf(paymentIntentId);
    const dispute = clone(objects.dispute) as Json;
    Object.assign(dispute, {
      id: id("dp"),
      amount: amount ?? charge.amount,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: paymentIntentId,
      status: "needs_response",
      created: this.seconds(),
      livemode: false,
    });
    charge.disputed = true;
    this.disputes.set(dispute.id as string, dispute);
    return clone(dispute);
  }

  /** The dispute ends (`won`, `lost`, `warning_closed`, ...); returns it. */
  closeDispute(disputeId: string, status: string): Json {
    const dispute = this.disputes.get(disputeId);
    if (!dispute) throw new Error(`no dispute ${disputeId}`);
    dispute.status = status;
    return clone(dispute);
  }

  /** Marks a PaymentIntent's attempt failed (card declined); returns it. */
  fail(paymentIntentId: string, message = "Your card was declined."): Json {
    const intent = this.intent(paymentIntentId);
    intent.status = "requires_payment_method";
    intent.last_payment_error = { type: "card_error", code: "card_declined", decline_code: "generic_decline", message };
    return clone(intent);
  }

  /** The PaymentIntent as stored. */
  intent(paymentIntentId: string): Json {
    const intent = this.paymentIntents.get(paymentIntentId);
    if (!intent) throw new Error(`no PaymentIntent ${paymentIntentId}`);
    return intent;
  }

  private respond(method: string, path: string, params: Json, idempotencyKey?: string): { status: number; body: Json; replayed?: boolean } {
    const failure = this.failures.shift();
    if (failure) {
      return { status: failure.status, body: { error: { type: failure.type, message: failure.message, ...(failure.code ? { code: failure.code } : {}) } } };
    }
    if (method === "POST" && idempotencyKey) {
      const hash = createHash("sha256").update(`${path}\n${JSON.stringify(params)}`).digest("hex");
      const seen = this.idempotency.get(idempotencyKey);
      if (seen) {
        if (seen.hash !== hash) {
          return {
            status: 400,
            body: { error: { type: "idempotency_error", message: "Keys for idempotent requests can only be used with the same parameters they were first used with." } },
          };
        }
        return { status: seen.status, body: clone(seen.body), replayed: true };
      }
      const fresh = this.route(method, path, params);
      this.idempotency.set(idempotencyKey, { hash, status: fresh.status, body: clone(fresh.body) });
      return fresh;
    }
    return this.route(method, path, params);
  }

  private route(method: string, path: string, params: Json): { status: number; body: Json } {
    const notFound = (what: string) => ({
      status: 404,
      body: { error: { type: "invalid_request_error", code: "resource_missing", message: `No such ${what}` } },
    });
    const billing = this.routeBilling(method, path, params);
    if (billing) return billing;
    if (method === "POST" && path === "/v1/payment_intents") return { status: 200, body: this.createIntent(params) };
    let match = /^\/v1\/payment_intents\/([^/]+)$/.exec(path);
    if (method === "GET" && match) {
      const intent = this.paymentIntents.get(match[1]!);
      if (!intent) return notFound("payment_intent");
      const body = clone(intent);
      // `expand[]=latest_charge`: the charge object in place of its id (Stripe docs, "Expanding responses").
      const expand = ([] as unknown[]).concat(params.expand ?? []);
      if (expand.includes("latest_charge") && typeof intent.latest_charge === "string") body.latest_charge = clone(this.charges.get(intent.latest_charge) ?? null);
      return { status: 200, body };
    }
    match = /^\/v1\/payment_intents\/([^/]+)\/cancel$/.exec(path);
    if (method === "POST" && match) {
      const intent = this.paymentIntents.get(match[1]!);
      if (!intent) return notFound("payment_intent");
      if (intent.status === "succeeded" || intent.status === "canceled") {
        return { status: 400, body: { error: { type: "invalid_request_error", code: "payment_intent_unexpected_state", message: `status ${intent.status}` } } };
      }
      intent.status = "canceled";
      intent.canceled_at = this.seconds();
      intent.cancellation_reason = (params.cancellation_reason as string) ?? "requested_by_customer";
      return { status: 200, body: clone(intent) };
    }
    if (method === "POST" && path === "/v1/checkout/sessions") return { status: 200, body: this.createSession(params) };
    match = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(path);
    if (method === "GET" && match) {
      const session = this.checkoutSessions.get(match[1]!);
      return session ? { status: 200, body: clone(session) } : notFound("checkout.session");
    }
    match = /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/.exec(path);
    if (method === "POST" && match) {
      const session = this.checkoutSessions.get(match[1]!);
      if (!session) return notFound("checkout.session");
      if (session.status !== "open") {
        return { status: 400, body: { error: { type: "invalid_request_error", message: `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status}".` } } };
      }
      Object.assign(session, { status: "expired", url: null });
      const intent = this.paymentIntents.get(session.payment_intent as string);
      if (intent && intent.status !== "succeeded") Object.assign(intent, { status: "canceled", cancellation_reason: "abandoned" });
      return { status: 200, body: clone(session) };
    }
    if (method === "POST" && path === "/v1/refunds") return this.createRefund(params);
    if (method === "GET" && path === "/v1/refunds") {
      const data = [...this.refunds.values()]
        .filter((refund) => (!params.charge || refund.charge === params.charge) && (!params.payment_intent || refund.payment_intent === params.payment_intent))
        .reverse();
      return { status: 200, body: { object: "list", data: clone(data), has_more: false, url: "/v1/refunds" } };
    }
    match = /^\/v1\/refunds\/([^/]+)$/.exec(path);
    if (method === "GET" && match) {
      const refund = this.refunds.get(match[1]!);
      return refund ? { status: 200, body: clone(refund) } : notFound("refund");
    }
    if (method === "GET" && path === "/v1/disputes") {
      const data = [...this.disputes.values()].filter((dispute) => !params.payment_intent || dispute.payment_intent === params.payment_intent).reverse();
      return { status: 200, body: { object: "list", data: clone(data), has_more: false, url: "/v1/disputes" } };
    }
    match = /^\/v1\/disputes\/([^/]+)$/.exec(path);
    if (method === "GET" && match) {
      const dispute = this.disputes.get(match[1]!);
      return dispute ? { status: 200, body: clone(dispute) } : notFound("dispute");
    }
    match = /^\/v1\/charges\/([^/]+)$/.exec(path);
    if (method === "GET" && match) {
      const charge = this.charges.get(match[1]!);
      return charge ? { status: 200, body: clone(charge) } : notFound("charge");
    }
    return notFound(`route ${method} ${path}`);
  }

  /** POST /v1/refunds: a refund of (part of) a succeeded PaymentIntent's charge. */
  private createRefund(params: Json): { status: number; body: Json } {
    const invalid = (message: string, code?: string) => ({ status: 400, body: { error: { type: "invalid_request_error", message, ...(code ? { code } : {}) } } });
    const chargeId = (params.charge as string | undefined) ?? (params.payment_intent ? (this.paymentIntents.get(params.payment_intent as string)?.latest_charge as string | undefined) : undefined);
    const charge = chargeId ? this.charges.get(chargeId) : undefined;
    if (!charge) return invalid("This PaymentIntent does not have a successful charge to refund.", "resource_missing");
    const left = (charge.amount_captured as number) - (charge.amount_refunded as number);
    const amount = params.amount !== undefined ? Number(params.amount) : left;
    if (left <= 0) return invalid(`Charge ${chargeId} has already been refunded.`, "charge_already_refunded");
    if (!Number.isInteger(amount) || amount <= 0 || amount > left) {
      return invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${left})`, "amount_too_large");
    }
    const refund = clone(objects.refund) as Json;
    Object.assign(refund, {
      id: id("re"),
      amount,
      charge: chargeId,
      currency: charge.currency,
      payment_intent: charge.payment_intent,
      metadata: params.metadata ?? {},
      reason: params.reason ?? null,
      status: "succeeded",
      created: this.seconds(),
    });
    this.refunds.set(refund.id as string, refund);
    charge.amount_refunded = (charge.amount_refunded as number) + amount;
    charge.refunded = charge.amount_refunded === charge.amount_captured;
    return { status: 200, body: clone(refund) };
  }

  private createIntent(params: Json): Json {
    const intent = clone(objects.payment_intent) as Json;
    const intentId = id("pi");
    Object.assign(intent, {
      id: intentId,
      amount: Number(params.amount),
      amount_received: 0,
      currency: params.currency,
      description: params.description ?? null,
      customer: params.customer ?? null,
      metadata: params.metadata ?? {},
      status: "requires_payment_method",
      client_secret: `${intentId}_secret_${randomBytes(8).toString("hex")}`,
      created: this.seconds(),
      canceled_at: null,
      last_payment_error: null,
      latest_charge: null,
      next_action: null,
      livemode: false,
    });
    this.paymentIntents.set(intentId, intent);
    return clone(intent);
  }

  private createSession(params: Json): Json {
    const lineItems = (params.line_items as Json[] | undefined) ?? [];
    const first = (lineItems[0] ?? {}) as { quantity?: string; price_data?: { unit_amount?: string; currency?: string } };
    const amount = Number(first.price_data?.unit_amount ?? 0) * Number(first.quantity ?? 1);
    const currency = first.price_data?.currency ?? "usd";
    const intentData = (params.payment_intent_data as Json | undefined) ?? {};
    const intent = this.createIntent({ amount, currency, metadata: intentData.metadata ?? {} });
    const session = clone(objects["checkout.session"]) as Json;
    const sessionId = id("cs_test");
    Object.assign(session, {
      id: sessionId,
      amount_total: amount,
      amount_subtotal: amount,
      currency,
      metadata: params.metadata ?? {},
      client_reference_id: params.client_reference_id ?? null,
      success_url: params.success_url,
      cancel_url: params.cancel_url,
      payment_intent: intent.id,
      payment_status: "unpaid",
      status: "open",
      url: `https://checkout.stripe.com/c/pay/${sessionId}`,
      created: this.seconds(),
    });
    this.checkoutSessions.set(sessionId, session);
    return clone(session);
  }
  // ---------------------------------------------------------------------------------
  // Billing: drivers (what the buyer, the card and Stripe's scheduler do)
  // ---------------------------------------------------------------------------------

  /** The Customer as stored. */
  customer(customerId: string): Json {
    return this.storedOrThrow(this.customers, customerId, "Customer");
  }

  /** The Subscription as stored. */
  subscription(subscriptionId: string): Json {
    return this.storedOrThrow(this.subscriptions, subscriptionId, "Subscription");
  }

  /** The Invoice as stored (without the includable `confirmation_secret` and `payments`). */
  invoice(invoiceId: string): Json {
    return this.storedOrThrow(this.invoices, invoiceId, "Invoice");
  }

  /** The SetupIntent as stored. */
  setupIntent(setupIntentId: string): Json {
    return this.storedOrThrow(this.setupIntents, setupIntentId, "SetupIntent");
  }

  /** The PaymentMethod as stored. */
  paymentMethod(paymentMethodId: string): Json {
    return this.storedOrThrow(this.paymentMethods, paymentMethodId, "PaymentMethod");
  }

  /**
   * The buyer pays an `incomplete` subscription's first invoice on-session (with the card
   * `paymentMethodId`, or a new card from the `payment_method` fixture): its PaymentIntent
   * succeeds with a charge, the invoice is `paid`, the subscription `active`, and the card
   * is attached to the customer and, with `payment_settings.save_default_payment_method =
   * on_subscription`, becomes the subscription's `default_payment_method`.
   * @throws Error when the subscription is not `incomplete`
   */
  payFirstInvoice(subscriptionId: string, options: { paymentMethodId?: string } = {}): BillingStep {
    const subscription = this.subscription(subscriptionId);
    if (subscription.status !== "incomplete") throw new Error(`subscription ${subscriptionId} is ${String(subscription.status)}, not incomplete`);
    const invoice = this.invoice(subscription.latest_invoice as string);
    const customerId = subscription.customer as string;
    const card = options.paymentMethodId ? this.paymentMethod(options.paymentMethodId) : this.newPaymentMethod(customerId);
    card.customer = customerId;
    this.payInvoice(invoice, card.id as string);
    subscription.status = "active";
    const settings = subscription.payment_settings as Json | null;
    if (settings?.save_default_payment_method === "on_subscription") subscription.default_payment_method = card.id;
    return this.step(subscription, invoice);
  }

  /**
   * The subscription's current period ends and Stripe bills the next one (a test clock
   * advanced to the period's end): the clock moves to that end if it is earlier; a
   * subscription set to `cancel_at_period_end` (or whose `cancel_at` is reached) is ended
   * instead (`canceled`, `ended_at` = the period's end) and only `{ subscription }` is
   * returned. Otherwise the items' `current_period_*` move to the next period (counted from
   * the billing anchor), a `subscription_cycle` invoice is made (its line's `period` is the
   * new period; the invoice's own `period_start/end` are the period that just ended) and
   * charged off-session with the subscription's (or the customer's) default payment method:
   * `outcome` "paid" -> invoice `paid`, subscription `active`; "failed" (or, when `outcome`
   * is left out, a card declined with `declineCard`) -> the PaymentIntent
   * `requires_payment_method` with `last_payment_error`, the invoice stays `open` with
   * `attempt_count` 1 and `next_payment_attempt` set, the subscription `past_due`.
   * @throws Error when the subscription is not `active` or `past_due`, or "paid" is asked without a default payment method
   */
  renew(subscriptionId: string, options: { outcome?: InvoiceOutcome } = {}): BillingStep | { subscription: Json } {
    const subscription = this.subscription(subscriptionId);
    if (subscription.status !== "active" && subscription.status !== "past_due") {
      throw new Error(`subscription ${subscriptionId} is ${String(subscription.status)}: only active or past_due subscriptions renew`);
    }
    const cycle = this.cycles.get(subscriptionId)!;
    const items = (subscription.items as Json).data as Json[];
    const ending = { start: items[0]!.current_period_start as number, end: items[0]!.current_period_end as number };
    this.advanceClockTo(ending.end);
    const cancelAt = subscription.cancel_at as number | null;
    if (subscription.cancel_at_period_end === true || (cancelAt !== null && cancelAt <= ending.end)) {
      Object.assign(subscription, { status: "canceled", ended_at: ending.end });
      (subscription.cancellation_details as Json).reason = "cancellation_requested";
      return { subscription: clone(subscription) };
    }
    cycle.period += 1;
    const next = {
      start: periodBoundary(cycle.anchor, cycle.interval, cycle.count, cycle.period),
      end: periodBoundary(cycle.anchor, cycle.interval, cycle.count, cycle.period + 1),
    };
    for (const item of items) Object.assign(item, { current_period_start: next.start, current_period_end: next.end });
    const invoice = this.createSubscriptionInvoice(subscription, "subscription_cycle", next, ending);
    subscription.latest_invoice = invoice.id;
    this.attemptInvoice(subscription, invoice, options.outcome);
    return this.step(subscription, invoice);
  }

  /**
   * Smart Retries: Stripe charges an `open` invoice again (the clock moves to its
   * `next_payment_attempt` if that is later) with the subscription's default payment
   * method: "paid" -> the invoice is `paid` and its subscription back to `active` (when
   * this is its latest invoice); "failed" -> `attempt_count` grows and
   * `next_payment_attempt` moves on. Without `outcome`, a card declined with `declineCard`
   * fails, any other is paid.
   * @throws Error when the invoice is not `open`
   */
  retryInvoice(invoiceId: string, options: { outcome?: InvoiceOutcome } = {}): BillingStep {
    const invoice = this.invoice(invoiceId);
    if (invoice.status !== "open") throw new Error(`invoice ${invoiceId} is ${String(invoice.status)}, not open`);
    const subscription = this.subscription(this.subscriptionIdOf(invoice));
    const retryAt = invoice.next_payment_attempt as number | null;
    if (retryAt !== null) this.advanceClockTo(retryAt);
    this.attemptInvoice(subscription, invoice, options.outcome);
    return this.step(subscription, invoice);
  }

  /**
   * The buyer pays a subscription-mode Checkout Session: the session's customer (or a new
   * one, with its `customer_email`), a subscription of the session's line items with
   * `subscription_data.metadata`, its first invoice paid with a new card (saved as the
   * subscription's default payment method), the session `complete` and `paid` with
   * `customer`, `subscription` and `invoice` set. Returns all of them (the
   * `checkout.session.completed`, `customer.subscription.created`, `invoice.paid` payloads).
   * @throws Error when the session is not an open subscription-mode session
   */
  completeSubscriptionSession(sessionId: string, options: { paymentMethodId?: string } = {}): BillingStep & { session: Json; customer: Json } {
    const session = this.session(sessionId);
    const plan = this.sessionPlans.get(sessionId);
    if (session.mode !== "subscription" || session.status !== "open" || !plan) throw new Error(`Checkout Session ${sessionId} is not an open subscription-mode session`);
    const customerId = (session.customer as string | null) ?? (this.createCustomer({ email: session.customer_email ?? undefined }).id as string);
    const created = this.createSubscription({
      customer: customerId,
      items: plan.items,
      metadata: plan.metadata,
      payment_behavior: "default_incomplete",
      payment_settings: { save_default_payment_method: "on_subscription" },
    });
    const { subscription, invoice, paymentIntent } = this.payFirstInvoice(created.id as string, options);
    Object.assign(session, { status: "complete", payment_status: "paid", customer: customerId, subscription: subscription.id, invoice: invoice.id, url: null });
    this.sessionPlans.delete(sessionId);
    return { session: clone(session), customer: clone(this.customer(customerId)), subscription, invoice, paymentIntent };
  }

  /**
   * The buyer saves a card in a setup-mode Checkout Session: its SetupIntent succeeds with a
   * new card (attached to the session's customer, if any) and the session is `complete`.
   * Returns the session, the SetupIntent and the card (`checkout.session.completed`,
   * `setup_intent.succeeded` payloads).
   * @throws Error when the session is not an open setup-mode session
   */
  completeSetupSession(sessionId: string, options: { paymentMethodId?: string } = {}): { session: Json; setupIntent: Json; paymentMethod: Json } {
    const session = this.session(sessionId);
    if (session.mode !== "setup" || session.status !== "open") throw new Error(`Checkout Session ${sessionId} is not an open setup-mode session`);
    const { setupIntent, paymentMethod } = this.confirmSetupIntent(session.setup_intent as string, options);
    Object.assign(session, { status: "complete", url: null });
    return { session: clone(session), setupIntent, paymentMethod };
  }

  /**
   * The buyer confirms a SetupIntent (Stripe.js `confirmSetup`): a card (`paymentMethodId`,
   * or a new `pm_...` from the `payment_method` fixture) is saved, attached to the
   * SetupIntent's customer, and the SetupIntent `succeeded` with `payment_method` set.
   * Returns both (`setup_intent.succeeded`, `payment_method.attached` payloads).
   * @throws Error when the SetupIntent already succeeded or was canceled
   */
  confirmSetupIntent(setupIntentId: string, options: { paymentMethodId?: string } = {}): { setupIntent: Json; paymentMethod: Json } {
    const intent = this.setupIntent(setupIntentId);
    if (intent.status === "succeeded" || intent.status === "canceled") throw new Error(`SetupIntent ${setupIntentId} is ${String(intent.status)}`);
    const customerId = intent.customer as string | null;
    const card = options.paymentMethodId ? this.paymentMethod(options.paymentMethodId) : this.newPaymentMethod(customerId);
    if (customerId) card.customer = customerId;
    Object.assign(intent, { status: "succeeded", payment_method: card.id, last_setup_error: null, next_action: null });
    return { setupIntent: clone(intent), paymentMethod: clone(card) };
  }

  /**
   * From now on, off-session payments with this card fail as Stripe answers them: a 402
   * `card_error` with `code`, `decline_code` and the PaymentIntent (status
   * `requires_payment_method`) inside the error; renewals and retries without an explicit
   * outcome fail the same way. `acceptCard` undoes it.
   */
  declineCard(paymentMethodId: string, decline: CardDecline): void {
    this.paymentMethod(paymentMethodId);
    this.declines.set(paymentMethodId, decline);
  }

  /** The card pays again (undoes `declineCard`). */
  acceptCard(paymentMethodId: string): void {
    this.declines.delete(paymentMethodId);
  }

  // ---------------------------------------------------------------------------------
  // Billing: routes
  // ---------------------------------------------------------------------------------

  /** The billing endpoints' answer, or undefined for a request the other routes answer. */
  private routeBilling(method: string, path: string, params: Json): Reply | undefined {
    try {
      return this.billingRoute(method, path, params);
    } catch (error) {
      if (error instanceof StripeErrorReply) return { status: error.status, body: { error: error.error } };
      throw error;
    }
  }

  private billingRoute(method: string, path: string, params: Json): Reply | undefined {
    const ok = (body: Json): Reply => ({ status: 200, body });
    const expanded = (object: Json) => ok(this.expanded(object, params));
    const byId = (pattern: RegExp) => pattern.exec(path)?.[1];
    let objectId: string | undefined;

    // Customers
    if (method === "POST" && path === "/v1/customers") return expanded(this.createCustomer(params));
    if ((objectId = byId(/^\/v1\/customers\/([^/]+)$/))) {
      if (method === "GET") return expanded(this.stored(this.customers, objectId, "customer"));
      if (method === "POST") return expanded(this.updateCustomer(objectId, params));
    }
    if (method === "GET" && (objectId = byId(/^\/v1\/customers\/([^/]+)\/payment_methods$/))) {
      this.stored(this.customers, objectId, "customer");
      const cards = [...this.paymentMethods.values()].filter((card) => card.customer === objectId && (!params.type || card.type === params.type)).reverse();
      return ok(this.expanded(listOf(`/v1/customers/${objectId}/payment_methods`, clone(cards), params), params));
    }

    // Products and prices
    if (method === "POST" && path === "/v1/products") return expanded(this.createProduct(params));
    if (method === "GET" && (objectId = byId(/^\/v1\/products\/([^/]+)$/))) return expanded(this.stored(this.products, objectId, "product"));
    if (method === "POST" && path === "/v1/prices") return expanded(this.createPrice(params));
    if (method === "GET" && path === "/v1/prices") {
      const keys = params.lookup_keys === undefined ? undefined : ([] as unknown[]).concat(params.lookup_keys).map(String);
      const prices = [...this.prices.values()]
        .filter(
          (price) =>
            (params.active === undefined || String(price.active) === params.active) &&
            (!params.currency || price.currency === params.currency) &&
            (!params.product || price.product === params.product) &&
            (!params.type || price.type === params.type) &&
            (!keys || keys.includes(price.lookup_key as string)),
        )
        .reverse();
      return ok(this.expanded(listOf("/v1/prices", clone(prices), params), params));
    }
    if (method === "GET" && (objectId = byId(/^\/v1\/prices\/([^/]+)$/))) return expanded(this.stored(this.prices, objectId, "price"));

    // Subscriptions
    if (method === "POST" && path === "/v1/subscriptions") return expanded(this.createSubscription(params));
    if (method === "GET" && path === "/v1/subscriptions") {
      const status = params.status as string | undefined;
      const subscriptions = [...this.subscriptions.values()]
        .filter((subscription) => {
          if (params.customer && subscription.customer !== params.customer) return false;
          if (params.price && !((subscription.items as Json).data as Json[]).some((item) => (item.price as Json).id === params.price)) return false;
          // No status: all subscriptions not canceled; `ended`: canceled or incomplete_expired; `all`: every one (SubscriptionListParams.status).
          if (status === undefined) return subscription.status !== "canceled";
          if (status === "all") return true;
          if (status === "ended") return subscription.status === "canceled" || subscription.status === "incomplete_expired";
          return subscription.status === status;
        })
        .reverse();
      return ok(this.expanded(listOf("/v1/subscriptions", clone(subscriptions), params), params));
    }
    if ((objectId = byId(/^\/v1\/subscriptions\/([^/]+)$/))) {
      if (method === "GET") return expanded(this.stored(this.subscriptions, objectId, "subscription"));
      if (method === "POST") return expanded(this.updateSubscription(objectId, params));
      if (method === "DELETE") return expanded(this.cancelSubscription(objectId, params));
    }

    // Invoices and their payments
    if (method === "GET" && path === "/v1/invoices") {
      const invoices = [...this.invoices.values()]
        .filter(
          (invoice) =>
            (!params.customer || invoice.customer === params.customer) &&
            (!params.status || invoice.status === params.status) &&
            (!params.subscription || this.subscriptionIdOf(invoice) === params.subscription),
        )
        .reverse();
      return ok(this.expanded(listOf("/v1/invoices", clone(invoices), params), params));
    }
    if (method === "GET" && (objectId = byId(/^\/v1\/invoices\/([^/]+)$/))) return expanded(this.stored(this.invoices, objectId, "invoice"));
    if (method === "GET" && path === "/v1/invoice_payments") {
      const payment = (params.payment as Json | undefined) ?? {};
      const payments = [...this.invoicePayments.values()]
        .filter(
          (row) =>
            (!params.invoice || row.invoice === params.invoice) &&
            (!params.status || row.status === params.status) &&
            (!payment.type || (row.payment as Json).type === payment.type) &&
            (!payment.payment_intent || (row.payment as Json).payment_intent === payment.payment_intent),
        )
        .reverse();
      return ok(this.expanded(listOf("/v1/invoice_payments", clone(payments), params), params));
    }
    if (method === "GET" && (objectId = byId(/^\/v1\/invoice_payments\/([^/]+)$/))) return expanded(this.stored(this.invoicePayments, objectId, "invoice_payment"));

    // Saved cards
    if (method === "POST" && path === "/v1/setup_intents") return expanded(this.createSetupIntent(params));
    if (method === "GET" && (objectId = byId(/^\/v1\/setup_intents\/([^/]+)$/))) return expanded(this.stored(this.setupIntents, objectId, "setupintent"));
    if (method === "GET" && (objectId = byId(/^\/v1\/payment_methods\/([^/]+)$/))) return expanded(this.stored(this.paymentMethods, objectId, "PaymentMethod"));
    if (method === "POST" && path === "/v1/payment_intents" && String(params.confirm) === "true") return this.createConfirmedIntent(params);
    if (method === "POST" && (objectId = byId(/^\/v1\/payment_intents\/([^/]+)\/confirm$/))) return this.confirmIntent(objectId, params);

    // Checkout in subscription and setup mode (payment mode: the routes below)
    if (method === "POST" && path === "/v1/checkout/sessions" && params.mode === "subscription") return expanded(this.createSubscriptionSession(params));
    if (method === "POST" && path === "/v1/checkout/sessions" && params.mode === "setup") return expanded(this.createSetupSession(params));
    if (method === "GET" && expandPaths(params).length > 0 && (objectId = byId(/^\/v1\/checkout\/sessions\/([^/]+)$/))) {
      return expanded(this.stored(this.checkoutSessions, objectId, "checkout.session"));
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------
  // Billing: objects
  // ---------------------------------------------------------------------------------

  /** POST /v1/customers. */
  private createCustomer(params: Json): Json {
    const customer = clone(objects.customer) as Json;
    const customerId = id("cus");
    Object.assign(customer, {
      id: customerId,
      created: this.seconds(),
      email: params.email ?? null,
      name: params.name ?? null,
      phone: params.phone ?? null,
      description: params.description ?? null,
      metadata: mergeMetadata({}, params.metadata),
      discount: null,
      balance: 0,
      delinquent: false,
      invoice_prefix: randomBytes(4).toString("hex").toUpperCase(),
      next_invoice_sequence: 1,
      livemode: false,
    });
    this.customers.set(customerId, customer);
    const settings = params.invoice_settings as Json | undefined;
    if (settings?.default_payment_method !== undefined) this.setDefaultPaymentMethod(customer, settings.default_payment_method);
    return customer;
  }

  /** POST /v1/customers/:id: email, name, phone, description, metadata, invoice_settings[default_payment_method]. */
  private updateCustomer(customerId: string, params: Json): Json {
    const customer = this.stored(this.customers, customerId, "customer");
    for (const field of ["email", "name", "phone", "description"]) if (params[field] !== undefined) customer[field] = params[field] === "" ? null : params[field];
    customer.metadata = mergeMetadata(customer.metadata, params.metadata);
    const settings = params.invoice_settings as Json | undefined;
    if (settings?.default_payment_method !== undefined) this.setDefaultPaymentMethod(customer, settings.default_payment_method);
    return customer;
  }

  /** `invoice_settings.default_payment_method`: a card attached to this customer, or "" to clear it. */
  private setDefaultPaymentMethod(customer: Json, paymentMethodId: unknown): void {
    const settings = customer.invoice_settings as Json;
    if (paymentMethodId === "") {
      settings.default_payment_method = null;
      return;
    }
    const card = this.paymentMethods.get(String(paymentMethodId));
    if (!card || card.customer !== customer.id) {
      throw invalidRequest(`The customer does not have a payment method with the ID ${String(paymentMethodId)}. The payment method must be attached to the customer.`, {
        param: "invoice_settings[default_payment_method]",
      });
    }
    settings.default_payment_method = card.id;
  }

  /** POST /v1/products: `id` given by the caller or made; an id already used -> 400 `resource_already_exists`. */
  private createProduct(params: Json): Json {
    if (!params.name) throw invalidRequest("Missing required param: name.", { code: "parameter_missing", param: "name" });
    const productId = (params.id as string | undefined) ?? id("prod");
    if (this.products.has(productId)) throw invalidRequest("Product already exists.", { code: "resource_already_exists", param: "id" });
    const product = clone(objects.product) as Json;
    const now = this.seconds();
    Object.assign(product, {
      id: productId,
      active: params.active === undefined ? true : String(params.active) === "true",
      created: now,
      updated: now,
      default_price: null,
      description: params.description ?? null,
      images: [],
      marketing_features: [],
      metadata: mergeMetadata({}, params.metadata),
      name: params.name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: params.statement_descriptor ?? null,
      tax_code: null,
      // Required by the SDK's Product type at this version, absent from the fixture.
      tax_details: null,
      unit_label: params.unit_label ?? null,
      url: null,
      livemode: false,
    });
    this.products.set(productId, product);
    return product;
  }

  /**
   * POST /v1/prices: a one-time or recurring price of an existing product. A `lookup_key`
   * another price holds -> 400, unless `transfer_lookup_key=true` moves it to this price
   * (PriceCreateParams.transfer_lookup_key).
   */
  private createPrice(params: Json): Json {
    const productId = params.product as string | undefined;
    if (!productId) throw invalidRequest("Missing required param: product.", { code: "parameter_missing", param: "product" });
    if (!this.products.has(productId)) throw noSuch("product", productId, "product");
    if (!params.currency) throw invalidRequest("Missing required param: currency.", { code: "parameter_missing", param: "currency" });
    const unitAmount = Number(params.unit_amount);
    if (!Number.isInteger(unitAmount) || unitAmount < 0) throw invalidRequest("Invalid integer: unit_amount", { param: "unit_amount" });
    const lookupKey = (params.lookup_key as string | undefined) ?? null;
    if (lookupKey !== null) {
      const holder = [...this.prices.values()].find((price) => price.lookup_key === lookupKey);
      if (holder && String(params.transfer_lookup_key) !== "true") throw invalidRequest(`A price (\`${String(holder.id)}\`) already uses that lookup key.`, { param: "lookup_key" });
      if (holder) holder.lookup_key = null;
    }
    const recurring = params.recurring as Json | undefined;
    const price = clone(objects.price) as Json;
    const priceId = id("price");
    Object.assign(price, {
      id: priceId,
      active: params.active === undefined ? true : String(params.active) === "true",
      billing_scheme: "per_unit",
      created: this.seconds(),
      currency: String(params.currency).toLowerCase(),
      custom_unit_amount: null,
      livemode: false,
      lookup_key: lookupKey,
      metadata: mergeMetadata({}, params.metadata),
      nickname: params.nickname ?? null,
      product: productId,
      recurring: recurring
        ? {
            ...clone(objects.price.recurring),
            interval: recurring.interval,
            interval_count: Number(recurring.interval_count ?? 1),
            meter: null,
            usage_type: recurring.usage_type ?? "licensed",
            trial_period_days: null,
          }
        : null,
      tax_behavior: params.tax_behavior ?? "unspecified",
      tiers_mode: null,
      transform_quantity: null,
      type: recurring ? "recurring" : "one_time",
      unit_amount: unitAmount,
      unit_amount_decimal: String(unitAmount),
    });
    this.prices.set(priceId, price);
    return price;
  }

  /**
   * POST /v1/subscriptions: a subscription of one or more recurring prices (same interval)
   * for a customer, anchored now. With `payment_behavior=default_incomplete` it is
   * `incomplete` with an `open` first invoice (`subscription_create`) whose PaymentIntent
   * waits for the buyer (client secret under `latest_invoice.confirmation_secret`).
   * Otherwise, when the customer has a default payment method (or `default_payment_method`
   * is given), the first invoice is charged at once (declined cards leave it `incomplete`).
   */
  private createSubscription(params: Json): Json {
    const customerId = params.customer as string | undefined;
    if (!customerId) throw invalidRequest("Missing required param: customer.", { code: "parameter_missing", param: "customer" });
    const customer = this.customers.get(customerId);
    if (!customer) throw noSuch("customer", customerId, "customer");
    const requested = ([] as unknown[]).concat(params.items ?? []) as Json[];
    if (requested.length === 0) throw invalidRequest("Missing required param: items.", { code: "parameter_missing", param: "items" });
    const prices = requested.map((item, index) => {
      const price = this.prices.get(String(item.price));
      if (!price) throw noSuch("price", String(item.price), `items[${index}][price]`);
      if (price.type !== "recurring") throw invalidRequest(`The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`, { param: `items[${index}][price]` });
      return price;
    });
    const first = prices[0]!;
    const recurring = first.recurring as Json;
    if (prices.some((price) => price.currency !== first.currency)) throw invalidRequest("All prices on a subscription must have the same `currency`.", { param: "items" });
    if (prices.some((price) => (price.recurring as Json).interval !== recurring.interval || (price.recurring as Json).interval_count !== recurring.interval_count)) {
      throw invalidRequest("The stand-in bills subscriptions whose prices share one recurring interval.", { param: "items" });
    }
    if (params.default_payment_method !== undefined) {
      const card = this.paymentMethods.get(String(params.default_payment_method));
      if (!card || card.customer !== customerId) throw noSuch("PaymentMethod", String(params.default_payment_method), "default_payment_method");
    }
    const subscriptionId = id("sub");
    const anchor = this.seconds();
    const cycle = { anchor, interval: recurring.interval as string, count: recurring.interval_count as number, period: 0 };
    const period = { start: anchor, end: periodBoundary(anchor, cycle.interval, cycle.count, 1) };
    const items = requested.map((item, index) => {
      const price = prices[index]!;
      const row = clone(objects.subscription_item) as Json;
      Object.assign(row, {
        id: id("si"),
        billing_thresholds: null,
        created: anchor,
        current_period_start: period.start,
        current_period_end: period.end,
        // Required by the SDK's SubscriptionItem type at this version, absent from the fixture.
        current_trial: null,
        discounts: [],
        metadata: mergeMetadata({}, item.metadata),
        plan: this.planOf(price),
        price: clone(price),
        quantity: Number(item.quantity ?? 1),
        subscription: subscriptionId,
        tax_rates: [],
      });
      return row;
    });
    const settings = (params.payment_settings as Json | undefined) ?? {};
    const subscription = clone(objects.subscription) as Json;
    Object.assign(subscription, {
      id: subscriptionId,
      application: null,
      application_fee_percent: null,
      billing_cycle_anchor: anchor,
      billing_cycle_anchor_config: null,
      billing_schedules: [],
      billing_thresholds: null,
      cancel_at: null,
      cancel_at_period_end: String(params.cancel_at_period_end) === "true",
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: "charge_automatically",
      created: anchor,
      currency: first.currency,
      customer: customerId,
      customer_account: null,
      days_until_due: null,
      default_payment_method: params.default_payment_method ?? null,
      default_source: null,
      default_tax_rates: [],
      description: params.description ?? null,
      discounts: [],
      ended_at: null,
      items: { object: "list", data: items, has_more: false, url: `/v1/subscription_items?subscription=${subscriptionId}` },
      latest_invoice: null,
      livemode: false,
      managed_payments: { enabled: false },
      metadata: mergeMetadata({}, params.metadata),
      next_pending_invoice_item_invoice: null,
      on_behalf_of: null,
      pause_collection: null,
      payment_settings: {
        ...clone(objects.subscription.payment_settings),
        payment_method_types: settings.payment_method_types ?? null,
        save_default_payment_method: settings.save_default_payment_method ?? "off",
      },
      pending_invoice_item_interval: null,
      pending_setup_intent: null,
      pending_update: null,
      schedule: null,
      start_date: anchor,
      status: "incomplete",
      test_clock: null,
      transfer_data: null,
      trial_end: null,
      trial_start: null,
    });
    if (subscription.cancel_at_period_end === true) subscription.cancel_at = period.end;
    this.subscriptions.set(subscriptionId, subscription);
    this.cycles.set(subscriptionId, cycle);
    const invoice = this.createSubscriptionInvoice(subscription, "subscription_create", period, { start: anchor, end: anchor });
    subscription.latest_invoice = invoice.id;
    if (params.payment_behavior !== "default_incomplete" && this.defaultPaymentMethodOf(subscription)) {
      this.attemptInvoice(subscription, invoice, undefined);
    }
    return subscription;
  }

  /** The legacy `plan` view of a recurring price, on a subscription item (fixture `subscription_item.plan`). */
  private planOf(price: Json): Json {
    const recurring = price.recurring as Json;
    return {
      ...clone(objects.subscription_item.plan),
      active: price.active,
      amount: price.unit_amount,
      amount_decimal: price.unit_amount_decimal,
      billing_scheme: "per_unit",
      created: price.created,
      currency: price.currency,
      id: price.id,
      interval: recurring.interval,
      interval_count: recurring.interval_count,
      livemode: false,
      metadata: clone(price.metadata),
      meter: null,
      nickname: price.nickname,
      product: price.product,
      tiers_mode: null,
      transform_usage: null,
      trial_period_days: null,
      usage_type: recurring.usage_type,
    };
  }

  /**
   * POST /v1/subscriptions/:id: `cancel_at_period_end` (true sets `cancel_at` to the
   * period's end and `canceled_at` to now; false clears both), `metadata`,
   * `default_payment_method`, `cancellation_details`. An `incomplete` subscription only
   * takes `metadata` and `default_source`, a canceled one only `cancellation_details`
   * (Subscription.status docs).
   */
  private updateSubscription(subscriptionId: string, params: Json): Json {
    const subscription = this.stored(this.subscriptions, subscriptionId, "subscription");
    const fields = Object.keys(params).filter((key) => key !== "expand");
    if (subscription.status === "canceled" && fields.some((key) => key !== "cancellation_details")) {
      throw invalidRequest("A canceled subscription can only update its cancellation_details.");
    }
    if (subscription.status === "incomplete" && fields.some((key) => key !== "metadata" && key !== "default_source")) {
      throw invalidRequest("A subscription in status `incomplete` can only have metadata and default_source updated.");
    }
    if (params.cancel_at_period_end !== undefined) {
      const cancel = String(params.cancel_at_period_end) === "true";
      const periodEnd = ((subscription.items as Json).data as Json[])[0]!.current_period_end as number;
      Object.assign(subscription, { cancel_at_period_end: cancel, cancel_at: cancel ? periodEnd : null, canceled_at: cancel ? this.seconds() : null });
      (subscription.cancellation_details as Json).reason = cancel ? "cancellation_requested" : null;
    }
    if (params.default_payment_method !== undefined) {
      const card = this.paymentMethods.get(String(params.default_payment_method));
      if (!card || card.customer !== subscription.customer) throw noSuch("PaymentMethod", String(params.default_payment_method), "default_payment_method");
      subscription.default_payment_method = card.id;
    }
    const details = params.cancellation_details as Json | undefined;
    if (details) Object.assign(subscription.cancellation_details as Json, { comment: details.comment ?? null, feedback: details.feedback ?? null });
    subscription.metadata = mergeMetadata(subscription.metadata, params.metadata);
    return subscription;
  }

  /**
   * DELETE /v1/subscriptions/:id: cancels now (`canceled`, `canceled_at` = `ended_at` =
   * now). A subscription already canceled answers 404 "No such subscription", as Stripe
   * does (stripe/stripe-go#1887).
   */
  private cancelSubscription(subscriptionId: string, params: Json): Json {
    const subscription = this.stored(this.subscriptions, subscriptionId, "subscription");
    if (subscription.status === "canceled") throw noSuch("subscription", subscriptionId);
    const now = this.seconds();
    Object.assign(subscription, { status: "canceled", canceled_at: now, ended_at: now });
    const details = (params.cancellation_details as Json | undefined) ?? {};
    Object.assign(subscription.cancellation_details as Json, {
      reason: "cancellation_requested",
      comment: details.comment ?? null,
      feedback: details.feedback ?? null,
    });
    return subscription;
  }

  /**
   * A finalized (`open`) subscription invoice with one line per item (`linePeriod`, the
   * service period) and `invoicePeriod` as its own `period_start/end`, its PaymentIntent
   * (metadata empty, as Stripe leaves it; `setup_future_usage=off_session` when the
   * subscription saves its payment method) and its InvoicePayment (`open`).
   */
  private createSubscriptionInvoice(subscription: Json, reason: string, linePeriod: { start: number; end: number }, invoicePeriod: { start: number; end: number }): Json {
    const customer = this.customer(subscription.customer as string);
    const invoiceId = id("in");
    const now = this.seconds();
    const template = objects.invoice.lines.data[0]!;
    const lines = ((subscription.items as Json).data as Json[]).map((item) => {
      const price = item.price as Json;
      const quantity = item.quantity as number;
      const amount = (price.unit_amount as number) * quantity;
      const line = clone(template) as Json;
      Object.assign(line, {
        id: id("il"),
        amount,
        currency: price.currency,
        description: `${quantity} × ${String(this.products.get(price.product as string)?.name ?? price.product)}`,
        discount_amounts: [],
        discountable: true,
        discounts: [],
        invoice: invoiceId,
        livemode: false,
        metadata: {},
        period: { end: linePeriod.end, start: linePeriod.start },
        quantity,
        pretax_credit_amounts: [],
        taxes: [],
        parent: {
          invoice_item_details: null,
          subscription_item_details: {
            invoice_item: null,
            proration: false,
            proration_details: { credited_items: null },
            subscription: subscription.id,
            subscription_item: item.id,
          },
          type: "subscription_item_details",
        },
        pricing: { price_details: { price: price.id, product: price.product }, type: "price_details", unit_amount_decimal: price.unit_amount_decimal },
        subtotal: amount,
      });
      return line;
    });
    const total = lines.reduce((sum, line) => sum + (line.amount as number), 0);
    const sequence = customer.next_invoice_sequence as number;
    customer.next_invoice_sequence = sequence + 1;
    const invoice = clone(objects.invoice) as Json;
    // `subscription` left the Invoice at 2025-03-31.basil (now `parent.subscription_details.subscription`); the fixture still has it.
    delete invoice.subscription;
    Object.assign(invoice, {
      id: invoiceId,
      amount_due: total,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: total,
      amount_shipping: 0,
      attempt_count: 0,
      attempted: false,
      auto_advance: true,
      billing_reason: reason,
      collection_method: "charge_automatically",
      created: now,
      currency: subscription.currency,
      customer: customer.id,
      customer_address: clone(customer.address),
      customer_email: customer.email,
      customer_name: customer.name,
      customer_phone: customer.phone,
      customer_shipping: null,
      customer_tax_exempt: customer.tax_exempt,
      default_payment_method: null,
      description: null,
      discounts: [],
      due_date: null,
      effective_at: now,
      ending_balance: 0,
      from_invoice: null,
      last_finalization_error: null,
      latest_revision: null,
      lines: { object: "list", data: lines, has_more: false, url: `/v1/invoices/${invoiceId}/lines` },
      livemode: false,
      metadata: {},
      next_payment_attempt: null,
      number: `${String(customer.invoice_prefix)}-${String(sequence).padStart(4, "0")}`,
      parent: {
        quote_details: null,
        subscription_details: { metadata: clone(subscription.metadata), subscription: subscription.id },
        type: "subscription_details",
      },
      period_end: invoicePeriod.end,
      period_start: invoicePeriod.start,
      shipping_cost: null,
      shipping_details: null,
      starting_balance: 0,
      status: "open",
      status_transitions: { finalized_at: now, marked_uncollectible_at: null, paid_at: null, voided_at: null },
      subtotal: total,
      subtotal_excluding_tax: total,
      total,
      total_discount_amounts: [],
      total_excluding_tax: total,
      total_pretax_credit_amounts: [],
      total_taxes: [],
      webhooks_delivered_at: null,
    });
    this.invoices.set(invoiceId, invoice);
    const created = this.createIntent({ amount: total, currency: subscription.currency, metadata: {} });
    const intent = this.intent(created.id as string);
    const saves = (subscription.payment_settings as Json | null)?.save_default_payment_method === "on_subscription";
    Object.assign(intent, { customer: customer.id, setup_future_usage: saves ? "off_session" : null });
    const row = clone(objects.invoice_payment) as Json;
    Object.assign(row, {
      id: id("inpay"),
      amount_paid: null,
      amount_requested: total,
      created: now,
      currency: subscription.currency,
      invoice: invoiceId,
      is_default: true,
      livemode: false,
      payment: { payment_intent: intent.id, type: "payment_intent" },
      status: "open",
      status_transitions: { canceled_at: null, paid_at: null },
    });
    this.invoicePayments.set(row.id as string, row);
    return invoice;
  }

  /** The invoice's default InvoicePayment. */
  private paymentRowOf(invoice: Json): Json {
    const row = [...this.invoicePayments.values()].find((candidate) => candidate.invoice === invoice.id && candidate.is_default === true);
    if (!row) throw new Error(`invoice ${String(invoice.id)} has no payment`);
    return row;
  }

  /** The subscription that made the invoice (`parent.subscription_details.subscription`). */
  private subscriptionIdOf(invoice: Json): string {
    const parent = invoice.parent as Json | null;
    return ((parent?.subscription_details as Json | null)?.subscription as string | undefined) ?? "";
  }

  /** The subscription's default payment method, else its customer's `invoice_settings.default_payment_method`. */
  private defaultPaymentMethodOf(subscription: Json): string | null {
    const customer = this.customer(subscription.customer as string);
    return (subscription.default_payment_method as string | null) ?? ((customer.invoice_settings as Json).default_payment_method as string | null);
  }

  /**
   * Stripe charges an open subscription invoice off-session with the default payment
   * method: paid (subscription `active`) or failed (`past_due` after the first invoice;
   * a first invoice leaves the subscription `incomplete`).
   */
  private attemptInvoice(subscription: Json, invoice: Json, outcome: InvoiceOutcome | undefined): void {
    const cardId = this.defaultPaymentMethodOf(subscription);
    const declined = cardId ? this.declines.get(cardId) : undefined;
    const fails = outcome === "failed" || (outcome === undefined && (declined !== undefined || cardId === null));
    const isLatest = subscription.latest_invoice === invoice.id;
    if (!fails) {
      if (!cardId) throw new Error(`subscription ${String(subscription.id)} has no default payment method to charge`);
      this.payInvoice(invoice, cardId);
      if (isLatest) subscription.status = "active";
      return;
    }
    const intent = this.intent((this.paymentRowOf(invoice).payment as Json).payment_intent as string);
    this.declinePayment(intent, cardId, declined ?? { code: "card_declined" });
    Object.assign(invoice, {
      attempted: true,
      attempt_count: (invoice.attempt_count as number) + 1,
      next_payment_attempt: this.seconds() + RETRY_AFTER_SECONDS,
    });
    if (isLatest && invoice.billing_reason !== "subscription_create") subscription.status = "past_due";
  }

  /** The invoice's PaymentIntent succeeds with `cardId` (a charge is made): invoice and InvoicePayment `paid`. */
  private payInvoice(invoice: Json, cardId: string): void {
    const row = this.paymentRowOf(invoice);
    const intent = this.intent((row.payment as Json).payment_intent as string);
    intent.payment_method = cardId;
    this.succeed(intent.id as string);
    Object.assign(this.chargeOf(intent.id as string), { customer: intent.customer, payment_method: cardId });
    const now = this.seconds();
    Object.assign(invoice, {
      status: "paid",
      amount_paid: invoice.amount_due,
      amount_remaining: 0,
      attempted: true,
      attempt_count: (invoice.attempt_count as number) + 1,
      next_payment_attempt: null,
    });
    (invoice.status_transitions as Json).paid_at = now;
    Object.assign(row, { status: "paid", amount_paid: invoice.amount_due });
    (row.status_transitions as Json).paid_at = now;
  }

  /**
   * A declined off-session attempt: the PaymentIntent back to `requires_payment_method`
   * with `last_payment_error` (a card_error with `code`, `decline_code`, the card); a
   * plain decline also leaves a `failed` charge. Returns the error object.
   */
  private declinePayment(intent: Json, cardId: string | null, decline: CardDecline): Json {
    const card = cardId ? this.paymentMethods.get(cardId) : undefined;
    const declineCode = decline.declineCode ?? (decline.code === "authentication_required" ? "authentication_required" : "generic_decline");
    const error: Json = {
      type: "card_error",
      code: decline.code,
      decline_code: declineCode,
      doc_url: `https://stripe.com/docs/error-codes/${decline.code.replaceAll("_", "-")}`,
      message: decline.message ?? "Your card was declined.",
      ...(card ? { payment_method: clone(card) } : {}),
    };
    if (decline.code !== "authentication_required") {
      const charge = clone(objects.charge) as Json;
      Object.assign(charge, {
        id: id("ch"),
        amount: intent.amount,
        amount_captured: 0,
        amount_refunded: 0,
        captured: false,
        paid: false,
        refunded: false,
        disputed: false,
        currency: intent.currency,
        customer: intent.customer ?? null,
        payment_intent: intent.id,
        payment_method: cardId,
        metadata: clone(intent.metadata),
        failure_code: decline.code,
        failure_message: error.message,
        status: "failed",
        created: this.seconds(),
        livemode: false,
      });
      this.charges.set(charge.id as string, charge);
      intent.latest_charge = charge.id;
      error.charge = charge.id;
    }
    Object.assign(intent, { status: "requires_payment_method", payment_method: cardId, last_payment_error: error, next_action: null });
    return error;
  }

  /**
   * POST /v1/payment_intents with `confirm=true` (and `off_session=true`): the saved card
   * is charged at once -> `succeeded` with its charge; a card set to decline -> 402
   * `card_error` with `code`, `decline_code` and the PaymentIntent (status
   * `requires_payment_method`) inside the error, which the SDK raises as StripeCardError.
   */
  private createConfirmedIntent(params: Json): Reply {
    const cardId = this.cardFor(params, params.customer as string | undefined);
    const created = this.createIntent(params);
    const intent = this.intent(created.id as string);
    Object.assign(intent, { customer: params.customer ?? null, payment_method: cardId, setup_future_usage: params.setup_future_usage ?? null });
    return this.chargeCard(intent, cardId);
  }

  /**
   * POST /v1/payment_intents/:id/confirm (with `payment_method` and `off_session=true`):
   * the saved card pays the PaymentIntent at once, as {@link createConfirmedIntent}; a
   * PaymentIntent already `succeeded` or `canceled` -> 400 `payment_intent_unexpected_state`.
   */
  private confirmIntent(intentId: string, params: Json): Reply {
    const intent = this.paymentIntents.get(intentId);
    if (!intent) throw noSuch("payment_intent", intentId, "intent");
    if (intent.status !== "requires_payment_method" && intent.status !== "requires_confirmation") {
      throw invalidRequest(`You cannot confirm this PaymentIntent because it has a status of ${intent.status}.`, { code: "payment_intent_unexpected_state" });
    }
    const cardId = this.cardFor(params, (intent.customer as string | null) ?? undefined);
    Object.assign(intent, { payment_method: cardId });
    return this.chargeCard(intent, cardId);
  }

  /** The saved card `params.payment_method` names, checked against the customer paying (Stripe refuses another customer's card). */
  private cardFor(params: Json, customerId: string | undefined): string {
    const cardId = params.payment_method as string | undefined;
    if (!cardId) {
      throw invalidRequest("You cannot confirm this PaymentIntent because it's missing a payment method.", { code: "payment_intent_unexpected_state", param: "payment_method" });
    }
    const card = this.paymentMethods.get(cardId);
    if (!card) throw noSuch("PaymentMethod", cardId, "payment_method");
    if (customerId && !this.customers.has(customerId)) throw noSuch("customer", customerId, "customer");
    if (customerId && card.customer !== customerId) {
      throw invalidRequest(`The provided PaymentMethod ${cardId} does not belong to the Customer ${customerId}.`, { param: "payment_method" });
    }
    return cardId;
  }

  /** Charges `cardId` for `intent` off-session: `succeeded` with its charge, or the card's decline (402 with the PaymentIntent inside the error). */
  private chargeCard(intent: Json, cardId: string): Reply {
    const decline = this.declines.get(cardId);
    if (!decline) {
      const succeeded = this.succeed(intent.id as string);
      Object.assign(this.chargeOf(intent.id as string), { customer: intent.customer, payment_method: cardId });
      return { status: 200, body: succeeded };
    }
    const error = this.declinePayment(intent, cardId, decline);
    return { status: 402, body: { error: { ...clone(error), payment_intent: clone(intent) } } };
  }

  /** POST /v1/setup_intents: a SetupIntent `requires_payment_method` with its client secret (usage defaults to `off_session`). */
  private createSetupIntent(params: Json): Json {
    const customerId = (params.customer as string | undefined) ?? null;
    if (customerId && !this.customers.has(customerId)) throw noSuch("customer", customerId, "customer");
    const automatic = params.automatic_payment_methods as Json | undefined;
    const intent = clone(objects.setup_intent) as Json;
    const intentId = id("seti");
    Object.assign(intent, {
      id: intentId,
      // Required by the SDK's SetupIntent type at this version, absent from the fixture.
      allowed_payment_method_types: null,
      automatic_payment_methods: { ...clone(objects.setup_intent.automatic_payment_methods), enabled: automatic ? String(automatic.enabled) === "true" : true },
      client_secret: `${intentId}_secret_${randomBytes(12).toString("hex")}`,
      created: this.seconds(),
      customer: customerId,
      description: params.description ?? null,
      last_setup_error: null,
      latest_attempt: null,
      livemode: false,
      mandate: null,
      metadata: mergeMetadata({}, params.metadata),
      next_action: null,
      payment_method: null,
      single_use_mandate: null,
      status: "requires_payment_method",
      usage: params.usage ?? "off_session",
    });
    this.setupIntents.set(intentId, intent);
    return intent;
  }

  /** A saved card (fixture `payment_method`, its wallet cleared), attached to `customerId` if given. */
  private newPaymentMethod(customerId: string | null): Json {
    const card = clone(objects.payment_method) as Json;
    Object.assign(card, {
      id: id("pm"),
      card: { ...clone(objects.payment_method.card), wallet: null },
      created: this.seconds(),
      customer: customerId,
      livemode: false,
      metadata: {},
    });
    this.paymentMethods.set(card.id as string, card);
    return card;
  }

  /**
   * POST /v1/checkout/sessions, `mode=subscription`: `line_items[n][price|quantity]` of
   * recurring prices, `customer` or `customer_email`, `subscription_data[metadata]`. The
   * subscription and its invoice exist only once the buyer pays
   * (`completeSubscriptionSession`).
   */
  private createSubscriptionSession(params: Json): Json {
    const requested = ([] as unknown[]).concat(params.line_items ?? []) as Json[];
    if (requested.length === 0) throw invalidRequest("Missing required param: line_items.", { code: "parameter_missing", param: "line_items" });
    const prices = requested.map((item, index) => {
      const price = this.prices.get(String(item.price));
      if (!price) throw noSuch("price", String(item.price), `line_items[${index}][price]`);
      return price;
    });
    if (!prices.some((price) => price.type === "recurring")) {
      throw invalidRequest("You must provide at least one recurring price in `subscription` mode when using prices.", { param: "line_items" });
    }
    const customerId = (params.customer as string | undefined) ?? null;
    if (customerId && !this.customers.has(customerId)) throw noSuch("customer", customerId, "customer");
    const amount = requested.reduce((sum, item, index) => sum + (prices[index]!.unit_amount as number) * Number(item.quantity ?? 1), 0);
    const subscriptionData = (params.subscription_data as Json | undefined) ?? {};
    const session = this.newSession(params, {
      mode: "subscription",
      amount_total: amount,
      amount_subtotal: amount,
      currency: prices[0]!.currency,
      customer: customerId,
      customer_email: params.customer_email ?? null,
      invoice_creation: null,
      payment_intent: null,
      payment_status: "unpaid",
    });
    this.sessionPlans.set(session.id as string, {
      items: requested.map((item) => ({ price: item.price, quantity: item.quantity ?? 1 })),
      metadata: mergeMetadata({}, subscriptionData.metadata),
    });
    return session;
  }

  /**
   * POST /v1/checkout/sessions, `mode=setup`: `customer`, `currency` (required unless
   * `allowed_payment_method_types` is given: SessionCreateParams.currency),
   * `setup_intent_data[metadata]`; its SetupIntent is made with the session.
   */
  private createSetupSession(params: Json): Json {
    if (!params.currency && !params.allowed_payment_method_types) {
      throw invalidRequest("Missing required param: currency.", { code: "parameter_missing", param: "currency" });
    }
    const customerId = (params.customer as string | undefined) ?? null;
    if (customerId && !this.customers.has(customerId)) throw noSuch("customer", customerId, "customer");
    const setupData = (params.setup_intent_data as Json | undefined) ?? {};
    const intent = this.createSetupIntent({ customer: customerId ?? undefined, metadata: setupData.metadata, description: setupData.description, usage: "off_session" });
    return this.newSession(params, {
      mode: "setup",
      amount_total: null,
      amount_subtotal: null,
      currency: params.currency ?? null,
      customer: customerId,
      customer_email: params.customer_email ?? null,
      invoice_creation: null,
      payment_intent: null,
      payment_status: "no_payment_required",
      setup_intent: intent.id,
    });
  }

  /** A Checkout Session from the fixture with the request's common values and `fields` laid over it. */
  private newSession(params: Json, fields: Json): Json {
    const session = clone(objects["checkout.session"]) as Json;
    const sessionId = id("cs_test");
    Object.assign(session, {
      id: sessionId,
      metadata: mergeMetadata({}, params.metadata),
      client_reference_id: params.client_reference_id ?? null,
      success_url: params.success_url ?? null,
      cancel_url: params.cancel_url ?? null,
      invoice: null,
      setup_intent: null,
      subscription: null,
      status: "open",
      url: `https://checkout.stripe.com/c/pay/${sessionId}`,
      created: this.seconds(),
      livemode: false,
      ...fields,
    });
    this.checkoutSessions.set(sessionId, session);
    return session;
  }

  // ---------------------------------------------------------------------------------
  // Billing: helpers
  // ---------------------------------------------------------------------------------

  /** A stored object for a route: 404 "No such ..." when absent. */
  private stored(map: Map<string, Json>, objectId: string, what: string): Json {
    const found = map.get(objectId);
    if (!found) throw noSuch(what, objectId);
    return found;
  }

  /** A stored object for a driver: an Error when absent. */
  private storedOrThrow(map: Map<string, Json>, objectId: string, what: string): Json {
    const found = map.get(objectId);
    if (!found) throw new Error(`no ${what} ${objectId}`);
    return found;
  }

  /** Copies of a driver's objects: the subscription, the invoice and its PaymentIntent. */
  private step(subscription: Json, invoice: Json): BillingStep {
    const intent = this.intent((this.paymentRowOf(invoice).payment as Json).payment_intent as string);
    return { subscription: clone(subscription), invoice: clone(invoice), paymentIntent: clone(intent) };
  }

  /** Moves the clock forward to `seconds` (never back). */
  private advanceClockTo(seconds: number): void {
    if (this.seconds() < seconds) this.now = new Date(seconds * 1000);
  }

  /** Any stored object by id (for `expand[]`). */
  private find(objectId: string): Json | undefined {
    const maps = [
      this.customers, this.products, this.prices, this.subscriptions, this.invoices, this.invoicePayments, this.setupIntents,
      this.paymentMethods, this.paymentIntents, this.charges, this.checkoutSessions, this.refunds, this.disputes,
    ];
    for (const map of maps) {
      const found = map.get(objectId);
      if (found) return found;
    }
    return undefined;
  }

  /**
   * A copy of `object` with the request's `expand[]` paths expanded (Stripe docs,
   * "Expanding responses"): an id becomes its object, `data.` walks a list, and an
   * invoice's includable `confirmation_secret` ({ client_secret, type: "payment_intent" })
   * and `payments` (its InvoicePayments) appear only when asked for. A path to a
   * property that does not exist -> 400, as Stripe answers.
   */
  private expanded(object: Json, params: Json): Json {
    const copy = clone(object);
    for (const path of expandPaths(params)) this.expandPath(copy, path.split("."), path);
    return copy;
  }

  private expandPath(target: Json, segments: string[], path: string): void {
    const [head, ...rest] = segments;
    if (head === undefined) return;
    if (target.object === "list" && head === "data") {
      for (const item of target.data as Json[]) this.expandPath(item, rest, path);
      return;
    }
    if (target.object === "invoice" && head === "confirmation_secret") {
      const intent = this.paymentIntents.get((this.paymentRowOf(target).payment as Json).payment_intent as string);
      target.confirmation_secret = intent ? { client_secret: intent.client_secret, type: "payment_intent" } : null;
      return;
    }
    if (target.object === "invoice" && head === "payments") {
      const rows = [...this.invoicePayments.values()].filter((row) => row.invoice === target.id).reverse();
      target.payments = listOf(`/v1/invoice_payments?invoice=${String(target.id)}`, clone(rows));
      if (rest.length > 0) this.expandPath(target.payments as Json, rest, path);
      return;
    }
    if (!(head in target)) throw invalidRequest(`This property cannot be expanded because it doesn't exist: ${path}.`, { param: "expand" });
    let value = target[head];
    if (typeof value === "string") {
      const found = this.find(value);
      if (!found) throw invalidRequest(`This property cannot be expanded (${path}).`, { param: "expand" });
      value = clone(found);
      target[head] = value;
    }
    if (value && typeof value === "object" && rest.length > 0) this.expandPath(value as Json, rest, path);
  }

}

/**
 * A Stripe event of `type` about `object`, in the shape of Stripe's example event
 * (fixture `event`), with a fresh id unless one is given.
 */
export function stripeEvent(type: string, object: Json, options: { id?: string; created?: number } = {}): Json {
  const event = clone(objects.event) as Json;
  Object.assign(event, {
    id: options.id ?? id("evt"),
    type,
    created: options.created ?? Math.floor(Date.now() / 1000),
    api_version: "2026-10-28.endive",
    data: { object },
    livemode: false,
    pending_webhooks: 1,
  });
  return event;
}

/**
 * The raw body and `Stripe-Signature` header of a webhook delivery, signed as Stripe
 * does (`stripe.webhooks.generateTestHeaderString`).
 */
export function signedDelivery(event: Json, secret: string, timestamp?: number): { body: string; signature: string } {
  const body = JSON.stringify(event, null, 2);
  const signature = Stripe.webhooks.generateTestHeaderString({
    payload: body,
    secret,
    ...(timestamp !== undefined ? { timestamp } : {}),
  });
  return { body, signature };
}
