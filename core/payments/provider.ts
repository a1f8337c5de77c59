/**
 * The payment-provider interface: the only way core reaches a payment service
 * (DESIGN.md "Data flows one way"). Implementations: `stripe` (PaymentIntents and
 * Checkout Sessions) and `manual` (bank transfer, invoice, local runs: an operator
 * confirms the order).
 */

/** What the buyer's app needs to collect the payment (API.md `Payment`). */
export type Payment =
  | { provider: "stripe"; paymentIntentId: string; clientSecret: string }
  | { provider: "stripe_checkout"; checkoutSessionId: string; url: string }
  | { provider: "manual" };

/** A request to collect an order's total. */
export interface PaymentRequest {
  orderId: string;
  userId: string;
  offerId: string;
  offerName: string;
  /** Integer, minor units of `currency` (Stripe's `amount`). */
  amount: number;
  /** Lowercase ISO 4217. */
  currency: string;
  /** 1 for the first attempt, +1 per `pay` retry; part of the provider idempotency key. */
  attempt: number;
  /** Ask for a hosted Checkout Session instead of a PaymentIntent. */
  checkout?: { successUrl: string; cancelUrl: string } | undefined;
}

/** A PaymentIntent as the provider reports it now. */
export interface PaymentIntentState {
  id: string;
  /** Stripe's status: `succeeded`, `processing`, `requires_payment_method`, `canceled`, ... */
  status: string;
  /** Integer, minor units. */
  amount: number;
  /** Integer, minor units actually received (0 until succeeded). */
  amountReceived: number;
  currency: string;
  metadata: Record<string, string>;
  /** The failure message of the last attempt, if any. */
  lastPaymentError?: string | undefined;
}

/** A payment service. */
export interface PaymentProvider {
  /** `stripe` or `manual`. */
  readonly name: "stripe" | "manual";
  /**
   * Throws a `DomainError` `amount_out_of_range` when the provider cannot charge
   * `amount` (minor units) in `currency`; does nothing otherwise.
   */
  checkAmount(amount: number, currency: string): void;
  /**
   * Starts collecting a payment. Retrying with the same `orderId` and `attempt` returns
   * the same PaymentIntent or Checkout Session (provider idempotency key).
   * @throws PaymentProviderError when the provider fails
   */
  createPayment(request: PaymentRequest): Promise<Payment>;
  /**
   * The current state of a PaymentIntent, read from the provider (events can be stale).
   * @throws PaymentProviderError when the provider fails or has no PaymentIntents
   */
  retrievePaymentIntent(paymentIntentId: string): Promise<PaymentIntentState>;
  /**
   * Cancels a PaymentIntent that can still be cancelled; one that already succeeded or
   * was cancelled is left as it is.
   * @throws PaymentProviderError when the provider fails
   */
  cancelPaymentIntent(paymentIntentId: string): Promise<void>;
}
