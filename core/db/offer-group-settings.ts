/**
 * Offer group settings: per-group thresholds for warnings (API.md `PUT
 * /offer-groups/{offerGroup}`). All groups share one partition (listing them is one
 * Query; there are few).
 */
import { SERVICE, pk, sk } from "./keys.js";

/**
 * ElectroDB schema of an offer group's settings. The entity keeps its stored name
 * `offerGroup`, which is part of every stored key and item.
 */
export const offerGroupSettingsSchema = {
  model: { entity: "offerGroup", version: "1", service: SERVICE },
  attributes: {
    offerGroup: { type: "string", required: true },
    /** A consumption taking the balance from above to at or below this raises `credits.low_balance`. */
    lowBalanceThreshold: { type: "number" },
    /** Days before a grant's expiry when `credits.expiring` is raised (default 7). */
    expiryWarningDays: { type: "number" },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    all: { pk: pk([]), sk: sk(["offerGroup"]) },
  },
} as const;
