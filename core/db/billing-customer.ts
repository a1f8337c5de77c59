/**
 * Billing customer entity: the user's customer at the payment provider (a Stripe
 * Customer with `metadata.userId`), created when first needed (issue 13: renewing
 * subscriptions, saved payment methods, automatic top-ups). One per user, kept under
 * the user's partition key with their other items.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a user's billing customer. */
export const billingCustomerSchema = {
  model: { entity: "billingCustomer", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    /** The provider's customer id (`cus_...`). */
    customerId: { type: "string", required: true },
    /** The payment method saved for off-session payments (`pm_...`, from `setup_intent.succeeded`), the latest one saved. */
    paymentMethodId: { type: "string" },
    createdAt: { type: "string", required: true },
    updatedAt: { type: "string" },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk([]) },
  },
} as const;
