/**
 * core/rules/purchase-plan.ts: the grants a paid order creates, their dates and tokens, and
 * what each group's balance becomes.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balanceStateProblem, emptyBalance, isDue, type BalanceState, type GrantState } from "../../../core/rules/balance-state.js";
import type { Cycle } from "../../../core/rules/cycles.js";
import { planPurchase, type PlannedGrant, type PurchaseOrder } from "../../../core/rules/purchase-plan.js";

const PROPERTY = { numRuns: 300, seed: 0x9a1d_0bde } as const;

const NOW = new Date("2026-03-10T09:00:00.000Z");
const DAY = 86_400_000;

function at(iso: string): Date {
  return new Date(iso);
}

/** An order for 1 unit of a 60-token monthly `calls` offer, without appendDate or items. */
function anOrder(overrides: Partial<PurchaseOrder> = {}): PurchaseOrder {
  return {
    userId: "u1",
    orderId: "order-1",
    offerId: "calls-60",
    offerGroup: "calls",
    cycle: "monthly",
    customCycleSeconds: null,
    quantity: 1,
    tokens: 60,
    appendDate: false,
    combinedItems: [],
    ...overrides,
  };
}

/** A bundle item of an order (tokens already multiplied at order creation). */
function anItem(overrides: Partial<PurchaseOrder["combinedItems"][number]> = {}): PurchaseOrder["combinedItems"][number] {
  return { offerId: "data-500mb", offerGroup: "data", tokens: 500, appendDate: false, ...overrides };
}

function aGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const tokens = overrides.tokens ?? 100;
  return {
    orderId: `order-of-${overrides.grantId}`,
    offerId: "calls-60",
    tokens,
    remaining: tokens,
    starts: "2026-01-01T00:00:00.000Z",
    expires: "2026-04-01T00:00:00.000Z",
    ...overrides,
  };
}

/** A consistent, frozen state of a group holding `grants`. */
function aState(offerGroup: string, grants: GrantState[], debt = 0): BalanceState {
  const sum = grants.reduce((total, grant) => total + grant.remaining, 0);
  const state = { userId: "u1", offerGroup, balance: sum - debt, debt, version: 4, grants: grants.map((grant) => Object.freeze(grant)) };
  Object.freeze(state.grants);
  return Object.freeze(state);
}

function balancesOf(...states: BalanceState[]): ReadonlyMap<string, BalanceState> {
  return new Map(states.map((state) => [state.offerGroup, state]));
}

/** Grant ids grant-1, grant-2, ... in the order they are asked for. */
function sequentialIds(): () => string {
  let next = 0;
  return () => `grant-${++next}`;
}

function plan(order: PurchaseOrder, ...states: BalanceState[]) {
  return planPurchase({ order, balances: balancesOf(...states), now: NOW, newGrantId: sequentialIds() });
}

/** A planned grant with its dates as ISO strings, for literal expectations. */
function dated(grant: PlannedGrant | undefined) {
  if (!grant) throw new Error("no such grant");
  return { ...grant, starts: grant.starts.toISOString(), expires: grant.expires?.toISOString() ?? null };
}

