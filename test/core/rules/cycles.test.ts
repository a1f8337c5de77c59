/**
 * core/rules/cycles.ts: how long a grant lasts (UTC calendar arithmetic, end-of-month
 * clamping, quantity applied in one step, `once` never expires).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CYCLES, expiryDate, LAST_INSTANT_MS, withinCalendar, type Cycle, type CycleTerms } from "../../../core/rules/cycles.js";

const PROPERTY = { numRuns: 300, seed: 0x5eed_c1c1 } as const;

/** Expiry as an ISO string (null for `once`), so assertions read as instants. */
function expires(starts: string, terms: CycleTerms, quantity = 1): string | null {
  return expiryDate(new Date(starts), terms, quantity)?.toISOString() ?? null;
}

function aCycle(cycle: Cycle, customCycleSeconds?: number | null): CycleTerms {
  return { cycle, customCycleSeconds };
}

/** Independent oracle for UTC month arithmetic with end-of-month clamping. */
function addUtcMonths(from: Date, months: number): Date {
  const total = from.getUTCMonth() + months;
  const year = from.getUTCFullYear() + Math.floor(total / 12);
  const month = ((total % 12) + 12) % 12;
  const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(from.getUTCDate(), daysInMonth);
  const to = new Date(0);
  to.setUTCFullYear(year, month, day);
  to.setUTCHours(from.getUTCHours(), from.getUTCMinutes(), from.getUTCSeconds(), from.getUTCMilliseconds());
  return to;
}

const DAY_MS = 86_400_000;
const anInstant = fc.date({
  min: new Date("1901-01-01T00:00:00.000Z"),
  max: new Date("2199-12-31T23:59:59.999Z"),
  noInvalidDate: true,
});
const aQuantity = fc.integer({ min: 1, max: 60 });
const EXPIRING_CYCLES = CYCLES.filter((cycle) => cycle !== "once");
const anExpiringCycle: fc.Arbitrary<CycleTerms> = fc.oneof(
  fc.constantFrom(...EXPIRING_CYCLES.filter((cycle) => cycle !== "custom")).map((cycle) => aCycle(cycle)),
  fc.integer({ min: 1, max: 10 * 365 * 86_400 }).map((seconds) => aCycle("custom", seconds)),
);

describe("expiryDate: one cycle from a plain date", () => {
  const STARTS = "2026-01-15T10:20:30.456Z";

  it.each([
    ["daily", "2026-01-16T10:20:30.456Z"],
    ["weekly", "2026-01-22T10:20:30.456Z"],
    ["bi-weekly", "2026-01-29T10:20:30.456Z"],
    ["monthly", "2026-02-15T10:20:30.456Z"],
    ["trimester", "2026-04-15T10:20:30.456Z"],
    ["semester", "2026-07-15T10:20:30.456Z"],
    ["yearly", "2027-01-15T10:20:30.456Z"],
  ] as const)("a %s cycle from 2026-01-15 expires at %s", (cycle, expected) => {
    expect(expires(STARTS, aCycle(cycle))).toBe(expected);
  });

  it("a custom cycle lasts its customCycleSeconds", () => {
    expect(expires(STARTS, aCycle("custom", 3600))).toBe("2026-01-15T11:20:30.456Z");
  });

  it("a once cycle never expires", () => {
    expect(expiryDate(new Date(STARTS), aCycle("once"), 1)).toBeNull();
  });

  it("a once cycle never expires whatever the quantity", () => {
    expect(expiryDate(new Date(STARTS), aCycle("once"), 12)).toBeNull();
  });

  it("a semester is six months, not the original's four", () => {
    expect(expires("2026-01-15T00:00:00.000Z", aCycle("semester"))).toBe("2026-07-15T00:00:00.000Z");
    expect(expires("2026-01-15T00:00:00.000Z", aCycle("semester"))).not.toBe("2026-05-15T00:00:00.000Z");
  });

  it("a trimester is three months", () => {
    expect(expires("2026-05-20T08:00:00.000Z", aCycle("trimester"))).toBe("2026-08-20T08:00:00.000Z");
  });

  it("covers every cycle the module declares", () => {
    expect([...CYCLES].sort()).toEqual(
      ["bi-weekly", "custom", "daily", "monthly", "once", "semester", "trimester", "weekly", "yearly"].sort(),
    );
  });

  it("ignores customCycleSeconds for a cycle that is not custom", () => {
    expect(expires(STARTS, aCycle("daily", 60))).toBe("2026-01-16T10:20:30.456Z");
  });

  it("returns a new Date and leaves the start untouched", () => {
    const starts = new Date(STARTS);
    const result = expiryDate(starts, aCycle("monthly"), 1);
    expect(starts.toISOString()).toBe(STARTS);
    expect(result).not.toBe(starts);
    expect(result).toBeInstanceOf(Date);
  });
});

