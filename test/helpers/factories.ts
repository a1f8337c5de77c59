/** Small factories for test data: `anOffer({ cycle: "monthly" })`. */
import type { OfferInput } from "../../core/offers.js";
import type { BalanceState, GrantState } from "../../core/rules/balance-state.js";

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

/** A consistent balance of `grants` in `calls` (balance = Σ remaining − debt), deeply frozen so that a rule cannot change its input. */
export function aFrozenBalance(grants: GrantState[], debt = 0): BalanceState {
  const sum = grants.reduce((total, grant) => total + grant.remaining, 0);
  return deepFreeze({ userId: "u1", offerGroup: "calls", balance: sum - debt, debt, version: 7, grants });
}

/** `value` and everything in it, frozen. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
