/**
 * The `stripe` payment provider, on the official `stripe` SDK with the API version
 * pinned. Every PaymentIntent and Checkout Session carries `metadata.orderId` and
 * `metadata.userId` (so a webhook finds its order without an index) and is created with
 * a Stripe idempotency key per order attempt (`order-<orderId>-attempt-<n>`), so a
 * retried creation never makes a second PaymentIntent (Stripe docs, "Idempotent
 * requests"). `STRIPE_API_URL` points the SDK at another host (a local stand-in).
 */
import Stripe from "stripe";
import { DomainError, PaymentDeclinedError, PaymentNotFoundError, PaymentProviderError } from "../errors.js";
import type { BillingProvider, InvoiceState, PaymentMethodSetup, SetupIntentState, SubscriptionState, CheckoutSessionState, DisputeState, Payment, PaymentIntentState, PaymentProvider, PaymentRequest, RefundState } from "./provider.js";

/** The Stripe API version this code is written against (sent on every request). */
export const STRIPE_API_VERSION = "2026-10-28.endive" as const;

/**
 * Smallest charge per currency, in minor units (Stripe docs, "Minimum and maximum charge
 * amounts"). Currencies not listed get 1.
 */
const MINIMUM_CHARGE: Record<string, number> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250,
  eur: 50, gbp: 30, hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300,
  nzd: 50, pln: 200, ron: 200, sek: 300, sgd: 50, thb: 1000,
};

/** Largest amount Stripe charges in one payment, in minor units (8 digits, any currency). */
export const MAXIMUM_CHARGE = 99_999_999;

/** Settings of the Stripe provider. */
export interface StripeProviderOptions {
  /** `sk_test_...` / `sk_live_...` (or `rk_...`). */
  secretKey: string;
  /** Base URL of the Stripe API (`STRIPE_API_URL`), e.g. `http://127.0.0.1:12111`; default Stripe's. */
  apiUrl?: string | undefined;
  /** Per-request timeout in ms (default {@link STRIPE_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** SDK network retries (default {@link STRIPE_NETWORK_RETRIES}; safe, writes carry idempotency keys). */
  maxNetworkRetries?: number;
}

/**
 * Stripe calls must end inside the function's time (25 s, infra/api.ts): a 5 s timeout
 * and one retry bound a call to about 10 s, so a request that makes two calls (read an
 * attempt, then create the next) still answers before the function is cut off.
 */
export const STRIPE_TIMEOUT_MS = 5_000;

/** SDK network retries per call (one retry: see {@link STRIPE_TIMEOUT_MS}). */
export const STRIPE_NETWORK_RETRIES = 1;

/** Builds the SDK client for `options` (exported for tests that talk to the same stand-in). */
export function createStripeClient(options: StripeProviderOptions): Stripe {
  const config: ConstructorParameters<typeof Stripe>[1] = {
    apiVersion: STRIPE_API_VERSION,
    maxNetworkRetries: options.maxNetworkRetries ?? STRIPE_NETWORK_RETRIES,
    timeout: options.timeoutMs ?? STRIPE_TIMEOUT_MS,
    telemetry: false,
  };
  if (options.apiUrl) {
    const url = new URL(options.apiUrl);
    config.host = url.hostname;
    config.protocol = url.protocol === "http:" ? "http" : "https";
    if (url.port) config.port = url.port;
  }
  return new Stripe(options.secretKey, config);
}

/**
 * The SDK's error as a PaymentProviderError; Stripe's 404 (`resource_missing`: no such
 * object) as a PaymentNotFoundError, which is an answer, not a failure.
 */
