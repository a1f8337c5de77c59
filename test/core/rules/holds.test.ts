/**
 * core/rules/holds.ts: holds (reservations) are draws made early (DESIGN.md; API.md
 * "Reservations (hold, then commit or release)"; issue 11): a hold draws its tokens at once
 * in drain order and never into debt; a release gives them all back by the one give-back
 * rule; a commit consumes from the hold's own draws first, gives back what was unused and
 * draws any extra like a consumption; expired holds are released in one go; grants a hold
 * emptied stay in the balance item while it holds tokens from them; and a hold crosses the
 * low-balance threshold while a release does not re-arm it.
 *
 * The last part plays random sequences of purchases, consumptions, holds, commits,
 * releases, expiries of holds and grants, disputes, reversals and clock moves, and checks
 * after each step that tokens are conserved and the ledger explains the balance.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aFrozenBalance, aGrantAt, deepFreeze, grantFactsOf } from "../../helpers/factories.js";
import { addGrant, balanceStateProblem, isDue, isExhausted, type BalanceState, type GrantState } from "../../../core/rules/balance-state.js";
import { planConsumption, withoutEmptied } from "../../../core/rules/drain.js";
import { planExpiry } from "../../../core/rules/expiry-plan.js";
import { freezePlan, type GrantFacts } from "../../../core/rules/give-back.js";
import {
  expiredHolds,
  grantsHeld,
  grantsOutOfHand,
  heldTokens,
  holdsProblem,
  isHoldExpired,
  ledgerDraws,
  lowBalanceAlarm,
  planCommit,
  planExpireHolds,
  planHold,
  planRelease,
  withoutEmptiedUnheld,
  type GrantDraw,
  type HoldState,
  type PlannedEntry,
} from "../../../core/rules/holds.js";
import { lowBalanceCrossing } from "../../../core/rules/low-balance.js";
import { planReversal, type ConsumedEntry } from "../../../core/rules/reversal.js";

const NOW = new Date("2026-06-15T12:00:00.000Z");
const SECOND = 1000;
const DAY = 86_400_000;
const NONE: ReadonlySet<string> = new Set();

/** An ISO instant `days` days from NOW (negative: in the past). */
function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY).toISOString();
}

/** `seconds` seconds after NOW. */
function later(seconds: number): Date {
  return new Date(NOW.getTime() + seconds * SECOND);
}

/** A started, unspent 100-token grant of order-1 expiring in 30 days, unless told otherwise. */
function aGrant(overrides: Partial<GrantState> & { grantId: string }): GrantState {
  return aGrantAt(NOW, overrides);
}

const aState = aFrozenBalance;

function remainingOf(state: BalanceState, grantId: string): number | undefined {
  return state.grants.find((grant) => grant.grantId === grantId)?.remaining;
}

/** Σ of the entries' signed tokens: what they say the balance moved by. */
function sumOf(entries: readonly PlannedEntry[]): number {
  return entries.reduce((total, entry) => total + entry.tokens, 0);
}

/** Holds `tokens` for five minutes as reservation `id`, expecting it to be accepted. */
function held(state: BalanceState, holds: readonly HoldState[], tokens: number, id = "r1", now = NOW) {
  const plan = planHold({ state, holds, tokens, ttlSeconds: 300, now, reservationId: id });
  if (!plan.ok) throw new Error(`hold of ${tokens} refused`);
  return plan;
}

/** A hold as stored, for cases that build one by hand. */
function aHold(reservationId: string, draws: Array<[GrantState, number]>, expires = later(300).toISOString()): HoldState {
  return deepFreeze({
    reservationId,
    tokens: draws.reduce((total, [, tokens]) => total + tokens, 0),
    draws: draws.map(([grant, tokens]) => ({ grant: grantFactsOf(grant), tokens })),
    expires,
    createdAt: NOW.toISOString(),
  });
}

