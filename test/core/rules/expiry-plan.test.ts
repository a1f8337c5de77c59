/**
 * core/rules/expiry-plan.ts: due grants leave the balance with exactly their remaining tokens.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balanceStateProblem, isDue, type BalanceState, type GrantState } from "../../../core/rules/balance-state.js";
import { planExpiry } from "../../../core/rules/expiry-plan.js";

const PROPERTY = { numRuns: 400, seed: 0xe4b1_7e00 } as const;

const NOW = new Date("2026-06-15T00:00:00.000Z");
const HOUR = 3_600_000;

function inHours(hours: number): string {
  return new Date(NOW.getTime() + hours * HOUR).toISOString();
}

/** A started, unspent 100-token grant expiring in 10 days, unless told otherwise. */
function aGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const tokens = overrides.tokens ?? 100;
  return { orderId: "order-1", offerId: "calls-60", tokens, remaining: tokens, starts: inHours(-24 * 30), expires: inHours(240), ...overrides };
}

function aOnceGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  const { expires: _ignored, ...grant } = aGrant(overrides);
  return grant;
}

/** A consistent, frozen balance of the given grants. */
function aState(grants: GrantState[], debt = 0): BalanceState {
  const sum = grants.reduce((total, grant) => total + grant.remaining, 0);
  for (const grant of grants) Object.freeze(grant);
  return Object.freeze({ userId: "u1", offerGroup: "calls", balance: sum - debt, debt, version: 9, grants: Object.freeze(grants) as GrantState[] });
}

function ids(grants: readonly GrantState[]): string[] {
  return grants.map((grant) => grant.grantId);
}

describe("planExpiry", () => {
  it("removes a due grant with exactly its remaining tokens", () => {
    const due = aGrant({ grantId: "g1", tokens: 100, remaining: 37, expires: inHours(-1) });
    const live = aGrant({ grantId: "g2", tokens: 50 });
    const state = aState([due, live]);
    expect(planExpiry({ state, now: NOW })).toEqual({
      expired: [{ grant: due, tokens: 37 }],
      next: { ...state, balance: 50, grants: [live] },
    });
  });

  it("expires a grant whose expiry is exactly now", () => {
    const state = aState([aGrant({ grantId: "g1", expires: NOW.toISOString() })]);
    expect(planExpiry({ state, now: NOW }).expired.map((entry) => entry.grant.grantId)).toEqual(["g1"]);
  });

  it("keeps a grant that expires one millisecond from now", () => {
    const state = aState([aGrant({ grantId: "g1", expires: new Date(NOW.getTime() + 1).toISOString() })]);
    expect(planExpiry({ state, now: NOW }).expired).toEqual([]);
  });

  it("removes a fully spent due grant with 0 tokens, so it still leaves the balance item", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 0, expires: inHours(-2) }), aGrant({ grantId: "g2" })]);
    const plan = planExpiry({ state, now: NOW });
    expect(plan.expired).toEqual([{ grant: state.grants[0], tokens: 0 }]);
    expect(ids(plan.next.grants)).toEqual(["g2"]);
    expect(plan.next.balance).toBe(100);
  });

  it("never expires a once grant", () => {
    const state = aState([aOnceGrant({ grantId: "g1" })]);
    expect(planExpiry({ state, now: new Date("9999-01-01T00:00:00.000Z") }).expired).toEqual([]);
  });

  it("leaves the state unchanged when nothing is due", () => {
    const state = aState([aGrant({ grantId: "g1" }), aOnceGrant({ grantId: "g2" }), aGrant({ grantId: "g3", starts: inHours(5), expires: inHours(50) })]);
    const plan = planExpiry({ state, now: NOW });
    expect(plan.expired).toEqual([]);
    expect(plan.next).toEqual(state);
  });

  it("leaves an empty group unchanged", () => {
    const state = aState([]);
    expect(planExpiry({ state, now: NOW })).toEqual({ expired: [], next: state });
  });

  it("lists due grants earliest expiry first, ties by grant id", () => {
    const state = aState([
      aGrant({ grantId: "g4", expires: inHours(-1) }),
      aGrant({ grantId: "g3", expires: inHours(-5) }),
      aGrant({ grantId: "g2", expires: inHours(-1) }),
      aGrant({ grantId: "g1", expires: inHours(-3) }),
    ]);
    expect(planExpiry({ state, now: NOW }).expired.map((entry) => entry.grant.grantId)).toEqual(["g3", "g1", "g2", "g4"]);
  });

  it("respects the limit, expiring the earliest-expiring due grants first", () => {
    const state = aState([
      aGrant({ grantId: "g1", tokens: 10, expires: inHours(-1) }),
      aGrant({ grantId: "g2", tokens: 20, expires: inHours(-9) }),
      aGrant({ grantId: "g3", tokens: 30, expires: inHours(-5) }),
      aGrant({ grantId: "g4", tokens: 40 }),
    ]);
    const plan = planExpiry({ state, now: NOW, limit: 2 });
    expect(plan.expired.map((entry) => [entry.grant.grantId, entry.tokens])).toEqual([
      ["g2", 20],
      ["g3", 30],
    ]);
    expect(ids(plan.next.grants)).toEqual(["g1", "g4"]);
    expect(plan.next.balance).toBe(50);
  });

  it("expires everything due when the limit is larger than the number of due grants", () => {
    const state = aState([aGrant({ grantId: "g1", expires: inHours(-1) }), aGrant({ grantId: "g2" })]);
    expect(planExpiry({ state, now: NOW, limit: 100 }).expired).toHaveLength(1);
  });

  it("keeps the debt and the version", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 0, expires: inHours(-1) }), aGrant({ grantId: "g2", remaining: 0 })], 15);
    const plan = planExpiry({ state, now: NOW });
    expect(plan.next).toMatchObject({ balance: -15, debt: 15, version: 9 });
    expect(ids(plan.next.grants)).toEqual(["g2"]);
  });

  it("does not mutate the state it is given", () => {
    const state = aState([aGrant({ grantId: "g1", expires: inHours(-1) }), aGrant({ grantId: "g2" })]);
    const before = structuredClone(state);
    planExpiry({ state, now: NOW });
    expect(state).toEqual(before);
  });
});