describe("planPurchase: the root grant", () => {
  it("holds the order's tokens, starts now and lasts the cycle × quantity", () => {
    const result = plan(anOrder({ quantity: 3, tokens: 180 }));
    expect(result.grants.map(dated)).toEqual([
      {
        grantId: "grant-1",
        offerGroup: "calls",
        offerId: "calls-60",
        tokens: 180,
        starts: "2026-03-10T09:00:00.000Z",
        expires: "2026-06-10T09:00:00.000Z",
        debtRepaid: 0,
        itemIndex: null,
      },
    ]);
    expect(result.balances.get("calls")?.balance).toBe(180);
    expect(result.notes).toEqual([]);
  });

  it("puts the grant into the group's balance with all its facts", () => {
    const result = plan(anOrder({ orderId: "order-9", offerId: "calls-60", tokens: 60 }));
    expect(result.balances.get("calls")).toEqual({
      userId: "u1",
      offerGroup: "calls",
      balance: 60,
      debt: 0,
      version: 0,
      grants: [
        {
          grantId: "grant-1",
          orderId: "order-9",
          offerId: "calls-60",
          orderOfferId: "calls-60",
          tokens: 60,
          remaining: 60,
          starts: "2026-03-10T09:00:00.000Z",
          expires: "2026-04-10T09:00:00.000Z",
        },
      ],
    });
  });

  it("never expires for a once offer", () => {
    const grant = plan(anOrder({ cycle: "once", quantity: 5, tokens: 300 })).grants[0];
    expect(dated(grant)).toMatchObject({ tokens: 300, starts: "2026-03-10T09:00:00.000Z", expires: null });
    expect(plan(anOrder({ cycle: "once" })).balances.get("calls")?.grants[0]?.expires).toBeUndefined();
  });

  it("clamps the root's expiry at the month end (Jan 31 + 1 month = Feb 28)", () => {
    const result = planPurchase({ order: anOrder(), balances: new Map(), now: at("2026-01-31T18:00:00.000Z"), newGrantId: sequentialIds() });
    expect(dated(result.grants[0])).toMatchObject({ expires: "2026-02-28T18:00:00.000Z" });
  });

  it("creates a grant even with 0 tokens (a pure subscription or a bundle root)", () => {
    const result = plan(anOrder({ offerId: "pro-plan", offerGroup: "pro", tokens: 0, cycle: "yearly" }));
    expect(result.grants.map(dated)).toEqual([
      expect.objectContaining({ offerGroup: "pro", tokens: 0, starts: "2026-03-10T09:00:00.000Z", expires: "2027-03-10T09:00:00.000Z" }),
    ]);
    expect(result.balances.get("pro")).toMatchObject({ balance: 0, debt: 0, grants: [{ tokens: 0, remaining: 0 }] });
  });

  it("uses the custom cycle's seconds × quantity", () => {
    const grant = plan(anOrder({ cycle: "custom", customCycleSeconds: 3600, quantity: 2 })).grants[0];
    expect(dated(grant).expires).toBe("2026-03-10T11:00:00.000Z");
  });
});

describe("planPurchase: the start date", () => {
  it("keeps a requested start that is still in the future", () => {
    const result = plan(anOrder({ requestedStarts: "2026-05-01T00:00:00.000Z" }));
    expect(dated(result.grants[0])).toMatchObject({ starts: "2026-05-01T00:00:00.000Z", expires: "2026-06-01T00:00:00.000Z" });
    expect(result.notes).toEqual([]);
  });

  it("prefers a future requested start over the appendDate chain", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", expires: "2026-09-01T00:00:00.000Z" })]);
    const result = plan(anOrder({ appendDate: true, requestedStarts: "2026-04-01T00:00:00.000Z" }), calls);
    expect(dated(result.grants[0]).starts).toBe("2026-04-01T00:00:00.000Z");
  });

  it("starts now, with a note, when the requested start has passed", () => {
    const result = plan(anOrder({ requestedStarts: "2026-03-01T00:00:00.000Z" }));
    expect(dated(result.grants[0])).toMatchObject({ starts: "2026-03-10T09:00:00.000Z", expires: "2026-04-10T09:00:00.000Z" });
    expect(result.notes).toHaveLength(1);
    expect(result.notes[0]).toContain("2026-03-01T00:00:00.000Z");
    expect(result.notes[0]).toContain("2026-03-10T09:00:00.000Z");
  });

  it("starts now, not at the chain head, when a requested start has passed on an appendDate offer", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", expires: "2026-09-01T00:00:00.000Z" })]);
    const result = plan(anOrder({ appendDate: true, requestedStarts: "2026-03-01T00:00:00.000Z" }), calls);
    expect(dated(result.grants[0]).starts).toBe("2026-03-10T09:00:00.000Z");
    expect(result.notes).toHaveLength(1);
  });

  it("starts now when the requested start is exactly now", () => {
    const result = plan(anOrder({ requestedStarts: NOW.toISOString() }));
    expect(dated(result.grants[0]).starts).toBe("2026-03-10T09:00:00.000Z");
  });

  it("with appendDate, starts where the group's latest unexpired grant ends", () => {
    const calls = aState("calls", [
      aGrant({ grantId: "g1", expires: "2026-05-01T00:00:00.000Z" }),
      aGrant({ grantId: "g2", expires: "2026-08-15T00:00:00.000Z" }),
      aGrant({ grantId: "g3", expires: "2026-06-01T00:00:00.000Z" }),
    ]);
    const result = plan(anOrder({ appendDate: true, cycle: "weekly", quantity: 3 }), calls);
    expect(dated(result.grants[0])).toMatchObject({ starts: "2026-08-15T00:00:00.000Z", expires: "2026-09-05T00:00:00.000Z" });
  });

  it("with appendDate, ignores grants already due and never-expiring grants", () => {
    const { expires: _none, ...onceGrant } = aGrant({ grantId: "g1" });
    const calls = aState("calls", [
      onceGrant,
      aGrant({ grantId: "g2", expires: "2026-03-10T09:00:00.000Z" }),
      aGrant({ grantId: "g3", expires: "2026-03-12T00:00:00.000Z" }),
    ]);
    expect(dated(plan(anOrder({ appendDate: true }), calls).grants[0]).starts).toBe("2026-03-12T00:00:00.000Z");
  });

  it("with appendDate, starts now when no grant of the group is unexpired", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", expires: "2026-03-01T00:00:00.000Z" })]);
    expect(dated(plan(anOrder({ appendDate: true }), calls).grants[0]).starts).toBe("2026-03-10T09:00:00.000Z");
    expect(dated(plan(anOrder({ appendDate: true })).grants[0]).starts).toBe("2026-03-10T09:00:00.000Z");
  });

  it("with appendDate, chains only within its own group", () => {
    const data = aState("data", [aGrant({ grantId: "g1", expires: "2026-12-01T00:00:00.000Z" })]);
    expect(dated(plan(anOrder({ appendDate: true }), data).grants[0]).starts).toBe("2026-03-10T09:00:00.000Z");
  });

  it("without appendDate, starts now even when the group has a later grant", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", expires: "2026-12-01T00:00:00.000Z" })]);
    expect(dated(plan(anOrder({ appendDate: false }), calls).grants[0]).starts).toBe("2026-03-10T09:00:00.000Z");
  });
});