function providerError(action: string, error: unknown): PaymentProviderError {
  if (error instanceof PaymentProviderError) return error;
  if (error instanceof Stripe.errors.StripeError) {
    const details = {
      type: error.type,
      ...(error.code ? { stripeCode: error.code } : {}),
      ...(error.statusCode ? { statusCode: error.statusCode } : {}),
    };
    if (error.statusCode === 404) return new PaymentNotFoundError(`Stripe does not know what it was asked to ${action}: ${error.message}`, details);
    if (error instanceof Stripe.errors.StripeCardError) {
      return new PaymentDeclinedError(`Stripe failed to ${action}: ${error.message}`, {
        ...details,
        stripeCode: error.code ?? "card_declined",
        ...(error.decline_code ? { declineCode: error.decline_code } : {}),
        ...(error.payment_intent?.id ? { paymentIntentId: error.payment_intent.id } : {}),
      });
    }
    return new PaymentProviderError(`Stripe failed to ${action}: ${error.message}`, details);
  }
  return new PaymentProviderError(`Stripe failed to ${action}.`);
}

const intentState = (intent: Stripe.PaymentIntent): PaymentIntentState => ({
  id: intent.id,
  status: intent.status,
  amount: intent.amount,
  amountReceived: intent.amount_received,
  amountRefunded: typeof intent.latest_charge === "object" && intent.latest_charge !== null ? intent.latest_charge.amount_refunded : 0,
  disputed: typeof intent.latest_charge === "object" && intent.latest_charge !== null ? intent.latest_charge.disputed : false,
  currency: intent.currency,
  metadata: intent.metadata ?? {},
  lastPaymentError: intent.last_payment_error?.message ?? undefined,
  receiptUrl: typeof intent.latest_charge === "object" && intent.latest_charge !== null ? (intent.latest_charge.receipt_url ?? undefined) : undefined,
});

const sessionState = (session: Stripe.Checkout.Session): CheckoutSessionState => ({
  id: session.id,
  status: session.status ?? "open",
  paymentStatus: session.payment_status,
  paymentIntentId: typeof session.payment_intent === "string" ? session.payment_intent : session.payment_intent?.id,
  metadata: session.metadata ?? {},
});

const refundState = (refund: Stripe.Refund): RefundState => ({
  id: refund.id,
  amount: refund.amount,
  currency: refund.currency,
  status: refund.status ?? "pending",
  paymentIntentId: typeof refund.payment_intent === "string" ? refund.payment_intent : refund.payment_intent?.id,
  metadata: refund.metadata ?? {},
});

const disputeState = (dispute: Stripe.Dispute): DisputeState => ({
  id: dispute.id,
  status: dispute.status,
  amount: dispute.amount,
  currency: dispute.currency,
  paymentIntentId: typeof dispute.payment_intent === "string" ? dispute.payment_intent : dispute.payment_intent?.id,
});

/** PaymentIntent statuses Stripe lets us cancel (Stripe docs, "Cancel a PaymentIntent"). */
const CANCELLABLE = new Set(["requires_payment_method", "requires_capture", "requires_confirmation", "requires_action"]);

/**
 * The Stripe Product id of an offer: `uc-<offerId>`. Stripe lets the caller choose a
 * product's id (API reference, "Create a product": `id`), which makes finding it one
 * retrieve, and creating it twice impossible.
 */
export const productIdOf = (offerId: string): string => `uc-${offerId}`;

/**
 * An invoice as core reads it. At API version 2026-10-28 its subscription and that
 * subscription's metadata are under `parent.subscription_details`, its PaymentIntent in
 * `payments` (expanded), and the service period on its subscription line, not the
 * invoice's own `period_start`/`period_end` (Stripe API reference, "The Invoice object").
 */
const invoiceState = (invoice: Stripe.Invoice): InvoiceState => {
  const details = invoice.parent?.subscription_details;
  const line = invoice.lines.data.find((item) => item.parent?.type === "subscription_item_details") ?? invoice.lines.data[0];
  const payment = invoice.payments?.data.find((entry) => entry.payment.type === "payment_intent")?.payment.payment_intent;
  return {
    id: invoice.id ?? "",
    status: invoice.status ?? "draft",
    billingReason: invoice.billing_reason ?? "manual",
    subscriptionId: typeof details?.subscription === "string" ? details.subscription : details?.subscription?.id,
    metadata: (details?.metadata ?? {}) as Record<string, string>,
    amountPaid: invoice.amount_paid,
    currency: invoice.currency,
    period: line ? { start: line.period.start, end: line.period.end } : undefined,
    paymentIntentId: typeof payment === "string" ? payment : payment?.id,
  };
};