describe("expiryDate: quantity multiplies the cycle in one step", () => {
  it("monthly × 2 from Jan 31 is Mar 31, not Feb 28 + 1 month = Mar 28", () => {
    expect(expires("2026-01-31T12:00:00.000Z", aCycle("monthly"), 2)).toBe("2026-03-31T12:00:00.000Z");
  });

  it("weekly × 3 lasts 21 days", () => {
    expect(expires("2026-01-01T00:00:00.000Z", aCycle("weekly"), 3)).toBe("2026-01-22T00:00:00.000Z");
  });

  it("daily × 2 lasts 2 days", () => {
    expect(expires("2026-01-01T06:00:00.000Z", aCycle("daily"), 2)).toBe("2026-01-03T06:00:00.000Z");
  });

  it("bi-weekly × 2 lasts 28 days", () => {
    expect(expires("2026-02-01T00:00:00.000Z", aCycle("bi-weekly"), 2)).toBe("2026-03-01T00:00:00.000Z");
  });

  it("monthly × 4 from Dec 4 2050 is Apr 4 2051 (the original's explicit-start example)", () => {
    expect(expires("2050-12-04T00:00:00.000Z", aCycle("monthly"), 4)).toBe("2051-04-04T00:00:00.000Z");
  });

  it("trimester × 2 is six months in one step", () => {
    expect(expires("2025-08-31T00:00:00.000Z", aCycle("trimester"), 2)).toBe("2026-02-28T00:00:00.000Z");
    expect(expires("2026-05-31T00:00:00.000Z", aCycle("trimester"), 2)).toBe("2026-11-30T00:00:00.000Z");
  });

  it("semester × 2 is twelve months", () => {
    expect(expires("2026-03-31T09:00:00.000Z", aCycle("semester"), 2)).toBe("2027-03-31T09:00:00.000Z");
  });

  it("yearly × 4 from Feb 29 lands on the next Feb 29, not a clamped Feb 28", () => {
    expect(expires("2028-02-29T00:00:00.000Z", aCycle("yearly"), 4)).toBe("2032-02-29T00:00:00.000Z");
  });

  it("custom seconds are multiplied by the quantity", () => {
    expect(expires("2026-01-01T00:00:00.000Z", aCycle("custom", 90), 3)).toBe("2026-01-01T00:04:30.000Z");
  });
});