describe("planPurchase: a renewing order's period (Stripe's invoice line period)", () => {
  const period = { starts: at("2026-01-31T10:00:00.000Z"), expires: at("2026-02-28T10:00:00.000Z") };

  it("dates the root and every bundle item with the period, whatever the cycle, quantity, appendDate or requested start", () => {
    const order = anOrder({ cycle: "yearly", quantity: 3, tokens: 180, appendDate: true, requestedStarts: "2026-06-01T00:00:00.000Z", combinedItems: [anItem({ appendDate: true }), anItem({ offerGroup: "sms", tokens: 30 })] });
    const chained = aState("calls", [aGrant({ grantId: "g-late", expires: "2026-09-01T00:00:00.000Z" })]);
    const result = planPurchase({ order, balances: balancesOf(chained), now: NOW, newGrantId: sequentialIds(), period });
    expect(result.grants.map((grant) => [grant.offerGroup, grant.tokens, grant.starts.toISOString(), grant.expires?.toISOString()])).toEqual([
      ["calls", 180, "2026-01-31T10:00:00.000Z", "2026-02-28T10:00:00.000Z"],
      ["data", 500, "2026-01-31T10:00:00.000Z", "2026-02-28T10:00:00.000Z"],
      ["sms", 30, "2026-01-31T10:00:00.000Z", "2026-02-28T10:00:00.000Z"],
    ]);
    expect(result.notes).toEqual([]);
  });

  it("adds to the group as any purchase does (debt repaid first)", () => {
    const result = planPurchase({ order: anOrder(), balances: balancesOf(aState("calls", [], 25)), now: NOW, newGrantId: sequentialIds(), period });
    expect(result.grants[0]).toMatchObject({ tokens: 60, debtRepaid: 25 });
    expect(result.balances.get("calls")).toMatchObject({ balance: 35, debt: 0 });
  });

  it("refuses a period that does not end after it starts", () => {
    const empty = { starts: period.starts, expires: period.starts };
    expect(() => planPurchase({ order: anOrder(), balances: balancesOf(), now: NOW, newGrantId: sequentialIds(), period: empty })).toThrow(RangeError);
  });
});