describe("planHold", () => {
  it("draws the tokens at once in drain order: the balance loses them, the hold keeps its draws with each grant's facts", () => {
    const late = aGrant({ grantId: "g2", expires: inDays(60) });
    const early = aGrant({ grantId: "g1", remaining: 30, expires: inDays(5) });
    const state = aState([late, early]);
    const plan = held(state, [], 50);
    expect(plan.hold).toEqual({
      reservationId: "r1",
      tokens: 50,
      draws: [
        { grant: grantFactsOf(early), tokens: 30 },
        { grant: grantFactsOf(late), tokens: 20 },
      ],
      expires: later(300).toISOString(),
      createdAt: NOW.toISOString(),
    });
    expect(plan.holds).toEqual([plan.hold]);
    expect(plan.entries).toEqual([{ reason: "hold", tokens: -50, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 20 }] }]);
    expect(plan.next).toEqual({ ...state, balance: 80, grants: [{ ...late, remaining: 80 }, { ...early, remaining: 0 }] });
    expect(plan.final).toBe(true);
  });

  it("keeps a grant it empties in the balance item: nothing leaves while the hold has tokens from it", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 30, expires: inDays(5) });
    const plan = held(aState([g1, aGrant({ grantId: "g2" })]), [], 30);
    expect(plan.leaving).toEqual([]);
    expect(remainingOf(plan.next, "g1")).toBe(0);
    // The writer's pruning spares it; drain.ts's plain rule would have taken it out.
    expect(withoutEmptiedUnheld(plan.next, ["g1"], plan.holds)).toBe(plan.next);
    expect(withoutEmptied(plan.next, [{ grantId: "g1", tokens: 30 }]).grants.map((grant) => grant.grantId)).toEqual(["g2"]);
  });

  it("is refused, with the spendable tokens, when the balance cannot cover it: a hold never goes into debt", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 40 }), aGrant({ grantId: "g2", remaining: 50, expires: inDays(-1) })]);
    expect(planHold({ state, holds: [], tokens: 41, ttlSeconds: 300, now: NOW, reservationId: "r1" })).toEqual({ ok: false, available: 40, final: true });
    expect(planHold({ state, holds: [], tokens: 40, ttlSeconds: 300, now: NOW, reservationId: "r1" }).ok).toBe(true);
    const inDebt = aState([aGrant({ grantId: "g1", remaining: 0 })], 5);
    expect(planHold({ state: inDebt, holds: [], tokens: 1, ttlSeconds: 300, now: NOW, reservationId: "r1" })).toEqual({ ok: false, available: 0, final: true });
  });

  it("cannot take what another hold holds", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 10 })]);
    const first = held(state, [], 6);
    expect(planHold({ state: first.next, holds: first.holds, tokens: 5, ttlSeconds: 300, now: NOW, reservationId: "r2" })).toMatchObject({ ok: false, available: 4 });
    const second = held(first.next, first.holds, 4, "r2");
    expect(second.holds.map((hold) => hold.reservationId)).toEqual(["r1", "r2"]);
    expect(heldTokens(second.holds)).toBe(10);
    expect(grantsHeld(second.holds)).toEqual(new Map([["g1", 10]]));
    expect(second.next.balance).toBe(0);
  });

  it("expires ttlSeconds after now, for any ttl from 1 second to one day", () => {
    const state = aState([aGrant({ grantId: "g1" })]);
    for (const ttlSeconds of [1, 300, 86_400]) {
      const plan = planHold({ state, holds: [], tokens: 1, ttlSeconds, now: NOW, reservationId: "r1" });
      expect(plan.ok && plan.hold.expires).toBe(later(ttlSeconds).toISOString());
    }
  });

  it("throws a RangeError for a bad ttl, a bad count, or a reservation already held", () => {
    const state = aState([aGrant({ grantId: "g1" })]);
    const base = { state, holds: [], tokens: 1, ttlSeconds: 300, now: NOW, reservationId: "r1" };
    for (const ttlSeconds of [0, 86_401, 1.5, Number.NaN]) expect(() => planHold({ ...base, ttlSeconds })).toThrow(RangeError);
    for (const tokens of [0, -1, 2.5]) expect(() => planHold({ ...base, tokens })).toThrow(RangeError);
    const first = held(state, [], 1);
    expect(() => planHold({ ...base, state: first.next, holds: first.holds })).toThrow(RangeError);
  });

  it("says the plan is not final when spilled grants may come first in drain order", () => {
    const state: BalanceState = deepFreeze({ ...aState([aGrant({ grantId: "g1", expires: inDays(30) })]), balance: 150, spilled: { grants: 1, tokens: 50, from: `${inDays(10)}#g0` } });
    expect(planHold({ state, holds: [], tokens: 10, ttlSeconds: 300, now: NOW, reservationId: "r1" })).toMatchObject({ ok: true, final: false });
  });

  it("does not mutate what it is given", () => {
    const state = aState([aGrant({ grantId: "g1" })]);
    expect(() => held(state, deepFreeze([]), 10)).not.toThrow();
  });
});

describe("planRelease", () => {
  it("gives every held token back to its grant: the state is the one before the hold", () => {
    const state = aState([aGrant({ grantId: "g1", remaining: 30, expires: inDays(5) }), aGrant({ grantId: "g2" })]);
    const hold = held(state, [], 50);
    const plan = planRelease({ state: hold.next, holds: hold.holds, reservationId: "r1", now: later(10), refundedOrDisputed: NONE });
    expect(plan).toEqual({
      ok: true,
      hold: hold.hold,
      holds: [],
      next: state,
      entries: [{ reason: "release", tokens: 50, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 20 }] }],
      movements: [
        { grantId: "g1", tokens: 30, debtRepaid: 0, expired: 0 },
        { grantId: "g2", tokens: 20, debtRepaid: 0, expired: 0 },
      ],
      refused: [],
      leaving: [],
    });
  });

  it("lets what goes back to a grant expired since the hold leave at once (`expire`)", () => {
    const soon = aGrant({ grantId: "g1", remaining: 30, expires: later(60).toISOString() });
    const state = aState([soon, aGrant({ grantId: "g2" })]);
    const hold = held(state, [], 50);
    const after = later(120);
    const plan = planRelease({ state: hold.next, holds: hold.holds, reservationId: "r1", now: after, refundedOrDisputed: NONE });
    if (!plan.ok) throw new Error("released");
    expect(plan.entries).toEqual([
      { reason: "release", tokens: 50, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 20 }] },
      { reason: "expire", tokens: -30, draws: [{ grantId: "g1", tokens: 30 }] },
    ]);
    expect(plan.next.balance).toBe(100);
    expect(remainingOf(plan.next, "g1")).toBe(0);
    expect(plan.next.balance - hold.next.balance).toBe(sumOf(plan.entries));
    // Emptied and past its expiry, held by no one: it leaves.
    expect(plan.leaving).toEqual(["g1"]);
    expect(balanceStateProblem(withoutEmptiedUnheld(plan.next, plan.leaving, plan.holds), after)).toBeNull();
  });

  it("gives back to a grant that the expiry already took out of the balance item: it expires at once, and is not re-added", () => {
    const soon = aGrant({ grantId: "g1", remaining: 30, expires: later(60).toISOString() });
    const hold = held(aState([soon]), [], 20);
    const after = later(120);
    const expired = planExpiry({ state: hold.next, now: after });
    expect(expired.next.grants).toEqual([]);
    const plan = planRelease({ state: expired.next, holds: hold.holds, reservationId: "r1", now: after, refundedOrDisputed: NONE });
    expect(plan).toMatchObject({ ok: true, next: { balance: 0, grants: [] }, movements: [{ grantId: "g1", tokens: 20, debtRepaid: 0, expired: 20 }] });
  });

  it("re-adds a held grant that left the balance item", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 0 });
    const hold = aHold("r1", [[g1, 40]]);
    const plan = planRelease({ state: aState([]), holds: [hold], reservationId: "r1", now: NOW, refundedOrDisputed: NONE });
    expect(plan).toMatchObject({ ok: true, next: { balance: 40, grants: [{ ...g1, remaining: 40 }] } });
  });

  it("repays the group's debt first", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 50 });
    const hold = held(aState([g1]), [], 50);
    const spent = planConsumption({ state: hold.next, tokens: 20, allowOverdraft: true, now: NOW });
    if (!spent.ok) throw new Error("an overdraft is always planned");
    expect(spent.next).toMatchObject({ balance: -20, debt: 20 });
    const plan = planRelease({ state: spent.next, holds: hold.holds, reservationId: "r1", now: NOW, refundedOrDisputed: NONE });
    expect(plan).toMatchObject({
      ok: true,
      next: { balance: 30, debt: 0 },
      entries: [{ reason: "release", tokens: 50, draws: [{ grantId: "g1", tokens: 50 }], debtRepaid: 20 }],
      leaving: [],
    });
    expect(remainingOf((plan as { next: BalanceState }).next, "g1")).toBe(30);
  });

  it("takes out a grant whose returned tokens all repaid debt, once no hold has tokens from it", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 10 });
    const hold = held(aState([g1]), [], 10);
    const spent = planConsumption({ state: hold.next, tokens: 25, allowOverdraft: true, now: NOW });
    if (!spent.ok) throw new Error("an overdraft is always planned");
    const plan = planRelease({ state: spent.next, holds: hold.holds, reservationId: "r1", now: NOW, refundedOrDisputed: NONE });
    if (!plan.ok) throw new Error("released");
    expect(plan.next).toMatchObject({ balance: -15, debt: 15 });
    expect(plan.leaving).toEqual(["g1"]);
    expect(withoutEmptiedUnheld(plan.next, plan.leaving, plan.holds).grants).toEqual([]);
  });

  it("never gives back into a grant of a refunded or disputed order: those tokens are reported, and the release entry counts only what came back", () => {
    const mine = aGrant({ grantId: "g1", remaining: 30, expires: inDays(5) });
    const other = aGrant({ grantId: "g2", orderId: "order-2" });
    const hold = held(aState([mine, other]), [], 50);
    const frozen = freezePlan({ state: hold.next, orderId: "order-1" });
    const plan = planRelease({ state: frozen.next, holds: hold.holds, reservationId: "r1", now: NOW, refundedOrDisputed: new Set(["order-1"]) });
    expect(plan).toMatchObject({
      ok: true,
      refused: [{ grantId: "g1", tokens: 30 }],
      entries: [{ reason: "release", tokens: 20, draws: [{ grantId: "g2", tokens: 20 }] }],
      next: { balance: 100 },
      leaving: [],
    });
    expect(remainingOf((plan as { next: BalanceState }).next, "g1")).toBe(0);
  });

  it("leaves the other holds as they are, and keeps a grant another hold still draws on", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 10 });
    const first = held(aState([g1, aGrant({ grantId: "g2" })]), [], 6);
    const second = held(first.next, first.holds, 4, "r2");
    const spent = planConsumption({ state: second.next, tokens: 100, allowOverdraft: false, now: NOW });
    if (!spent.ok) throw new Error("covered");
    const plan = planRelease({ state: spent.next, holds: second.holds, reservationId: "r1", now: NOW, refundedOrDisputed: NONE });
    expect(plan).toMatchObject({ ok: true, holds: [second.hold], leaving: [] });
    expect(remainingOf((plan as { next: BalanceState }).next, "g1")).toBe(6);
  });

  it("answers not_held for a reservation that is not a live hold (released, committed, expired, unknown)", () => {
    const state = aState([aGrant({ grantId: "g1" })]);
    const hold = held(state, [], 10);
    const released = planRelease({ state: hold.next, holds: hold.holds, reservationId: "r1", now: NOW, refundedOrDisputed: NONE });
    if (!released.ok) throw new Error("released");
    expect(planRelease({ state: released.next, holds: released.holds, reservationId: "r1", now: NOW, refundedOrDisputed: NONE })).toEqual({ ok: false, reason: "not_held" });
    expect(planRelease({ state, holds: [], reservationId: "nope", now: NOW, refundedOrDisputed: NONE })).toEqual({ ok: false, reason: "not_held" });
  });
});

