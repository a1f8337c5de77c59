/**
 * core/rules/give-back.ts: the one rule for giving tokens back to the grants they were
 * taken from (a won dispute now; releases and reversals later): the group's debt is
 * repaid first, a grant that left the balance item comes back, what lands in a grant
 * past its expiry leaves at once, and nothing goes into a grant of a refunded or
 * disputed order; and the freeze of a disputed order's tokens, which a won dispute
 * undoes (DESIGN.md "Rules of the house"; API.md "Refunds and disputes started in Stripe").
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aFrozenBalance } from "../../helpers/factories.js";
import { balanceStateProblem, isDue, type BalanceState, type GrantState } from "../../../core/rules/balance-state.js";
import { planConsumption } from "../../../core/rules/drain.js";
import { freezePlan, giveBackPlan, type GiveBack, type GrantFacts } from "../../../core/rules/give-back.js";

const PROPERTY = { numRuns: 400, seed: 0x61fe_bac4 } as const;

const NOW = new Date("2026-06-15T12:00:00.000Z");
const DAY = 86_400_000;

/** An ISO instant `days` days from NOW (negative: in the past). */
function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY).toISOString();
}

/** A started, unspent 100-token grant of order-1 expiring in 30 days, unless told otherwise. */
function aGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const tokens = overrides.tokens ?? 100;
  return { orderId: "order-1", offerId: "calls-60", orderOfferId: "calls-60", tokens, remaining: tokens, starts: inDays(-10), expires: inDays(30), ...overrides };
}

/** A consistent balance of the given grants (balance = Σ remaining − debt), frozen. */
const aState = aFrozenBalance;

/** The grant's facts: all the balance item holds but `remaining`. */
function factsOf(grant: GrantState): GrantFacts {
  const { remaining: _remaining, ...facts } = grant;
  return facts;
}

/** Gives `tokens` back to `grant`, whose order is paid unless told otherwise. */
function back(grant: GrantState, tokens: number, orderRefundedOrDisputed = false): GiveBack {
  return { grant: factsOf(grant), tokens, orderRefundedOrDisputed };
}

function remainingOf(state: BalanceState, grantId: string): number | undefined {
  return state.grants.find((grant) => grant.grantId === grantId)?.remaining;
}

