/**
 * Offer entity: what can be bought (API.md "Offers"). The whole catalog shares one
 * partition, so listing it is one Query; a catalog is small (hundreds of offers).
 */
import { CYCLES } from "../rules/cycles.js";
import { RENEWALS } from "../rules/renewal.js";
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of an offer. Optional fields are absent rather than null. */
export const offerSchema = {
  model: { entity: "offer", version: "1", service: SERVICE },
  attributes: {
    offerId: { type: "string", required: true },
    name: { type: "string", required: true },
    kind: { type: ["tokens", "subscription", "expertise"] as const, required: true },
    offerGroup: { type: "string", required: true },
    cycle: { type: CYCLES, required: true },
    customCycleSeconds: { type: "number" },
    appendDate: { type: "boolean", required: true },
    /** `auto` when a Stripe Subscription renews it; absent for `none` (offers stored before renewals). */
    renewal: { type: RENEWALS },
    tokenCount: { type: "number", required: true },
    prices: {
      type: "list",
      required: true,
      items: {
        type: "map",
        properties: {
          amount: { type: "number", required: true },
          currency: { type: "string", required: true },
        },
      },
    },
    quantityLimit: { type: "number" },
    tags: { type: "list", items: { type: "string" }, required: true },
    unlockedBy: { type: "list", items: { type: "string" }, required: true },
    overridingKey: { type: "string" },
    weight: { type: "number", required: true },
    popular: { type: "number", required: true },
    combinedItems: {
      type: "list",
      required: true,
      items: {
        type: "map",
        properties: {
          offerId: { type: "string", required: true },
          quantity: { type: "number", required: true },
        },
      },
    },
    active: { type: "boolean", required: true },
    createdAt: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    catalog: { pk: pk([]), sk: sk(["offerId"]) },
  },
} as const;