describe("expiryDate: end-of-month clamping in UTC", () => {
  it("Jan 31 + 1 month is Feb 28 in a common year", () => {
    expect(expires("2026-01-31T10:00:00.000Z", aCycle("monthly"))).toBe("2026-02-28T10:00:00.000Z");
  });

  it("Jan 31 + 1 month is Feb 29 in a leap year", () => {
    expect(expires("2028-01-31T10:00:00.000Z", aCycle("monthly"))).toBe("2028-02-29T10:00:00.000Z");
  });

  it("Jan 31 + 2 months is Mar 31", () => {
    expect(expires("2026-01-31T10:00:00.000Z", aCycle("monthly"), 2)).toBe("2026-03-31T10:00:00.000Z");
  });

  it("Mar 31 + 1 month is Apr 30", () => {
    expect(expires("2026-03-31T10:00:00.000Z", aCycle("monthly"))).toBe("2026-04-30T10:00:00.000Z");
  });

  it("Aug 31 + a semester is Feb 28 in a common year", () => {
    expect(expires("2025-08-31T10:00:00.000Z", aCycle("semester"))).toBe("2026-02-28T10:00:00.000Z");
  });

  it("Aug 31 + a semester is Feb 29 in a leap year", () => {
    expect(expires("2027-08-31T10:00:00.000Z", aCycle("semester"))).toBe("2028-02-29T10:00:00.000Z");
  });

  it("Nov 30 + a trimester is Feb 28 in a common year", () => {
    expect(expires("2025-11-30T10:00:00.000Z", aCycle("trimester"))).toBe("2026-02-28T10:00:00.000Z");
  });

  it("Nov 30 + a trimester is Feb 29 in a leap year", () => {
    expect(expires("2027-11-30T10:00:00.000Z", aCycle("trimester"))).toBe("2028-02-29T10:00:00.000Z");
  });

  it("a year from Feb 29 is Feb 28", () => {
    expect(expires("2028-02-29T15:45:00.000Z", aCycle("yearly"))).toBe("2029-02-28T15:45:00.000Z");
  });

  it("Feb 28 + 1 month is Mar 28 (clamping never pushes a date forward)", () => {
    expect(expires("2026-02-28T10:00:00.000Z", aCycle("monthly"))).toBe("2026-03-28T10:00:00.000Z");
  });

  it("Dec 31 + 2 months crosses the year and clamps to Feb 28", () => {
    expect(expires("2025-12-31T23:00:00.000Z", aCycle("monthly"), 2)).toBe("2026-02-28T23:00:00.000Z");
  });

  it("2100 is not a leap year: Jan 31 2100 + 1 month is Feb 28", () => {
    expect(expires("2100-01-31T00:00:00.000Z", aCycle("monthly"))).toBe("2100-02-28T00:00:00.000Z");
  });
});

describe("expiryDate: invalid input", () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("throws a RangeError for the multiplier %s", (multiplier) => {
    expect(() => expiryDate(new Date("2026-01-01T00:00:00.000Z"), aCycle("monthly"), multiplier)).toThrow(RangeError);
  });

  it("throws a RangeError for a zero multiplier even on a once cycle", () => {
    expect(() => expiryDate(new Date("2026-01-01T00:00:00.000Z"), aCycle("once"), 0)).toThrow(RangeError);
  });

  it.each([undefined, null, 0, -60, 1.5, Number.NaN])("throws a RangeError for a custom cycle with %s seconds", (seconds) => {
    expect(() => expiryDate(new Date("2026-01-01T00:00:00.000Z"), aCycle("custom", seconds), 1)).toThrow(RangeError);
  });
});

describe("expiryDate: past 9999-12-31 (issue 9, defect 5)", () => {
  it("ends the calendar at 9999-12-31T23:59:59.999Z, the last instant with a 4-digit year", () => {
    expect(new Date(LAST_INSTANT_MS).toISOString()).toBe("9999-12-31T23:59:59.999Z");
    expect(withinCalendar(new Date(LAST_INSTANT_MS))).toBe(true);
    expect(withinCalendar(new Date(LAST_INSTANT_MS + 1))).toBe(false);
    expect(withinCalendar(new Date(Number.NaN))).toBe(false);
  });

  it("returns an instant past the calendar, or an invalid Date past what a Date holds, which withinCalendar refuses", () => {
    const start = new Date("2026-11-30T10:00:00.000Z");
    expect(withinCalendar(expiryDate(start, aCycle("yearly"), 7973)!)).toBe(true);
    expect(expiryDate(start, aCycle("yearly"), 7974)!.toISOString()).toBe("+010000-11-30T10:00:00.000Z");
    expect(withinCalendar(expiryDate(start, aCycle("yearly"), 7974)!)).toBe(false);
    expect(withinCalendar(expiryDate(start, aCycle("yearly"), 1_000_000)!)).toBe(false);
  });
});