describe("giveBackPlan", () => {
  it("gives tokens back to the grant they came from", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 60 });
    const state = aState([g1, aGrant({ grantId: "g2", orderId: "order-2" })]);
    const plan = giveBackPlan({ state, grants: [back(g1, 40)], now: NOW });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 40, debtRepaid: 0, expired: 0 }]);
    expect(plan.refused).toEqual([]);
    expect(plan.next).toEqual({ ...state, balance: 200, grants: [{ ...g1, remaining: 100 }, state.grants[1]] });
  });

  it("repays the group's debt first, and gives the grant only the rest", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const state = aState([g1], 10);
    const plan = giveBackPlan({ state, grants: [back(g1, 40)], now: NOW });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 40, debtRepaid: 10, expired: 0 }]);
    expect(plan.next).toMatchObject({ balance: 30, debt: 0 });
    expect(remainingOf(plan.next, "g1")).toBe(30);
  });

  it("puts everything into the debt when the debt is larger, leaving the grant empty", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const plan = giveBackPlan({ state: aState([g1], 50), grants: [back(g1, 40)], now: NOW });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 40, debtRepaid: 40, expired: 0 }]);
    expect(plan.next).toMatchObject({ balance: -10, debt: 10 });
    expect(remainingOf(plan.next, "g1")).toBe(0);
  });

  it("re-adds a grant that left the balance item (exhausted), with what it is given back", () => {
    const other = aGrant({ grantId: "g2", orderId: "order-2" });
    const gone = aGrant({ grantId: "g1", tokens: 100, remaining: 0 });
    const state = aState([other]);
    const plan = giveBackPlan({ state, grants: [back(gone, 25)], now: NOW });
    expect(plan.next.grants).toEqual([other, { ...gone, remaining: 25 }]);
    expect(plan.next.balance).toBe(125);
  });

  it("re-adds a grant that left after the group's debt is repaid, and not at all when the debt takes everything", () => {
    const gone = aGrant({ grantId: "g1", remaining: 0 });
    const repaidAndBack = giveBackPlan({ state: aState([], 10), grants: [back(gone, 25)], now: NOW });
    expect(repaidAndBack.next.grants).toEqual([{ ...gone, remaining: 15 }]);
    const allToDebt = giveBackPlan({ state: aState([], 30), grants: [back(gone, 25)], now: NOW });
    expect(allToDebt.next.grants).toEqual([]);
    expect(allToDebt.movements).toEqual([{ grantId: "g1", tokens: 25, debtRepaid: 25, expired: 0 }]);
  });

  it("lets what is given back to a grant past its expiry leave at once, without re-adding it", () => {
    const expired = aGrant({ grantId: "g1", remaining: 0, expires: inDays(-1) });
    const state = aState([aGrant({ grantId: "g2", orderId: "order-2" })]);
    const plan = giveBackPlan({ state, grants: [back(expired, 40)], now: NOW });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 40, debtRepaid: 0, expired: 40 }]);
    expect(plan.next).toEqual(state);
  });

  it("expires at once what is given back to a grant past its expiry still in the balance item, leaving it to the expiry job", () => {
    const due = aGrant({ grantId: "g1", remaining: 20, expires: NOW.toISOString() });
    const state = aState([due]);
    const plan = giveBackPlan({ state, grants: [back(due, 40)], now: NOW });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 40, debtRepaid: 0, expired: 40 }]);
    expect(plan.next).toEqual(state);
  });

  it("repays the debt from a grant past its expiry before the others: the user keeps the live tokens", () => {
    const live = aGrant({ grantId: "g1", remaining: 0 });
    const expired = aGrant({ grantId: "g2", remaining: 0, expires: inDays(-1) });
    const plan = giveBackPlan({ state: aState([live], 10), grants: [back(live, 10), back(expired, 10)], now: NOW });
    expect(plan.movements).toEqual([
      { grantId: "g1", tokens: 10, debtRepaid: 0, expired: 0 },
      { grantId: "g2", tokens: 10, debtRepaid: 10, expired: 0 },
    ]);
    expect(plan.next).toMatchObject({ balance: 10, debt: 0 });
    expect(remainingOf(plan.next, "g1")).toBe(10);
  });

  it("gives a future grant its tokens back like any other", () => {
    const future = aGrant({ grantId: "g1", remaining: 10, starts: inDays(5), expires: inDays(40) });
    const plan = giveBackPlan({ state: aState([future]), grants: [back(future, 90)], now: NOW });
    expect(remainingOf(plan.next, "g1")).toBe(100);
  });

  it("never gives back into a grant of a refunded or disputed order: those tokens are reported, not returned", () => {
    const refundedOrder = aGrant({ grantId: "g1", remaining: 0 });
    const paidOrder = aGrant({ grantId: "g2", orderId: "order-2", remaining: 0 });
    const state = aState([refundedOrder, paidOrder], 5);
    const plan = giveBackPlan({ state, grants: [back(refundedOrder, 30, true), back(paidOrder, 20)], now: NOW });
    expect(plan.refused).toEqual([{ grantId: "g1", tokens: 30 }]);
    expect(plan.movements).toEqual([{ grantId: "g2", tokens: 20, debtRepaid: 5, expired: 0 }]);
    expect(plan.next.grants[0]).toBe(state.grants[0]);
    expect(plan.next).toMatchObject({ balance: 15, debt: 0 });
  });

  it("does not re-add a grant of a refunded or disputed order that left the balance item", () => {
    const gone = aGrant({ grantId: "g1", remaining: 0 });
    const plan = giveBackPlan({ state: aState([]), grants: [back(gone, 30, true)], now: NOW });
    expect(plan.next.grants).toEqual([]);
    expect(plan.refused).toEqual([{ grantId: "g1", tokens: 30 }]);
  });

  it("writes no movement for a grant given 0 tokens", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const state = aState([g1]);
    const plan = giveBackPlan({ state, grants: [back(g1, 0), back(aGrant({ grantId: "g2" }), 0, true)], now: NOW });
    expect(plan).toEqual({ next: state, movements: [], refused: [] });
  });

  it("keeps the fields of the balance item it does not know (the writer's), and the version", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const state = { ...aState([g1]), overflow: { count: 3 } } as BalanceState;
    const plan = giveBackPlan({ state, grants: [back(g1, 10)], now: NOW });
    expect(plan.next).toMatchObject({ overflow: { count: 3 }, version: 7 });
  });

  it("uses the balance item's copy of a grant that is there, whatever the facts given", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const plan = giveBackPlan({ state: aState([g1]), grants: [{ grant: { ...factsOf(g1), expires: inDays(-1) }, tokens: 10, orderRefundedOrDisputed: false }], now: NOW });
    expect(plan.movements[0]!.expired).toBe(0);
    expect(remainingOf(plan.next, "g1")).toBe(10);
  });

  it("throws a RangeError for a grant given back to twice, a bad count, or more than the grant lacks", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 60 });
    const state = aState([g1]);
    expect(() => giveBackPlan({ state, grants: [back(g1, 10), back(g1, 10)], now: NOW })).toThrow(RangeError);
    expect(() => giveBackPlan({ state, grants: [back(g1, -1)], now: NOW })).toThrow(RangeError);
    expect(() => giveBackPlan({ state, grants: [back(g1, 1.5)], now: NOW })).toThrow(RangeError);
    expect(() => giveBackPlan({ state, grants: [back(g1, 41)], now: NOW })).toThrow(RangeError);
    expect(() => giveBackPlan({ state: aState([]), grants: [back(g1, 101)], now: NOW })).toThrow(RangeError);
  });

  it("does not mutate the state it is given", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const state = aState([g1], 3);
    const before = structuredClone(state);
    giveBackPlan({ state, grants: [back(g1, 10)], now: NOW });
    expect(state).toEqual(before);
  });
});

