/**
 * core/rules/low-balance.ts: whether a consumption crosses its group's low-balance
 * threshold, and the balance range its write must find for that answer to hold; with the
 * stored latch, whether it raises the event, and the latch its write must find.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { latchedCrossing, lowBalanceCrossing } from "../../../core/rules/low-balance.js";

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
