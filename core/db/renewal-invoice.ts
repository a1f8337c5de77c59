/**
 * Renewal invoice entity: one paid invoice of a renewing order and the period it paid
 * (issue 13). Created in the transaction that credits the period, only if absent, so an
 * invoice credits once however often, and however concurrently, `invoice.paid` arrives.
 * Under the user's partition key, sorted by order and invoice.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a renewing order's paid invoice. */
export const renewalInvoiceSchema = {
  model: { entity: "renewalInvoice", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    orderId: { type: "string", required: true },
    /** Stripe's invoice id (`in_...`). */
    invoiceId: { type: "string", required: true },
    subscriptionId: { type: "string", required: true },
    /** The PaymentIntent that paid it, when Stripe says. */
    paymentIntentId: { type: "string" },
    /** Stripe's `billing_reason`: `subscription_create` (the first), `subscription_cycle` (a renewal), ... */
    billingReason: { type: "string", required: true },
    /** The period paid (the invoice line's `period`), ISO instants. */
    starts: { type: "string", required: true },
    expires: { type: "string", required: true },
    /** Integer, minor units of `currency`. */
    amount: { type: "number", required: true },
    currency: { type: "string", required: true },
    /** The grants the period created, root first. */
    grantIds: { type: "list", items: { type: "string" }, required: true },
    createdAt: { type: "string", required: true },
  },
  indexes: {
    byOrder: { pk: pk(["userId"]), sk: sk(["orderId", "invoiceId"]) },
  },
} as const;