describe("planCommit", () => {
  const commit = (plan: { next: BalanceState; holds: HoldState[] }, tokens: number, extra: Partial<Parameters<typeof planCommit>[0]> = {}) =>
    planCommit({ state: plan.next, holds: plan.holds, reservationId: "r1", tokens, allowOverdraft: false, now: later(10), refundedOrDisputed: NONE, ...extra });

  const g1 = aGrant({ grantId: "g1", remaining: 30, expires: inDays(5) });
  const g2 = aGrant({ grantId: "g2", remaining: 100, expires: inDays(60) });
  const before = aState([g1, g2]);

  it("less than held: releases the whole hold, consumes from its own draws in order, and gives the rest back", () => {
    const hold = held(before, [], 50);
    const plan = commit(hold, 40);
    expect(plan).toMatchObject({
      ok: true,
      holds: [],
      entries: [
        { reason: "release", tokens: 50, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 20 }] },
        { reason: "consume", tokens: -40, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 10 }] },
      ],
      consumption: { draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 10 }], debtAdded: 0, fromHold: 40 },
      movements: [{ grantId: "g2", tokens: 10, debtRepaid: 0, expired: 0 }],
      refused: [],
      leaving: ["g1"],
      final: true,
    });
    if (!plan.ok) throw new Error("committed");
    // Net −40 against the balance before the hold.
    expect(plan.next.balance).toBe(before.balance - 40);
    expect(plan.next.balance - hold.next.balance).toBe(sumOf(plan.entries));
    expect(withoutEmptiedUnheld(plan.next, plan.leaving, plan.holds).grants).toEqual([{ ...g2, remaining: 90 }]);
  });

  it("exactly what was held: nothing goes back, and grants the hold emptied leave", () => {
    const hold = held(before, [], 50);
    const plan = commit(hold, 50);
    expect(plan).toMatchObject({ ok: true, movements: [], leaving: ["g1"], consumption: { fromHold: 50, debtAdded: 0 } });
    if (!plan.ok) throw new Error("committed");
    expect(plan.next).toEqual(hold.next);
    expect(plan.entries.map((entry) => [entry.reason, entry.tokens])).toEqual([["release", 50], ["consume", -50]]);
  });

  it("keeps a grant it emptied while another hold still has tokens from it", () => {
    const first = held(aState([aGrant({ grantId: "g1", remaining: 10 })]), [], 6);
    const second = held(first.next, first.holds, 4, "r2");
    const plan = commit(second, 6);
    expect(plan).toMatchObject({ ok: true, holds: [second.hold], leaving: [] });
  });

  it("more than held: draws the extra like a consumption from the rest, each grant once in the entry", () => {
    const hold = held(before, [], 20);
    const plan = commit(hold, 70);
    expect(plan).toMatchObject({
      ok: true,
      entries: [
        { reason: "release", tokens: 20, draws: [{ grantId: "g1", tokens: 20 }] },
        { reason: "consume", tokens: -70, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 40 }] },
      ],
      consumption: { fromHold: 20, debtAdded: 0 },
      movements: [],
      leaving: ["g1"],
    });
    expect((plan as { next: BalanceState }).next.balance).toBe(before.balance - 70);
  });

  it("more than held and more than the rest covers: refused (402), and the hold stays", () => {
    const hold = held(before, [], 20);
    expect(commit(hold, 131)).toEqual({ ok: false, reason: "insufficient", available: 110, final: true });
    expect(commit(hold, 130).ok).toBe(true);
  });

  it("more than held with an overdraft: the part nothing covers becomes debt", () => {
    const hold = held(before, [], 20);
    const plan = commit(hold, 150, { allowOverdraft: true });
    expect(plan).toMatchObject({ ok: true, consumption: { debtAdded: 20 }, next: { balance: -20, debt: 20 } });
    expect((plan as { entries: PlannedEntry[] }).entries[1]).toMatchObject({ reason: "consume", tokens: -150, debt: 20 });
  });

  it("consumes from a grant that expired since the hold (the work started in time), and expires what goes back to it", () => {
    const soon = aGrant({ grantId: "g1", remaining: 30, expires: later(60).toISOString() });
    const hold = held(aState([soon, g2]), [], 50);
    const used = commit(hold, 10, { now: later(120) });
    expect(used).toMatchObject({
      ok: true,
      entries: [
        { reason: "release", tokens: 50 },
        { reason: "consume", tokens: -10, draws: [{ grantId: "g1", tokens: 10 }] },
        { reason: "expire", tokens: -20, draws: [{ grantId: "g1", tokens: 20 }] },
      ],
      movements: [
        { grantId: "g1", tokens: 20, debtRepaid: 0, expired: 20 },
        { grantId: "g2", tokens: 20, debtRepaid: 0, expired: 0 },
      ],
    });
    if (!used.ok) throw new Error("committed");
    expect(used.next.balance).toBe(100);
    expect(used.next.balance - hold.next.balance).toBe(sumOf(used.entries));
  });

  it("repays the group's debt first with what was unused", () => {
    const hold = held(aState([aGrant({ grantId: "g1", remaining: 50 })]), [], 50);
    const spent = planConsumption({ state: hold.next, tokens: 5, allowOverdraft: true, now: NOW });
    if (!spent.ok) throw new Error("an overdraft is always planned");
    const plan = commit({ next: spent.next, holds: hold.holds }, 30);
    expect(plan).toMatchObject({ ok: true, next: { balance: 15, debt: 0 }, entries: [{ reason: "release", tokens: 50, debtRepaid: 5 }, { reason: "consume", tokens: -30 }] });
  });

  it("consumes from a refunded or disputed order's grant, and does not give its unused tokens back", () => {
    const other = aGrant({ grantId: "g2", orderId: "order-2", expires: inDays(60) });
    const hold = held(aState([g1, other]), [], 50);
    const plan = commit(hold, 35, { refundedOrDisputed: new Set(["order-1"]) });
    expect(plan).toMatchObject({
      ok: true,
      entries: [
        { reason: "release", tokens: 50, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 20 }] },
        { reason: "consume", tokens: -35, draws: [{ grantId: "g1", tokens: 30 }, { grantId: "g2", tokens: 5 }] },
      ],
      refused: [],
    });
    const refusedPlan = commit(hold, 10, { refundedOrDisputed: new Set(["order-1"]) });
    expect(refusedPlan).toMatchObject({
      ok: true,
      entries: [{ reason: "release", tokens: 30, draws: [{ grantId: "g1", tokens: 10 }, { grantId: "g2", tokens: 20 }] }, { reason: "consume", tokens: -10 }],
      refused: [{ grantId: "g1", tokens: 20 }],
    });
    if (!refusedPlan.ok) throw new Error("committed");
    expect(refusedPlan.next.balance - hold.next.balance).toBe(sumOf(refusedPlan.entries));
    expect(refusedPlan.next.balance).toBe(100);
  });

  it("0 tokens: the whole hold goes back, with a consume entry of 0", () => {
    const hold = held(before, [], 50);
    const plan = commit(hold, 0);
    expect(plan).toMatchObject({ ok: true, next: before, consumption: { draws: [], debtAdded: 0, fromHold: 0 } });
    expect((plan as { entries: PlannedEntry[] }).entries[1]).toEqual({ reason: "consume", tokens: 0, draws: [] });
    expect(Object.is((plan as { entries: PlannedEntry[] }).entries[1]!.tokens, 0)).toBe(true);
  });

  it("refuses a hold past its expiry (409 reservation_expired), from its expiry instant on", () => {
    const hold = held(before, [], 50);
    expect(commit(hold, 10, { now: later(299) }).ok).toBe(true);
    expect(commit(hold, 10, { now: later(300) })).toEqual({ ok: false, reason: "expired", expires: later(300).toISOString() });
  });

  it("answers not_held for a reservation that is not a live hold: committing twice", () => {
    const hold = held(before, [], 50);
    const once = commit(hold, 10);
    if (!once.ok) throw new Error("committed");
    expect(commit(once, 10)).toEqual({ ok: false, reason: "not_held" });
  });

  it("throws a RangeError for a count that is not an integer >= 0", () => {
    const hold = held(before, [], 50);
    expect(() => commit(hold, -1)).toThrow(RangeError);
    expect(() => commit(hold, 1.5)).toThrow(RangeError);
  });
});