/** A subscription as core reads it: at API version 2026-10-28 the period is on its items (`current_period_end`). */
const subscriptionState = (subscription: Stripe.Subscription): SubscriptionState => ({
  id: subscription.id,
  status: subscription.status,
  cancelAtPeriodEnd: subscription.cancel_at_period_end,
  currentPeriodEnd: subscription.items.data[0]?.current_period_end,
  metadata: subscription.metadata ?? {},
});

/**
 * The offer's Stripe Product (`productId`), created when Stripe does not know it; one
 * created meanwhile by a concurrent order (Stripe refuses a second product with the id)
 * is taken as it is.
 * @throws the SDK's errors other than those two answers
 */
async function ensureProduct(stripe: Stripe, productId: string, offer: { offerId: string; offerName: string }): Promise<void> {
  const known = await stripe.products.retrieve(productId).then(
    () => true,
    (error: unknown) => {
      if (error instanceof Stripe.errors.StripeError && error.statusCode === 404) return false;
      throw error;
    },
  );
  if (known) return;
  try {
    await stripe.products.create({ id: productId, name: offer.offerName, metadata: { offerId: offer.offerId } }, { idempotencyKey: `product-${productId}` });
  } catch (error) {
    if (!(error instanceof Stripe.errors.StripeError) || error.code !== "resource_already_exists") throw error;
  }
}

