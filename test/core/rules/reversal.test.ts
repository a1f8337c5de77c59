/**
 * core/rules/reversal.ts: giving back all or part of a consumption whose work failed (API.md
 * "Reservations": `POST /users/{userId}/consumptions/{entryId}/reverse`; issue 11): never
 * more in total than the entry consumed; the part that went into debt is reversed first, as
 * debt; the rest goes back to the grants the entry drew from, latest drawn first, by the one
 * give-back rule (debt first, a grant that left comes back, past its expiry it leaves at
 * once, never into a refunded or disputed order's grant).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aFrozenBalance, aGrantAt, deepFreeze, grantFactsOf } from "../../helpers/factories.js";
import { addGrant, balanceStateProblem, type BalanceState, type GrantState } from "../../../core/rules/balance-state.js";
import { planConsumption } from "../../../core/rules/drain.js";
import type { PlannedEntry } from "../../../core/rules/holds.js";
import { planReversal, type ConsumedEntry } from "../../../core/rules/reversal.js";

const NOW = new Date("2026-06-15T12:00:00.000Z");
const DAY = 86_400_000;
const NONE: ReadonlySet<string> = new Set();

/** An ISO instant `days` days from NOW (negative: in the past). */
function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY).toISOString();
}

function aGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  return aGrantAt(NOW, overrides);
}

const aState = aFrozenBalance;

function remainingOf(state: BalanceState, grantId: string): number | undefined {
  return state.grants.find((grant) => grant.grantId === grantId)?.remaining;
}

function sumOf(entries: readonly PlannedEntry[]): number {
  return entries.reduce((total, entry) => total + entry.tokens, 0);
}

/** Consumes `tokens` of `state` (overdraft allowed), returning the next state (grants kept in place) and the entry to reverse. */
function consumed(state: BalanceState, tokens: number, now = NOW): { next: BalanceState; entry: ConsumedEntry } {
  const plan = planConsumption({ state, tokens, allowOverdraft: true, now });
  if (!plan.ok) throw new Error("an overdraft is always planned");
  const byId = new Map(state.grants.map((grant) => [grant.grantId, grant]));
  return {
    next: deepFreeze(plan.next),
    entry: deepFreeze({ tokens, draws: plan.draws.map((draw) => ({ grant: grantFactsOf(byId.get(draw.grantId)!), tokens: draw.tokens })), debtAdded: plan.debtAdded, reversedSoFar: 0 }),
  };
}

/** Reverses `tokens` (undefined: all that is left), expecting it to be accepted. */
function reversed(state: BalanceState, entry: ConsumedEntry, tokens?: number, options: { now?: Date; refundedOrDisputed?: ReadonlySet<string> } = {}) {
  const plan = planReversal({ state, entry, tokens, now: options.now ?? NOW, refundedOrDisputed: options.refundedOrDisputed ?? NONE });
  if (!plan.ok) throw new Error(`reversal of ${tokens} refused (${plan.left} left)`);
  return plan;
}

