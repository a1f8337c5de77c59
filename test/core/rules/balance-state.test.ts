/**
 * core/rules/balance-state.ts: the (user, offerGroup) balance as plain values and the rules
 * that read it (due grants, the appendDate chain head, adding a grant, the invariant).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addGrant,
  balanceStateProblem,
  chainHead,
  emptyBalance,
  isDue,
  type BalanceState,
  type GrantState,
} from "../../../core/rules/balance-state.js";

const PROPERTY = { numRuns: 300, seed: 0xba1a_0ce5 } as const;

const NOW = new Date("2026-06-15T12:00:00.000Z");
const DAY = 86_400_000;

function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY).toISOString();
}

/** A started, unspent 100-token grant expiring in 30 days, unless told otherwise. */
function aGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const tokens = overrides.tokens ?? 100;
  return { tokens, remaining: tokens, starts: inDays(-10), expires: inDays(30), ...overrides };
}

/** A never-expiring (`once`) grant. */
function aOnceGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const { expires: _ignored, ...grant } = aGrant(overrides);
  return grant;
}

/** A balance of the given grants; `balance` defaults to Σ remaining − debt. */
function aState(grants: GrantState[], overrides: Partial<BalanceState> = {}): BalanceState {
  const debt = overrides.debt ?? 0;
  const sum = grants.reduce((total, grant) => total + grant.remaining, 0);
  return Object.freeze({ userId: "u1", offerGroup: "calls", balance: sum - debt, debt, version: 3, grants, ...overrides });
}

/** What addGrant takes: a grant without its remaining. */
function aNewGrant(tokens: number, grantId = "new"): Omit<GrantState, "remaining"> {
  return { grantId, orderId: "o-new", offerId: "calls-60", tokens, starts: NOW.toISOString(), expires: inDays(30) };
}

describe("emptyBalance", () => {
  it("is a group with nothing in it, at version 0", () => {
    expect(emptyBalance("u1", "calls")).toEqual({ userId: "u1", offerGroup: "calls", balance: 0, debt: 0, version: 0, grants: [] });
  });

  it("satisfies the invariant", () => {
    expect(balanceStateProblem(emptyBalance("u1", "calls"))).toBeNull();
  });
});

describe("isDue", () => {
  it("is due when the expiry is exactly now", () => {
    expect(isDue({ expires: NOW.toISOString() }, NOW)).toBe(true);
  });

  it("is due when the expiry has passed", () => {
    expect(isDue({ expires: new Date(NOW.getTime() - 1).toISOString() }, NOW)).toBe(true);
  });

  it("is not due one millisecond before its expiry", () => {
    expect(isDue({ expires: new Date(NOW.getTime() + 1).toISOString() }, NOW)).toBe(false);
  });

  it("is never due for a grant that never expires", () => {
    expect(isDue({}, NOW)).toBe(false);
    expect(isDue({ expires: undefined }, new Date("9999-12-31T23:59:59.999Z"))).toBe(false);
  });

  it("compares instants, not strings", () => {
    // The same instant written with an offset.
    expect(isDue({ expires: "2026-06-15T14:00:00.000+02:00" }, NOW)).toBe(true);
    expect(isDue({ expires: "2026-06-15T14:00:00.001+02:00" }, NOW)).toBe(false);
  });
});

describe("chainHead", () => {
  it("is the latest expiry among the unexpired grants", () => {
    const state = aState([
      aGrant({ grantId: "g1", expires: inDays(10) }),
      aGrant({ grantId: "g2", expires: inDays(200) }),
      aGrant({ grantId: "g3", expires: inDays(50) }),
    ]);
    expect(chainHead(state, NOW)?.toISOString()).toBe(inDays(200));
  });

  it("ignores never-expiring (once) grants", () => {
    const state = aState([aOnceGrant({ grantId: "g1" }), aGrant({ grantId: "g2", expires: inDays(5) })]);
    expect(chainHead(state, NOW)?.toISOString()).toBe(inDays(5));
  });

  it("ignores due grants, including one expiring exactly now", () => {
    const state = aState([aGrant({ grantId: "g1", expires: NOW.toISOString() }), aGrant({ grantId: "g2", expires: inDays(-3) })]);
    expect(chainHead(state, NOW)).toBeNull();
  });

  it("is null when only once grants remain", () => {
    expect(chainHead(aState([aOnceGrant({ grantId: "g1" })]), NOW)).toBeNull();
  });

  it("is null for an empty group", () => {
    expect(chainHead(emptyBalance("u1", "calls"), NOW)).toBeNull();
  });

  it("counts an empty (fully spent) or zero-token grant: its period still chains", () => {
    const state = aState([aGrant({ grantId: "g1", tokens: 0, expires: inDays(40) }), aGrant({ grantId: "g2", remaining: 0, expires: inDays(20) })]);
    expect(chainHead(state, NOW)?.toISOString()).toBe(inDays(40));
  });

  it("counts a grant that starts in the future", () => {
    const state = aState([aGrant({ grantId: "g1", starts: inDays(30), expires: inDays(60) })]);
    expect(chainHead(state, NOW)?.toISOString()).toBe(inDays(60));
  });

  it("keeps a chain head just one millisecond in the future", () => {
    const soon = new Date(NOW.getTime() + 1).toISOString();
    expect(chainHead(aState([aGrant({ grantId: "g1", expires: soon })]), NOW)?.toISOString()).toBe(soon);
  });
});