/** Stripe Billing: customers, recurring prices, invoices and subscriptions (see {@link BillingProvider}). */
function stripeBilling(stripe: Stripe): BillingProvider {
  return {
    async createCustomer({ userId, idempotencyKey }) {
      try {
        const customer = await stripe.customers.create({ metadata: { userId } }, { idempotencyKey });
        return { customerId: customer.id };
      } catch (error) {
        throw providerError(`create the customer of user ${userId}`, error);
      }
    },

    async recurringPrice(request) {
      const productId = productIdOf(request.offerId);
      try {
        const found = await stripe.prices.list({ lookup_keys: [request.lookupKey], active: true, limit: 1 });
        const existing = found.data[0];
        if (existing) return { productId: typeof existing.product === "string" ? existing.product : existing.product.id, priceId: existing.id };
        await ensureProduct(stripe, productId, request);
        const price = await stripe.prices.create(
          {
            product: productId,
            currency: request.currency,
            unit_amount: request.amount,
            recurring: { interval: request.recurring.interval, interval_count: request.recurring.intervalCount },
            lookup_key: request.lookupKey,
            metadata: { offerId: request.offerId },
          },
          { idempotencyKey: `price-${request.lookupKey}` },
        );
        return { productId, priceId: price.id };
      } catch (error) {
        throw providerError(`find or create the price ${request.lookupKey}`, error);
      }
    },

    async retrieveInvoice(invoiceId) {
      try {
        return invoiceState(await stripe.invoices.retrieve(invoiceId, { expand: ["payments"] }));
      } catch (error) {
        throw providerError(`read invoice ${invoiceId}`, error);
      }
    },

    async createSetup({ userId, customerId, currency, checkout }): Promise<PaymentMethodSetup> {
      const metadata = { userId };
      try {
        if (checkout) {
          const session = await stripe.checkout.sessions.create({
            mode: "setup",
            customer: customerId,
            currency,
            success_url: checkout.successUrl,
            cancel_url: checkout.cancelUrl,
            metadata,
            setup_intent_data: { metadata },
          });
          return { provider: "stripe_checkout", checkoutSessionId: session.id, url: session.url ?? "" };
        }
        const intent = await stripe.setupIntents.create({ customer: customerId, usage: "off_session", automatic_payment_methods: { enabled: true }, metadata });
        return { provider: "stripe", setupIntentId: intent.id, clientSecret: intent.client_secret ?? "" };
      } catch (error) {
        throw providerError(`start saving a payment method for user ${userId}`, error);
      }
    },

    async payOffSession({ paymentIntentId, paymentMethodId, idempotencyKey }) {
      try {
        return intentState(await stripe.paymentIntents.confirm(paymentIntentId, { payment_method: paymentMethodId, off_session: true }, { idempotencyKey }));
      } catch (error) {
        throw providerError(`pay PaymentIntent ${paymentIntentId} off-session`, error);
      }
    },

    async defaultPaymentMethod(customerId) {
      try {
        const customer = await stripe.customers.retrieve(customerId);
        if (customer.deleted) return undefined;
        const method = customer.invoice_settings?.default_payment_method;
        return typeof method === "string" ? method : (method?.id ?? undefined);
      } catch (error) {
        throw providerError(`read customer ${customerId}`, error);
      }
    },

    async retrieveSetupIntent(setupIntentId): Promise<SetupIntentState> {
      try {
        const intent = await stripe.setupIntents.retrieve(setupIntentId);
        return {
          id: intent.id,
          status: intent.status,
          customerId: typeof intent.customer === "string" ? intent.customer : intent.customer?.id,
          paymentMethodId: typeof intent.payment_method === "string" ? intent.payment_method : intent.payment_method?.id,
          metadata: intent.metadata ?? {},
        };
      } catch (error) {
        throw providerError(`read SetupIntent ${setupIntentId}`, error);
      }
    },

    async invoiceOfPayment(paymentIntentId) {
      try {
        const found = await stripe.invoicePayments.list({ payment: { type: "payment_intent", payment_intent: paymentIntentId }, limit: 1 });
        const invoice = found.data[0]?.invoice;
        return typeof invoice === "string" ? invoice : invoice?.id;
      } catch (error) {
        throw providerError(`find the invoice of PaymentIntent ${paymentIntentId}`, error);
      }
    },

    async retrieveSubscription(subscriptionId) {
      try {
        return subscriptionState(await stripe.subscriptions.retrieve(subscriptionId));
      } catch (error) {
        throw providerError(`read subscription ${subscriptionId}`, error);
      }
    },

    async cancelSubscription(subscriptionId, atPeriodEnd) {
      try {
        const current = await stripe.subscriptions.retrieve(subscriptionId);
        if (current.status === "canceled" || current.status === "incomplete_expired") return subscriptionState(current);
        if (atPeriodEnd) {
          if (current.cancel_at_period_end) return subscriptionState(current);
          return subscriptionState(await stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: true }, { idempotencyKey: `cancel-at-period-end-${subscriptionId}` }));
        }
        return subscriptionState(await stripe.subscriptions.cancel(subscriptionId, {}, { idempotencyKey: `cancel-${subscriptionId}` }));
      } catch (error) {
        throw providerError(`cancel subscription ${subscriptionId}`, error);
      }
    },
  };
}

/**
 * A renewing order's payment: a Subscription created `default_incomplete` (its first
 * invoice open, paid by the buyer with the returned client secret, the card then saved
 * as the subscription's default for renewals), or a Checkout Session in `subscription`
 * mode, which creates the subscription once paid. The subscription carries the order's
 * metadata (`subscription_data.metadata` through Checkout), so each of its invoices
 * leads back to the order through `parent.subscription_details.metadata`. At API version
 * 2026-10-28 the client secret is the invoice's `confirmation_secret` (expanded) and
 * its PaymentIntent is found in the invoice's `payments` (Stripe API reference,
 * "Subscriptions: create", "Invoices: the Invoice object").
 * @throws the SDK's errors (the caller maps them)
 */
