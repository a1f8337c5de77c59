/**
 * Offer group settings (core/offer-groups.ts) on DynamoDB Local, and the warnings they
 * drive: `credits.low_balance` at the moment a consumption crosses its group's threshold,
 * once per crossing, re-armed by a top-up above it; the per-user check's defaults from
 * the group settings. The pure rules are tested in test/core/rules/warnings.test.ts and
 * test/core/rules/low-balance.test.ts.
 */
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { listEvents } from "../../core/events.js";
import { checkUserExpiry } from "../../core/expiry.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { getOfferGroup, putOfferGroup } from "../../core/offer-groups.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "warnings" });
const NOW = "2026-05-01T00:00:00.000Z";

const lowBalanceEvents = async (userId: string) =>
  (await listEvents(t.ctx, userId, { limit: 100 })).events.filter((e) => e.type === "credits.low_balance");

describe("offer group settings", () => {
  it("default to no low-balance threshold and a 7-day expiry warning, and can be set", async () => {
    expect(await getOfferGroup(t.ctx, "unset")).toEqual({ offerGroup: "unset", lowBalanceThreshold: null, expiryWarningDays: 7 });
    await putOfferGroup(t.ctx, "set", { lowBalanceThreshold: 5, expiryWarningDays: 3 });
    expect(await getOfferGroup(t.ctx, "set")).toEqual({ offerGroup: "set", lowBalanceThreshold: 5, expiryWarningDays: 3 });
  });
});

describe("credits.low_balance", () => {
  it("fires once when a consumption crosses the threshold, not again below it, and again after a top-up above it", async () => {
    t.clock.set(NOW);
    await putOfferGroup(t.ctx, "lb", { lowBalanceThreshold: 50, expiryWarningDays: 7 });
    await createPromotionalGrant(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 100, expires: null });
    await consume(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 40 }); // 60: above
    expect(await lowBalanceEvents("lb-1")).toEqual([]);
    await consume(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 10 }); // 50: crossed
    await consume(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 10 }); // 40: still low
    const first = await lowBalanceEvents("lb-1");
    expect(first).toEqual([
      { eventId: expect.any(String), type: "credits.low_balance", userId: "lb-1", offerGroup: "lb", balance: 50, createdAt: NOW },
    ]);
    await createPromotionalGrant(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 5, expires: null }); // 45: still low
    await consume(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 1 });
    expect(await lowBalanceEvents("lb-1")).toHaveLength(1);
    await createPromotionalGrant(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 100, expires: null }); // 144: re-armed
    await consume(t.ctx, { userId: "lb-1", offerGroup: "lb", tokens: 100 }); // 44: crossed again
    const second = await lowBalanceEvents("lb-1");
    expect(second).toHaveLength(2);
    expect(second[1]).toMatchObject({ balance: 44 });
    expect(second[1]!.eventId).not.toBe(first[0]!.eventId);
  });

  it("fires exactly once when concurrent consumptions cross together", async () => {
    t.clock.set(NOW);
    await putOfferGroup(t.ctx, "lb-race", { lowBalanceThreshold: 50, expiryWarningDays: 7 });
    await createPromotionalGrant(t.ctx, { userId: "lb-2", offerGroup: "lb-race", tokens: 30, expires: "2026-06-01T00:00:00.000Z" });
    await createPromotionalGrant(t.ctx, { userId: "lb-2", offerGroup: "lb-race", tokens: 30, expires: null });
    await Promise.all(Array.from({ length: 20 }, () => consume(t.ctx, { userId: "lb-2", offerGroup: "lb-race", tokens: 1 })));
    const events = await lowBalanceEvents("lb-2");
    expect(events).toHaveLength(1);
    expect(events[0]!.balance).toBe(50);
  });

  it("fires when an overdraft crosses, and never without a threshold", async () => {
    t.clock.set(NOW);
    await putOfferGroup(t.ctx, "lb-debt", { lowBalanceThreshold: 0, expiryWarningDays: 7 });
    await createPromotionalGrant(t.ctx, { userId: "lb-3", offerGroup: "lb-debt", tokens: 5, expires: null });
    await consume(t.ctx, { userId: "lb-3", offerGroup: "lb-debt", tokens: 8, allowOverdraft: true });
    expect(await lowBalanceEvents("lb-3")).toMatchObject([{ balance: -3 }]);
    await createPromotionalGrant(t.ctx, { userId: "lb-3", offerGroup: "no-threshold", tokens: 5, expires: null });
    await consume(t.ctx, { userId: "lb-3", offerGroup: "no-threshold", tokens: 5 });
    expect(await lowBalanceEvents("lb-3")).toHaveLength(1);
  });
});

describe("checkUserExpiry defaults", () => {
  it("take the low-balance threshold and the warning window from the group settings, unless the call overrides them", async () => {
    t.clock.set(NOW);
    await putOfferGroup(t.ctx, "cfg", { lowBalanceThreshold: 20, expiryWarningDays: 3 });
    await createPromotionalGrant(t.ctx, { userId: "cfg-1", offerGroup: "cfg", tokens: 10, expires: "2026-05-03T00:00:00.000Z" });
    await createPromotionalGrant(t.ctx, { userId: "cfg-1", offerGroup: "other", tokens: 10, expires: "2026-05-06T00:00:00.000Z" });
    expect((await checkUserExpiry(t.ctx, "cfg-1")).warnings).toEqual([
      { offerGroup: "cfg", kind: "expiring", balance: 10, expires: "2026-05-03T00:00:00.000Z" },
      { offerGroup: "cfg", kind: "low_balance", balance: 10, expires: "2026-05-03T00:00:00.000Z" },
      { offerGroup: "other", kind: "expiring", balance: 10, expires: "2026-05-06T00:00:00.000Z" },
    ]);
    expect((await checkUserExpiry(t.ctx, "cfg-1", { warnMs: 86_400_000, low: [{ offerGroup: "cfg", min: 5 }] })).warnings).toEqual([]);
  });
});