describe("expired holds", () => {
  const state = aState([aGrant({ grantId: "g1" }), aGrant({ grantId: "g2", expires: inDays(60) })]);

  it("are the holds at or past their expiry, earliest first", () => {
    const a = aHold("a", [], later(100).toISOString());
    const b = aHold("b", [], later(50).toISOString());
    const c = aHold("c", [], later(50).toISOString());
    const d = aHold("d", [], later(400).toISOString());
    expect(expiredHolds([d, a, c, b], later(100)).map((hold) => hold.reservationId)).toEqual(["b", "c", "a"]);
    expect(isHoldExpired(a, later(99))).toBe(false);
    expect(isHoldExpired(a, later(100))).toBe(true);
  });

  it("are released in one go, each with its own entries; the live ones stay", () => {
    const first = planHold({ state, holds: [], tokens: 30, ttlSeconds: 60, now: NOW, reservationId: "r1" });
    if (!first.ok) throw new Error("held");
    const second = planHold({ state: first.next, holds: first.holds, tokens: 90, ttlSeconds: 120, now: NOW, reservationId: "r2" });
    if (!second.ok) throw new Error("held");
    const third = planHold({ state: second.next, holds: second.holds, tokens: 5, ttlSeconds: 600, now: NOW, reservationId: "r3" });
    if (!third.ok) throw new Error("held");
    const plan = planExpireHolds({ state: third.next, holds: third.holds, now: later(120), refundedOrDisputed: NONE });
    expect(plan.released.map((item) => [item.hold.reservationId, item.entries])).toEqual([
      ["r1", [{ reason: "release", tokens: 30, draws: [{ grantId: "g1", tokens: 30 }] }]],
      ["r2", [{ reason: "release", tokens: 90, draws: [{ grantId: "g1", tokens: 70 }, { grantId: "g2", tokens: 20 }] }]],
    ]);
    expect(plan.holds).toEqual([third.hold]);
    expect(plan.entries).toEqual(plan.released.flatMap((item) => item.entries));
    expect(plan.next.balance).toBe(195);
    expect(plan.leaving).toEqual([]);
  });

  it("are released at most `limit` at a time, earliest first", () => {
    const first = planHold({ state, holds: [], tokens: 1, ttlSeconds: 60, now: NOW, reservationId: "r1" });
    if (!first.ok) throw new Error("held");
    const second = planHold({ state: first.next, holds: first.holds, tokens: 1, ttlSeconds: 30, now: NOW, reservationId: "r2" });
    if (!second.ok) throw new Error("held");
    const plan = planExpireHolds({ state: second.next, holds: second.holds, now: later(60), refundedOrDisputed: NONE, limit: 1 });
    expect(plan.released.map((item) => item.hold.reservationId)).toEqual(["r2"]);
    expect(plan.holds.map((hold) => hold.reservationId)).toEqual(["r1"]);
  });

  it("change nothing when none has expired", () => {
    const hold = held(state, [], 10);
    expect(planExpireHolds({ state: hold.next, holds: hold.holds, now: later(299), refundedOrDisputed: NONE })).toEqual({
      released: [],
      holds: hold.holds,
      next: hold.next,
      entries: [],
      leaving: [],
    });
  });
});