async function subscribe(
  stripe: Stripe,
  request: PaymentRequest,
  renewing: NonNullable<PaymentRequest["renewing"]>,
  metadata: Record<string, string>,
  idempotencyKey: string,
): Promise<Payment> {
  const items = [{ price: renewing.priceId, quantity: renewing.quantity }];
  if (request.checkout) {
    const session = await stripe.checkout.sessions.create(
      {
        mode: "subscription",
        customer: renewing.customerId,
        line_items: items,
        success_url: request.checkout.successUrl,
        cancel_url: request.checkout.cancelUrl,
        client_reference_id: request.orderId,
        metadata,
        subscription_data: { metadata },
      },
      { idempotencyKey: `${idempotencyKey}-checkout` },
    );
    return { provider: "stripe_checkout", checkoutSessionId: session.id, url: session.url ?? "" };
  }
  const subscription = await stripe.subscriptions.create(
    {
      customer: renewing.customerId,
      items,
      payment_behavior: "default_incomplete",
      payment_settings: { save_default_payment_method: "on_subscription" },
      metadata,
      expand: ["latest_invoice.confirmation_secret", "latest_invoice.payments"],
    },
    { idempotencyKey: `${idempotencyKey}-subscription` },
  );
  const invoice = typeof subscription.latest_invoice === "object" ? subscription.latest_invoice : null;
  const intent = invoice?.payments?.data.find((payment) => payment.payment.type === "payment_intent")?.payment.payment_intent;
  const paymentIntentId = typeof intent === "string" ? intent : intent?.id;
  const clientSecret = invoice?.confirmation_secret?.client_secret;
  if (!paymentIntentId || !clientSecret) {
    throw new PaymentProviderError(`Stripe created subscription ${subscription.id} without a first invoice to pay.`, { subscriptionId: subscription.id });
  }
  return { provider: "stripe", paymentIntentId, clientSecret, subscriptionId: subscription.id };
}