describe("addGrant", () => {
  it("adds the grant with all its tokens remaining when there is no debt", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 40 })]);
    const { next, debtRepaid } = addGrant(state, aNewGrant(60));
    expect(debtRepaid).toBe(0);
    expect(next).toEqual({ ...state, balance: 100, grants: [state.grants[0], { ...aNewGrant(60), remaining: 60 }] });
  });

  it("repays the debt first from the new grant", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 0 })], { debt: 30 });
    expect(state.balance).toBe(-30);
    const { next, debtRepaid } = addGrant(state, aNewGrant(100));
    expect(debtRepaid).toBe(30);
    expect(next.debt).toBe(0);
    expect(next.balance).toBe(70);
    expect(next.grants.at(-1)).toEqual({ ...aNewGrant(100), remaining: 70 });
  });

  it("leaves the rest of the debt when the grant is smaller than it", () => {
    const state = aState([], { debt: 150 });
    const { next, debtRepaid } = addGrant(state, aNewGrant(100));
    expect(debtRepaid).toBe(100);
    expect(next).toMatchObject({ balance: -50, debt: 50 });
    expect(next.grants).toEqual([{ ...aNewGrant(100), remaining: 0 }]);
  });

  it("adds a zero-token grant without touching the debt", () => {
    const state = aState([], { debt: 10 });
    const { next, debtRepaid } = addGrant(state, aNewGrant(0));
    expect(debtRepaid).toBe(0);
    expect(next).toMatchObject({ balance: -10, debt: 10, grants: [{ grantId: "new", tokens: 0, remaining: 0 }] });
  });

  it("adds tokens to a group whose balance is zero (the original skipped the top-up)", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 0 })]);
    expect(state.balance).toBe(0);
    expect(addGrant(state, aNewGrant(25)).next.balance).toBe(25);
  });

  it("keeps the version and the other grants, and does not mutate the state", () => {
    const grants = Object.freeze([Object.freeze(aGrant({ grantId: "g1" }))]) as unknown as GrantState[];
    const state = aState(grants);
    const { next } = addGrant(state, aNewGrant(5));
    expect(next.version).toBe(3);
    expect(next.grants[0]).toBe(grants[0]);
    expect(state.grants).toHaveLength(1);
  });

  it("keeps the invariant, whatever the debt and the grant's tokens", () => {
    const aValidState = fc
      .tuple(fc.array(fc.nat({ max: 500 }), { maxLength: 6 }), fc.nat({ max: 1000 }))
      .map(([remainings, debt]) => {
        const grants = remainings.map((remaining, index) => aGrant({ grantId: `g${index}`, tokens: 500, remaining: debt > 0 ? 0 : remaining }));
        return aState(grants, { debt });
      });
    fc.assert(
      fc.property(aValidState, fc.nat({ max: 1000 }), (state, tokens) => {
        expect(balanceStateProblem(state)).toBeNull();
        const { next, debtRepaid } = addGrant(state, aNewGrant(tokens));
        expect(balanceStateProblem(next)).toBeNull();
        expect(next.balance).toBe(state.balance + tokens);
        expect(debtRepaid).toBe(Math.min(state.debt, tokens));
        expect(next.debt).toBe(state.debt - debtRepaid);
      }),
      PROPERTY,
    );
  });
});

describe("balanceStateProblem", () => {
  it("accepts a consistent state", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 10 }), aOnceGrant({ grantId: "g2", tokens: 5 })]);
    expect(balanceStateProblem(state)).toBeNull();
  });

  it("accepts debt when every grant is empty", () => {
    expect(balanceStateProblem(aState([aGrant({ grantId: "g1", remaining: 0 })], { debt: 20 }))).toBeNull();
  });

  it("rejects a balance that is not Σ remaining − debt", () => {
    const problem = balanceStateProblem(aState([aGrant({ grantId: "g1", remaining: 10 })], { balance: 11 }));
    expect(problem).toMatch(/balance 11/);
  });

  it("rejects a negative debt", () => {
    const problem = balanceStateProblem(aState([aGrant({ grantId: "g1", remaining: 10 })], { debt: -5, balance: 15 }));
    expect(problem).toMatch(/negative debt -5/);
  });

  it("rejects a negative remaining", () => {
    const problem = balanceStateProblem(aState([aGrant({ grantId: "g1", remaining: -1 }), aGrant({ grantId: "g2" })]));
    expect(problem).toMatch(/grant g1 remaining -1/);
  });

  it("rejects a remaining above the grant's tokens", () => {
    const problem = balanceStateProblem(aState([aGrant({ grantId: "g1", tokens: 10, remaining: 11 })]));
    expect(problem).toMatch(/grant g1 remaining 11 outside \[0, 10\]/);
  });

  it("at a given instant, accepts debt beside a grant past its expiry (its tokens are dead until expired)", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 10, expires: "2026-01-01T00:00:00.000Z" })], { debt: 4, balance: 6 });
    expect(balanceStateProblem(state, new Date("2026-02-01T00:00:00.000Z"))).toBeNull();
    expect(balanceStateProblem(state, new Date("2025-12-01T00:00:00.000Z"))).toMatch(/debt 4 while grants still hold 10/);
  });

  it("rejects debt while a grant still holds tokens", () => {
    const problem = balanceStateProblem(aState([aGrant({ grantId: "g1", remaining: 10 })], { debt: 4 }));
    expect(problem).toMatch(/debt 4 while grants still hold 10/);
  });
});
