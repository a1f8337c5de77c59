/**
 * Consumption (core/consumption.ts) on DynamoDB Local: drain order across grants, 402
 * with nothing written, overdraft and debt, idempotency keys, lazy expiry, request
 * counts, and concurrent spenders.
 */
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { DomainError, InsufficientCreditsError } from "../../core/errors.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { hashRequest } from "../../core/idempotency.js";
import { listLedger } from "../../core/ledger.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "consumption" });
const NOW = "2026-03-10T12:00:00.000Z";

async function grant(userId: string, tokens: number, expires: string | null, offerGroup = "calls") {
  return createPromotionalGrant(t.ctx, { userId, offerGroup, tokens, expires });
}

async function balanceOf(userId: string, offerGroup = "calls") {
  const credits = await getCredits(t.ctx, userId);
  return credits.groups.find((g) => g.offerGroup === offerGroup);
}

describe("consume", () => {
  it("drains the grant that expires first, then the next, never-expiring grants last", async () => {
    t.clock.set(NOW);
    const never = await grant("drain", 10, null);
    const late = await grant("drain", 10, "2026-05-01T00:00:00.000Z");
    const soon = await grant("drain", 10, "2026-04-01T00:00:00.000Z");
    const result = await consume(t.ctx, { userId: "drain", offerGroup: "calls", tokens: 25 });
    expect(result.entry.draws).toEqual([
      { grantId: soon.grantId, tokens: 10 },
      { grantId: late.grantId, tokens: 10 },
      { grantId: never.grantId, tokens: 5 },
    ]);
    expect(result.balance).toBe(5);
    expect(result.entry).toMatchObject({ tokens: -25, reason: "consume", offerGroup: "calls", userId: "drain" });
  });

  it("refuses a consumption larger than the balance with 402 and writes nothing", async () => {
    t.clock.set(NOW);
    await grant("short", 40, "2026-04-01T00:00:00.000Z");
    const before = await listLedger(t.ctx, "short", { limit: 100 });
    const error = await consume(t.ctx, { userId: "short", offerGroup: "calls", tokens: 50 }).catch((e) => e);
    expect(error).toBeInstanceOf(InsufficientCreditsError);
    expect(error.details).toMatchObject({ balance: 40, requested: 50 });
    expect((await listLedger(t.ctx, "short", { limit: 100 })).entries).toEqual(before.entries);
    expect((await balanceOf("short"))!.balance).toBe(40);
  });

  it("refuses any consumption in a group the user never had", async () => {
    t.clock.set(NOW);
    await expect(consume(t.ctx, { userId: "nobody", offerGroup: "calls", tokens: 1 })).rejects.toMatchObject({
      code: "insufficient_credits",
      details: { balance: 0 },
    });
  });

  it("with allowOverdraft, turns the uncovered part into debt that the next grant repays first", async () => {
    t.clock.set(NOW);
    const first = await grant("postpaid", 10, "2026-04-01T00:00:00.000Z");
    const overdraft = await consume(t.ctx, { userId: "postpaid", offerGroup: "calls", tokens: 25, allowOverdraft: true });
    expect(overdraft.balance).toBe(-15);
    expect(overdraft.entry.draws).toEqual([{ grantId: first.grantId, tokens: 10 }]);
    expect(overdraft.entry.debt).toBe(15);

    const topUp = await grant("postpaid", 100, "2026-04-01T00:00:00.000Z");
    const group = (await balanceOf("postpaid"))!;
    expect(group.balance).toBe(85);
    expect(group.debt).toBe(0);
    expect(group.grants.find((g) => g.grantId === topUp.grantId)).toMatchObject({ tokens: 100, remaining: 85 });
    await expect(consume(t.ctx, { userId: "postpaid", offerGroup: "calls", tokens: 86 })).rejects.toBeInstanceOf(InsufficientCreditsError);
  });

  it("caps overdraft debt at 10^12 tokens", async () => {
    t.clock.set(NOW);
    await consume(t.ctx, { userId: "deep-debt", offerGroup: "calls", tokens: 1_000_000_000_000, allowOverdraft: true });
    await expect(consume(t.ctx, { userId: "deep-debt", offerGroup: "calls", tokens: 1, allowOverdraft: true })).rejects.toMatchObject({
      code: "insufficient_credits",
    });
    expect((await balanceOf("deep-debt"))!.balance).toBe(-1_000_000_000_000);
  });

  it("expires grants already past their instant before spending, so their tokens are not spent", async () => {
    t.clock.set(NOW);
    await grant("lazy", 30, "2026-03-11T00:00:00.000Z");
    const keeper = await grant("lazy", 10, "2026-06-01T00:00:00.000Z");
    t.clock.set("2026-03-12T00:00:00.000Z");
    await expect(consume(t.ctx, { userId: "lazy", offerGroup: "calls", tokens: 11 })).rejects.toMatchObject({ details: { balance: 10 } });
    const result = await consume(t.ctx, { userId: "lazy", offerGroup: "calls", tokens: 10 });
    expect(result.entry.draws).toEqual([{ grantId: keeper.grantId, tokens: 10 }]);
    const reasons = (await listLedger(t.ctx, "lazy", { limit: 100 })).entries.map((e) => [e.reason, e.tokens]);
    expect(reasons).toEqual([
      ["adjust", 30],
      ["adjust", 10],
      ["expire", -30],
      ["consume", -10],
    ]);
  });

  // Issue 9 (the balance item's map holds at most MAIN_GRANTS grants): a consumption the
  // map covers costs one read and one transaction whatever the number of grants; one wider
  // than the map reads the spilled grants too (one Query here), and refills the map.
  it("costs one consistent read and one transaction, with 1 grant and with 50 grants (one Query more to drain past the map)", async () => {
    t.clock.set(NOW);
    await grant("count-1", 100, "2026-04-01T00:00:00.000Z");
    for (let i = 0; i < 50; i++) await grant("count-50", 10, `2026-04-${String(1 + (i % 28)).padStart(2, "0")}T00:00:00.000Z`);
    t.requests.reset();
    await consume(t.ctx, { userId: "count-50", offerGroup: "calls", tokens: 60 });
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    for (const [userId, tokens, queries] of [["count-1", 60, 0], ["count-50", 435, 1]] as const) {
      t.requests.reset();
      await consume(t.ctx, { userId, offerGroup: "calls", tokens });
      expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1, ...(queries > 0 ? { QueryCommand: queries } : {}) });
      t.requests.reset();
      await consume(t.ctx, { userId, offerGroup: "calls", tokens: 1, idempotency: { scope: "consumptions", key: `k-${userId}`, requestHash: "h" } });
      expect(t.requests.total).toBe(2);
    }
  });
});