/** Creates the Stripe provider. */
export function createStripeProvider(options: StripeProviderOptions): PaymentProvider {
  const stripe = createStripeClient(options);
  return {
    name: "stripe",
    billing: stripeBilling(stripe),

    checkAmount(amount, currency) {
      const minimum = MINIMUM_CHARGE[currency] ?? 1;
      if (amount < minimum || amount > MAXIMUM_CHARGE) {
        throw new DomainError(
          "amount_out_of_range",
          `Stripe charges between ${minimum} and ${MAXIMUM_CHARGE} (minor units of ${currency}); the total is ${amount}.`,
          { amount, currency, minimum, maximum: MAXIMUM_CHARGE },
        );
      }
    },

    async createPayment(request: PaymentRequest): Promise<Payment> {
      const metadata = {
        orderId: request.orderId,
        userId: request.userId,
        offerId: request.offerId,
        attempt: String(request.attempt),
      };
      const idempotencyKey = `order-${request.orderId}-attempt-${request.attempt}`;
      try {
        if (request.renewing) return await subscribe(stripe, request, request.renewing, metadata, idempotencyKey);
        if (request.checkout) {
          const session = await stripe.checkout.sessions.create(
            {
              mode: "payment",
              line_items: [
                {
                  quantity: 1,
                  price_data: {
                    currency: request.currency,
                    unit_amount: request.amount,
                    product_data: { name: request.offerName },
                  },
                },
              ],
              success_url: request.checkout.successUrl,
              cancel_url: request.checkout.cancelUrl,
              client_reference_id: request.orderId,
              metadata,
              payment_intent_data: { metadata },
            },
            { idempotencyKey: `${idempotencyKey}-checkout` },
          );
          return { provider: "stripe_checkout", checkoutSessionId: session.id, url: session.url ?? "" };
        }
        const intent = await stripe.paymentIntents.create(
          {
            amount: request.amount,
            currency: request.currency,
            automatic_payment_methods: { enabled: true },
            description: `Order ${request.orderId}: ${request.offerName}`,
            ...(request.customerId ? { customer: request.customerId } : {}),
            metadata,
          },
          { idempotencyKey },
        );
        return { provider: "stripe", paymentIntentId: intent.id, clientSecret: intent.client_secret ?? "" };
      } catch (error) {
        throw providerError("create the payment", error);
      }
    },

    async retrievePaymentIntent(paymentIntentId): Promise<PaymentIntentState> {
      try {
        // With its charge, so that a refund made before the payment was applied is seen.
        return intentState(await stripe.paymentIntents.retrieve(paymentIntentId, { expand: ["latest_charge"] }));
      } catch (error) {
        throw providerError(`read PaymentIntent ${paymentIntentId}`, error);
      }
    },

    async cancelPaymentIntent(paymentIntentId): Promise<PaymentIntentState> {
      try {
        const intent = await stripe.paymentIntents.retrieve(paymentIntentId);
        if (!CANCELLABLE.has(intent.status)) return intentState(intent);
        try {
          return intentState(await stripe.paymentIntents.cancel(paymentIntentId, {}, { idempotencyKey: `cancel-${paymentIntentId}` }));
        } catch (error) {
          // It moved on between the read and the cancel (the buyer paid): say how it is now.
          if (error instanceof Stripe.errors.StripeInvalidRequestError) return intentState(await stripe.paymentIntents.retrieve(paymentIntentId));
          throw error;
        }
      } catch (error) {
        throw providerError(`cancel PaymentIntent ${paymentIntentId}`, error);
      }
    },

    async retrieveCheckoutSession(checkoutSessionId): Promise<CheckoutSessionState> {
      try {
        return sessionState(await stripe.checkout.sessions.retrieve(checkoutSessionId));
      } catch (error) {
        throw providerError(`read Checkout Session ${checkoutSessionId}`, error);
      }
    },

    async expireCheckoutSession(checkoutSessionId): Promise<CheckoutSessionState> {
      try {
        const session = await stripe.checkout.sessions.retrieve(checkoutSessionId);
        if (session.status !== "open") return sessionState(session);
        try {
          return sessionState(await stripe.checkout.sessions.expire(checkoutSessionId, {}, { idempotencyKey: `expire-${checkoutSessionId}` }));
        } catch (error) {
          // Completed between the read and the expiry: say how it is now.
          if (error instanceof Stripe.errors.StripeInvalidRequestError) return sessionState(await stripe.checkout.sessions.retrieve(checkoutSessionId));
          throw error;
        }
      } catch (error) {
        throw providerError(`expire Checkout Session ${checkoutSessionId}`, error);
      }
    },

    async refund(request): Promise<RefundState> {
      try {
        const refund = await stripe.refunds.create(
          {
            payment_intent: request.paymentIntentId,
            amount: request.amount,
            metadata: request.metadata,
            ...(request.reason ? { reason: request.reason } : {}),
          },
          { idempotencyKey: request.idempotencyKey },
        );
        return refundState(refund);
      } catch (error) {
        throw providerError(`refund PaymentIntent ${request.paymentIntentId}`, error);
      }
    },

    async listRefunds(paymentIntentId): Promise<RefundState[]> {
      try {
        const refunds: RefundState[] = [];
        for await (const refund of stripe.refunds.list({ payment_intent: paymentIntentId, limit: 100 })) refunds.push(refundState(refund));
        return refunds;
      } catch (error) {
        throw providerError(`list the refunds of PaymentIntent ${paymentIntentId}`, error);
      }
    },

    async listDisputes(paymentIntentId): Promise<DisputeState[]> {
      try {
        const disputes: DisputeState[] = [];
        for await (const dispute of stripe.disputes.list({ payment_intent: paymentIntentId, limit: 100 })) disputes.push(disputeState(dispute));
        return disputes;
      } catch (error) {
        throw providerError(`list the disputes of PaymentIntent ${paymentIntentId}`, error);
      }
    },

    async retrieveDispute(disputeId): Promise<DisputeState> {
      try {
        return disputeState(await stripe.disputes.retrieve(disputeId));
      } catch (error) {
        throw providerError(`read dispute ${disputeId}`, error);
      }
    },
  };
}