describe("reading holds", () => {
  it("sums what the live holds hold, per group and per grant", () => {
    const g1 = aGrant({ grantId: "g1" });
    const g2 = aGrant({ grantId: "g2" });
    const holds = [aHold("a", [[g1, 3], [g2, 4]]), aHold("b", [[g1, 5]])];
    expect(heldTokens(holds)).toBe(12);
    expect(heldTokens([])).toBe(0);
    expect(grantsHeld(holds)).toEqual(new Map([["g1", 8], ["g2", 4]]));
    expect(ledgerDraws(holds[0]!.draws)).toEqual([{ grantId: "g1", tokens: 3 }, { grantId: "g2", tokens: 4 }]);
  });

  it("finds what is wrong with live holds", () => {
    const g1 = aGrant({ grantId: "g1", remaining: 90 });
    const state = aState([g1]);
    expect(holdsProblem(state, [aHold("a", [[g1, 10]])])).toBeNull();
    expect(holdsProblem(state, [aHold("a", [[g1, 11]])])).toMatch(/remaining 90 \+ held 11 > 100/);
    expect(holdsProblem(state, [aHold("a", [[g1, 5]]), aHold("a", [[g1, 5]])])).toMatch(/listed twice/);
    expect(holdsProblem(state, [aHold("a", [[g1, 5], [g1, 5]])])).toMatch(/twice/);
    expect(holdsProblem(state, [{ ...aHold("a", [[g1, 5]]), tokens: 6 }])).toMatch(/draws 5/);
    expect(holdsProblem(state, [aHold("a", [[g1, 0]])])).toMatch(/draws 0/);
    expect(holdsProblem(aState([]), [aHold("a", [[aGrant({ grantId: "g9", tokens: 5 }), 6]])])).toMatch(/of 5 tokens/);
  });
});

describe("grants out of hand", () => {
  // The overflow holds grants from key `<in 10 days>#` on; g1 (5 days) is below it, g2 (60 days) may be in it.
  const g1 = aGrant({ grantId: "g1", remaining: 0, expires: inDays(5) });
  const g2 = aGrant({ grantId: "g2", remaining: 0, expires: inDays(60) });
  const state: BalanceState = deepFreeze({ ...aState([]), balance: 40, spilled: { grants: 1, tokens: 40, from: `${inDays(10)}#` } });

  it("are those not in hand whose key is at or above the overflow's bound, unless past their expiry", () => {
    const g3 = aGrant({ grantId: "g3", expires: inDays(20) });
    expect(grantsOutOfHand(state, [g1, g2, g3].map(grantFactsOf), NOW).map((grant) => grant.grantId)).toEqual(["g2", "g3"]);
    // Past its expiry, a grant is not re-added (what goes back to it expires at once): no need to read it.
    expect(grantsOutOfHand(state, [g1, g2, g3].map(grantFactsOf), new Date(Date.parse(inDays(20)))).map((grant) => grant.grantId)).toEqual(["g2"]);
    expect(grantsOutOfHand({ ...state, grants: [g2] }, [grantFactsOf(g2)], NOW)).toEqual([]);
    expect(grantsOutOfHand(aState([]), [grantFactsOf(g2)], NOW)).toEqual([]);
  });

  it("must be read before tokens go back to them: a release refuses to re-add a second copy", () => {
    const plan = (grant: GrantState, refundedOrDisputed = NONE) =>
      planRelease({ state, holds: [aHold("r1", [[grant, 10]])], reservationId: "r1", now: NOW, refundedOrDisputed });
    expect(plan(g1)).toMatchObject({ ok: true, next: { grants: [{ ...g1, remaining: 10 }] } });
    expect(() => plan(g2)).toThrow(/may be in overflow items not read/);
    expect(() => planCommit({ state, holds: [aHold("r1", [[g2, 10]])], reservationId: "r1", tokens: 3, allowOverdraft: false, now: NOW, refundedOrDisputed: NONE })).toThrow(RangeError);
    // Nothing goes back into a refused grant, so it need not be read.
    expect(plan(g2, new Set(["order-1"]))).toMatchObject({ ok: true, refused: [{ grantId: "g2", tokens: 10 }] });
  });
});