describe("consume with an Idempotency-Key", () => {
  const key = (k: string, body: unknown) => ({ scope: "consumptions", key: k, requestHash: hashRequest(body) });

  it("applies a repeated request once and returns the first response", async () => {
    t.clock.set(NOW);
    await grant("idem", 100, "2026-04-01T00:00:00.000Z");
    const body = { offerGroup: "calls", tokens: 60 };
    const first = await consume(t.ctx, { userId: "idem", ...body, idempotency: key("a", body) });
    t.clock.advance(1000);
    const again = await consume(t.ctx, { userId: "idem", ...body, idempotency: key("a", body) });
    expect(again).toEqual(first);
    expect((await balanceOf("idem"))!.balance).toBe(40);
  });

  it("replays a stored refusal even once the balance would allow it", async () => {
    t.clock.set(NOW);
    await grant("idem-402", 10, "2026-04-01T00:00:00.000Z");
    const body = { offerGroup: "calls", tokens: 20 };
    const first = await consume(t.ctx, { userId: "idem-402", ...body, idempotency: key("b", body) }).catch((e) => e);
    expect(first).toBeInstanceOf(DomainError);
    await grant("idem-402", 100, "2026-04-01T00:00:00.000Z");
    const again = await consume(t.ctx, { userId: "idem-402", ...body, idempotency: key("b", body) }).catch((e) => e);
    expect(again).toMatchObject({ code: "insufficient_credits", message: first.message, details: first.details });
    expect((await balanceOf("idem-402"))!.balance).toBe(110);
  });

  it("refuses the same key with another body (409 idempotency_conflict) and changes nothing", async () => {
    t.clock.set(NOW);
    await grant("idem-conflict", 100, "2026-04-01T00:00:00.000Z");
    await consume(t.ctx, { userId: "idem-conflict", offerGroup: "calls", tokens: 1, idempotency: key("c", { tokens: 1 }) });
    await expect(
      consume(t.ctx, { userId: "idem-conflict", offerGroup: "calls", tokens: 2, idempotency: key("c", { tokens: 2 }) }),
    ).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect((await balanceOf("idem-conflict"))!.balance).toBe(99);
  });

  it("scopes keys to the user: the same key for two users applies twice", async () => {
    t.clock.set(NOW);
    await grant("scope-a", 5, null);
    await grant("scope-b", 5, null);
    const body = { offerGroup: "calls", tokens: 1 };
    await consume(t.ctx, { userId: "scope-a", ...body, idempotency: key("same", body) });
    await consume(t.ctx, { userId: "scope-b", ...body, idempotency: key("same", body) });
    expect((await balanceOf("scope-a"))!.balance).toBe(4);
    expect((await balanceOf("scope-b"))!.balance).toBe(4);
  });

  it("applies concurrent duplicates once and gives them all the same response", async () => {
    t.clock.set(NOW);
    await grant("idem-race", 100, null);
    const body = { offerGroup: "calls", tokens: 7 };
    const results = await Promise.all(
      Array.from({ length: 8 }, () => consume(t.ctx, { userId: "idem-race", ...body, idempotency: key("race", body) })),
    );
    expect(new Set(results.map((r) => r.entry.entryId)).size).toBe(1);
    expect((await balanceOf("idem-race"))!.balance).toBe(93);
  });
});

describe("concurrent consumption", () => {
  it("lets exactly as many 1-token consumptions succeed as there are tokens", async () => {
    t.clock.set(NOW);
    await grant("crowd", 20, "2026-04-01T00:00:00.000Z");
    await grant("crowd", 20, "2026-05-01T00:00:00.000Z");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 60 }, () => consume(t.ctx, { userId: "crowd", offerGroup: "calls", tokens: 1 })),
    );
    const ok = outcomes.filter((o) => o.status === "fulfilled").length;
    const refused = outcomes.filter((o) => o.status === "rejected" && (o.reason as DomainError).code === "insufficient_credits").length;
    expect([ok, refused]).toEqual([40, 20]);
    expect((await balanceOf("crowd"))!.balance).toBe(0);
  });
});
