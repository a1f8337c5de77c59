/**
 * Subscription entity: a user's renewing subscription to one offer (issue 13: one per
 * (user, offer); API.md "Renewing subscriptions"), the order that started it and its
 * Stripe Subscription's state as last seen. Under the user's partition key.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a renewing subscription. */
export const subscriptionSchema = {
  model: { entity: "subscription", version: "1", service: SERVICE },
  attributes: {
    userId: { type: "string", required: true },
    offerId: { type: "string", required: true },
    /** The renewing order that holds the subscription. */
    orderId: { type: "string", required: true },
    /** The offer's offerGroup (what the subscription unlocks, core/rules/visibility.ts). */
    offerGroup: { type: "string" },
    /** Stripe's status: `incomplete` (first invoice unpaid), `active`, `past_due`, `canceled`, ... */
    status: { type: "string", required: true },
    /** The Stripe Subscription (`sub_...`), once made. */
    subscriptionId: { type: "string" },
    /** End of the latest paid period (ISO). */
    currentPeriodEnd: { type: "string" },
    /** Stripe ends it when the current period ends (`cancel_at_period_end`). */
    cancelAtPeriodEnd: { type: "boolean" },
    createdAt: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byUser: { pk: pk(["userId"]), sk: sk(["offerId"]) },
  },
} as const;