describe("withoutEmptiedUnheld", () => {
  it("takes out the exhausted grants touched, except those a live hold draws on; a 0-token grant stays", () => {
    const a = aGrant({ grantId: "a", remaining: 0 });
    const b = aGrant({ grantId: "b", remaining: 0 });
    const c = aGrant({ grantId: "c", remaining: 5 });
    const period = aGrant({ grantId: "p", tokens: 0 });
    const untouched = aGrant({ grantId: "u", remaining: 0 });
    const state = aState([a, b, c, period, untouched]);
    const next = withoutEmptiedUnheld(state, ["a", "b", "c", "p"], [aHold("r", [[b, 10]])]);
    expect(next.grants.map((grant) => grant.grantId)).toEqual(["b", "c", "p", "u"]);
    expect(next.exhausted).toEqual({ since: "a", due: a.expires });
  });
});

describe("low balance with holds", () => {
  const threshold = 100;

  it("lowBalanceCrossing alone would raise twice when a hold, its release and another hold flap around the threshold", () => {
    // Why holds need a flag: the stateless rule sees two crossings.
    expect(lowBalanceCrossing({ seen: 110, tokens: 20, threshold }).crosses).toBe(true);
    expect(lowBalanceCrossing({ seen: 110, tokens: 20, threshold }).crosses).toBe(true);
  });

  it("raises once for a hold that crosses; its release, a reversal or a commit of less do not re-arm; a purchase does", () => {
    const state = aState([aGrant({ grantId: "g1", tokens: 110 })]);
    let disarmed = false;
    const events: string[] = [];
    const apply = (label: string, seen: number, after: number, rearms = false) => {
      const alarm = lowBalanceAlarm({ seen, after, threshold, disarmed, rearms });
      if (alarm.crosses) events.push(label);
      disarmed = alarm.disarmed;
    };
    let current = state;
    let holds: HoldState[] = [];
    for (let round = 0; round < 3; round++) {
      const hold = held(current, holds, 20, `r${round}`);
      apply(`hold ${round}`, current.balance, hold.next.balance);
      const release = planRelease({ state: hold.next, holds: hold.holds, reservationId: `r${round}`, now: NOW, refundedOrDisputed: NONE });
      if (!release.ok) throw new Error("released");
      apply(`release ${round}`, hold.next.balance, release.next.balance);
      current = release.next;
      holds = release.holds;
    }
    expect(events).toEqual(["hold 0"]);
    // A purchase re-arms it; a reversal lifting the balance above the threshold does not.
    apply("purchase", 110, 111, true);
    apply("hold", 111, 100);
    expect(events).toEqual(["hold 0", "hold"]);
    apply("reversal", 100, 150);
    apply("hold", 150, 90);
    expect(events).toEqual(["hold 0", "hold"]);
    // A purchase that leaves the balance low re-arms too, but raises nothing itself: the next fall from above does.
    apply("small purchase", 90, 95, true);
    apply("consume", 95, 90);
    expect(events).toEqual(["hold 0", "hold"]);
    apply("release", 90, 130);
    apply("hold", 130, 95);
    expect(events).toEqual(["hold 0", "hold", "hold"]);
  });

  it("is exhaustive on small balances: crosses iff armed and seen > threshold >= after; only a rearming rise re-arms", () => {
    for (const disarmed of [false, true]) {
      for (const rearms of [false, true]) {
        for (let seen = -2; seen <= 8; seen++) {
          for (let after = -2; after <= 8; after++) {
            const alarm = lowBalanceAlarm({ seen, after, threshold: 3, disarmed, rearms });
            const crosses = !disarmed && seen > 3 && after <= 3 && after < seen;
            expect(alarm.crosses, `${seen} -> ${after}, disarmed ${disarmed}`).toBe(crosses);
            const expected = after < seen ? disarmed || (seen > 3 && after <= 3) : rearms ? false : disarmed;
            expect(alarm.disarmed).toBe(expected);
          }
        }
      }
    }
    expect(lowBalanceAlarm({ seen: 10, after: 0, threshold: null, disarmed: false, rearms: false })).toEqual({ crosses: false, disarmed: false });
  });

  it("guards the same balance range as lowBalanceCrossing when it lowers the balance", () => {
    expect(lowBalanceAlarm({ seen: 110, after: 90, threshold, disarmed: false, rearms: false })).toEqual({ crosses: true, above: 100, atMost: 120, disarmed: true });
    expect(lowBalanceAlarm({ seen: 110, after: 90, threshold, disarmed: true, rearms: false })).toEqual({ crosses: false, above: 100, atMost: 120, disarmed: true });
  });
});

// --- Properties: random histories ------------------------------------------------------------

const PROPERTY = { numRuns: Number(process.env.PROP_RUNS ?? 300), seed: Number(process.env.PROP_SEED ?? 0x40_1d5) } as const;

type Step =
  | { kind: "purchase"; tokens: number; startsInMinutes: number; expiresInMinutes: number | undefined; order: number }
  | { kind: "consume"; tokens: number; overdraft: boolean }
  | { kind: "hold"; tokens: number; ttlSeconds: number }
  | { kind: "commit"; pick: number; tokens: number; overdraft: boolean }
  | { kind: "release"; pick: number }
  | { kind: "expireHolds" }
  | { kind: "expireGrants" }
  | { kind: "dispute"; order: number }
  | { kind: "reverse"; pick: number; tokens: number | undefined }
  | { kind: "clock"; seconds: number };

const aStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("purchase" as const), tokens: fc.integer({ min: 0, max: 60 }), startsInMinutes: fc.integer({ min: -30, max: 10 }), expiresInMinutes: fc.option(fc.integer({ min: 11, max: 240 }), { nil: undefined }), order: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("consume" as const), tokens: fc.integer({ min: 1, max: 50 }), overdraft: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("hold" as const), tokens: fc.integer({ min: 1, max: 50 }), ttlSeconds: fc.integer({ min: 1, max: 7200 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("commit" as const), pick: fc.nat(), tokens: fc.integer({ min: 0, max: 70 }), overdraft: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "expireHolds" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "expireGrants" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("dispute" as const), order: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("reverse" as const), pick: fc.nat(), tokens: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("clock" as const), seconds: fc.integer({ min: 1, max: 5400 }) }) },
);