describe("planReversal", () => {
  const g1 = aGrant({ grantId: "g1", remaining: 30, expires: inDays(5) });
  const g2 = aGrant({ grantId: "g2", remaining: 100, expires: inDays(60) });
  const before = aState([g1, g2]);

  it("reverses all of a consumption by default: every token back to the grant it came from", () => {
    const spent = consumed(before, 50);
    const plan = reversed(spent.next, spent.entry);
    expect(plan).toEqual({
      ok: true,
      tokens: 50,
      reversedSoFar: 50,
      next: before,
      entries: [{ reason: "reverse", tokens: 50, draws: [{ grantId: "g2", tokens: 20 }, { grantId: "g1", tokens: 30 }] }],
      debtReversed: 0,
      debtSettled: 0,
      movements: [
        { grantId: "g2", tokens: 20, debtRepaid: 0, expired: 0 },
        { grantId: "g1", tokens: 30, debtRepaid: 0, expired: 0 },
      ],
      refused: [],
    });
  });

  it("reverses part of it to the latest drawn grant first, and the next part continues from there", () => {
    const spent = consumed(before, 50); // g1 30, then g2 20
    const first = reversed(spent.next, spent.entry, 25);
    expect(first.movements).toEqual([
      { grantId: "g2", tokens: 20, debtRepaid: 0, expired: 0 },
      { grantId: "g1", tokens: 5, debtRepaid: 0, expired: 0 },
    ]);
    expect(first.reversedSoFar).toBe(25);
    expect(remainingOf(first.next, "g1")).toBe(5);
    const second = reversed(first.next, { ...spent.entry, reversedSoFar: 25 }, 10);
    expect(second.movements).toEqual([{ grantId: "g1", tokens: 10, debtRepaid: 0, expired: 0 }]);
    expect(second.reversedSoFar).toBe(35);
    const rest = reversed(second.next, { ...spent.entry, reversedSoFar: 35 });
    expect(rest).toMatchObject({ tokens: 15, reversedSoFar: 50, next: before });
  });

  it("never reverses more in total than the entry consumed (409), and nothing once all is reversed", () => {
    const spent = consumed(before, 50);
    expect(planReversal({ state: spent.next, entry: spent.entry, tokens: 51, now: NOW, refundedOrDisputed: NONE })).toEqual({ ok: false, reason: "exceeds_consumed", left: 50 });
    const partly = { ...spent.entry, reversedSoFar: 40 };
    expect(planReversal({ state: spent.next, entry: partly, tokens: 11, now: NOW, refundedOrDisputed: NONE })).toEqual({ ok: false, reason: "exceeds_consumed", left: 10 });
    expect(reversed(spent.next, partly, 10).reversedSoFar).toBe(50);
    const done = { ...spent.entry, reversedSoFar: 50 };
    expect(planReversal({ state: spent.next, entry: done, now: NOW, refundedOrDisputed: NONE })).toEqual({ ok: false, reason: "exceeds_consumed", left: 0 });
    expect(planReversal({ state: spent.next, entry: done, tokens: 1, now: NOW, refundedOrDisputed: NONE })).toEqual({ ok: false, reason: "exceeds_consumed", left: 0 });
  });

  it("reverses the part that went into debt first, as debt, before any grant gets a token", () => {
    const spent = consumed(aState([aGrant({ grantId: "g1", remaining: 20 })]), 30); // g1 20, debt 10
    expect(spent.next).toMatchObject({ balance: -10, debt: 10 });
    const first = reversed(spent.next, spent.entry, 6);
    expect(first).toMatchObject({ debtReversed: 6, debtSettled: 0, movements: [], next: { balance: -4, debt: 4 } });
    expect(first.entries).toEqual([{ reason: "reverse", tokens: 6, draws: [], debtRepaid: 6, debtReversed: 6 }]);
    // The counter splits debt part first: 6 of the 10 are done, so the next 7 are 4 of debt and 3 of g1.
    const second = reversed(first.next, { ...spent.entry, reversedSoFar: 6 }, 7);
    expect(second).toMatchObject({ debtReversed: 4, movements: [{ grantId: "g1", tokens: 3, debtRepaid: 0, expired: 0 }], next: { balance: 3, debt: 0 } });
    expect(second.entries).toEqual([{ reason: "reverse", tokens: 7, draws: [{ grantId: "g1", tokens: 3 }], debtRepaid: 4, debtReversed: 4 }]);
    const rest = reversed(second.next, { ...spent.entry, reversedSoFar: 13 });
    expect(rest).toMatchObject({ tokens: 17, debtReversed: 0, next: { balance: 20, debt: 0 } });
  });

  it("reports as settled the debt part a later grant already repaid: no grant to give it to, and it counts as reversed", () => {
    const spent = consumed(aState([aGrant({ grantId: "g1", remaining: 20 })]), 30); // g1 20, debt 10
    const topUp = addGrant(spent.next, grantFactsOf(aGrant({ grantId: "g3", orderId: "order-3", remaining: 0 }))).next; // repays the 10
    expect(topUp).toMatchObject({ balance: 90, debt: 0 });
    const plan = reversed(topUp, spent.entry, 15);
    expect(plan).toMatchObject({ tokens: 15, reversedSoFar: 15, debtReversed: 0, debtSettled: 10, movements: [{ grantId: "g1", tokens: 5 }], next: { balance: 95 } });
    expect(plan.entries).toEqual([{ reason: "reverse", tokens: 5, draws: [{ grantId: "g1", tokens: 5 }] }]);
  });

  it("lowers the group's debt by the debt part even when part of that debt is newer (tokens given back repay debt first)", () => {
    const spent = consumed(aState([aGrant({ grantId: "g1", remaining: 20 })]), 30); // debt 10
    const topUp = addGrant(spent.next, grantFactsOf(aGrant({ grantId: "g3", orderId: "order-3", tokens: 10 }))).next; // repays 10
    const again = consumed(topUp, 4).next; // debt 4, from another consumption
    const plan = reversed(again, spent.entry, 10);
    expect(plan).toMatchObject({ debtReversed: 4, debtSettled: 6, next: { debt: 0, balance: 0 } });
  });

  it("lets the grant part repay the group's other debt first, by the give-back rule", () => {
    const spent = consumed(aState([aGrant({ grantId: "g1", remaining: 20 })]), 20);
    const later = consumed(spent.next, 5).next; // debt 5 from another consumption
    const plan = reversed(later, spent.entry);
    expect(plan).toMatchObject({ debtReversed: 0, movements: [{ grantId: "g1", tokens: 20, debtRepaid: 5, expired: 0 }], next: { balance: 15, debt: 0 } });
    expect(plan.entries).toEqual([{ reason: "reverse", tokens: 20, draws: [{ grantId: "g1", tokens: 20 }], debtRepaid: 5 }]);
  });

  it("lets what goes back to a grant past its expiry leave at once (`expire`)", () => {
    const soon = aGrant({ grantId: "g1", remaining: 30, expires: new Date(NOW.getTime() + 60_000).toISOString() });
    const spent = consumed(aState([soon, g2]), 50);
    const after = new Date(NOW.getTime() + 120_000);
    const plan = reversed(spent.next, spent.entry, undefined, { now: after });
    expect(plan.entries).toEqual([
      { reason: "reverse", tokens: 50, draws: [{ grantId: "g2", tokens: 20 }, { grantId: "g1", tokens: 30 }] },
      { reason: "expire", tokens: -30, draws: [{ grantId: "g1", tokens: 30 }] },
    ]);
    expect(plan.next.balance - spent.next.balance).toBe(sumOf(plan.entries));
    expect(remainingOf(plan.next, "g1")).toBe(0);
    expect(balanceStateProblem(plan.next, after)).toBeNull();
  });

  it("re-adds a grant the consumption emptied and that left the balance item", () => {
    const spent = consumed(before, 40);
    const withoutG1: BalanceState = { ...spent.next, grants: spent.next.grants.filter((grant) => grant.grantId !== "g1") };
    const plan = reversed(withoutG1, spent.entry);
    expect(plan.next.grants).toEqual([{ ...g2, remaining: 100 }, { ...g1, remaining: 30 }]);
  });

  it("never gives back into a grant of a refunded or disputed order: refused, reported, counted as reversed", () => {
    const other = aGrant({ grantId: "g2", orderId: "order-2", expires: inDays(60) });
    const spent = consumed(aState([g1, other]), 50); // g1 30 (order-1), g2 20 (order-2)
    const plan = reversed(spent.next, spent.entry, 40, { refundedOrDisputed: new Set(["order-1"]) });
    expect(plan).toMatchObject({
      tokens: 40,
      reversedSoFar: 40,
      movements: [{ grantId: "g2", tokens: 20 }],
      refused: [{ grantId: "g1", tokens: 20 }],
      entries: [{ reason: "reverse", tokens: 20, draws: [{ grantId: "g2", tokens: 20 }] }],
    });
    expect(plan.next.balance - spent.next.balance).toBe(20);
    expect(remainingOf(plan.next, "g1")).toBe(0);
  });

  it("refuses to give back to a grant that may be in overflow items not read (it would be re-added twice)", () => {
    const spent = consumed(before, 40);
    const spilledG1: BalanceState = { ...spent.next, grants: [{ ...g2, remaining: 90 }], spilled: { grants: 1, tokens: 0, from: `${inDays(1)}#` } };
    expect(() => planReversal({ state: spilledG1, entry: spent.entry, now: NOW, refundedOrDisputed: NONE })).toThrow(/may be in overflow items not read/);
  });

  it("throws a RangeError for a bad count, or an entry whose numbers do not add up", () => {
    const spent = consumed(before, 50);
    const base = { state: spent.next, entry: spent.entry, now: NOW, refundedOrDisputed: NONE };
    for (const tokens of [0, -1, 1.5]) expect(() => planReversal({ ...base, tokens })).toThrow(RangeError);
    const bad: ConsumedEntry[] = [
      { ...spent.entry, tokens: 51 },
      { ...spent.entry, debtAdded: 1 },
      { ...spent.entry, reversedSoFar: 51 },
      { ...spent.entry, reversedSoFar: -1 },
      { ...spent.entry, tokens: 60, draws: [...spent.entry.draws, spent.entry.draws[0]!] },
      { ...spent.entry, tokens: 50, draws: [{ ...spent.entry.draws[0]!, tokens: 0 }, { ...spent.entry.draws[1]!, tokens: 50 }] },
    ];
    for (const entry of bad) expect(() => planReversal({ ...base, entry }), JSON.stringify(entry)).toThrow(RangeError);
  });
});