describe("expiryDate: independent of the machine's time zone", () => {
  it("keeps the UTC day when the start is just before midnight UTC", () => {
    // In any zone east of UTC this is already Feb 1 locally; local-time math would give Mar 1.
    expect(expires("2026-01-31T23:30:00.000Z", aCycle("monthly"))).toBe("2026-02-28T23:30:00.000Z");
    expect(expires("2026-12-31T23:59:59.999Z", aCycle("daily"))).toBe("2027-01-01T23:59:59.999Z");
  });

  it("keeps the UTC day when the start is just after midnight UTC", () => {
    // In the Americas this is still Feb 28 locally; local-time math would give Mar 28.
    expect(expires("2026-03-01T00:30:00.000Z", aCycle("monthly"))).toBe("2026-04-01T00:30:00.000Z");
    expect(expires("2026-03-31T00:00:00.000Z", aCycle("monthly"))).toBe("2026-04-30T00:00:00.000Z");
  });

  it("a day across the European spring DST change is exactly 24 hours", () => {
    // Europe moves its clocks on 2026-03-29 at 01:00 UTC.
    expect(expires("2026-03-28T12:00:00.000Z", aCycle("daily"))).toBe("2026-03-29T12:00:00.000Z");
    expect(expires("2026-03-29T00:30:00.000Z", aCycle("daily"))).toBe("2026-03-30T00:30:00.000Z");
  });

  it("a day across the US spring DST change is exactly 24 hours", () => {
    // The US moves its clocks on 2026-03-08 at 07:00 UTC (02:00 EST).
    expect(expires("2026-03-07T12:00:00.000Z", aCycle("daily"))).toBe("2026-03-08T12:00:00.000Z");
    expect(expires("2026-03-08T06:30:00.000Z", aCycle("daily"))).toBe("2026-03-09T06:30:00.000Z");
  });

  it("a week across the European autumn DST change is exactly 7 × 24 hours", () => {
    // Europe moves its clocks back on 2026-10-25 at 01:00 UTC.
    expect(expires("2026-10-22T01:00:00.000Z", aCycle("weekly"))).toBe("2026-10-29T01:00:00.000Z");
  });

  it("two weeks across the US autumn DST change are exactly 14 × 24 hours", () => {
    // The US moves its clocks back on 2026-11-01 at 06:00 UTC (02:00 EDT).
    expect(expires("2026-10-25T05:30:00.000Z", aCycle("bi-weekly"))).toBe("2026-11-08T05:30:00.000Z");
  });

  it("a month across a DST change keeps the UTC time of day", () => {
    expect(expires("2026-03-15T00:00:00.000Z", aCycle("monthly"))).toBe("2026-04-15T00:00:00.000Z");
    expect(expires("2026-10-15T23:00:00.000Z", aCycle("monthly"))).toBe("2026-11-15T23:00:00.000Z");
    expect(expires("2026-10-31T01:30:00.000Z", aCycle("semester"))).toBe("2027-04-30T01:30:00.000Z");
  });

  it("gives the same instants in processes running in other time zones", async () => {
    // A separate process per zone: process.env.TZ cannot be changed reliably in-process.
    const cases: Array<[string, CycleTerms, number]> = [
      ["2026-01-31T23:30:00.000Z", aCycle("monthly"), 1],
      ["2026-03-01T00:30:00.000Z", aCycle("monthly"), 1],
      ["2026-03-28T12:00:00.000Z", aCycle("daily"), 1],
      ["2026-03-07T12:00:00.000Z", aCycle("weekly"), 1],
      ["2026-10-24T23:30:00.000Z", aCycle("bi-weekly"), 1],
      ["2025-08-31T22:00:00.000Z", aCycle("semester"), 1],
      ["2028-02-29T23:00:00.000Z", aCycle("yearly"), 1],
      ["2026-01-31T00:15:00.000Z", aCycle("monthly"), 2],
    ];
    const inProcess = cases.map(([starts, terms, quantity]) => expires(starts, terms, quantity));
    const cyclesModule = fileURLToPath(new URL("../../../core/rules/cycles.ts", import.meta.url));
    const script = [
      `import { expiryDate } from ${JSON.stringify(cyclesModule)};`,
      `const cases = ${JSON.stringify(cases)};`,
      "const out = cases.map(([s, t, q]) => expiryDate(new Date(s), t, q)?.toISOString() ?? null);",
      "console.log(JSON.stringify({ offset: new Date('2026-01-15T00:00:00Z').getTimezoneOffset(), out }));",
    ].join("\n");
    const run = promisify(execFile);
    const zones = ["Pacific/Kiritimati", "Europe/Paris", "America/New_York", "America/Los_Angeles"];
    const results = await Promise.all(
      zones.map(async (zone) => {
        const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
          env: { ...process.env, TZ: zone },
        });
        return JSON.parse(stdout) as { offset: number; out: Array<string | null> };
      }),
    );
    // The zones really were applied (Kiritimati is UTC+14, Los Angeles UTC-8 in January).
    expect(results.map((result) => result.offset)).toEqual([-840, -60, 300, 480]);
    for (const result of results) expect(result.out).toEqual(inProcess);
  });
});

