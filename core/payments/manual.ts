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
    async cancelPaymentIntent() {},
  };
}
