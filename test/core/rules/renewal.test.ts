/**
 * core/rules/renewal.ts: which offers a Stripe Subscription renews, their Price's
 * recurring interval, and the Price's lookup key.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CYCLES, type Cycle } from "../../../core/rules/cycles.js";
import { notRenewable, priceLookupKey, stripeRecurring, type StripeRecurring } from "../../../core/rules/renewal.js";

const NOW = new Date("2026-03-10T12:00:00.000Z");

describe("a cycle's Stripe interval", () => {
  const expected: Record<Cycle, StripeRecurring | undefined> = {
    once: undefined,
    daily: { interval: "day", intervalCount: 1 },
    weekly: { interval: "week", intervalCount: 1 },
    "bi-weekly": { interval: "week", intervalCount: 2 },
    monthly: { interval: "month", intervalCount: 1 },
    trimester: { interval: "month", intervalCount: 3 },
    semester: { interval: "month", intervalCount: 6 },
    yearly: { interval: "year", intervalCount: 1 },
    custom: undefined,
  };
  it.each(CYCLES.map((cycle) => [cycle, expected[cycle]] as const))("%s -> %j", (cycle, recurring) => {
    expect(stripeRecurring(cycle)).toEqual(recurring);
  });
});

describe("what cannot renew", () => {
  it("once and custom cycles (no Stripe interval), whatever else", () => {
    for (const cycle of ["once", "custom"] as const) {
      expect(notRenewable({ cycle, appendDate: false })).toBe("cycle");
      expect(notRenewable({ cycle, appendDate: true }, "2027-01-01T00:00:00.000Z", NOW)).toBe("cycle");
    }
  });

  it("an offer dated after the user's last period (appendDate): Stripe dates each period", () => {
    expect(notRenewable({ cycle: "monthly", appendDate: true })).toBe("appendDate");
  });

  it("an order starting in the future; now or in the past is the subscription's own start", () => {
    expect(notRenewable({ cycle: "monthly", appendDate: false }, "2026-03-10T12:00:00.001Z", NOW)).toBe("starts");
    expect(notRenewable({ cycle: "monthly", appendDate: false }, "2026-03-10T12:00:00.000Z", NOW)).toBeUndefined();
    expect(notRenewable({ cycle: "monthly", appendDate: false }, null, NOW)).toBeUndefined();
    expect(notRenewable({ cycle: "monthly", appendDate: false })).toBeUndefined();
  });

  it("every renewable cycle renews when not appended and not in the future", () => {
    for (const cycle of CYCLES) {
      expect(notRenewable({ cycle, appendDate: false }) === undefined).toBe(stripeRecurring(cycle) !== undefined);
    }
  });
});

describe("a Price's lookup key", () => {
  const recurring = { interval: "month", intervalCount: 3 } as const;

  it("names the offer, currency, amount and interval", () => {
    expect(priceLookupKey({ offerId: "calls-60", currency: "usd", amount: 1000, recurring })).toBe("uc:calls-60:usd:1000:3month");
  });

  it("is the same exactly for the same price, even for offer ids holding colons and digits (property)", () => {
    // Small domains, so that equal and nearly equal terms are drawn often; offer ids that
    // look like the key's own fields ("a:usd:5") try to make two prices share a key.
    const terms = fc.record({
      offerId: fc.oneof(fc.constantFrom("a", "a:usd", "a:usd:5", "usd:5", "a:usd:5:1month", "5"), fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/)),
      currency: fc.constantFrom("usd", "eur", "jpy"),
      amount: fc.constantFrom(0, 5, 50, 51, 99_999_999),
      recurring: fc.constantFrom(...CYCLES.flatMap((cycle) => stripeRecurring(cycle) ?? [])),
    });
    fc.assert(
      fc.property(terms, terms, (a, b) => {
        const same = a.offerId === b.offerId && a.currency === b.currency && a.amount === b.amount && a.recurring === b.recurring;
        expect(priceLookupKey(a) === priceLookupKey(b)).toBe(same);
        expect(priceLookupKey(a).length).toBeLessThanOrEqual(200);
      }),
      { numRuns: 5000 },
    );
  });
});