describe("planPurchase: existing grants and balances", () => {
  it("never shortens or replaces an existing grant", () => {
    const existing = aGrant({ grantId: "g1", tokens: 500, remaining: 320, expires: "2027-03-01T00:00:00.000Z" });
    const calls = aState("calls", [existing]);
    const result = plan(anOrder({ cycle: "daily", tokens: 10 }), calls);
    const next = result.balances.get("calls")!;
    expect(next.grants[0]).toEqual(existing);
    expect(next.grants).toHaveLength(2);
    expect(dated(result.grants[0]).expires).toBe("2026-03-11T09:00:00.000Z");
    expect(next.balance).toBe(330);
  });

  it("always adds its tokens, also to a balance of zero (the original skipped the top-up)", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", remaining: 0 })]);
    expect(calls.balance).toBe(0);
    const result = plan(anOrder({ tokens: 60 }), calls);
    expect(result.balances.get("calls")?.balance).toBe(60);
  });

  it("repays the group's debt first from the new grant", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", remaining: 0 })], 25);
    const result = plan(anOrder({ tokens: 60 }), calls);
    expect(result.grants[0]).toMatchObject({ tokens: 60, debtRepaid: 25 });
    const next = result.balances.get("calls")!;
    expect(next).toMatchObject({ balance: 35, debt: 0 });
    expect(next.grants.at(-1)).toMatchObject({ grantId: "grant-1", tokens: 60, remaining: 35 });
  });

  it("keeps the rest of the debt when the grant does not cover it", () => {
    const calls = aState("calls", [], 100);
    const result = plan(anOrder({ tokens: 60 }), calls);
    expect(result.grants[0]).toMatchObject({ debtRepaid: 60 });
    expect(result.balances.get("calls")).toMatchObject({ balance: -40, debt: 40, grants: [{ remaining: 0 }] });
  });

  it("keeps the versions (the writer bumps them) and carries untouched groups over as they were", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1" })]);
    const other = aState("other", [aGrant({ grantId: "g2" })]);
    const result = plan(anOrder(), calls, other);
    expect(result.balances.get("calls")?.version).toBe(4);
    expect(result.balances.get("other")).toBe(other);
  });

  it("does not mutate the balances it is given", () => {
    // The states are frozen: a mutation would throw.
    const calls = aState("calls", [aGrant({ grantId: "g1" })], 0);
    const input = balancesOf(calls);
    const before = structuredClone(calls);
    planPurchase({ order: anOrder({ combinedItems: [anItem({ offerGroup: "calls", appendDate: true })] }), balances: input, now: NOW, newGrantId: sequentialIds() });
    expect(input.get("calls")).toBe(calls);
    expect(calls).toEqual(before);
    expect([...input.keys()]).toEqual(["calls"]);
  });

  it("asks for one fresh grant id per grant", () => {
    const result = plan(anOrder({ combinedItems: [anItem(), anItem({ offerGroup: "sms" })] }));
    expect(result.grants.map((grant) => grant.grantId)).toEqual(["grant-1", "grant-2", "grant-3"]);
  });
});