/** A group's history as the writer would keep it, with counters of where every token went. */
/** A step as text, for failure messages. */
function why(step: Step): string {
  return JSON.stringify(step);
}

class World {
  now = NOW;
  state: BalanceState = { userId: "u1", offerGroup: "calls", balance: 0, debt: 0, version: 1, grants: [] };
  holds: HoldState[] = [];
  facts = new Map<string, GrantFacts>();
  disputed = new Set<string>();
  consumed: ConsumedEntry[] = [];
  /** Σ of every ledger entry written. */
  ledger = 0;
  /** Where the tokens of every grant went (see `checkConservation`). */
  granted = 0;
  spentFromGrants = 0;
  debtPaid = 0;
  expired = 0;
  frozen = 0;
  lost = 0;
  debtAdded = 0;
  debtReversed = 0;
  played: Record<string, number> = {};
  private ids = 0;

  play(step: Step): void {
    const outcome = this.apply(step);
    this.played[outcome] = (this.played[outcome] ?? 0) + 1;
    this.check(step);
  }

  private write(entries: readonly PlannedEntry[]): void {
    for (const entry of entries) {
      const drawn = entry.draws.reduce((total, draw) => total + draw.tokens, 0);
      expect(new Set(entry.draws.map((draw) => draw.grantId)).size, "each grant once per entry").toBe(entry.draws.length);
      expect(entry.draws.every((draw) => draw.tokens > 0)).toBe(true);
      if (entry.reason === "hold" || entry.reason === "expire") expect(entry.tokens).toBe(0 - drawn);
      if (entry.reason === "consume") expect(entry.tokens).toBe(0 - (drawn + (entry.debt ?? 0)));
      if (entry.reason === "release") expect(entry.tokens).toBe(drawn);
      if (entry.reason === "reverse") expect(entry.tokens).toBe(drawn + (entry.debtReversed ?? 0));
      this.ledger += entry.tokens;
    }
  }

  private returned(plan: { movements: Array<{ debtRepaid: number; expired: number }>; refused: Array<{ tokens: number }> }): void {
    this.debtPaid += plan.movements.reduce((total, movement) => total + movement.debtRepaid, 0);
    this.expired += plan.movements.reduce((total, movement) => total + movement.expired, 0);
    this.lost += plan.refused.reduce((total, item) => total + item.tokens, 0);
  }

  private store(next: BalanceState, touched: readonly string[], holds: HoldState[]): void {
    this.state = withoutEmptiedUnheld(next, touched, holds);
    this.holds = holds;
  }

  private withFacts(draws: ReadonlyArray<{ grantId: string; tokens: number }>): GrantDraw[] {
    return draws.map((draw) => ({ grant: this.facts.get(draw.grantId)!, tokens: draw.tokens }));
  }

