/**
 * The payment-provider interface: the only way core reaches a payment service
 * (DESIGN.md "Data flows one way"). Implementations: `stripe` (PaymentIntents and
 * Checkout Sessions) and `manual` (bank transfer, invoice, local runs: an operator
 * confirms the order).
 */

/** What the buyer's app needs to collect the payment (API.md `Payment`). */
export type Payment =
  | {
      provider: "stripe";
      paymentIntentId: string;
      clientSecret: string;
      /** A renewing order's Stripe Subscription, whose first invoice this PaymentIntent pays. */
      subscriptionId?: string | undefined;
    }
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
  /**
   * A renewing order (issue 13): a Subscription of `quantity` units of the recurring
   * `priceId` for `customerId` (or a Checkout Session in `subscription` mode) instead of a
   * one-time payment; the provider then bills every period by itself.
   */
  renewing?: { customerId: string; priceId: string; quantity: number } | undefined;
  /**
   * The buyer's customer at the provider, for a payment a saved method pays off-session
   * (an automatic top-up, core/top-ups.ts): Stripe charges a customer's saved card only
   * on a PaymentIntent of that customer.
   */
  customerId?: string | undefined;
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
  /** Integer, minor units of its charge already refunded (0 when none, or not read). */
  amountRefunded: number;
  /** True when its charge is disputed (false when none, or not read). */
  disputed: boolean;
  currency: string;
  metadata: Record<string, string>;
  /** The failure message of the last attempt, if any. */
  lastPaymentError?: string | undefined;
  /** Stripe's receipt page of its charge (`latest_charge.receipt_url`), when read and there is one. */
  receiptUrl?: string | undefined;
}

/** A Checkout Session as the provider reports it now. */
export interface CheckoutSessionState {
  id: string;
  /** Stripe's status: `open`, `complete` or `expired`. */
  status: string;
  /** Stripe's `payment_status`: `paid`, `unpaid`, `no_payment_required`. */
  paymentStatus: string;
  /** The session's PaymentIntent, once there is one. */
  paymentIntentId?: string | undefined;
  metadata: Record<string, string>;
}

/** A refund to make at the provider. */
export interface RefundRequest {
  /** The succeeded PaymentIntent whose charge is refunded. */
  paymentIntentId: string;
  /** Integer >= 1, minor units of the payment's currency. */
  amount: number;
  /** Stripe idempotency key: the same key returns the same refund, never a second one. */
  idempotencyKey: string;
  /** Kept on the Stripe Refund (`orderId`, `userId`, ...), so its events lead back to the order. */
  metadata: Record<string, string>;
  /** Stripe's `reason`: `duplicate` or `requested_by_customer`. */
  reason?: "duplicate" | "requested_by_customer" | undefined;
}

/** A refund as the provider reports it. */
export interface RefundState {
  id: string;
  /** Integer, minor units. */
  amount: number;
  currency: string;
  /** Stripe's status: `pending`, `succeeded`, `failed`, `canceled`, `requires_action`. */
  status: string;
  paymentIntentId?: string | undefined;
  metadata: Record<string, string>;
}

/** A dispute (chargeback) as the provider reports it. */
export interface DisputeState {
  id: string;
  /** Stripe's status: `warning_needs_response`, `needs_response`, `under_review`, `won`, `lost`, `warning_closed`, ... */
  status: string;
  /** Integer, minor units. */
  amount: number;
  currency: string;
  paymentIntentId?: string | undefined;
}

/** A recurring price to find, or create, at the provider (a renewing offer in one currency). */
export interface RecurringPriceRequest {
  offerId: string;
  /** The product's name shown to the buyer (the offer's name). */
  offerName: string;
  /** Lowercase ISO 4217. */
  currency: string;
  /** Integer, minor units per period. */
  amount: number;
  /** Stripe's `recurring`: `interval` and `interval_count` (core/rules/renewal.ts). */
  recurring: { interval: "day" | "week" | "month" | "year"; intervalCount: number };
  /** The price's unique name at the provider (core/rules/renewal.ts `priceLookupKey`). */
  lookupKey: string;
}