describe("planPurchase: bundles", () => {
  it("plans the root grant first, then one grant per item in order", () => {
    const order = anOrder({
      offerId: "starter-pack",
      offerGroup: "starter",
      tokens: 0,
      combinedItems: [anItem({ offerId: "calls-60", offerGroup: "calls", tokens: 120 }), anItem({ offerId: "data-500mb", offerGroup: "data", tokens: 1000 })],
    });
    const result = plan(order);
    expect(result.grants.map(({ offerGroup, offerId, tokens, itemIndex }) => ({ offerGroup, offerId, tokens, itemIndex }))).toEqual([
      { offerGroup: "starter", offerId: "starter-pack", tokens: 0, itemIndex: null },
      { offerGroup: "calls", offerId: "calls-60", tokens: 120, itemIndex: 0 },
      { offerGroup: "data", offerId: "data-500mb", tokens: 1000, itemIndex: 1 },
    ]);
  });

  it("gives an item exactly the tokens the order holds for it (already multiplied at order creation)", () => {
    const result = plan(anOrder({ quantity: 3, combinedItems: [anItem({ tokens: 4500 })] }));
    expect(result.grants[1]?.tokens).toBe(4500);
    expect(result.balances.get("data")?.balance).toBe(4500);
  });

  it("records the root offer as the item grant's orderOfferId and the item's offer as its offerId", () => {
    const result = plan(anOrder({ offerId: "bundle-x", combinedItems: [anItem({ offerId: "data-500mb" })] }));
    expect(result.balances.get("data")?.grants[0]).toMatchObject({ orderId: "order-1", offerId: "data-500mb", orderOfferId: "bundle-x" });
  });

  it("an item without appendDate shares the root grant's dates", () => {
    const result = plan(anOrder({ cycle: "trimester", quantity: 2, combinedItems: [anItem()] }));
    const [root, item] = result.grants.map(dated);
    expect(item).toMatchObject({ starts: root!.starts, expires: root!.expires });
    expect(item).toMatchObject({ starts: "2026-03-10T09:00:00.000Z", expires: "2026-09-10T09:00:00.000Z" });
  });

  it("an item without appendDate shares a root start taken from a requested future start", () => {
    const result = plan(anOrder({ requestedStarts: "2026-04-01T00:00:00.000Z", combinedItems: [anItem()] }));
    expect(dated(result.grants[1])).toMatchObject({ starts: "2026-04-01T00:00:00.000Z", expires: "2026-05-01T00:00:00.000Z" });
  });

  it("an item without appendDate shares a root start taken from the root's chain", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", expires: "2026-07-01T00:00:00.000Z" })]);
    const result = plan(anOrder({ appendDate: true, combinedItems: [anItem()] }), calls);
    expect(dated(result.grants[1])).toMatchObject({ starts: "2026-07-01T00:00:00.000Z", expires: "2026-08-01T00:00:00.000Z" });
  });

  it("an appendDate item starts at its own group's chain head and lasts the root's cycle × order quantity", () => {
    const data = aState("data", [aGrant({ grantId: "g1", expires: "2026-05-20T00:00:00.000Z" })]);
    const result = plan(anOrder({ cycle: "weekly", quantity: 2, combinedItems: [anItem({ appendDate: true })] }), data);
    expect(dated(result.grants[1])).toMatchObject({ starts: "2026-05-20T00:00:00.000Z", expires: "2026-06-03T00:00:00.000Z" });
  });

  it("an appendDate item whose group has nothing unexpired starts now", () => {
    const result = plan(anOrder({ cycle: "daily", quantity: 3, combinedItems: [anItem({ appendDate: true })] }));
    expect(dated(result.grants[1])).toMatchObject({ starts: "2026-03-10T09:00:00.000Z", expires: "2026-03-13T09:00:00.000Z" });
  });

  it("an appendDate item chains after a grant planned before it in the same plan", () => {
    const order = anOrder({
      cycle: "monthly",
      combinedItems: [anItem({ appendDate: true, tokens: 10 }), anItem({ appendDate: true, tokens: 20 })],
    });
    const [, first, second] = plan(order).grants.map(dated);
    expect(first).toMatchObject({ starts: "2026-03-10T09:00:00.000Z", expires: "2026-04-10T09:00:00.000Z" });
    expect(second).toMatchObject({ starts: "2026-04-10T09:00:00.000Z", expires: "2026-05-10T09:00:00.000Z" });
  });

  it("an appendDate item in the root's own group chains after the root grant", () => {
    const result = plan(anOrder({ combinedItems: [anItem({ offerGroup: "calls", appendDate: true })] }));
    const [root, item] = result.grants.map(dated);
    expect(item!.starts).toBe(root!.expires);
    expect(item!.expires).toBe("2026-05-10T09:00:00.000Z");
  });

  it("items of a once root never expire; an appendDate item of it starts at its chain head", () => {
    const data = aState("data", [aGrant({ grantId: "g1", expires: "2026-04-04T00:00:00.000Z" })]);
    const result = plan(anOrder({ cycle: "once", combinedItems: [anItem({ appendDate: true }), anItem({ offerGroup: "sms" })] }), data);
    expect(result.grants.map(dated).map(({ starts, expires }) => ({ starts, expires }))).toEqual([
      { starts: "2026-03-10T09:00:00.000Z", expires: null },
      { starts: "2026-04-04T00:00:00.000Z", expires: null },
      { starts: "2026-03-10T09:00:00.000Z", expires: null },
    ]);
  });

  it("two items of the same group both land in that group's state", () => {
    const data = aState("data", [aGrant({ grantId: "g1", tokens: 50 })]);
    const result = plan(anOrder({ combinedItems: [anItem({ tokens: 500 }), anItem({ offerId: "data-1gb", tokens: 1000 })] }), data);
    const next = result.balances.get("data")!;
    expect(next.grants.map((grant) => [grant.grantId, grant.offerId, grant.remaining])).toEqual([
      ["g1", "calls-60", 50],
      ["grant-2", "data-500mb", 500],
      ["grant-3", "data-1gb", 1000],
    ]);
    expect(next.balance).toBe(1550);
    expect(result.grants.map((grant) => [grant.offerGroup, grant.tokens])).toEqual([["calls", 60], ["data", 500], ["data", 1000]]);
    expect(result.balances.get("calls")?.balance).toBe(60);
  });

  it("an item repays its own group's debt first", () => {
    const data = aState("data", [], 300);
    const result = plan(anOrder({ combinedItems: [anItem({ tokens: 500 })] }), data);
    expect(result.grants[1]).toMatchObject({ debtRepaid: 300 });
    expect(result.balances.get("data")).toMatchObject({ balance: 200, debt: 0 });
  });

  it("pays the original's worked bundle example under this project's rules", () => {
    // ORIGINAL-BEHAVIOUR.md §3.3. Root: weekly, appendDate false, order quantity 2, 1 token per unit.
    // Items (tokens = item quantity × order quantity × item tokenCount, at order creation):
    //   calls: quantity 20, 60 tokens, appendDate true -> 20 × 2 × 60 = 2400 tokens;
    //          the group already holds 1000 tokens, its latest expiry being now + 7 months;
    //   data:  quantity 2, 500 tokens, appendDate false -> 2 × 2 × 500 = 2000 tokens.
    // The original gave calls now+7 months -> +40 months (its own monthly cycle × 40) and merged
    // its tokens; here items last the ROOT cycle × order quantity (2 weeks) and every grant
    // keeps its own tokens and dates.
    const calls = aState("calls", [
      aGrant({ grantId: "g-old-1", tokens: 600, remaining: 600, starts: "2025-12-10T09:00:00.000Z", expires: "2026-05-10T09:00:00.000Z" }),
      aGrant({ grantId: "g-old-2", tokens: 500, remaining: 400, starts: "2026-01-10T09:00:00.000Z", expires: "2026-10-10T09:00:00.000Z" }),
    ]);
    expect(calls.balance).toBe(1000);
    const order = anOrder({
      offerId: "vip-bundle",
      offerGroup: "vip",
      cycle: "weekly",
      appendDate: false,
      quantity: 2,
      tokens: 2,
      combinedItems: [
        { offerId: "calls-monthly", offerGroup: "calls", tokens: 2400, appendDate: true },
        { offerId: "data-500", offerGroup: "data", tokens: 2000, appendDate: false },
      ],
    });

    const result = plan(order, calls);

    expect(result.grants.map(dated)).toEqual([
      {
        grantId: "grant-1",
        offerGroup: "vip",
        offerId: "vip-bundle",
        tokens: 2,
        starts: "2026-03-10T09:00:00.000Z",
        expires: "2026-03-24T09:00:00.000Z",
        debtRepaid: 0,
        itemIndex: null,
      },
      {
        grantId: "grant-2",
        offerGroup: "calls",
        offerId: "calls-monthly",
        tokens: 2400,
        starts: "2026-10-10T09:00:00.000Z",
        expires: "2026-10-24T09:00:00.000Z",
        debtRepaid: 0,
        itemIndex: 0,
      },
      {
        grantId: "grant-3",
        offerGroup: "data",
        offerId: "data-500",
        tokens: 2000,
        starts: "2026-03-10T09:00:00.000Z",
        expires: "2026-03-24T09:00:00.000Z",
        debtRepaid: 0,
        itemIndex: 1,
      },
    ]);
    expect(result.balances.get("vip")).toMatchObject({ balance: 2, debt: 0 });
    expect(result.balances.get("calls")).toMatchObject({ balance: 3400, debt: 0 });
    expect(result.balances.get("calls")?.grants.slice(0, 2)).toEqual(calls.grants);
    expect(result.balances.get("data")).toMatchObject({ balance: 2000, debt: 0 });
    expect(result.notes).toEqual([]);
  });
});

