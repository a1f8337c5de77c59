/** Small factories for test data: `anOffer({ cycle: "monthly" })`. */
import type { OfferInput } from "../../core/offers.js";

/** An offer's terms: 100 tokens of `calls` for 10.00 usd a month, unless overridden. */
export function anOffer(overrides: Partial<OfferInput> = {}): OfferInput {
  return {
    name: "100 calls",
    kind: "tokens",
    offerGroup: "calls",
    cycle: "monthly",
    customCycleSeconds: null,
    appendDate: false,
    tokenCount: 100,
    prices: [{ amount: 1000, currency: "usd" }],
    quantityLimit: null,
    tags: [],
    unlockedBy: [],
    overridingKey: null,
    weight: 0,
    popular: 0,
    combinedItems: [],
    active: true,
    ...overrides,
  };
}
