/** Small factories for test data: `anOffer({ cycle: "monthly" })`. */
import type { OfferInput } from "../../core/offers.js";
import type { BalanceState, GrantState } from "../../core/rules/balance-state.js";
import type { GrantFacts } from "../../core/rules/give-back.js";

/** An offer's terms: 100 tokens of `calls` for 10.00 usd a month, unless overridden. */
export function anOffer(overrides: Partial<OfferInput> = {}): OfferInput {
  return {
    name: "100 calls",
    kind: "tokens",
    offerGroup: "calls",
    cycle: "monthly",
    customCycleSeconds: null,
    appendDate: false,
    renewal: "none",
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

/** A started, unspent 100-token grant of order-1 in `calls`, from 10 days before `now` to 30 days after it, unless overridden. */
export function aGrantAt(now: Date, overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const tokens = overrides.tokens ?? 100;
  const day = 86_400_000;
  return {
    orderId: "order-1",
    offerId: "calls-60",
    orderOfferId: "calls-60",
    tokens,
    remaining: tokens,
    starts: new Date(now.getTime() - 10 * day).toISOString(),
    expires: new Date(now.getTime() + 30 * day).toISOString(),
    ...overrides,
  };
}

/** The grant's facts: all the balance item holds but `remaining`. */
export function grantFactsOf(grant: GrantState): GrantFacts {
  const { remaining: _remaining, ...facts } = grant;
  return facts;
}