// --- Properties ---------------------------------------------------------------------------

const PROPERTY = { numRuns: Number(process.env.PROP_RUNS ?? 300), seed: Number(process.env.PROP_SEED ?? 0x2e_7e25) } as const;

/** A group of a few grants (some expiring soon, some never, some of a disputed order), a consumption of it, and what happens next. */
const aScenario = fc.record({
  grants: fc.array(
    fc.record({
      tokens: fc.integer({ min: 1, max: 40 }),
      spent: fc.integer({ min: 0, max: 40 }),
      expiresInMinutes: fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }),
      order: fc.integer({ min: 1, max: 3 }),
    }),
    { maxLength: 6 },
  ),
  consume: fc.integer({ min: 1, max: 150 }),
  topUp: fc.integer({ min: 0, max: 30 }),
  minutesLater: fc.integer({ min: 0, max: 180 }),
  disputed: fc.subarray([1, 2, 3]),
  parts: fc.array(fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined, freq: 5 }), { minLength: 1, maxLength: 8 }),
});

type Scenario = typeof aScenario extends fc.Arbitrary<infer T> ? T : never;

/** The consumption's state and entry, then the state the reversals start from (a top-up, time passing). */
function setUp(scenario: Scenario) {
  const grants = scenario.grants.map((shape, index) =>
    aGrant({
      grantId: `g${index}`,
      orderId: `order-${shape.order}`,
      tokens: shape.tokens,
      remaining: shape.tokens - Math.min(shape.spent, shape.tokens),
      expires: shape.expiresInMinutes === undefined ? undefined : new Date(NOW.getTime() + shape.expiresInMinutes * 60_000).toISOString(),
    }),
  );
  const start = aState(grants);
  const spent = consumed(start, scenario.consume);
  let state = spent.next;
  if (scenario.topUp > 0) state = addGrant(state, grantFactsOf(aGrant({ grantId: "top", orderId: "order-top", tokens: scenario.topUp }))).next;
  const now = new Date(NOW.getTime() + scenario.minutesLater * 60_000);
  return { start, spent, state, now, refundedOrDisputed: new Set(scenario.disputed.map((order) => `order-${order}`)) };
}

