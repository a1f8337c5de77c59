/**
 * core/rules/order-plan.ts: the order rules, pure (what a user may order, and the pending
 * order it makes). The same rules through DynamoDB are in test/core/offer-rules.test.ts
 * and test/core/orders.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DomainError, NotFoundError, ValidationError } from "../../../core/errors.js";
import { MAX_TOKENS, type BalanceState } from "../../../core/rules/balance-state.js";
import { planOrder, type OrderableOffer } from "../../../core/rules/order-plan.js";
import { pendingKeys } from "../../../core/rules/work-index.js";

const PROPERTY = { numRuns: 300, seed: 0x0de2_9a11 } as const;
const NOW = new Date("2026-11-30T10:00:00.000Z");
const ORDER_ID = "01KORDER000000000000000000";

/** A monthly offer of 60 calls at 10.00 usd, regular, active, unless told otherwise. */
function anOffer(overrides: Partial<OrderableOffer> = {}): OrderableOffer {
  return {
    offerId: "calls-60",
    name: "60 calls",
    kind: "tokens",
    offerGroup: "calls",
    active: true,
    cycle: "monthly",
    appendDate: false,
    tokenCount: 60,
    prices: [{ amount: 1000, currency: "usd" }],
    unlockedBy: [],
    combinedItems: [],
    ...overrides,
  };
}

const noAmountLimit = { name: "stripe" as const, checkAmount() {} };

/** Plans an order of `offer` for user u1 with the given request fields. */
function plan(offer: OrderableOffer | undefined, request: Record<string, unknown> = {}, more: Partial<Parameters<typeof planOrder>[0]> = {}) {
  return planOrder({
    request: { userId: "u1", ...request },
    offerId: offer?.offerId ?? "missing",
    offer,
    itemOffers: new Map(),
    unlockedGroups: new Set(),
    balances: new Map(),
    orderId: ORDER_ID,
    defaultCurrency: "usd",
    provider: noAmountLimit,
    now: NOW,
    ...more,
  });
}

/** The balances of user u1: one group per entry, each holding one grant that expires at the given instant (its chain head). */
function chainHeads(heads: Record<string, string>): ReadonlyMap<string, BalanceState> {
  return new Map(
    Object.entries(heads).map(([offerGroup, expires]) => [
      offerGroup,
      {
        userId: "u1",
        offerGroup,
        balance: 10,
        debt: 0,
        version: 1,
        grants: [{ grantId: `g-${offerGroup}`, tokens: 10, remaining: 10, starts: "2026-01-01T00:00:00.000Z", expires }],
      },
    ]),
  );
}