describe("freezePlan", () => {
  it("takes every grant of the disputed order down to 0, one −remaining movement each, and keeps them in the balance item", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 60 });
    const g2 = aGrant({ grantId: "g2", remaining: 5, expires: inDays(90) });
    const other = aGrant({ grantId: "g3", orderId: "order-2" });
    const state = aState([g1, other, g2]);
    expect(freezePlan({ state, orderId: "order-1" })).toEqual({
      next: { ...state, balance: 100, grants: [{ ...g1, remaining: 0 }, other, { ...g2, remaining: 0 }] },
      movements: [
        { grantId: "g1", tokens: -60 },
        { grantId: "g2", tokens: -5 },
      ],
    });
  });

  it("writes no movement for a grant of the order that holds nothing, and keeps the debt", () => {
    const empty = aGrant({ grantId: "g1", remaining: 0 });
    const state = aState([empty], 12);
    expect(freezePlan({ state, orderId: "order-1" })).toEqual({ next: state, movements: [] });
  });

  it("changes nothing for an order without grants in the group", () => {
    const state = aState([aGrant({ grantId: "g1" })]);
    expect(freezePlan({ state, orderId: "order-9" })).toEqual({ next: state, movements: [] });
  });

  it("is undone by a won dispute: the frozen tokens go back to the same grants", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 60 }), aGrant({ grantId: "g2", orderId: "order-2", remaining: 7 })]);
    const frozen = freezePlan({ state, orderId: "order-1" });
    const grants = frozen.movements.map((movement) => back(state.grants.find((grant) => grant.grantId === movement.grantId)!, -movement.tokens));
    expect(giveBackPlan({ state: frozen.next, grants, now: NOW }).next).toEqual(state);
  });

  it("lets a won dispute repay the debt run up while the tokens were frozen", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 60 })]);
    const frozen = freezePlan({ state, orderId: "order-1" });
    const spent = planConsumption({ state: frozen.next, tokens: 15, allowOverdraft: true, now: NOW });
    if (!spent.ok) throw new Error("an overdraft is always planned");
    const plan = giveBackPlan({ state: spent.next, grants: [back(state.grants[0]!, 60)], now: NOW });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 60, debtRepaid: 15, expired: 0 }]);
    expect(plan.next).toMatchObject({ balance: 45, debt: 0 });
  });

  it("lets the frozen tokens of a grant that expired during the dispute leave at once when it is won", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 60, expires: inDays(1) })]);
    const frozen = freezePlan({ state, orderId: "order-1" });
    const later = new Date(NOW.getTime() + 2 * DAY);
    const plan = giveBackPlan({ state: frozen.next, grants: [back(state.grants[0]!, 60)], now: later });
    expect(plan.movements).toEqual([{ grantId: "g1", tokens: 60, debtRepaid: 0, expired: 60 }]);
    expect(plan.next.balance).toBe(0);
  });
});