// --- Properties ---------------------------------------------------------------------------

const GROUPS = ["calls", "data", "sms"] as const;
const aGroup = fc.constantFrom(...GROUPS);
const aCycle = fc.constantFrom<Cycle>("once", "daily", "weekly", "bi-weekly", "monthly", "trimester", "semester", "yearly", "custom");

/** A consistent state for a group: grants around NOW, debt only when all are empty. */
function aGroupState(offerGroup: string): fc.Arbitrary<BalanceState> {
  const aShape = fc.record({
    tokens: fc.nat({ max: 300 }),
    spentPercent: fc.integer({ min: 0, max: 100 }),
    startOffsetDays: fc.integer({ min: -200, max: 100 }),
    lifetimeDays: fc.option(fc.integer({ min: 1, max: 400 }), { nil: undefined, freq: 4 }),
  });
  return fc.tuple(fc.array(aShape, { maxLength: 5 }), fc.nat({ max: 500 }), fc.boolean()).map(([shapes, debt, inDebt]) => {
    const grants = shapes.map((shape, index): GrantState => {
      const starts = NOW.getTime() + shape.startOffsetDays * DAY;
      const remaining = inDebt ? 0 : shape.tokens - Math.floor((shape.tokens * shape.spentPercent) / 100);
      const grant: GrantState = { grantId: `${offerGroup}-old-${index}`, tokens: shape.tokens, remaining, starts: new Date(starts).toISOString() };
      return shape.lifetimeDays === undefined ? grant : { ...grant, expires: new Date(starts + shape.lifetimeDays * DAY).toISOString() };
    });
    return aState(offerGroup, grants, inDebt ? debt : 0);
  });
}