describe("reversals over random consumptions", () => {
  it("never reverse more than consumed, conserve tokens, explain the balance, and keep the state valid", () => {
    const seen = { refusedReversal: 0, debtReversed: 0, debtSettled: 0, refusedTokens: 0, expired: 0, regained: 0 };
    fc.assert(
      fc.property(aScenario, (scenario) => {
        const { spent, now, refundedOrDisputed } = setUp(scenario);
        let { state } = setUp(scenario);
        let entry = spent.entry;
        for (const part of scenario.parts) {
          const left = entry.tokens - entry.reversedSoFar;
          const plan = planReversal({ state, entry, tokens: part, now, refundedOrDisputed });
          if (!plan.ok) {
            expect((part ?? left) > left || left === 0).toBe(true);
            expect(plan.left).toBe(left);
            seen.refusedReversal++;
            continue;
          }
          if (plan.debtReversed > 0) seen.debtReversed++;
          if (plan.debtSettled > 0) seen.debtSettled++;
          if (plan.refused.length > 0) seen.refusedTokens++;
          if (plan.movements.some((movement) => movement.expired > 0)) seen.expired++;
          if (plan.movements.some((movement) => movement.tokens > movement.expired + movement.debtRepaid)) seen.regained++;
          const given = plan.movements.reduce((total, movement) => total + movement.tokens, 0);
          const refused = plan.refused.reduce((total, item) => total + item.tokens, 0);
          expect(plan.tokens).toBe(part ?? left);
          expect(plan.debtReversed + plan.debtSettled + given + refused).toBe(plan.tokens);
          expect(plan.next.balance - state.balance).toBe(sumOf(plan.entries));
          expect(state.debt - plan.next.debt).toBe(plan.debtReversed + plan.movements.reduce((total, movement) => total + movement.debtRepaid, 0));
          expect(plan.next.debt).toBeGreaterThanOrEqual(0);
          expect(balanceStateProblem(plan.next, now)).toBeNull();
          expect(plan.reversedSoFar).toBeLessThanOrEqual(entry.tokens);
          state = plan.next;
          entry = { ...entry, reversedSoFar: plan.reversedSoFar };
        }
      }),
      PROPERTY,
    );
    // The scenarios do reach every path.
    for (const [path, count] of Object.entries(seen)) expect(count, path).toBeGreaterThan(0);
  });

  it("reverse the debt part first, then the grants latest drawn first, whatever the parts", () => {
    fc.assert(
      fc.property(aScenario, (scenario) => {
        const { spent, now, refundedOrDisputed } = setUp(scenario);
        let { state } = setUp(scenario);
        let entry = spent.entry;
        const toGrants = new Map<string, number>();
        let toDebt = 0;
        for (const part of scenario.parts) {
          const plan = planReversal({ state, entry, tokens: part, now, refundedOrDisputed });
          if (!plan.ok) continue;
          toDebt += plan.debtReversed + plan.debtSettled;
          for (const item of [...plan.movements, ...plan.refused]) toGrants.set(item.grantId, (toGrants.get(item.grantId) ?? 0) + item.tokens);
          state = plan.next;
          entry = { ...entry, reversedSoFar: plan.reversedSoFar };
        }
        // What `reversedSoFar` tokens mean: the debt part first, then the draws from the latest.
        let left = entry.reversedSoFar;
        const debtPart = Math.min(left, entry.debtAdded);
        left -= debtPart;
        expect(toDebt).toBe(debtPart);
        for (const draw of [...entry.draws].reverse()) {
          const take = Math.min(left, draw.tokens);
          left -= take;
          expect(toGrants.get(draw.grant.grantId) ?? 0, draw.grant.grantId).toBe(take);
        }
      }),
      PROPERTY,
    );
  });

  it("restore the state a consumption started from when all of it is reversed at once, with nothing in between", () => {
    fc.assert(
      fc.property(aScenario, (scenario) => {
        const { start, spent } = setUp(scenario);
        const plan = reversed(spent.next, spent.entry);
        expect(plan.next).toEqual(start);
      }),
      PROPERTY,
    );
  });
});
