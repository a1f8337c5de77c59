/**
 * core/rules/low-balance.ts: whether a consumption crosses its group's low-balance
 * threshold, and the balance range its write must find for that answer to hold; with the
 * stored latch, whether it raises the event, and the latch its write must find.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { latchedCrossing, lowBalanceCrossing, withRaisedLatches, withTopUp } from "../../../core/rules/low-balance.js";

const PROPERTY = { numRuns: 1000, seed: 0x10_ba1 } as const;

/** True when `balance` is within the range a crossing's write requires. */
function inRange(balance: number, range: { above?: number; atMost?: number }): boolean {
  return (range.above === undefined || balance > range.above) && (range.atMost === undefined || balance <= range.atMost);
}

describe("lowBalanceCrossing", () => {
  it("never crosses, and guards nothing, without a threshold", () => {
    expect(lowBalanceCrossing({ seen: 100, tokens: 100, threshold: null })).toEqual({ crosses: false });
  });

  it("crosses when the balance goes from above the threshold to at or below it", () => {
    expect(lowBalanceCrossing({ seen: 60, tokens: 10, threshold: 50 })).toEqual({ crosses: true, above: 50, atMost: 60 });
    expect(lowBalanceCrossing({ seen: 51, tokens: 1, threshold: 50 })).toMatchObject({ crosses: true });
  });

  it("does not cross when the balance stays above, or was already at or below", () => {
    expect(lowBalanceCrossing({ seen: 100, tokens: 10, threshold: 50 })).toEqual({ crosses: false, above: 60 });
    expect(lowBalanceCrossing({ seen: 50, tokens: 10, threshold: 50 })).toEqual({ crosses: false, atMost: 50 });
  });

  it("is exhaustively right on small balances: crosses iff seen > threshold >= seen - tokens", () => {
    for (let threshold = 0; threshold <= 6; threshold++) {
      for (let seen = -3; seen <= 10; seen++) {
        for (let tokens = 1; tokens <= 10; tokens++) {
          const { crosses } = lowBalanceCrossing({ seen, tokens, threshold });
          expect(crosses, `${seen} - ${tokens} vs ${threshold}`).toBe(seen > threshold && seen - tokens <= threshold);
        }
      }
    }
  });

  it("gives the same answer for every actual balance its range admits (so a concurrent write cannot make it wrong)", () => {
    const small = fc.integer({ min: -50, max: 200 });
    fc.assert(
      fc.property(small, fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 150 }), small, (seen, tokens, threshold, actual) => {
        const decision = lowBalanceCrossing({ seen, tokens, threshold });
        expect(inRange(seen, decision)).toBe(true);
        if (inRange(actual, decision)) {
          expect(lowBalanceCrossing({ seen: actual, tokens, threshold }).crosses).toBe(decision.crosses);
        }
      }),
      PROPERTY,
    );
  });
});

describe("latchedCrossing", () => {
  it("raises only when the balance crosses and the latch is off, and then requires the latch it read", () => {
    expect(latchedCrossing({ seen: 60, tokens: 10, threshold: 50, latched: false })).toEqual({ crosses: true, above: 50, atMost: 60, raises: true, latched: false });
    expect(latchedCrossing({ seen: 60, tokens: 10, threshold: 50, latched: true })).toEqual({ crosses: true, above: 50, atMost: 60, raises: false, latched: true });
    // Not crossing: the latch does not matter, and is not required (no extra condition, no extra conflict).
    expect(latchedCrossing({ seen: 100, tokens: 10, threshold: 50, latched: true })).toEqual({ crosses: false, above: 60, raises: false });
    expect(latchedCrossing({ seen: 50, tokens: 10, threshold: 50, latched: false })).toEqual({ crosses: false, atMost: 50, raises: false });
    expect(latchedCrossing({ seen: 60, tokens: 10, threshold: null, latched: false })).toEqual({ crosses: false, raises: false });
  });

  it("gives the same answer for every balance and latch its write admits", () => {
    const small = fc.integer({ min: -50, max: 200 });
    fc.assert(
      fc.property(small, fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 150 }), fc.boolean(), small, fc.boolean(), (seen, tokens, threshold, latched, actual, actualLatch) => {
        const decision = latchedCrossing({ seen, tokens, threshold, latched });
        expect(decision.raises).toBe(decision.crosses && !latched);
        const admitted = inRange(actual, decision) && (decision.latched === undefined || decision.latched === actualLatch);
        if (admitted) expect(latchedCrossing({ seen: actual, tokens, threshold, latched: actualLatch }).raises).toBe(decision.raises);
      }),
      PROPERTY,
    );
  });
});

