/**
 * The `manual` payment provider: nothing is collected online; an operator marks the
 * order paid with `POST /users/{userId}/orders/{orderId}/confirm` (bank transfer,
 * invoice, local runs without a Stripe key).
 */
import { PaymentProviderError } from "../errors.js";
import type { PaymentProvider } from "./provider.js";

/** Creates the manual provider: any non-negative amount is accepted. */
export function createManualProvider(): PaymentProvider {
  return {
    name: "manual",
    checkAmount() {},
    async createPayment() {
      return { provider: "manual" };
    },
    async retrievePaymentIntent(paymentIntentId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot read PaymentIntent ${paymentIntentId}.`);
    },
    async cancelPaymentIntent(paymentIntentId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot cancel PaymentIntent ${paymentIntentId}.`);
    },
    async retrieveCheckoutSession(checkoutSessionId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot read Checkout Session ${checkoutSessionId}.`);
    },
    async expireCheckoutSession(checkoutSessionId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot expire Checkout Session ${checkoutSessionId}.`);
    },
    async refund(request) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot refund PaymentIntent ${request.paymentIntentId}.`);
    },
    async listRefunds(paymentIntentId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot list the refunds of PaymentIntent ${paymentIntentId}.`);
    },
    async listDisputes(paymentIntentId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot list the disputes of PaymentIntent ${paymentIntentId}.`);
    },
    async retrieveDispute(disputeId) {
      throw new PaymentProviderError(`No Stripe key is configured; cannot read dispute ${disputeId}.`);
    },
  };
}
