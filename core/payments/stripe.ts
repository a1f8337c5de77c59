/**
 * The `stripe` payment provider, on the official `stripe` SDK with the API version
 * pinned. Every PaymentIntent and Checkout Session carries `metadata.orderId` and
 * `metadata.userId` (so a webhook finds its order without an index) and is created with
 * a Stripe idempotency key per order attempt (`order-<orderId>-attempt-<n>`), so a
 * retried creation never makes a second PaymentIntent (Stripe docs, "Idempotent
 * requests"). `STRIPE_API_URL` points the SDK at another host (a local stand-in).
 */
import Stripe from "stripe";
import { DomainError, PaymentProviderError } from "../errors.js";
import type { Payment, PaymentIntentState, PaymentProvider, PaymentRequest } from "./provider.js";

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
  /** Per-request timeout in ms (default 10 s, well inside a Lambda's time). */
  timeoutMs?: number;
  /** SDK network retries (default 2; safe, requests carry idempotency keys). */
  maxNetworkRetries?: number;
}

/** Builds the SDK client for `options` (exported for tests that talk to the same stand-in). */
export function createStripeClient(options: StripeProviderOptions): Stripe {
  const config: ConstructorParameters<typeof Stripe>[1] = {
    apiVersion: STRIPE_API_VERSION,
    maxNetworkRetries: options.maxNetworkRetries ?? 2,
    timeout: options.timeoutMs ?? 10_000,
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

function providerError(action: string, error: unknown): PaymentProviderError {
  if (error instanceof Stripe.errors.StripeError) {
    return new PaymentProviderError(`Stripe failed to ${action}: ${error.message}`, {
      type: error.type,
      ...(error.code ? { stripeCode: error.code } : {}),
      ...(error.statusCode ? { statusCode: error.statusCode } : {}),
    });
  }
  return new PaymentProviderError(`Stripe failed to ${action}.`);
}

/** Creates the Stripe provider. */
export function createStripeProvider(options: StripeProviderOptions): PaymentProvider {
  const stripe = createStripeClient(options);
  return {
    name: "stripe",

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
        const intent = await stripe.paymentIntents.retrieve(paymentIntentId);
        return {
          id: intent.id,
          status: intent.status,
          amount: intent.amount,
          amountReceived: intent.amount_received,
          currency: intent.currency,
          metadata: intent.metadata ?? {},
          lastPaymentError: intent.last_payment_error?.message ?? undefined,
        };
      } catch (error) {
        throw providerError(`read PaymentIntent ${paymentIntentId}`, error);
      }
    },

    async cancelPaymentIntent(paymentIntentId) {
      try {
        const intent = await stripe.paymentIntents.retrieve(paymentIntentId);
        if (intent.status === "succeeded" || intent.status === "canceled") return;
        await stripe.paymentIntents.cancel(paymentIntentId, {}, { idempotencyKey: `cancel-${paymentIntentId}` });
      } catch (error) {
        throw providerError(`cancel PaymentIntent ${paymentIntentId}`, error);
      }
    },
  };
}
