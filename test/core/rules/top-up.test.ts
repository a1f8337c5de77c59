/**
 * core/rules/top-up.ts: the calendar month (UTC) `maxPerMonth` counts in, and the count
 * of a stored setting read for a given instant.
 */
import { describe, expect, it } from "vitest";
import { monthOf, usedInMonth } from "../../../core/rules/top-up.js";

describe("monthOf", () => {
  it("is the UTC calendar month, whatever the local zone would say", () => {
    expect(monthOf(new Date("2027-03-31T23:59:59.999Z"))).toBe("2027-03");
    expect(monthOf(new Date("2027-04-01T00:00:00.000Z"))).toBe("2027-04");
    expect(monthOf(new Date("2027-12-31T23:30:00.000-05:00"))).toBe("2028-01");
  });
});

describe("usedInMonth", () => {
  const now = new Date("2027-03-10T10:00:00.000Z");
  it("counts the stored top-ups of the same month, none of another or before any", () => {
    expect(usedInMonth({}, now)).toBe(0);
    expect(usedInMonth({ month: "2027-03", count: 4 }, now)).toBe(4);
    expect(usedInMonth({ month: "2027-02", count: 4 }, now)).toBe(0);
    expect(usedInMonth({ month: "2026-03", count: 4 }, now)).toBe(0);
  });
});
