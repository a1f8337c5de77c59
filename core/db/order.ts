/**
 * Order entity: a user's intent to buy an offer, with the offer's terms copied at
 * creation (API.md "Orders and payment"): the stored shape of `OrderRecord`, whose
 * statuses and transitions live in core/rules/order-lifecycle.ts. Keyed by user, sorted
 * by ULID order id, so a user's orders list newest first with one Query.
 */
import { CYCLES } from "../rules/cycles.js";
import { ORDER_STATUSES, PAYMENT_PROVIDERS } from "../rules/order-lifecycle.js";
import { TABLE } from "./table.js";
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of an order. */
export const orderSchema = {
  model: { entity: "order", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    orderId: { type: "string", required: true },
    offerId: { type: "string", required: true },
    offerName: { type: "string", required: true },
    offerGroup: { type: "string", required: true },
    kind: { type: "string", required: true },
    status: { type: ORDER_STATUSES, required: true },
    quantity: { type: "number", required: true },
    total: {
      type: "map",
      required: true,
      properties: {
        amount: { type: "number", required: true },
        currency: { type: "string", required: true },
      },
    },
    tokenCount: { type: "number", required: true },
    tokens: { type: "number", required: true },
    cycle: { type: CYCLES, required: true },
    customCycleSeconds: { type: "number" },
    appendDate: { type: "boolean", required: true },
    /** The start the buyer asked for (a future instant), if any. */
    requestedStarts: { type: "string" },
    starts: { type: "string" },
    expires: { type: "string" },
    /** Latest expiry among all the order's grants; absent while unpaid or if one never expires. */
    grantsExpire: { type: "string" },
    combinedItems: {
      type: "list",
      required: true,
      items: {
        type: "map",
        properties: {
          offerId: { type: "string", required: true },
          offerGroup: { type: "string", required: true },
          quantity: { type: "number", required: true },
          tokenCount: { type: "number", required: true },
          tokens: { type: "number", required: true },
          appendDate: { type: "boolean", required: true },
          /** Worth in minor units of the order's currency (price × item quantity × order quantity); absent without a price in it, and on older orders. */
          value: { type: "number" },
          grantId: { type: "string" },
          starts: { type: "string" },
          expires: { type: "string" },
        },
      },
    },
    history: {
      type: "list",
      required: true,
      items: {
        type: "map",
        properties: {
          date: { type: "string", required: true },
          status: { type: "string", required: true },
          message: { type: "string", required: true },
          /** What the payment provider said, as JSON text (PaymentIntent id, status, amounts). */
          payload: { type: "string" },
        },
      },
    },
    provider: { type: PAYMENT_PROVIDERS, required: true },
    paymentIntentId: { type: "string" },
    /** Every PaymentIntent ever created for this order (retries), newest last. */
    paymentIntentIds: { type: "list", items: { type: "string" }, required: true },
    /** `auto` for a renewing order (a Stripe Subscription); absent otherwise. */
    renewal: { type: ["auto"] as const },
    /** A renewing order's Stripe Subscription id. */
    subscriptionId: { type: "string" },
    /** Stripe's receipt page of the payment that paid it (`latest_charge.receipt_url`). */
    receiptUrl: { type: "string" },
    /** An automatic top-up's order: the id of the `top_up.requested` event it answers (core/top-ups.ts). */
    topUpEventId: { type: "string" },
    checkoutSessionId: { type: "string" },
    /** Every Checkout Session ever created for this order, newest last. */
    checkoutSessionIds: { type: "list", items: { type: "string" } },
    /** The Checkout URLs the order was created with. */
    checkout: {
      type: "map",
      properties: {
        successUrl: { type: "string", required: true },
        cancelUrl: { type: "string", required: true },
      },
    },
    attempt: { type: "number", required: true },
    /** The attempt whose payment is recorded here (below `attempt`: started, answer not yet stored). */
    recordedAttempt: { type: "number" },
    /** The PaymentIntent that paid the order. */
    paidPaymentIntentId: { type: "string" },
    /** Refunds of the order's payment (core/rules/order-lifecycle.ts `OrderRefund`). */
    refunds: {
      type: "list",
      items: {
        type: "map",
        properties: {
          number: { type: "number", required: true },
          refundId: { type: "string" },
          amount: { type: "number", required: true },
          tokens: { type: "number", required: true },
          tokensShort: { type: "number", required: true },
          source: { type: ["api", "stripe"] as const, required: true },
          status: { type: ["pending", "succeeded", "failed"] as const, required: true },
          grants: { type: "list", required: true, items: { type: "map", properties: { grantId: { type: "string", required: true }, tokens: { type: "number", required: true } } } },
          reason: { type: "string" },
          /** A renewing order's refund: the invoice (`in_...`) whose period it refunds (core/refunds.ts). */
          invoiceId: { type: "string" },
          createdAt: { type: "string", required: true },
        },
      },
    },
    /** Disputes of the order's payment (core/rules/order-lifecycle.ts `OrderDispute`). */
    disputes: {
      type: "list",
      items: {
        type: "map",
        properties: {
          disputeId: { type: "string", required: true },
          status: { type: "string", required: true },
          frozen: { type: "list", required: true, items: { type: "map", properties: { grantId: { type: "string", required: true }, tokens: { type: "number", required: true } } } },
          /** A renewing order's dispute: the invoice (`in_...`) whose charge is disputed (core/disputes.ts). */
          invoiceId: { type: "string" },
          createdAt: { type: "string", required: true },
          closedAt: { type: "string" },
        },
      },
    },
    /** Further succeeded payments for this order, each refunded automatically. */
    duplicatePayments: {
      type: "list",
      items: {
        type: "map",
        properties: {
          paymentIntentId: { type: "string", required: true },
          refundId: { type: "string", required: true },
          amount: { type: "number", required: true },
          createdAt: { type: "string", required: true },
        },
      },
    },
    grantIds: { type: "list", items: { type: "string" }, required: true },
    /** When the order last became pending (creation or a new payment attempt); absent once it is not. */
    pendingSince: { type: "string" },
    /** Pending-order index partition (`<day of pendingSince>#<shard>`), present while pending. */
    pendingBucket: { type: "string" },
    /** Pending-order index sort (`<pendingSince>#<userId>#<orderId>`). */
    pendingSort: { type: "string" },
    createdAt: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["orderId"]) },
    byPendingDay: {
      index: TABLE.workIndex.name,
      pk: { field: TABLE.workIndex.partitionKey, composite: ["pendingBucket"], casing: "none" },
      sk: { field: TABLE.workIndex.sortKey, composite: ["pendingSort"], casing: "none" },
    },
  },
} as const;