// --- Properties ---------------------------------------------------------------------------

/** A grant shape: tokens, how much is left, its expiry around NOW (some due, some never), its order. */
const aGrantShape = fc.record({
  tokens: fc.integer({ min: 0, max: 200 }),
  leftPart: fc.double({ min: 0, max: 1, noNaN: true }),
  expiresInDays: fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined, freq: 4 }),
  startsInDays: fc.integer({ min: -10, max: 3 }),
  order: fc.integer({ min: 1, max: 3 }),
});

type GrantShape = typeof aGrantShape extends fc.Arbitrary<infer T> ? T : never;

/** A grant built from a shape (starting no later than it expires). */
function grantOf(shape: GrantShape, grantId: string): GrantState {
  return aGrant({
    grantId,
    orderId: `order-${shape.order}`,
    tokens: shape.tokens,
    remaining: Math.floor(shape.tokens * shape.leftPart),
    starts: inDays(Math.min(shape.startsInDays, shape.expiresInDays ?? shape.startsInDays)),
    expires: shape.expiresInDays === undefined ? undefined : inDays(shape.expiresInDays),
  });
}

/**
 * A valid balance (in debt only when no spendable grant holds tokens), grants that left it,
 * and tokens to give back to some of both, some of them refused.
 */
const aGiveBack = fc
  .record({
    present: fc.array(aGrantShape, { maxLength: 8 }),
    gone: fc.array(aGrantShape, { maxLength: 4 }),
    debt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
    picks: fc.array(fc.record({ index: fc.nat(), part: fc.double({ min: 0, max: 1, noNaN: true }), refused: fc.boolean() }), { maxLength: 12 }),
  })
  .map(({ present, gone, debt, picks }) => {
    // In debt, every spendable grant is empty; grants past their expiry may still hold tokens.
    const presentGrants = present
      .map((shape, index) => grantOf(shape, `p${index}`))
      .map((grant) => (debt > 0 && !isDue(grant, NOW) ? { ...grant, remaining: 0 } : grant));
    const state = aState(presentGrants, debt);
    const goneGrants = gone.map((shape, index) => ({ ...grantOf(shape, `x${index}`), remaining: 0 }));
    const candidates = [...presentGrants, ...goneGrants];
    const chosen = new Map<string, GiveBack>();
    for (const pick of picks) {
      if (candidates.length === 0) break;
      const grant = candidates[pick.index % candidates.length]!;
      chosen.set(grant.grantId, back(grant, Math.floor((grant.tokens - grant.remaining) * pick.part), pick.refused));
    }
    return { state, grants: [...chosen.values()] };
  });

