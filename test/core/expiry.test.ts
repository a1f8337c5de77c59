/**
 * Expiry (core/expiry.ts, core/daily-job.ts) on DynamoDB Local: unused tokens leave
 * through one ledger `expire` entry per grant, once; the daily job finds due grants
 * through the sparse index, whoever else is in the table.
 */
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { checkUserExpiry, expireUser } from "../../core/expiry.js";
import { runDailyJob } from "../../core/daily-job.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder, getOrder } from "../../core/orders.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "expiry" });

async function grant(userId: string, tokens: number, expires: string | null, offerGroup = "calls") {
  return createPromotionalGrant(t.ctx, { userId, offerGroup, tokens, expires });
}

describe("expireUser", () => {
  it("removes exactly a due grant's unused tokens through one expire entry, once", async () => {
    t.clock.set("2026-05-01T00:00:00.000Z");
    const due = await grant("exp-1", 100, "2026-05-02T00:00:00.000Z");
    await grant("exp-1", 10, "2026-06-01T00:00:00.000Z");
    await consume(t.ctx, { userId: "exp-1", offerGroup: "calls", tokens: 60 });
    t.clock.set("2026-05-03T00:00:00.000Z");
    const expired = await expireUser(t.ctx, "exp-1");
    expect(expired).toMatchObject([{ grantId: due.grantId, tokens: 100, expiredTokens: 40, expires: "2026-05-02T00:00:00.000Z" }]);
    expect(await expireUser(t.ctx, "exp-1")).toEqual([]);
    const entries = (await listLedger(t.ctx, "exp-1", { limit: 10 })).entries;
    expect(entries.filter((e) => e.reason === "expire")).toMatchObject([{ tokens: -40, grantId: due.grantId }]);
    expect((await getCredits(t.ctx, "exp-1")).groups[0]).toMatchObject({ balance: 10, grants: [{ tokens: 10, remaining: 10 }] });
  });

  it("expires a fully spent grant without a ledger entry (no tokens move)", async () => {
    t.clock.set("2026-05-01T00:00:00.000Z");
    await grant("exp-spent", 5, "2026-05-02T00:00:00.000Z");
    await consume(t.ctx, { userId: "exp-spent", offerGroup: "calls", tokens: 5 });
    t.clock.set("2026-05-03T00:00:00.000Z");
    expect(await expireUser(t.ctx, "exp-spent")).toMatchObject([{ expiredTokens: 0 }]);
    expect((await listLedger(t.ctx, "exp-spent", { limit: 10 })).entries.map((e) => e.reason)).toEqual(["adjust", "consume"]);
  });

  it("marks an order expired once all its grants have expired", async () => {
    t.clock.set("2026-05-01T00:00:00.000Z");
    await upsertOffer(t.ctx, "daily", anOffer({ cycle: "daily" }));
    const { order } = await createOrder(t.ctx, { userId: "exp-order", offerId: "daily" });
    await confirmManualOrder(t.ctx, "exp-order", order.orderId);
    t.clock.set("2026-05-02T00:00:00.000Z");
    await expireUser(t.ctx, "exp-order");
    const after = await getOrder(t.ctx, "exp-order", order.orderId);
    expect(after.status).toBe("expired");
    expect(after.history.at(-1)).toMatchObject({ status: "expired", message: "all its grants have expired" });
  });

  it("never expires `once` grants", async () => {
    t.clock.set("2026-05-01T00:00:00.000Z");
    await grant("exp-once", 5, null);
    t.clock.set("2036-05-01T00:00:00.000Z");
    expect(await expireUser(t.ctx, "exp-once")).toEqual([]);
    expect((await getCredits(t.ctx, "exp-once")).groups[0]!.balance).toBe(5);
  });
});

describe("checkUserExpiry", () => {
  it("expires what is due and lists every warning that holds now", async () => {
    t.clock.set("2026-05-01T00:00:00.000Z");
    await grant("warn", 10, "2026-05-02T00:00:00.000Z", "soon");
    await grant("warn", 10, "2026-05-05T00:00:00.000Z", "later");
    await grant("warn", 3, "2026-09-01T00:00:00.000Z", "low");
    await grant("warn", 1, null, "empty");
    await consume(t.ctx, { userId: "warn", offerGroup: "empty", tokens: 1 });
    t.clock.set("2026-05-03T00:00:00.000Z");
    const result = await checkUserExpiry(t.ctx, "warn", {
      warnMs: 4 * 86_400_000,
      low: [
        { offerGroup: "low", min: 5 },
        { offerGroup: "empty", min: 0 },
      ],
    });
    expect(result.expired).toMatchObject([{ offerGroup: "soon", expiredTokens: 10, status: "expired" }]);
    expect(result.warnings).toEqual([
      { offerGroup: "empty", kind: "low_balance", balance: 0, expires: null },
      { offerGroup: "later", kind: "expiring", balance: 10, expires: "2026-05-05T00:00:00.000Z" },
      { offerGroup: "low", kind: "low_balance", balance: 3, expires: "2026-09-01T00:00:00.000Z" },
    ]);
  });
});

describe("runDailyJob", () => {
  it("expires exactly the due grants of every user, through the index, once", async () => {
    t.clock.set("2026-07-01T00:00:00.000Z");
    // The first run sets the watermark on an empty index.
    await runDailyJob(t.ctx);
    for (let i = 0; i < 40; i++) {
      const expires = i % 4 === 0 ? `2026-07-0${2 + (i % 3)}T06:00:00.000Z` : "2026-08-15T00:00:00.000Z";
      await grant(`job-${i}`, 10 + i, expires);
    }
    const exact = await grant("job-exact", 7, "2026-07-05T00:00:00.000Z");
    t.clock.set("2026-07-05T00:00:00.000Z");
    t.requests.reset();
    const summary = await runDailyJob(t.ctx);
    console.log("requests: daily job for", summary.grantsExpired, "due grants", t.requests.byCommand);
    expect(summary).toMatchObject({ grantsExpired: 11, complete: true, days: ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04", "2026-07-05"] });
    expect(summary.tokensRemoved).toBe([0, 4, 8, 12, 16, 20, 24, 28, 32, 36].reduce((total, i) => total + 10 + i, 0) + 7);
    expect((await getCredits(t.ctx, "job-exact")).groups[0]!.balance).toBe(0);
    expect((await listLedger(t.ctx, "job-exact", { limit: 5 })).entries.at(-1)).toMatchObject({ reason: "expire", tokens: -7, grantId: exact.grantId });
    expect((await getCredits(t.ctx, "job-1")).groups[0]!.balance).toBe(11);

    const again = await runDailyJob(t.ctx);
    expect(again).toMatchObject({ grantsExpired: 0, tokensRemoved: 0, days: ["2026-07-05"] });
  });

  it("finishes on the next run what a run stopped by its deadline left", async () => {
    t.clock.set("2026-07-10T00:00:00.000Z");
    await grant("job-deadline", 9, "2026-07-11T00:00:00.000Z");
    t.clock.set("2026-07-12T00:00:00.000Z");
    const stopped = await runDailyJob(t.ctx, { deadline: Date.now() - 1 });
    expect(stopped).toMatchObject({ complete: false, grantsExpired: 0 });
    const finished = await runDailyJob(t.ctx);
    expect(finished).toMatchObject({ complete: true, grantsExpired: 1, tokensRemoved: 9 });
  });
});