describe("withTopUp: the low-balance decision joined with the automatic top-up's", () => {
  const low = (seen: number, tokens: number, threshold: number | null, latched = false) => latchedCrossing({ seen, tokens, threshold, latched });

  it("adds nothing without a top-up threshold", () => {
    const range = low(100, 10, 50);
    expect(withTopUp(range, { seen: 100, tokens: 10, threshold: null, latched: false })).toBe(range);
  });

  it("requests a top-up on crossing its threshold while its latch is off, requiring the latch absent; not while it is on", () => {
    expect(withTopUp({}, { seen: 40, tokens: 15, threshold: 30, latched: false })).toEqual({ above: 30, atMost: 45, topUpRaises: true, topUpLatched: false });
    expect(withTopUp({}, { seen: 40, tokens: 15, threshold: 30, latched: true })).toEqual({ above: 30, atMost: 45, topUpRaises: false, topUpLatched: true });
    expect(withTopUp({}, { seen: 100, tokens: 15, threshold: 30, latched: false })).toEqual({ above: 45, topUpRaises: false });
  });

  it("keeps both decisions, and both latches, in one range", () => {
    // 60 -> 20 crosses both 50 (low balance) and 30 (top-up).
    expect(withTopUp(low(60, 40, 50), { seen: 60, tokens: 40, threshold: 30, latched: false })).toEqual({
      crosses: true,
      raises: true,
      latched: false,
      above: 50,
      atMost: 70,
      topUpRaises: true,
      topUpLatched: false,
    });
  });

  it("is exact on any balance the write may find (property): the joined range holds the balance seen, and within it both decisions are those the balance found would make", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -20, max: 120 }),
        fc.integer({ min: 1, max: 60 }),
        fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
        fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
        fc.integer({ min: -20, max: 160 }),
        (seen, tokens, threshold, topUpThreshold, found) => {
          const joined = withTopUp(low(seen, tokens, threshold), { seen, tokens, threshold: topUpThreshold, latched: false });
          expect(inRange(seen, joined)).toBe(true);
          if (!inRange(found, joined)) return;
          const again = withTopUp(low(found, tokens, threshold), { seen: found, tokens, threshold: topUpThreshold, latched: false });
          expect(again.raises ?? false).toBe(joined.raises ?? false);
          expect(again.topUpRaises ?? false).toBe(joined.topUpRaises ?? false);
        },
      ),
      PROPERTY,
    );
  });
});

describe("withRaisedLatches", () => {
  it("sets the latches a write raises, and only those", () => {
    const state: { balance: number; lowBalanceLatched?: boolean; topUpLatched?: boolean } = { balance: 10 };
    expect(withRaisedLatches(state, {})).toBe(state);
    expect(withRaisedLatches(state, { raises: true })).toEqual({ balance: 10, lowBalanceLatched: true });
    expect(withRaisedLatches(state, { topUpRaises: true })).toEqual({ balance: 10, topUpLatched: true });
    expect(withRaisedLatches({ balance: 10, lowBalanceLatched: true }, { topUpRaises: true, raises: false })).toEqual({ balance: 10, lowBalanceLatched: true, topUpLatched: true });
  });
});