const someBalances: fc.Arbitrary<Map<string, BalanceState>> = fc
  .tuple(fc.subarray([...GROUPS]), aGroupState("calls"), aGroupState("data"), aGroupState("sms"))
  .map(([present, ...states]) => new Map(states.filter((state) => present.includes(state.offerGroup as (typeof GROUPS)[number])).map((state) => [state.offerGroup, state])));

const anyOrder: fc.Arbitrary<PurchaseOrder> = fc
  .record({
    offerGroup: aGroup,
    cycle: aCycle,
    customCycleSeconds: fc.integer({ min: 1, max: 90 * 86_400 }),
    quantity: fc.integer({ min: 1, max: 5 }),
    tokens: fc.nat({ max: 1000 }),
    appendDate: fc.boolean(),
    requestedOffsetDays: fc.option(fc.integer({ min: -30, max: 60 }), { nil: undefined }),
    combinedItems: fc.array(fc.record({ offerGroup: aGroup, tokens: fc.nat({ max: 1000 }), appendDate: fc.boolean() }), { maxLength: 4 }),
  })
  .map(({ requestedOffsetDays, combinedItems, ...rest }) =>
    anOrder({
      ...rest,
      offerId: `root-${rest.offerGroup}`,
      requestedStarts: requestedOffsetDays === undefined ? undefined : new Date(NOW.getTime() + requestedOffsetDays * DAY).toISOString(),
      combinedItems: combinedItems.map((item, index) => ({ ...item, offerId: `item-${index}` })),
    }),
  );

describe("planPurchase: dates past 9999-12-31 (issue 9, defect 5)", () => {
  const LAST = "9999-12-31T23:59:59.999Z";

  it("clamps an expiry past 9999-12-31 to its last instant, with a note for the history", () => {
    const calls = aState("calls", [aGrant({ grantId: "g1", expires: "9999-12-15T00:00:00.000Z" })]);
    const result = plan(anOrder({ appendDate: true }), calls);
    expect(dated(result.grants[0])).toMatchObject({ starts: "9999-12-15T00:00:00.000Z", expires: LAST });
    expect(result.balances.get("calls")?.grants[1]).toMatchObject({ starts: "9999-12-15T00:00:00.000Z", expires: LAST });
    expect(result.notes).toHaveLength(1);
    expect(result.notes[0]).toContain("calls");
    expect(result.notes[0]).toContain(LAST);
    expect(result.clamped).toEqual([{ offerGroup: "calls", itemIndex: null }]);
  });

  it("never produces an invalid date, even for a period past what a Date can hold", () => {
    const result = plan(anOrder({ cycle: "yearly", quantity: 1_000_000 }));
    expect(dated(result.grants[0])).toMatchObject({ starts: NOW.toISOString(), expires: LAST });
    expect(result.notes).toHaveLength(1);
  });

  it("clamps an appendDate item after its own group's chain head, and leaves what fits as it is", () => {
    const data = aState("data", [aGrant({ grantId: "g1", expires: "9999-12-20T00:00:00.000Z" })]);
    const result = plan(anOrder({ combinedItems: [anItem({ appendDate: true }), anItem({ offerId: "sms-10", offerGroup: "sms" })] }), data);
    expect(result.grants.map(dated).map(({ offerGroup, expires }) => ({ offerGroup, expires }))).toEqual([
      { offerGroup: "calls", expires: "2026-04-10T09:00:00.000Z" },
      { offerGroup: "data", expires: LAST },
      { offerGroup: "sms", expires: "2026-04-10T09:00:00.000Z" },
    ]);
    expect(result.clamped).toEqual([{ offerGroup: "data", itemIndex: 0 }]);
    expect(result.notes).toHaveLength(1);
    expect(result.notes[0]).toContain("data");
  });

  it("reports nothing clamped when every date fits, up to the last instant itself", () => {
    const result = plan(anOrder({ cycle: "daily", requestedStarts: "9999-12-30T23:59:59.999Z" }));
    expect(dated(result.grants[0]).expires).toBe(LAST);
    expect(result.clamped).toEqual([]);
    expect(result.notes).toEqual([]);
  });

  it("gives every grant valid dates no later than 9999-12-31T23:59:59.999Z, whatever the quantity and the chain", () => {
    const lastMs = Date.parse(LAST);
    fc.assert(
      fc.property(
        aCycle,
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 100 * 366 * 86_400 }),
        fc.date({ min: new Date(NOW.getTime() + DAY), max: new Date(LAST), noInvalidDate: true }),
        fc.boolean(),
        (cycle, quantity, customCycleSeconds, head, requested) => {
          const calls = aState("calls", [aGrant({ grantId: "g1", expires: head.toISOString() })]);
          const order = anOrder({
            cycle,
            customCycleSeconds,
            quantity,
            appendDate: true,
            requestedStarts: requested ? head.toISOString() : undefined,
            combinedItems: [anItem({ offerGroup: "calls", appendDate: true }), anItem()],
          });
          const result = planPurchase({ order, balances: balancesOf(calls), now: NOW, newGrantId: sequentialIds() });
          for (const grant of result.grants) {
            for (const at of [grant.starts, grant.expires ?? grant.starts]) {
              expect(Number.isNaN(at.getTime())).toBe(false);
              expect(at.getTime()).toBeLessThanOrEqual(lastMs);
            }
          }
          for (const state of result.balances.values()) {
            for (const grant of state.grants) expect(grant.expires ?? grant.starts).toMatch(/^\d{4}-/);
          }
          expect(result.notes.length).toBe(result.clamped.length);
        },
      ),
      PROPERTY,
    );
  });
});

