/**
 * core/rules/warnings.ts: when a grant is expiring soon, and which warnings hold for a
 * user (the per-user expiry check). The same through DynamoDB: test/core/expiry.test.ts
 * and test/core/offer-groups.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BalanceState, GrantState } from "../../../core/rules/balance-state.js";
import { DAY_MS } from "../../../core/rules/time.js";
import { DEFAULT_EXPIRY_WARNING_DAYS, defaultSettings, isExpiringSoon, warningsFor, widestWindowEnd, type OfferGroupSettings } from "../../../core/rules/warnings.js";

const PROPERTY = { numRuns: 300, seed: 0x0a11_e27 } as const;
const NOW = new Date("2026-11-30T00:00:00.000Z");
const inDays = (days: number) => new Date(NOW.getTime() + days * DAY_MS).toISOString();

function aGrant(grantId: string, remaining: number, expires?: string): GrantState {
  return { grantId, tokens: remaining, remaining, starts: NOW.toISOString(), ...(expires ? { expires } : {}) };
}

function aState(offerGroup: string, grants: GrantState[], debt = 0): BalanceState {
  const sum = grants.reduce((total, grant) => total + grant.remaining, 0);
  return { userId: "u1", offerGroup, balance: sum - debt, debt, version: 1, grants };
}

const settings = (...groups: OfferGroupSettings[]) => new Map(groups.map((group) => [group.offerGroup, group]));

describe("defaults", () => {
  it("are no low-balance threshold and a 7-day window", () => {
    expect(DEFAULT_EXPIRY_WARNING_DAYS).toBe(7);
    expect(defaultSettings("calls")).toEqual({ offerGroup: "calls", lowBalanceThreshold: null, expiryWarningDays: 7 });
  });
});

describe("isExpiringSoon", () => {
  it("is true up to exactly the window's end, false a millisecond after", () => {
    expect(isExpiringSoon(inDays(7), NOW, 7)).toBe(true);
    expect(isExpiringSoon(new Date(NOW.getTime() + 7 * DAY_MS + 1).toISOString(), NOW, 7)).toBe(false);
    expect(isExpiringSoon(inDays(0), NOW, 0)).toBe(true);
  });
});

describe("widestWindowEnd", () => {
  it("is now plus the widest window, never less than the default", () => {
    expect(widestWindowEnd([], NOW).toISOString()).toBe(inDays(7));
    expect(widestWindowEnd([{ expiryWarningDays: 3 }], NOW).toISOString()).toBe(inDays(7));
    expect(widestWindowEnd([{ expiryWarningDays: 3 }, { expiryWarningDays: 30 }], NOW).toISOString()).toBe(inDays(30));
  });

  it("covers every grant any group would warn about", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 366 }), { maxLength: 5 }), fc.integer({ min: 0, max: 400 * DAY_MS }), (windows, offset) => {
        const expires = new Date(NOW.getTime() + offset).toISOString();
        const end = widestWindowEnd(windows.map((days) => ({ expiryWarningDays: days })), NOW);
        if (windows.some((days) => isExpiringSoon(expires, NOW, days))) expect(Date.parse(expires)).toBeLessThanOrEqual(end.getTime());
      }),
      PROPERTY,
    );
  });
});

describe("warningsFor", () => {
  it("lists groups by name: expiring with the earliest expiry in the window, low with the next expiry", () => {
    const balances = [
      aState("data", [aGrant("d1", 5, inDays(3)), aGrant("d2", 5, inDays(1))]),
      aState("calls", [aGrant("c1", 100, inDays(20))]),
    ];
    const warnings = warningsFor({ balances, settings: settings({ offerGroup: "data", lowBalanceThreshold: 10, expiryWarningDays: 7 }), now: NOW });
    expect(warnings).toEqual([
      { offerGroup: "data", kind: "expiring", balance: 10, expires: inDays(1) },
      { offerGroup: "data", kind: "low_balance", balance: 10, expires: inDays(1) },
    ]);
  });

  it("takes each group's window and threshold, defaults for groups without settings", () => {
    const balances = [aState("calls", [aGrant("c1", 0, inDays(10))]), aState("sms", [aGrant("s1", 3, inDays(10))])];
    const warnings = warningsFor({ balances, settings: settings({ offerGroup: "calls", lowBalanceThreshold: 0, expiryWarningDays: 14 }), now: NOW });
    expect(warnings).toEqual([
      { offerGroup: "calls", kind: "expiring", balance: 0, expires: inDays(10) },
      { offerGroup: "calls", kind: "low_balance", balance: 0, expires: inDays(10) },
    ]);
  });

  it("lets the call override the window (warnMs) and the thresholds (low), group by group", () => {
    const balances = [aState("calls", [aGrant("c1", 50, inDays(10))]), aState("sms", [aGrant("s1", 50)])];
    const warnings = warningsFor({ balances, settings: settings(), now: NOW, warnMs: 11 * DAY_MS, low: [{ offerGroup: "sms", min: 60 }] });
    expect(warnings).toEqual([
      { offerGroup: "calls", kind: "expiring", balance: 50, expires: inDays(10) },
      { offerGroup: "sms", kind: "low_balance", balance: 50, expires: null },
    ]);
  });

  it("counts a balance in debt as low, and never warns without a threshold", () => {
    const inDebt = aState("calls", [aGrant("c1", 0)], 25);
    expect(warningsFor({ balances: [inDebt], settings: settings(), now: NOW })).toEqual([]);
    expect(warningsFor({ balances: [inDebt], settings: settings(), now: NOW, low: [{ offerGroup: "calls", min: 0 }] })).toEqual([
      { offerGroup: "calls", kind: "low_balance", balance: -25, expires: null },
    ]);
  });
});