/** The error `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("nothing was thrown");
}

describe("planOrder: the order it makes", () => {
  it("copies the offer's terms, totals in minor units, and is pending on the pending-order index", () => {
    const order = plan(anOffer(), { quantity: 3 });
    expect(order).toMatchObject({
      userId: "u1",
      orderId: ORDER_ID,
      offerId: "calls-60",
      offerName: "60 calls",
      offerGroup: "calls",
      kind: "tokens",
      status: "pending",
      quantity: 3,
      total: { amount: 3000, currency: "usd" },
      tokenCount: 60,
      tokens: 180,
      cycle: "monthly",
      appendDate: false,
      combinedItems: [],
      provider: "stripe",
      paymentIntentIds: [],
      attempt: 1,
      grantIds: [],
      history: [{ date: NOW.toISOString(), status: "pending", message: "created" }],
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      ...pendingKeys("u1", ORDER_ID, NOW),
    });
  });

  it("is a free order (attempt 0) when the price is 0, and asks nothing of the provider", () => {
    let asked = false;
    const order = plan(anOffer({ prices: [{ amount: 0, currency: "usd" }] }), {}, { provider: { name: "stripe", checkAmount: () => void (asked = true) } });
    expect(order).toMatchObject({ provider: "free", attempt: 0, total: { amount: 0, currency: "usd" } });
    expect(asked).toBe(false);
  });

  it("uses Checkout only with Stripe and a checkout request; the manual provider otherwise stays manual", () => {
    const checkout = { successUrl: "https://example.com/ok", cancelUrl: "https://example.com/cancel" };
    expect(plan(anOffer(), { checkout }).provider).toBe("stripe_checkout");
    expect(plan(anOffer(), { checkout }, { provider: { name: "manual", checkAmount() {} } }).provider).toBe("manual");
    expect(plan(anOffer(), {}, { provider: { name: "manual", checkAmount() {} } }).provider).toBe("manual");
  });

  it("keeps a requested future start, and a custom cycle's seconds", () => {
    const order = plan(anOffer({ cycle: "custom", customCycleSeconds: 3600 }), { starts: "2026-12-01T00:00:00+01:00" });
    expect(order.requestedStarts).toBe("2026-11-30T23:00:00.000Z");
    expect(order.customCycleSeconds).toBe(3600);
  });

  it("copies bundle items with their offers' terms and tokens = item quantity × order quantity × item tokenCount", () => {
    const bundle = anOffer({ offerId: "bundle", offerGroup: "bundle", tokenCount: 0, combinedItems: [{ offerId: "data-1gb", quantity: 2 }] });
    const itemOffers = new Map([["data-1gb", { offerGroup: "data", tokenCount: 1000, appendDate: true, prices: [{ amount: 250, currency: "usd" }] }]]);
    const order = plan(bundle, { quantity: 3 }, { itemOffers });
    expect(order.combinedItems).toEqual([{ offerId: "data-1gb", offerGroup: "data", quantity: 2, tokenCount: 1000, tokens: 6000, appendDate: true, value: 1500 }]);
  });

  it("copies each bundle item's value in the order's currency (price × item quantity × order quantity), absent when its offer has no price in it", () => {
    const bundle = anOffer({
      offerId: "bundle",
      offerGroup: "bundle",
      tokenCount: 0,
      prices: [{ amount: 2500, currency: "usd" }, { amount: 2300, currency: "eur" }],
      combinedItems: [{ offerId: "data-1gb", quantity: 2 }, { offerId: "sms-100", quantity: 1 }],
    });
    const itemOffers = new Map([
      ["data-1gb", { offerGroup: "data", tokenCount: 1000, appendDate: false, prices: [{ amount: 500, currency: "usd" }, { amount: 450, currency: "eur" }] }],
      ["sms-100", { offerGroup: "sms", tokenCount: 100, appendDate: false, prices: [{ amount: 300, currency: "usd" }] }],
    ]);
    expect(plan(bundle, { quantity: 3 }, { itemOffers }).combinedItems.map((item) => item.value)).toEqual([3000, 900]);
    const eur = plan(bundle, { quantity: 3, currency: "eur" }, { itemOffers });
    expect(eur.total).toEqual({ amount: 6900, currency: "eur" });
    expect(eur.combinedItems[0]).toMatchObject({ offerId: "data-1gb", value: 2700 });
    expect(eur.combinedItems[1]).not.toHaveProperty("value");
    const free = plan({ ...bundle, prices: [{ amount: 0, currency: "usd" }] }, {}, { itemOffers });
    expect(free.combinedItems.map((item) => item.value)).toEqual([1000, 300]);
  });

  it("defaults to one unit in the default currency", () => {
    const order = plan(anOffer({ prices: [{ amount: 900, currency: "eur" }] }), {}, { defaultCurrency: "eur" });
    expect(order).toMatchObject({ quantity: 1, total: { amount: 900, currency: "eur" } });
  });
});

describe("planOrder: refusals, in order", () => {
  it("refuses a quantity that is not an integer >= 1 before anything else", () => {
    for (const quantity of [0, -1, 1.5]) expect(thrown(() => plan(undefined, { quantity }))).toBeInstanceOf(ValidationError);
  });

  it("refuses an unknown or inactive offer as not found", () => {
    expect(thrown(() => plan(undefined))).toBeInstanceOf(NotFoundError);
    expect(thrown(() => plan(anOffer({ active: false })))).toMatchObject({ code: "not_found", details: { offer: "calls-60" } });
  });

  it("refuses a quantity over the offer's limit, a currency it has no price in, a start that is not in the future", () => {
    expect(thrown(() => plan(anOffer({ quantityLimit: 2 }), { quantity: 3 }))).toMatchObject({ code: "quantity_limit_exceeded", details: { quantity: 3, quantityLimit: 2 } });
    expect(thrown(() => plan(anOffer(), { currency: "jpy" }))).toMatchObject({ code: "currency_not_offered", details: { currency: "jpy", offered: ["usd"] } });
    expect(thrown(() => plan(anOffer(), { starts: NOW.toISOString() }))).toMatchObject({ code: "start_in_past" });
  });

  it("refuses a locked offer unless one of its unlocking groups is unlocked for the user", () => {
    const locked = anOffer({ unlockedBy: ["pro"] });
    expect(thrown(() => plan(locked))).toMatchObject({ code: "offer_locked", details: { offerId: "calls-60", unlockedBy: ["pro"] } });
    expect(plan(locked, {}, { unlockedGroups: new Set(["pro"]) }).status).toBe("pending");
  });

  it("marks a renewing offer's order renewal auto, its quantity multiplying the tokens of each period, not its length", () => {
    const order = plan(anOffer({ renewal: "auto", cycle: "yearly" }), { quantity: 9000 }, { provider: { ...noAmountLimit, name: "stripe" } });
    expect(order).toMatchObject({ renewal: "auto", quantity: 9000, tokens: 9000 * 60, cycle: "yearly", provider: "stripe" });
    expect(plan(anOffer({ renewal: "none" })).renewal).toBeUndefined();
  });

  it("refuses a renewing order that starts later, is free, or is not paid through Stripe, with not_renewable and its reason", () => {
    const stripe = { provider: { ...noAmountLimit, name: "stripe" as const } };
    const renewing = anOffer({ renewal: "auto" });
    expect(thrown(() => plan(renewing, { starts: "2026-12-01T00:00:00.000Z" }, stripe))).toMatchObject({ code: "not_renewable", details: { offerId: "calls-60", reason: "starts" } });
    expect(thrown(() => plan(anOffer({ renewal: "auto", prices: [{ amount: 0, currency: "usd" }] }), {}, stripe))).toMatchObject({ code: "not_renewable", details: { reason: "free" } });
    expect(thrown(() => plan(renewing, {}, { provider: { ...noAmountLimit, name: "manual" } }))).toMatchObject({ code: "not_renewable", details: { reason: "provider" } });
    expect(thrown(() => plan(renewing, { starts: NOW.toISOString() }, stripe))).toMatchObject({ code: "start_in_past" });
  });

  it("refuses a bundle whose item's offer is gone, as a conflict", () => {
    expect(thrown(() => plan(anOffer({ combinedItems: [{ offerId: "gone", quantity: 1 }] })))).toMatchObject({ code: "conflict", details: { offerId: "gone" } });
  });

  it("refuses more than MAX_TOKENS tokens in one group, root or item", () => {
    expect(thrown(() => plan(anOffer({ tokenCount: MAX_TOKENS }), { quantity: 2 }))).toMatchObject({ code: "quantity_limit_exceeded", details: { maximum: MAX_TOKENS } });
    const bundle = anOffer({ tokenCount: 0, combinedItems: [{ offerId: "big", quantity: 2 }] });
    const itemOffers = new Map([["big", { offerGroup: "x", tokenCount: MAX_TOKENS, appendDate: false, prices: [{ amount: 100, currency: "usd" }] }]]);
    expect(thrown(() => plan(bundle, {}, { itemOffers }))).toMatchObject({ code: "quantity_limit_exceeded" });
  });

  it("refuses a total beyond safe integers, and what the provider cannot charge", () => {
    expect(thrown(() => plan(anOffer({ prices: [{ amount: Number.MAX_SAFE_INTEGER, currency: "usd" }] }), { quantity: 2 }))).toMatchObject({ code: "amount_out_of_range" });
    const strict = { name: "stripe" as const, checkAmount: (amount: number) => { if (amount < 50) throw new DomainError("amount_out_of_range", "too small"); } };
    expect(thrown(() => plan(anOffer({ prices: [{ amount: 10, currency: "usd" }] }), {}, { provider: strict }))).toMatchObject({ code: "amount_out_of_range" });
  });

  it("checks the rules in order: a request breaking several gets the first rule's refusal", () => {
    const offer = anOffer({ quantityLimit: 1, unlockedBy: ["pro"] });
    expect(thrown(() => plan(offer, { quantity: 2, currency: "jpy", starts: NOW.toISOString() }))).toMatchObject({ code: "quantity_limit_exceeded" });
    expect(thrown(() => plan(offer, { currency: "jpy", starts: NOW.toISOString() }))).toMatchObject({ code: "currency_not_offered" });
    expect(thrown(() => plan(offer, { starts: NOW.toISOString() }))).toMatchObject({ code: "start_in_past" });
    expect(thrown(() => plan(offer))).toMatchObject({ code: "offer_locked" });
  });
});

describe("planOrder: free orders are for one unit (issue 9, defect 4)", () => {
  const free = (overrides: Partial<OrderableOffer> = {}) => anOffer({ prices: [{ amount: 0, currency: "usd" }], tokenCount: 100, ...overrides });

  it("takes one unit of a free offer", () => {
    expect(plan(free())).toMatchObject({ quantity: 1, tokens: 100, provider: "free", total: { amount: 0, currency: "usd" } });
  });

  it("refuses any other quantity with quantity_limit_exceeded naming the quantity and the limit 1, whatever the offer's own limit", () => {
    for (const quantity of [2, 1_000_000]) {
      expect(thrown(() => plan(free(), { quantity }))).toMatchObject({ code: "quantity_limit_exceeded", details: { quantity, quantityLimit: 1 } });
    }
    expect(thrown(() => plan(free({ quantityLimit: 5 }), { quantity: 2 }))).toMatchObject({ code: "quantity_limit_exceeded", details: { quantity: 2, quantityLimit: 1 } });
  });

  it("judges by the total: free in the order's currency, several units of a paid price are fine", () => {
    const mixed = anOffer({ prices: [{ amount: 0, currency: "usd" }, { amount: 500, currency: "eur" }] });
    expect(thrown(() => plan(mixed, { quantity: 2 }))).toMatchObject({ code: "quantity_limit_exceeded", details: { quantityLimit: 1 } });
    expect(plan(mixed, { quantity: 2, currency: "eur" }).total).toEqual({ amount: 1000, currency: "eur" });
  });
});

describe("planOrder: dates stay within 9999-12-31 (issue 9, defect 5)", () => {
  // NOW is 2026-11-30T10:00:00.000Z.
  it("refuses a quantity × cycle whose expiry would fall past 9999-12-31 with period_out_of_range, and takes the longest that fits", () => {
    const yearly = anOffer({ cycle: "yearly" });
    expect(plan(yearly, { quantity: 7973 }).status).toBe("pending"); // expires 9999-11-30T10:00:00.000Z
    expect(thrown(() => plan(yearly, { quantity: 7974 }))).toMatchObject({
      code: "period_out_of_range",
      details: { quantity: 7974, cycle: "yearly", offerGroup: "calls", latest: "9999-12-31T23:59:59.999Z" },
    });
  });

  it("refuses periods past what a Date can hold (the defect's Invalid time value), and takes any quantity of a never-expiring offer", () => {
    expect(thrown(() => plan(anOffer({ cycle: "yearly" }), { quantity: 1_000_000 }))).toMatchObject({ code: "period_out_of_range" });
    expect(thrown(() => plan(anOffer({ cycle: "custom", customCycleSeconds: 100 * 366 * 86_400 }), { quantity: 1_000_000 }))).toMatchObject({ code: "period_out_of_range" });
    expect(plan(anOffer({ cycle: "once" }), { quantity: 1_000_000 }).status).toBe("pending");
  });

  it("counts from a requested future start, and refuses a start past the calendar even for a never-expiring offer", () => {
    expect(plan(anOffer(), { starts: "9999-06-30T00:00:00.000Z", quantity: 6 }).requestedStarts).toBe("9999-06-30T00:00:00.000Z");
    expect(thrown(() => plan(anOffer(), { starts: "9999-06-30T00:00:00.000Z", quantity: 7 }))).toMatchObject({ code: "period_out_of_range" });
    // An offset carries this 4-digit-year instant into 10000-01-01 UTC.
    expect(thrown(() => plan(anOffer({ cycle: "once" }), { starts: "9999-12-31T23:30:00-01:00" }))).toMatchObject({ code: "period_out_of_range" });
  });

  it("counts an appendDate offer from the user's chain head in its group, which a plain offer or a requested start ignores", () => {
    const balances = chainHeads({ calls: "9999-10-15T00:00:00.000Z" });
    const chained = anOffer({ appendDate: true });
    expect(plan(chained, { quantity: 2 }, { balances }).status).toBe("pending"); // 9999-10-15 + 2 months
    expect(thrown(() => plan(chained, { quantity: 3 }, { balances }))).toMatchObject({ code: "period_out_of_range", details: { offerGroup: "calls" } });
    expect(plan(anOffer(), { quantity: 3 }, { balances }).status).toBe("pending");
    expect(plan(chained, { quantity: 3, starts: "2027-01-01T00:00:00.000Z" }, { balances }).status).toBe("pending");
  });

  it("counts bundle items: one with appendDate from its own group's chain head, the others with the root's dates", () => {
    const bundle = anOffer({ offerId: "bundle", offerGroup: "bundle", tokenCount: 0, combinedItems: [{ offerId: "data-1gb", quantity: 1 }] });
    const items = (appendDate: boolean) => new Map([["data-1gb", { offerGroup: "data", tokenCount: 1000, appendDate, prices: [{ amount: 500, currency: "usd" }] }]]);
    const balances = chainHeads({ data: "9999-12-15T00:00:00.000Z" });
    expect(thrown(() => plan(bundle, {}, { itemOffers: items(true), balances }))).toMatchObject({ code: "period_out_of_range", details: { offerGroup: "data" } });
    expect(plan(bundle, {}, { itemOffers: items(false), balances }).status).toBe("pending");
  });

  it("refuses a free order's other quantities before its dates", () => {
    const free = anOffer({ cycle: "yearly", prices: [{ amount: 0, currency: "usd" }] });
    expect(thrown(() => plan(free, { quantity: 1_000_000 }))).toMatchObject({ code: "quantity_limit_exceeded" });
  });
});

describe("planOrder: properties", () => {
  it("totals price × quantity and tokens tokenCount × quantity, for any accepted order (free ones: one unit)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 1000 }), (amount, tokenCount, quantity) => {
        const offer = anOffer({ tokenCount, prices: [{ amount, currency: "usd" }] });
        if (amount === 0 && quantity > 1) {
          expect(thrown(() => plan(offer, { quantity }))).toMatchObject({ code: "quantity_limit_exceeded" });
          return;
        }
        const order = plan(offer, { quantity });
        expect(order.total).toEqual({ amount: amount * quantity, currency: "usd" });
        expect(order.tokens).toBe(tokenCount * quantity);
        expect(order.provider).toBe(amount === 0 ? "free" : "stripe");
      }),
      PROPERTY,
    );
  });
});