/** An invoice of a renewing subscription, as the provider reports it now. */
export interface InvoiceState {
  id: string;
  /** Stripe's status: `draft`, `open`, `paid`, `uncollectible`, `void`. */
  status: string;
  /** Stripe's `billing_reason`: `subscription_create`, `subscription_cycle`, ... */
  billingReason: string;
  /** The subscription that made it (`parent.subscription_details.subscription`), if any. */
  subscriptionId?: string | undefined;
  /** The subscription's metadata when the invoice was finalized (`parent.subscription_details.metadata`): ours carry `orderId` and `userId`. */
  metadata: Record<string, string>;
  /** Integer, minor units paid. */
  amountPaid: number;
  currency: string;
  /** The service period of its subscription line (`lines.data[].period`), epoch seconds; absent without one. */
  period?: { start: number; end: number } | undefined;
  /** The PaymentIntent that paid it (from `payments`), if any. */
  paymentIntentId?: string | undefined;
}

/** A renewing subscription as the provider reports it now. */
export interface SubscriptionState {
  id: string;
  /** Stripe's status: `incomplete`, `incomplete_expired`, `active`, `past_due`, `unpaid`, `canceled`, `trialing`, `paused`. */
  status: string;
  /** It ends when the current period ends (`cancel_at_period_end`). */
  cancelAtPeriodEnd: boolean;
  /** End of the current period, epoch seconds (its item's `current_period_end`), if any. */
  currentPeriodEnd?: number | undefined;
  /** Ours carry `orderId` and `userId`. */
  metadata: Record<string, string>;
}

/** How the buyer saves a card for later off-session payments (API.md `POST /users/{userId}/payment-methods/setup`). */
export type PaymentMethodSetup =
  | { provider: "stripe"; setupIntentId: string; clientSecret: string }
  | { provider: "stripe_checkout"; checkoutSessionId: string; url: string };

/** A SetupIntent as the provider reports it now. */
export interface SetupIntentState {
  id: string;
  /** Stripe's status: `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`, `canceled`, `succeeded`. */
  status: string;
  customerId?: string | undefined;
  /** The saved payment method (`pm_...`), once succeeded. */
  paymentMethodId?: string | undefined;
  metadata: Record<string, string>;
}

/**
 * Renewals at a provider that bills by itself (Stripe Billing, issue 13): customers and
 * recurring prices. Absent from providers that cannot renew (`manual`).
 */
