/**
 * Credits, ledger and subscription reads (core/credits.ts, core/ledger.ts) on DynamoDB
 * Local.
 */
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { checkSubscription, getCredits } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "credits" });

describe("getCredits", () => {
  it("lists each group with its balance, earliest start, latest expiry and active grants, and the subscriptions", async () => {
    t.clock.set("2026-06-01T00:00:00.000Z");
    await upsertOffer(t.ctx, "plan", anOffer({ offerGroup: "plan", tokenCount: 0, kind: "subscription" }));
    const { order } = await createOrder(t.ctx, { userId: "viewer", offerId: "plan" });
    await confirmManualOrder(t.ctx, "viewer", order.orderId);
    await createPromotionalGrant(t.ctx, { userId: "viewer", offerGroup: "calls", tokens: 5, expires: null });
    t.clock.set("2026-06-02T00:00:00.000Z");
    await createPromotionalGrant(t.ctx, { userId: "viewer", offerGroup: "calls", tokens: 7, expires: "2026-07-01T00:00:00.000Z" });
    const credits = await getCredits(t.ctx, "viewer");
    expect(credits.groups.map((g) => [g.offerGroup, g.balance, g.starts, g.expires])).toEqual([
      ["calls", 12, "2026-06-01T00:00:00.000Z", "2026-07-01T00:00:00.000Z"],
      ["plan", 0, "2026-06-01T00:00:00.000Z", "2026-07-01T00:00:00.000Z"],
    ]);
    expect(credits.subscriptions).toEqual([
      { orderId: order.orderId, offerId: "plan", offerGroup: "plan", status: "paid", starts: "2026-06-01T00:00:00.000Z", expires: "2026-07-01T00:00:00.000Z" },
    ]);
  });

  it("shows nothing for a user with no history", async () => {
    expect(await getCredits(t.ctx, "stranger")).toEqual({ userId: "stranger", groups: [], subscriptions: [] });
  });
});

describe("checkSubscription", () => {
  it("is true while a paid order of the offer has an active grant", async () => {
    t.clock.set("2026-06-01T00:00:00.000Z");
    await upsertOffer(t.ctx, "weekly-plan", anOffer({ offerGroup: "weekly-plan", cycle: "weekly", tokenCount: 0 }));
    expect(await checkSubscription(t.ctx, "sub", "weekly-plan")).toEqual({ subscribed: false, order: null });
    const { order } = await createOrder(t.ctx, { userId: "sub", offerId: "weekly-plan" });
    expect((await checkSubscription(t.ctx, "sub", "weekly-plan")).subscribed).toBe(false);
    await confirmManualOrder(t.ctx, "sub", order.orderId);
    expect(await checkSubscription(t.ctx, "sub", "weekly-plan")).toMatchObject({ subscribed: true, order: { orderId: order.orderId } });
    t.clock.set("2026-06-08T00:00:00.000Z");
    expect((await checkSubscription(t.ctx, "sub", "weekly-plan")).subscribed).toBe(false);
  });
});

describe("listLedger", () => {
  it("reads oldest first, by pages, for one group and a date range", async () => {
    t.clock.set("2026-06-01T00:00:00.000Z");
    await createPromotionalGrant(t.ctx, { userId: "reader", offerGroup: "a", tokens: 100, expires: null });
    await createPromotionalGrant(t.ctx, { userId: "reader", offerGroup: "b", tokens: 100, expires: null });
    for (let day = 2; day <= 6; day++) {
      t.clock.set(`2026-06-0${day}T00:00:00.000Z`);
      await consume(t.ctx, { userId: "reader", offerGroup: day % 2 ? "a" : "b", tokens: day });
    }
    const all = await listLedger(t.ctx, "reader", { limit: 1000 });
    expect(all.entries.map((e) => e.tokens)).toEqual([100, 100, -2, -3, -4, -5, -6]);

    const page1 = await listLedger(t.ctx, "reader", { limit: 4 });
    const page2 = await listLedger(t.ctx, "reader", { limit: 4, cursor: page1.cursor });
    expect([...page1.entries, ...page2.entries].map((e) => e.entryId)).toEqual(all.entries.map((e) => e.entryId));
    expect(page2.cursor).toBeNull();

    const groupA = await listLedger(t.ctx, "reader", { limit: 2, offerGroup: "a" });
    const groupA2 = await listLedger(t.ctx, "reader", { limit: 2, offerGroup: "a", cursor: groupA.cursor });
    expect([...groupA.entries, ...groupA2.entries].map((e) => e.tokens)).toEqual([100, -3, -5]);

    const range = await listLedger(t.ctx, "reader", { limit: 100, from: "2026-06-03T00:00:00.000Z", to: "2026-06-05T00:00:00.000Z" });
    expect(range.entries.map((e) => e.tokens)).toEqual([-3, -4]);
  });
});
