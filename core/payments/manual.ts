/**
 * The `manual` payment provider: nothing is collected online; an operator marks the
 * order paid with `POST /users/{userId}/orders/{orderId}/confirm` (bank transfer,
 * invoice, local runs without a Stripe key).
 */
import { PaymentProviderError } from "../errors.js";
import type { PaymentProvider } from "./provider.js";

/** Every Stripe call refuses the same way: `cannot <what>` (there is no Stripe to ask). */
function refuse(what: string): never {
  throw new PaymentProviderError(`No Stripe key is configured; cannot ${what}.`);
}

/**
 * Creates the manual provider: any non-negative amount is accepted, and a payment is
 * `{ provider: "manual" }`. Every call that needs Stripe (reading, cancelling or expiring
 * a payment, refunds, disputes) throws a PaymentProviderError naming what it could not do.
 */
export function createManualProvider(): PaymentProvider {
  return {
    name: "manual",
    checkAmount() {},
    async createPayment() {
      return { provider: "manual" };
    },
    retrievePaymentIntent: async (id) => refuse(`read PaymentIntent ${id}`),
    cancelPaymentIntent: async (id) => refuse(`cancel PaymentIntent ${id}`),
    retrieveCheckoutSession: async (id) => refuse(`read Checkout Session ${id}`),
    expireCheckoutSession: async (id) => refuse(`expire Checkout Session ${id}`),
    refund: async (request) => refuse(`refund PaymentIntent ${request.paymentIntentId}`),
    listRefunds: async (id) => refuse(`list the refunds of PaymentIntent ${id}`),
    listDisputes: async (id) => refuse(`list the disputes of PaymentIntent ${id}`),
    retrieveDispute: async (id) => refuse(`read dispute ${id}`),
  };
}
