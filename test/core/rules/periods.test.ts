/**
 * core/rules/periods.ts: the periods of paid grants a balance item keeps once the grants
 * themselves have left its map (issue 9), and the reads built on them (visibility, the
 * subscription check, the free-offer check). The kept front answers every read exactly
 * as the whole list of periods would, at any later instant (within the documented cap).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { endOrderPeriods } from "../../../core/rules/balance-state.js";
import { addPeriod, anyPeriodRunning, currentPeriod, periodOf, periodsBesides, PERIODS_KEPT, rootRunning, type PaidPeriod } from "../../../core/rules/periods.js";

const PROPERTY = { numRuns: 300, seed: 0x0be7_10d5 } as const;
const NOW = new Date("2026-06-15T12:00:00.000Z");
const DAY = 86_400_000;

function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY).toISOString();
}

function aPeriod(orderId: string, starts: number, ends: number | null, overrides: Partial<PaidPeriod> = {}): PaidPeriod {
  return { offerId: "plan", orderId, starts: inDays(starts), ...(ends === null ? {} : { expires: inDays(ends) }), root: true, ...overrides };
}

function front(periods: PaidPeriod[], at = NOW): PaidPeriod[] {
  return periods.reduce<PaidPeriod[]>((kept, period) => addPeriod(kept, period, at), []);
}

describe("addPeriod", () => {
  it("keeps a subscription's current and next periods", () => {
    const periods = front([aPeriod("o1", -10, 20), aPeriod("o2", 20, 50)]);
    expect(periods.map((p) => p.orderId)).toEqual(["o1", "o2"]);
  });

  it("drops a period that has ended, and one another period covers (starts no later, ends no earlier)", () => {
    expect(front([aPeriod("o1", -40, -1), aPeriod("o2", -5, 20), aPeriod("o3", -3, 10)]).map((p) => p.orderId)).toEqual(["o2"]);
  });

  it("keeps one period for any number of purchases of a `once` offer: the first", () => {
    const periods = front(Array.from({ length: 50 }, (_, i) => aPeriod(`o${i}`, -50 + i, null)));
    expect(periods.map((p) => p.orderId)).toEqual(["o0"]);
  });

  it("keeps apart offers, and root grants from bundle items", () => {
    const periods = front([aPeriod("o1", -1, 20), aPeriod("o2", -1, 20, { offerId: "other" }), aPeriod("o1", -1, 20, { root: false })]);
    expect(periods).toHaveLength(3);
  });

  it(`keeps at most ${PERIODS_KEPT} per offer and kind: the first ones and the one that ends last`, () => {
    const periods = front(Array.from({ length: 10 }, (_, i) => aPeriod(`o${i}`, -1 + i, 30 + i)));
    expect(periods.map((p) => p.orderId)).toEqual(["o0", "o1", "o2", "o9"]);
  });

  it("adds an equal period once", () => {
    expect(front([aPeriod("o1", -1, 20), aPeriod("o1", -1, 20)])).toHaveLength(1);
  });
});

describe("periodOf and periodsBesides", () => {
  it("makes the period of a paid grant (root or bundle item), none of a promotional grant", () => {
    const grant = { grantId: "g1", orderId: "o1", offerId: "item", orderOfferId: "bundle", starts: inDays(0), expires: inDays(30) };
    expect(periodOf(grant)).toEqual({ offerId: "bundle", orderId: "o1", starts: inDays(0), expires: inDays(30), root: false });
    expect(periodOf({ ...grant, offerId: "bundle" })).toMatchObject({ root: true });
    expect(periodOf({ starts: inDays(0) })).toBeUndefined();
  });

  it("leaves out the periods the map's grants give themselves", () => {
    const inMap = { grantId: "g1", orderId: "o1", offerId: "plan", orderOfferId: "plan", starts: inDays(-1), expires: inDays(20) };
    expect(periodsBesides([aPeriod("o1", -1, 20), aPeriod("o2", 20, 50)], [inMap], NOW).map((p) => p.orderId)).toEqual(["o2"]);
  });
});

describe("endOrderPeriods", () => {
  it("drops the periods of an order whose grants a refund or dispute ends, and nothing else", () => {
    const state = { userId: "u", offerGroup: "calls", balance: 0, debt: 0, version: 2, grants: [], periods: [aPeriod("o1", -1, 20), aPeriod("o2", -1, 30)] };
    expect(endOrderPeriods(state, "o1").periods!.map((p) => p.orderId)).toEqual(["o2"]);
    expect(endOrderPeriods(endOrderPeriods(state, "o1"), "o2").periods).toBeUndefined();
    expect(endOrderPeriods(state, "o9")).toBe(state);
  });
});

describe("reads", () => {
  const periods = [aPeriod("o1", -10, 20), aPeriod("o2", 20, 50), aPeriod("o3", -10, 40, { offerId: "bundle", root: false })];

  it("the current period of an offer is the one that starts first among those not ended", () => {
    expect(currentPeriod(periods, "plan", NOW)?.orderId).toBe("o1");
    expect(currentPeriod(periods, "plan", new Date(Date.parse(inDays(20))))?.orderId).toBe("o2");
    expect(currentPeriod(periods, "plan", new Date(Date.parse(inDays(50))))).toBeUndefined();
  });

  it("a free offer is active while a root period of it runs; a bundle item's period is not a root", () => {
    expect(rootRunning(periods, "plan", NOW)).toBe(true);
    expect(rootRunning(periods, "bundle", NOW)).toBe(false);
    expect(anyPeriodRunning(periods, new Date(Date.parse(inDays(45))))).toBe(true);
    expect(anyPeriodRunning(periods, new Date(Date.parse(inDays(50))))).toBe(false);
  });
});

describe("addPeriod: properties", () => {
  const somePeriods = fc.array(
    fc.record({
      offer: fc.constantFrom("a", "b"),
      root: fc.boolean(),
      starts: fc.integer({ min: -60, max: 60 }),
      length: fc.option(fc.integer({ min: 1, max: 90 }), { nil: null, freq: 4 }),
    }),
    { maxLength: 24 },
  );
  const later = fc.integer({ min: 0, max: 200 }).map((days) => new Date(NOW.getTime() + days * DAY));

  it("answers whether a period runs, and whether a root one does, as all the periods would, at any later instant", () => {
    fc.assert(
      fc.property(somePeriods, later, (shapes, at) => {
        const all = shapes.map((s, i) => aPeriod(`o${String(i).padStart(2, "0")}`, s.starts, s.length === null ? null : s.starts + s.length, { offerId: s.offer, root: s.root }));
        const kept = front(all);
        expect(anyPeriodRunning(kept, at)).toBe(anyPeriodRunning(all, at));
        for (const offer of ["a", "b"]) {
          expect(rootRunning(kept, offer, at)).toBe(rootRunning(all, offer, at));
          expect(currentPeriod(kept, offer, at) !== undefined).toBe(currentPeriod(all, offer, at) !== undefined);
        }
      }),
      PROPERTY,
    );
  });

  it(`names the current period's start as all the periods would, while at most ${PERIODS_KEPT} of an offer and kind are kept`, () => {
    fc.assert(
      fc.property(somePeriods, later, (shapes, at) => {
        const all = shapes.map((s, i) => aPeriod(`o${String(i).padStart(2, "0")}`, s.starts, s.length === null ? null : s.starts + s.length, { offerId: s.offer, root: s.root }));
        const uncapped = all.filter((p, i) => !all.some((q, j) => j !== i && q.offerId === p.offerId && q.root === p.root && q.starts <= p.starts && (q.expires ?? "~") >= (p.expires ?? "~") && (j < i || q.starts < p.starts || (q.expires ?? "~") > (p.expires ?? "~"))));
        const runs = new Map<string, number>();
        for (const p of uncapped.filter((p) => Date.parse(p.expires ?? "9999-12-31T00:00:00.000Z") > NOW.getTime())) runs.set(`${p.offerId}${p.root}`, (runs.get(`${p.offerId}${p.root}`) ?? 0) + 1);
        fc.pre([...runs.values()].every((count) => count <= PERIODS_KEPT));
        const kept = front(all);
        for (const offer of ["a", "b"]) expect(currentPeriod(kept, offer, at)?.starts).toBe(currentPeriod(all, offer, at)?.starts);
      }),
      PROPERTY,
    );
  });
});
