/**
 * Fulfilment (core/fulfilment.ts) on DynamoDB Local: paying an order creates its grants,
 * ledger entries and balances exactly once, with the dates of the purchase rules.
 */
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { fulfilOrder } from "../../core/fulfilment.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder, getOrder } from "../../core/orders.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "fulfilment" });
const NOW = "2026-01-31T09:00:00.000Z";

async function buy(userId: string, offerId: string, options: { quantity?: number; starts?: string } = {}) {
  const { order } = await createOrder(t.ctx, { userId, offerId, ...options });
  return confirmManualOrder(t.ctx, userId, order.orderId);
}

describe("fulfilOrder", () => {
  it("credits a paid order with a grant, a purchase ledger entry and the balance", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "monthly-100", anOffer());
    const order = await buy("payer", "monthly-100");
    expect(order).toMatchObject({ status: "paid", starts: NOW, expires: "2026-02-28T09:00:00.000Z" });
    const credits = await getCredits(t.ctx, "payer");
    expect(credits.groups).toEqual([
      {
        offerGroup: "calls",
        balance: 100,
        held: 0,
        debt: 0,
        starts: NOW,
        expires: "2026-02-28T09:00:00.000Z",
        grants: [
          { grantId: order.grantIds[0], orderId: order.orderId, offerId: "monthly-100", tokens: 100, remaining: 100, starts: NOW, expires: "2026-02-28T09:00:00.000Z" },
        ],
      },
    ]);
    const { entries } = await listLedger(t.ctx, "payer", { limit: 10 });
    expect(entries).toMatchObject([{ tokens: 100, reason: "purchase", orderId: order.orderId, grantId: order.grantIds[0] }]);
  });

  it("credits once when the same order is confirmed concurrently", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "race-pack", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "racer", offerId: "race-pack" });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => fulfilOrder(t.ctx, "racer", order.orderId, { source: "manual", message: "confirmed" })),
    );
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect(results.filter((r) => !r.applied).map((r) => !r.applied && r.reason)).toEqual(Array(5).fill("already_paid"));
    expect((await getCredits(t.ctx, "racer")).groups[0]!.balance).toBe(100);
  });

  it("multiplies tokens and duration by the quantity, in one calendar step", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "monthly-x", anOffer({ tokenCount: 501 }));
    const order = await buy("quantity", "monthly-x", { quantity: 4 });
    expect(order).toMatchObject({ tokens: 2004, starts: NOW, expires: "2026-05-31T09:00:00.000Z" });
  });

  it("starts an appendDate purchase where the latest unexpired grant of the group ends, and spends it after the current one", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "chained", anOffer({ appendDate: true, cycle: "weekly", tokenCount: 10 }));
    const first = await buy("chain", "chained");
    const second = await buy("chain", "chained", { quantity: 3 });
    expect(first).toMatchObject({ starts: NOW, expires: "2026-02-07T09:00:00.000Z" });
    expect(second).toMatchObject({ starts: "2026-02-07T09:00:00.000Z", expires: "2026-02-28T09:00:00.000Z", tokens: 30 });
    const spent = await consume(t.ctx, { userId: "chain", offerGroup: "calls", tokens: 12 });
    expect(spent.entry.draws).toEqual([
      { grantId: first.grantIds[0], tokens: 10 },
      { grantId: second.grantIds[0], tokens: 2 },
    ]);
  });

  it("chains two purchases confirmed at the same moment one after the other", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "chained-race", anOffer({ appendDate: true, cycle: "monthly", tokenCount: 1 }));
    const a = await createOrder(t.ctx, { userId: "chain-race", offerId: "chained-race" });
    const b = await createOrder(t.ctx, { userId: "chain-race", offerId: "chained-race" });
    await Promise.all([confirmManualOrder(t.ctx, "chain-race", a.order.orderId), confirmManualOrder(t.ctx, "chain-race", b.order.orderId)]);
    const periods = (await getCredits(t.ctx, "chain-race")).groups[0]!.grants.map((g) => [g.starts, g.expires]);
    expect(periods).toEqual([
      [NOW, "2026-02-28T09:00:00.000Z"],
      ["2026-02-28T09:00:00.000Z", "2026-03-28T09:00:00.000Z"],
    ]);
  });

  it("never shortens an existing grant and always adds its tokens", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "yearly", anOffer({ cycle: "yearly", tokenCount: 5 }));
    await upsertOffer(t.ctx, "daily", anOffer({ cycle: "daily", tokenCount: 7 }));
    await buy("no-shorten", "yearly");
    await consume(t.ctx, { userId: "no-shorten", offerGroup: "calls", tokens: 5 });
    await buy("no-shorten", "daily");
    const group = (await getCredits(t.ctx, "no-shorten")).groups[0]!;
    expect(group.balance).toBe(7);
    expect(group.expires).toBe("2027-01-31T09:00:00.000Z");
    // Issue 9: the yearly grant, spent, has left the balance item (its grant item keeps it);
    // its expiry still heads the chain (`expires` above).
    expect(group.grants.map((g) => g.expires)).toEqual(["2026-02-01T09:00:00.000Z"]);
  });

  it("keeps a requested future start, and starts at confirmation when it has passed, saying so", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "scheduled", anOffer({ cycle: "weekly" }));
    const future = await buy("scheduled", "scheduled", { starts: "2026-03-01T00:00:00.000Z" });
    expect(future).toMatchObject({ starts: "2026-03-01T00:00:00.000Z", expires: "2026-03-08T00:00:00.000Z" });

    const { order } = await createOrder(t.ctx, { userId: "scheduled", offerId: "scheduled", starts: "2026-02-01T00:00:00.000Z" });
    expect(order.starts).toBe("2026-02-01T00:00:00.000Z");
    t.clock.set("2026-02-02T00:00:00.000Z");
    const late = await confirmManualOrder(t.ctx, "scheduled", order.orderId);
    expect(late).toMatchObject({ starts: "2026-02-02T00:00:00.000Z", expires: "2026-02-09T00:00:00.000Z" });
    expect(late.history.map((h) => h.message)).toContain(
      "requested start 2026-02-01T00:00:00.000Z had passed at confirmation; the grant starts at 2026-02-02T00:00:00.000Z",
    );
  });

  it("repays debt first from a purchased grant", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "repay", anOffer({ tokenCount: 50 }));
    await createPromotionalGrant(t.ctx, { userId: "debtor", offerGroup: "calls", tokens: 5, expires: null });
    await consume(t.ctx, { userId: "debtor", offerGroup: "calls", tokens: 20, allowOverdraft: true });
    const order = await buy("debtor", "repay");
    const group = (await getCredits(t.ctx, "debtor")).groups[0]!;
    expect(group).toMatchObject({ balance: 35, debt: 0 });
    expect(group.grants.find((g) => g.grantId === order.grantIds[0])).toMatchObject({ tokens: 50, remaining: 35 });
    const purchase = (await listLedger(t.ctx, "debtor", { limit: 10 })).entries.find((e) => e.reason === "purchase");
    expect(purchase).toMatchObject({ tokens: 50, debtRepaid: 15 });
  });

  it("pays a bundle: one grant and one ledger entry per item, in each item's offerGroup", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "bundle-calls", anOffer({ offerGroup: "b-calls", tokenCount: 60, appendDate: true }));
    await upsertOffer(t.ctx, "bundle-data", anOffer({ offerGroup: "b-data", tokenCount: 500 }));
    await upsertOffer(
      t.ctx,
      "bundle",
      anOffer({
        offerGroup: "b-root",
        cycle: "weekly",
        tokenCount: 0,
        combinedItems: [
          { offerId: "bundle-calls", quantity: 20 },
          { offerId: "bundle-data", quantity: 2 },
        ],
      }),
    );
    await createPromotionalGrant(t.ctx, { userId: "bundler", offerGroup: "b-calls", tokens: 1, expires: "2026-03-15T00:00:00.000Z" });
    const order = await buy("bundler", "bundle", { quantity: 2 });
    expect(order).toMatchObject({ tokens: 0, starts: NOW, expires: "2026-02-14T09:00:00.000Z" });
    expect(order.combinedItems).toMatchObject([
      { offerId: "bundle-calls", offerGroup: "b-calls", quantity: 20, tokenCount: 60, tokens: 2400, starts: "2026-03-15T00:00:00.000Z", expires: "2026-03-29T00:00:00.000Z" },
      { offerId: "bundle-data", offerGroup: "b-data", quantity: 2, tokenCount: 500, tokens: 2000, starts: NOW, expires: "2026-02-14T09:00:00.000Z" },
    ]);
    const balances = Object.fromEntries((await getCredits(t.ctx, "bundler")).groups.map((g) => [g.offerGroup, g.balance]));
    expect(balances).toEqual({ "b-calls": 2401, "b-data": 2000, "b-root": 0 });
    const purchases = (await listLedger(t.ctx, "bundler", { limit: 10 })).entries.filter((e) => e.reason === "purchase");
    expect(purchases.map((e) => [e.offerGroup, e.tokens])).toEqual([
      ["b-root", 0],
      ["b-calls", 2400],
      ["b-data", 2000],
    ]);
    expect((await getOrder(t.ctx, "bundler", order.orderId)).grantIds).toHaveLength(3);
  });
});