describe("expiryDate: properties", () => {
  it("expires strictly after it starts for every cycle but once", () => {
    fc.assert(
      fc.property(anInstant, anExpiringCycle, aQuantity, (starts, terms, quantity) => {
        const expiry = expiryDate(starts, terms, quantity);
        expect(expiry).not.toBeNull();
        expect(expiry!.getTime()).toBeGreaterThan(starts.getTime());
      }),
      PROPERTY,
    );
  });

  it("a larger quantity expires strictly later", () => {
    fc.assert(
      fc.property(anInstant, anExpiringCycle, aQuantity, aQuantity, (starts, terms, a, b) => {
        fc.pre(a !== b);
        const [low, high] = a < b ? [a, b] : [b, a];
        expect(expiryDate(starts, terms, high)!.getTime()).toBeGreaterThan(expiryDate(starts, terms, low)!.getTime());
      }),
      PROPERTY,
    );
  });

  it("daily, weekly and bi-weekly cycles are exact multiples of 24 hours", () => {
    const days = { daily: 1, weekly: 7, "bi-weekly": 14 } as const;
    fc.assert(
      fc.property(anInstant, fc.constantFrom<"daily" | "weekly" | "bi-weekly">("daily", "weekly", "bi-weekly"), aQuantity, (starts, cycle, quantity) => {
        const expiry = expiryDate(starts, aCycle(cycle), quantity)!;
        expect(expiry.getTime() - starts.getTime()).toBe(days[cycle] * quantity * DAY_MS);
      }),
      PROPERTY,
    );
  });

  it("a custom cycle is exactly seconds × quantity", () => {
    fc.assert(
      fc.property(anInstant, fc.integer({ min: 1, max: 100_000_000 }), aQuantity, (starts, seconds, quantity) => {
        const expiry = expiryDate(starts, aCycle("custom", seconds), quantity)!;
        expect(expiry.getTime() - starts.getTime()).toBe(seconds * quantity * 1000);
      }),
      PROPERTY,
    );
  });

  it("month-based cycles are UTC calendar months with end-of-month clamping, in one step", () => {
    const months = { monthly: 1, trimester: 3, semester: 6, yearly: 12 } as const;
    fc.assert(
      fc.property(
        anInstant,
        fc.constantFrom<"monthly" | "trimester" | "semester" | "yearly">("monthly", "trimester", "semester", "yearly"),
        aQuantity,
        (starts, cycle, quantity) => {
          const expiry = expiryDate(starts, aCycle(cycle), quantity)!;
          expect(expiry.toISOString()).toBe(addUtcMonths(starts, months[cycle] * quantity).toISOString());
        },
      ),
      PROPERTY,
    );
  });

  it("once never expires for any start and quantity", () => {
    fc.assert(
      fc.property(anInstant, aQuantity, (starts, quantity) => {
        expect(expiryDate(starts, aCycle("once"), quantity)).toBeNull();
      }),
      PROPERTY,
    );
  });
});