  private apply(step: Step): string {
    const { now } = this;
    const refundedOrDisputed = this.disputed;
    switch (step.kind) {
      case "purchase": {
        const grantId = `g${String(this.ids++).padStart(3, "0")}`;
        const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000).toISOString();
        const facts: GrantFacts = { grantId, orderId: `order-${step.order}`, offerId: "pack", orderOfferId: "pack", tokens: step.tokens, starts: at(step.startsInMinutes), ...(step.expiresInMinutes !== undefined ? { expires: at(step.expiresInMinutes) } : {}) };
        this.facts.set(grantId, facts);
        const { next, debtRepaid } = addGrant(this.state, facts);
        this.ledger += step.tokens;
        this.granted += step.tokens;
        this.debtPaid += debtRepaid;
        this.store(next, [grantId], this.holds);
        return "purchase";
      }
      case "consume": {
        const plan = planConsumption({ state: this.state, tokens: step.tokens, allowOverdraft: step.overdraft, now });
        if (!plan.ok) return "consume refused";
        this.write([{ reason: "consume", tokens: -step.tokens, draws: plan.draws, ...(plan.debtAdded > 0 ? { debt: plan.debtAdded } : {}) }]);
        this.spentFromGrants += step.tokens - plan.debtAdded;
        this.debtAdded += plan.debtAdded;
        this.consumed.push({ tokens: step.tokens, draws: this.withFacts(plan.draws), debtAdded: plan.debtAdded, reversedSoFar: 0 });
        this.store(plan.next, plan.draws.map((draw) => draw.grantId), this.holds);
        return "consume";
      }
      case "hold": {
        const plan = planHold({ state: this.state, holds: this.holds, tokens: step.tokens, ttlSeconds: step.ttlSeconds, now, reservationId: `r${this.ids++}` });
        if (!plan.ok) {
          expect(plan.available).toBeLessThan(step.tokens);
          return "hold refused";
        }
        expect(plan.next.balance).toBe(this.state.balance - step.tokens);
        this.write(plan.entries);
        this.store(plan.next, plan.leaving, plan.holds);
        return "hold";
      }
      case "commit": {
        const hold = this.holds[step.pick % Math.max(1, this.holds.length)];
        if (!hold) return "commit of nothing";
        const plan = planCommit({ state: this.state, holds: this.holds, reservationId: hold.reservationId, tokens: step.tokens, allowOverdraft: step.overdraft, now, refundedOrDisputed });
        if (!plan.ok) {
          if (plan.reason === "expired") expect(isHoldExpired(hold, now)).toBe(true);
          else expect(plan).toMatchObject({ reason: "insufficient" });
          if (plan.reason === "insufficient") expect(plan.available).toBeLessThan(step.tokens - hold.tokens);
          return `commit ${plan.reason}`;
        }
        // Net −tokens against the balance before the hold, less what went back and left (expired, refused).
        const out = plan.movements.reduce((total, movement) => total + movement.expired, 0) + plan.refused.reduce((total, item) => total + item.tokens, 0);
        expect(plan.next.balance).toBe(this.state.balance + hold.tokens - step.tokens - out);
        this.write(plan.entries);
        this.returned(plan);
        // The hold's tokens move to "spent" (those used) or back (the rest); the extra comes from the grants or debt.
        this.spentFromGrants += step.tokens - plan.consumption.debtAdded;
        this.debtAdded += plan.consumption.debtAdded;
        this.consumed.push({ tokens: step.tokens, draws: this.withFacts(plan.consumption.draws), debtAdded: plan.consumption.debtAdded, reversedSoFar: 0 });
        this.store(plan.next, plan.leaving, plan.holds);
        return plan.consumption.fromHold < step.tokens ? "commit more" : step.tokens < hold.tokens ? "commit less" : "commit exact";
      }
      case "release": {
        const hold = this.holds[step.pick % Math.max(1, this.holds.length)];
        if (!hold) return "release of nothing";
        const plan = planRelease({ state: this.state, holds: this.holds, reservationId: hold.reservationId, now, refundedOrDisputed });
        if (!plan.ok) throw new Error("a live hold is released");
        this.write(plan.entries);
        this.returned(plan);
        this.store(plan.next, plan.leaving, plan.holds);
        return plan.refused.length > 0 ? "release refused part" : "release";
      }
      case "expireHolds": {
        const plan = planExpireHolds({ state: this.state, holds: this.holds, now, refundedOrDisputed });
        expect(plan.holds.every((hold) => !isHoldExpired(hold, now))).toBe(true);
        this.write(plan.entries);
        for (const item of plan.released) this.returned(item);
        this.store(plan.next, plan.leaving, plan.holds);
        return plan.released.length > 0 ? "expire holds" : "expire no hold";
      }
      case "expireGrants": {
        const plan = planExpiry({ state: this.state, now });
        const removed = plan.expired.reduce((total, item) => total + item.tokens, 0);
        this.write(plan.expired.filter((item) => item.tokens > 0).map((item) => ({ reason: "expire", tokens: -item.tokens, draws: [{ grantId: item.grant.grantId, tokens: item.tokens }] })));
        this.expired += removed;
        this.state = plan.next;
        return "expire grants";
      }
      case "dispute": {
        const orderId = `order-${step.order}`;
        const plan = freezePlan({ state: this.state, orderId });
        const removed = -plan.movements.reduce((total, movement) => total + movement.tokens, 0);
        this.ledger -= removed;
        this.frozen += removed;
        this.disputed.add(orderId);
        this.state = plan.next;
        return "dispute";
      }
      case "reverse": {
        const entry = this.consumed[step.pick % Math.max(1, this.consumed.length)];
        if (!entry) return "reverse of nothing";
        const plan = planReversal({ state: this.state, entry, tokens: step.tokens, now, refundedOrDisputed });
        if (!plan.ok) {
          const left = entry.tokens - entry.reversedSoFar;
          expect(left === 0 || (step.tokens ?? left) > left, why(step)).toBe(true);
          return "reverse refused";
        }
        this.write(plan.entries);
        this.returned(plan);
        this.debtReversed += plan.debtReversed;
        // The grant part leaves "spent": given back (movements) or lost (refused); the debt part settles the debt.
        this.spentFromGrants -= plan.movements.reduce((total, movement) => total + movement.tokens, 0) + plan.refused.reduce((total, item) => total + item.tokens, 0);
        entry.reversedSoFar = plan.reversedSoFar;
        this.store(plan.next, plan.movements.map((movement) => movement.grantId), this.holds);
        return plan.debtReversed + plan.debtSettled > 0 ? "reverse debt part" : "reverse";
      }
      case "clock":
        this.now = new Date(now.getTime() + step.seconds * SECOND);
        return "clock";
    }
  }

  private check(step: Step): void {
    const { state, holds, now } = this;
    const why = JSON.stringify(step);
    expect(balanceStateProblem(state, now), why).toBeNull();
    expect(holdsProblem(state, holds), why).toBeNull();
    expect(state.balance, `ledger sum after ${why}`).toBe(this.ledger);
    expect(state.debt).toBeGreaterThanOrEqual(0);
    // Tokens conserved: every granted token is in a grant, held, spent, paid into debt, expired, frozen or lost.
    const remaining = state.grants.reduce((total, grant) => total + grant.remaining, 0);
    expect(remaining + heldTokens(holds) + this.spentFromGrants + this.debtPaid + this.expired + this.frozen + this.lost, `tokens after ${why}`).toBe(this.granted);
    expect(state.debt, `debt after ${why}`).toBe(this.debtAdded - this.debtPaid - this.debtReversed);
    for (const entry of this.consumed) expect(entry.reversedSoFar).toBeLessThanOrEqual(entry.tokens);
    // A grant leaves when it has nothing left and no hold (nor a dispute) on it; a held grant stays until its expiry.
    const held = grantsHeld(holds);
    for (const grant of state.grants.filter((candidate) => isExhausted(candidate))) {
      expect(held.has(grant.grantId) || this.disputed.has(grant.orderId!), `exhausted ${grant.grantId} kept after ${why}`).toBe(true);
    }
    const inHand = new Set(state.grants.map((grant) => grant.grantId));
    for (const grantId of held.keys()) {
      const facts = this.facts.get(grantId)!;
      if (!isDue(facts, now)) expect(inHand.has(grantId), `held ${grantId} left after ${why}`).toBe(true);
    }
  }
}

describe("holds over random histories", () => {
  it("conserve tokens: the ledger explains the balance, held = Σ live holds, no grant outside [0, tokens], debt >= 0, reversals within what was consumed", () => {
    const played: Record<string, number> = {};
    fc.assert(
      fc.property(fc.array(aStep, { minLength: 5, maxLength: 40 }), (steps) => {
        const world = new World();
        for (const step of [{ kind: "purchase", tokens: 60, startsInMinutes: -5, expiresInMinutes: 90, order: 1 } as const, ...steps]) world.play(step);
        for (const [outcome, count] of Object.entries(world.played)) played[outcome] = (played[outcome] ?? 0) + count;
      }),
      PROPERTY,
    );
    // The histories do reach every path.
    for (const outcome of ["hold", "hold refused", "commit less", "commit exact", "commit more", "commit insufficient", "commit expired", "release", "release refused part", "expire holds", "reverse", "reverse debt part", "reverse refused", "dispute"]) {
      expect(played[outcome] ?? 0, outcome).toBeGreaterThan(0);
    }
  });
});