// --- Properties ---------------------------------------------------------------------------

const aRandomState: fc.Arbitrary<BalanceState> = fc
  .tuple(
    fc.array(
      fc.record({
        tokens: fc.nat({ max: 200 }),
        spent: fc.integer({ min: 0, max: 100 }),
        // Expiries clustered around NOW so that exact ties and boundaries occur.
        expiresOffsetHours: fc.option(fc.integer({ min: -48, max: 48 }), { nil: undefined, freq: 5 }),
      }),
      { maxLength: 15 },
    ),
    fc.nat({ max: 400 }),
    fc.boolean(),
  )
  .map(([shapes, debt, inDebt]) =>
    aState(
      shapes.map((shape, index) => {
        const remaining = inDebt ? 0 : shape.tokens - Math.floor((shape.tokens * shape.spent) / 100);
        const grant = aGrant({ grantId: `g${String(index).padStart(2, "0")}`, tokens: shape.tokens, remaining });
        return shape.expiresOffsetHours === undefined ? aOnceGrant(grant) : { ...grant, expires: inHours(shape.expiresOffsetHours) };
      }),
      inDebt ? debt : 0,
    ),
  );

const aLimit = fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined });

describe("planExpiry: properties", () => {
  it("conserves tokens: the next balance plus the tokens removed is the balance before", () => {
    fc.assert(
      fc.property(aRandomState, aLimit, (state, limit) => {
        const plan = planExpiry({ state, now: NOW, limit });
        const removed = plan.expired.reduce((total, entry) => total + entry.tokens, 0);
        expect(plan.next.balance + removed).toBe(state.balance);
        for (const entry of plan.expired) expect(entry.tokens).toBe(entry.grant.remaining);
      }),
      PROPERTY,
    );
  });

  it("keeps the balance-state invariant", () => {
    fc.assert(
      fc.property(aRandomState, aLimit, (state, limit) => {
        expect(balanceStateProblem(state)).toBeNull();
        expect(balanceStateProblem(planExpiry({ state, now: NOW, limit }).next)).toBeNull();
      }),
      PROPERTY,
    );
  });

  it("removes only due grants, as many as the limit allows, earliest expiry first, and keeps the rest in order", () => {
    fc.assert(
      fc.property(aRandomState, aLimit, (state, limit) => {
        const plan = planExpiry({ state, now: NOW, limit });
        const due = state.grants.filter((grant) => isDue(grant, NOW));
        const expiredIds = new Set(plan.expired.map((entry) => entry.grant.grantId));
        expect(plan.expired.length).toBe(Math.min(due.length, limit ?? Infinity));
        for (const entry of plan.expired) expect(isDue(entry.grant, NOW)).toBe(true);
        // Any due grant left behind expires no earlier than every expired one.
        const latestExpired = Math.max(...plan.expired.map((entry) => Date.parse(entry.grant.expires!)));
        for (const grant of due.filter((grant) => !expiredIds.has(grant.grantId))) {
          expect(Date.parse(grant.expires!)).toBeGreaterThanOrEqual(latestExpired);
        }
        expect(plan.next.grants).toEqual(state.grants.filter((grant) => !expiredIds.has(grant.grantId)));
        expect(plan.next.debt).toBe(state.debt);
        expect(plan.next.version).toBe(state.version);
      }),
      PROPERTY,
    );
  });

  it("without a limit leaves no due grant behind, and a second run changes nothing", () => {
    fc.assert(
      fc.property(aRandomState, (state) => {
        const first = planExpiry({ state, now: NOW });
        expect(first.next.grants.some((grant) => isDue(grant, NOW))).toBe(false);
        const second = planExpiry({ state: first.next, now: NOW });
        expect(second).toEqual({ expired: [], next: first.next });
      }),
      PROPERTY,
    );
  });
});