describe("planPurchase: properties", () => {
  it("keeps every existing grant as it was and adds each planned grant's tokens to its group", () => {
    fc.assert(
      fc.property(someBalances, anyOrder, (balances, order) => {
        const result = planPurchase({ order, balances, now: NOW, newGrantId: sequentialIds() });
        expect(result.grants).toHaveLength(1 + order.combinedItems.length);
        for (const group of GROUPS) {
          const before = balances.get(group) ?? emptyBalance("u1", group);
          const after = result.balances.get(group) ?? before;
          const added = result.grants.filter((grant) => grant.offerGroup === group).reduce((total, grant) => total + grant.tokens, 0);
          expect(after.balance).toBe(before.balance + added);
          expect(after.grants.slice(0, before.grants.length)).toEqual(before.grants);
          expect(after.grants.length - before.grants.length).toBe(result.grants.filter((grant) => grant.offerGroup === group).length);
        }
      }),
      PROPERTY,
    );
  });

  it("keeps the balance-state invariant in every group", () => {
    fc.assert(
      fc.property(someBalances, anyOrder, (balances, order) => {
        for (const state of balances.values()) expect(balanceStateProblem(state)).toBeNull();
        const result = planPurchase({ order, balances, now: NOW, newGrantId: sequentialIds() });
        for (const state of result.balances.values()) expect(balanceStateProblem(state)).toBeNull();
      }),
      PROPERTY,
    );
  });

  it("starts every grant no earlier than now and ends it after its start, except once grants, which never end", () => {
    fc.assert(
      fc.property(someBalances, anyOrder, (balances, order) => {
        const result = planPurchase({ order, balances, now: NOW, newGrantId: sequentialIds() });
        for (const grant of result.grants) {
          expect(grant.starts.getTime()).toBeGreaterThanOrEqual(NOW.getTime());
          if (order.cycle === "once") expect(grant.expires).toBeNull();
          else expect(grant.expires!.getTime()).toBeGreaterThan(grant.starts.getTime());
        }
      }),
      PROPERTY,
    );
  });

  it("starts an appendDate item at the end of the latest unexpired grant of its group before it, or now", () => {
    fc.assert(
      fc.property(someBalances, anyOrder, (balances, order) => {
        const result = planPurchase({ order, balances, now: NOW, newGrantId: sequentialIds() });
        result.grants.forEach((grant) => {
          if (grant.itemIndex === null || !order.combinedItems[grant.itemIndex]!.appendDate) return;
          const groupState = result.balances.get(grant.offerGroup)!;
          const position = groupState.grants.findIndex((candidate) => candidate.grantId === grant.grantId);
          const earlier = groupState.grants
            .slice(0, position)
            .filter((candidate) => candidate.expires !== undefined && !isDue(candidate, NOW))
            .map((candidate) => Date.parse(candidate.expires!));
          expect(grant.starts.getTime()).toBe(Math.max(NOW.getTime(), ...earlier));
        });
      }),
      PROPERTY,
    );
  });

  it("gives every item without appendDate the root grant's dates", () => {
    fc.assert(
      fc.property(someBalances, anyOrder, (balances, order) => {
        const result = planPurchase({ order, balances, now: NOW, newGrantId: sequentialIds() });
        const root = result.grants[0]!;
        expect(root.itemIndex).toBeNull();
        for (const grant of result.grants.slice(1)) {
          if (order.combinedItems[grant.itemIndex!]!.appendDate) continue;
          expect(grant.starts.getTime()).toBe(root.starts.getTime());
          expect(grant.expires?.getTime()).toBe(root.expires?.getTime());
        }
      }),
      PROPERTY,
    );
  });
});
