/**
 * A small local stand-in for the Stripe endpoints this service calls, for the real
 * `stripe` SDK pointed at it through `STRIPE_API_URL`:
 *   POST /v1/payment_intents, GET /v1/payment_intents/:id,
 *   POST /v1/payment_intents/:id/cancel, POST /v1/checkout/sessions,
 *   GET /v1/checkout/sessions/:id, POST /v1/checkout/sessions/:id/expire,
 *   POST /v1/refunds, GET /v1/refunds/:id, GET /v1/refunds?charge=|payment_intent=,
 *   GET /v1/charges/:id, GET /v1/disputes/:id, GET /v1/disputes?payment_intent=.
 * Objects are Stripe's own example objects (test/fixtures/stripe-objects.json) with the
 * request's values laid over them. Idempotency keys behave as Stripe documents: the
 * same key and parameters replay the first response; other parameters -> 400
 * `idempotency_error`. Tests drive payments (`succeed`, `fail`, `completeSession`),
 * what happens in the dashboard or at the card network (`dashboardRefund`,
 * `openDispute`, `closeDispute`, `failRefund`), inject failures (`failNext`), read the
 * request log, and build signed webhook events.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { parse } from "qs";
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

/** A running stand-in. */
export class StripeStandIn {
  readonly paymentIntents = new Map<string, Json>();
  readonly checkoutSessions = new Map<string, Json>();
  readonly charges = new Map<string, Json>();
  readonly refunds = new Map<string, Json>();
  readonly disputes = new Map<string, Json>();
  readonly requests: StandInRequest[] = [];
  private readonly idempotency = new Map<string, { hash: string; status: number; body: Json }>();
  private failures: Array<{ status: number; type: string; message: string; code?: string } | null> = [];
  private delays: number[] = [];
  private server?: Server;
  url = "";

  /** Starts listening on 127.0.0.1 (a free port). */
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        const params = parse(req.method === "GET" ? url.search.replace(/^\?/, "") : Buffer.concat(chunks).toString("utf8")) as Json;
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
      created: Math.floor(Date.now() / 1000),
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
      created: Math.floor(Date.now() / 1000),
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
      intent.canceled_at = Math.floor(Date.now() / 1000);
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
      created: Math.floor(Date.now() / 1000),
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
      metadata: params.metadata ?? {},
      status: "requires_payment_method",
      client_secret: `${intentId}_secret_${randomBytes(8).toString("hex")}`,
      created: Math.floor(Date.now() / 1000),
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
      created: Math.floor(Date.now() / 1000),
    });
    this.checkoutSessions.set(sessionId, session);
    return clone(session);
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