export interface BillingProvider {
  /**
   * Creates the user's customer (`metadata.userId`). The same `idempotencyKey` returns the
   * same customer (Stripe keeps keys at least 24 hours), so two concurrent first orders
   * make one.
   * @throws PaymentProviderError when the provider fails
   */
  createCustomer(request: { userId: string; idempotencyKey: string }): Promise<{ customerId: string }>;
  /**
   * The active recurring price named `lookupKey`, created with its product when missing.
   * @returns the product and price ids
   * @throws PaymentProviderError when the provider fails
   */
  recurringPrice(request: RecurringPriceRequest): Promise<{ productId: string; priceId: string }>;
  /**
   * An invoice as the provider reports it now (events can be stale or forged).
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  retrieveInvoice(invoiceId: string): Promise<InvoiceState>;
  /**
   * The invoice a PaymentIntent paid (Stripe's InvoicePayments), or undefined when it paid none.
   * @throws PaymentProviderError when the provider fails
   */
  invoiceOfPayment(paymentIntentId: string): Promise<string | undefined>;
  /**
   * Starts saving a payment method for off-session use: a SetupIntent (`usage=off_session`)
   * whose client secret the buyer confirms with Stripe.js, or a Checkout Session in `setup`
   * mode. Both carry `metadata.userId`.
   * @param currency the Checkout Session's currency (Stripe needs one in setup mode to choose payment methods)
   * @throws PaymentProviderError when the provider fails
   */
  createSetup(request: { userId: string; customerId: string; currency: string; checkout?: { successUrl: string; cancelUrl: string } | undefined }): Promise<PaymentMethodSetup>;
  /**
   * Pays a PaymentIntent off-session with a saved payment method (Stripe's confirm with
   * `off_session=true`): the buyer is not there, so a card that needs their
   * authentication declines (`authentication_required`) instead of asking. The same
   * idempotency key returns the same answer, never a second charge.
   * @returns the PaymentIntent after (`succeeded`, or `processing`)
   * @throws PaymentDeclinedError when the card declines; PaymentNotFoundError (404);
   *   PaymentProviderError when the provider fails
   */
  payOffSession(request: { paymentIntentId: string; paymentMethodId: string; idempotencyKey: string }): Promise<PaymentIntentState>;
  /**
   * The customer's default payment method at the provider (Stripe's
   * `invoice_settings.default_payment_method`), if any.
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  defaultPaymentMethod(customerId: string): Promise<string | undefined>;
  /**
   * A SetupIntent as the provider reports it now.
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  retrieveSetupIntent(setupIntentId: string): Promise<SetupIntentState>;
  /**
   * A subscription as the provider reports it now.
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  retrieveSubscription(subscriptionId: string): Promise<SubscriptionState>;
  /**
   * Cancels a subscription: at the end of its current period (it renews no more), or at
   * once. Returns its state after; one already canceled is returned as it is.
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  cancelSubscription(subscriptionId: string, atPeriodEnd: boolean): Promise<SubscriptionState>;
}

/** A payment service. */
export interface PaymentProvider {
  /** `stripe` or `manual`. */
  readonly name: "stripe" | "manual";
  /** Customers and recurring prices, when the provider renews subscriptions (Stripe); else undefined. */
  readonly billing?: BillingProvider | undefined;
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
   * @throws PaymentNotFoundError when the provider does not know it (404); PaymentProviderError
   *   when the provider fails or has no PaymentIntents
   */
  retrievePaymentIntent(paymentIntentId: string): Promise<PaymentIntentState>;
  /**
   * Cancels a PaymentIntent that can still be cancelled, and returns its state after:
   * `canceled`, or, left as it is, `succeeded` (the caller must then pay the order with
   * it, never start another attempt) or `processing` (not cancellable: wait).
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  cancelPaymentIntent(paymentIntentId: string): Promise<PaymentIntentState>;
  /**
   * The current state of a Checkout Session.
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  retrieveCheckoutSession(checkoutSessionId: string): Promise<CheckoutSessionState>;
  /**
   * Expires an `open` Checkout Session so it can no longer be paid
   * (`POST /v1/checkout/sessions/{id}/expire`), and returns its state after: `expired`,
   * or `complete` left as it is (the caller pays the order with its PaymentIntent).
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  expireCheckoutSession(checkoutSessionId: string): Promise<CheckoutSessionState>;
  /**
   * Refunds (part of) a succeeded payment, once per idempotency key.
   * @throws PaymentProviderError when the provider fails or refuses (already refunded, ...)
   */
  refund(request: RefundRequest): Promise<RefundState>;
  /**
   * Every refund of a PaymentIntent's charge, newest first (what the dashboard did too).
   * @throws PaymentProviderError when the provider fails
   */
  listRefunds(paymentIntentId: string): Promise<RefundState[]>;
  /**
   * A dispute as the provider reports it now (events can be stale or forged).
   * @throws PaymentNotFoundError (404); PaymentProviderError when the provider fails
   */
  retrieveDispute(disputeId: string): Promise<DisputeState>;
  /**
   * Every dispute of a PaymentIntent's charge.
   * @throws PaymentProviderError when the provider fails
   */
  listDisputes(paymentIntentId: string): Promise<DisputeState[]>;
}