describe("giveBackPlan: properties", () => {
  it("keeps the balance-state invariant", () => {
    fc.assert(
      fc.property(aGiveBack, ({ state, grants }) => {
        expect(balanceStateProblem(state, NOW)).toBeNull();
        expect(balanceStateProblem(giveBackPlan({ state, grants, now: NOW }).next, NOW)).toBeNull();
      }),
      PROPERTY,
    );
  });

  it("conserves tokens: given = debt repaid + remaining added + expired + refused, and the balance moves as the ledger entries sum", () => {
    fc.assert(
      fc.property(aGiveBack, ({ state, grants }) => {
        const plan = giveBackPlan({ state, grants, now: NOW });
        const given = grants.reduce((sum, item) => sum + item.tokens, 0);
        const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
        const debtRepaid = sum(plan.movements.map((movement) => movement.debtRepaid));
        const expired = sum(plan.movements.map((movement) => movement.expired));
        const refused = sum(plan.refused.map((item) => item.tokens));
        const remainingAdded = sum(plan.next.grants.map((grant) => grant.remaining)) - sum(state.grants.map((grant) => grant.remaining));
        expect(debtRepaid + remainingAdded + expired + refused).toBe(given);
        expect(state.debt - plan.next.debt).toBe(debtRepaid);
        // Ledger: +tokens per movement, −expired per expire entry.
        expect(plan.next.balance - state.balance).toBe(sum(plan.movements.map((movement) => movement.tokens - movement.expired)));
        for (const movement of plan.movements) {
          expect(movement.debtRepaid + movement.expired).toBeLessThanOrEqual(movement.tokens);
        }
      }),
      PROPERTY,
    );
  });

  it("never touches a grant of a refunded or disputed order, and never re-adds one", () => {
    fc.assert(
      fc.property(aGiveBack, ({ state, grants }) => {
        const plan = giveBackPlan({ state, grants, now: NOW });
        const refusedIds = new Set(grants.filter((item) => item.orderRefundedOrDisputed).map((item) => item.grant.grantId));
        for (const grantId of refusedIds) {
          expect(plan.next.grants.find((grant) => grant.grantId === grantId)).toEqual(state.grants.find((grant) => grant.grantId === grantId));
          expect(plan.movements.some((movement) => movement.grantId === grantId)).toBe(false);
        }
      }),
      PROPERTY,
    );
  });

  it("repays the debt before any grant regains a spendable token, and lets nothing into a grant past its expiry", () => {
    fc.assert(
      fc.property(aGiveBack, ({ state, grants }) => {
        const plan = giveBackPlan({ state, grants, now: NOW });
        const regained = plan.movements.some((movement) => movement.tokens - movement.debtRepaid - movement.expired > 0);
        if (regained) expect(plan.next.debt).toBe(0);
        for (const grant of plan.next.grants.filter((grant) => isDue(grant, NOW))) {
          expect(grant).toEqual(state.grants.find((before) => before.grantId === grant.grantId));
        }
        for (const movement of plan.movements) {
          const grant = grants.find((item) => item.grant.grantId === movement.grantId)!.grant;
          const current = state.grants.find((before) => before.grantId === movement.grantId) ?? grant;
          expect(movement.expired).toBe(isDue(current, NOW) ? movement.tokens - movement.debtRepaid : 0);
        }
      }),
      PROPERTY,
    );
  });

  it("freeze, then a won dispute, restores the state when nothing changed in between", () => {
    fc.assert(
      fc.property(aGiveBack, fc.integer({ min: 1, max: 3 }), ({ state }, order) => {
        const orderId = `order-${order}`;
        fc.pre(state.grants.every((grant) => grant.orderId !== orderId || !isDue(grant, NOW)));
        const frozen = freezePlan({ state, orderId });
        expect(balanceStateProblem(frozen.next, NOW)).toBeNull();
        expect(frozen.next.balance).toBe(state.balance + frozen.movements.reduce((sum, movement) => sum + movement.tokens, 0));
        expect(frozen.next.grants).toEqual(state.grants.map((grant) => (grant.orderId === orderId ? { ...grant, remaining: 0 } : grant)));
        const grants = frozen.movements.map((movement) => back(state.grants.find((grant) => grant.grantId === movement.grantId)!, -movement.tokens));
        const won = giveBackPlan({ state: frozen.next, grants, now: NOW });
        expect(won.next).toEqual(state);
        expect(won.refused).toEqual([]);
      }),
      PROPERTY,
    );
  });
});
