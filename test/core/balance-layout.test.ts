/**
 * The balance item's layout (issue 9; core/balances.ts, core/rules/balance-layout.ts) on
 * DynamoDB Local, through the real code paths: a consumption the map cannot cover reads
 * the spilled grants and refills the map; a grant that belongs before the overflow goes
 * into the map; spilled grants and grants that left the balance exhausted are expired
 * (the latter with 0 tokens, by the daily job); visibility, the subscription check, the
 * free-offer check and appendDate stay as they were once the grants are spent; the
 * full-state API (`readFullBalance` + `balanceWrites`) stores a change anywhere in the set,
 * conditionally; an item stored before this layout is rewritten to it by its next write.
 * The ledger and layout invariants are checked after each test (test/helpers/invariants.ts).
 */
import { describe, expect, it } from "vitest";
import { balanceWrites, readBalance, readFullBalance } from "../../core/balances.js";
import { consume } from "../../core/consumption.js";
import { checkSubscription, getCredits } from "../../core/credits.js";
import { runDailyJob } from "../../core/daily-job.js";
import { transactWrite } from "../../core/db/transact.js";
import { expireUser } from "../../core/expiry.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { ledgerEntryWrite, listLedger, newLedgerEntry } from "../../core/ledger.js";
import { unlockedGroups, upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { MAIN_GRANTS } from "../../core/rules/balance-layout.js";
import { useIntegrationContext } from "../helpers/context.js";
import { anOffer } from "../helpers/factories.js";
import { seedHistory, type SeededGrant } from "../helpers/seed.js";

const t = useIntegrationContext({ label: "layout" });
const NOW = "2026-03-10T09:00:00.000Z";
const DAY = 86_400_000;

function inDays(days: number): string {
  return new Date(Date.parse(NOW) + days * DAY).toISOString();
}

async function stored(userId: string, offerGroup = "calls") {
  const { data } = await t.db.entities.balance.get({ userId, offerGroup }).go({ consistent: true });
  const { data: items } = await t.db.entities.balanceOverflow.query.byGroup({ userId, offerGroup }).go({ consistent: true, pages: "all" });
  return { balance: data!, items };
}

async function buy(userId: string, offerId: string) {
  const { order } = await createOrder(t.ctx, { userId, offerId });
  return confirmManualOrder(t.ctx, userId, order.orderId);
}

describe("the map and the overflow", () => {
  it("a consumption the map cannot cover reads the spilled grants in one Query, draws in drain order and refills the map", async () => {
    t.clock.set(NOW);
    const grants: SeededGrant[] = Array.from({ length: 40 }, (_, i) => ({ tokens: 5, expires: i < 20 ? inDays(10 + i) : null, spent: 0 }));
    const { grantIds } = await seedHistory(t.ctx, "refill", "calls", grants);
    expect((await stored("refill")).balance).toMatchObject({ balance: 200, spilled: { grants: 30, tokens: 150 } });
    t.requests.reset();
    const result = await consume(t.ctx, { userId: "refill", offerGroup: "calls", tokens: 62 });
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, QueryCommand: 1, TransactWriteItemsCommand: 1 });
    expect(result.entry.draws).toEqual([...grantIds.slice(0, 12).map((grantId) => ({ grantId, tokens: 5 })), { grantId: grantIds[12], tokens: 2 }]);
    const after = await stored("refill");
    expect(after.balance.grants.map((g) => g.grantId)).toEqual(grantIds.slice(12, 12 + MAIN_GRANTS));
    expect(after.balance).toMatchObject({ balance: 138, spilled: { grants: 18, tokens: 90 } });
  });

  it("two consumptions racing past the map both land, once each", async () => {
    t.clock.set(NOW);
    await seedHistory(t.ctx, "race", "calls", Array.from({ length: 30 }, () => ({ tokens: 2, expires: null, spent: 0 })));
    await Promise.all([consume(t.ctx, { userId: "race", offerGroup: "calls", tokens: 25 }), consume(t.ctx, { userId: "race", offerGroup: "calls", tokens: 25 })]);
    expect((await readBalance(t.ctx, "race", "calls")).balance).toBe(10);
  });

  it("a grant that belongs before the overflow's first goes into the map and pushes the map's last out, without reading the overflow", async () => {
    t.clock.set(NOW);
    await seedHistory(t.ctx, "insert", "calls", Array.from({ length: MAIN_GRANTS + 2 }, () => ({ tokens: 1, expires: null, spent: 0 })));
    t.requests.reset();
    const soon = await createPromotionalGrant(t.ctx, { userId: "insert", offerGroup: "calls", tokens: 7, expires: inDays(3) });
    expect(t.requests.byCommand).toEqual({ GetItemCommand: 1, TransactWriteItemsCommand: 1 });
    const after = await stored("insert");
    expect(after.balance.grants[0]!.grantId).toBe(soon.grantId);
    expect(after.balance.grants).toHaveLength(MAIN_GRANTS);
    expect(after.balance.spilled).toMatchObject({ grants: 3, tokens: 3 });
    expect((await consume(t.ctx, { userId: "insert", offerGroup: "calls", tokens: 7 })).entry.draws).toEqual([{ grantId: soon.grantId, tokens: 7 }]);
  });
});

describe("expiry", () => {
  it("expires spilled grants when they are due, reading the due overflow items, and refills the map from them", async () => {
    t.clock.set(NOW);
    // 30 grants expiring on days 1..30, one in three spent (they left the balance): the
    // map holds the first 10 live ones (days 2..15), the overflow the other 10 (days 17..30).
    await seedHistory(t.ctx, "spilled-expiry", "calls", Array.from({ length: 30 }, (_, i) => ({ tokens: 3, expires: inDays(1 + i), spent: i % 3 === 0 ? 3 : 0 })));
    const live = (from: number) => Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 !== 0 && 1 + i >= from).map((i) => inDays(1 + i));
    t.clock.set(inDays(15));
    const expired = await expireUser(t.ctx, "spilled-expiry");
    expect(expired.map((grant) => grant.expires).sort()).toEqual(Array.from({ length: 15 }, (_, i) => inDays(1 + i)));
    expect(expired.filter((grant) => grant.expiredTokens === 0)).toHaveLength(5);
    // The map emptied by expiry stays empty until the overflow is read.
    expect((await stored("spilled-expiry")).balance).toMatchObject({ grants: [], balance: 30, spilled: { grants: 10, tokens: 30 } });

    t.clock.set(inDays(19));
    // The spilled grants of days 17 and 18, and the spent ones of days 16 and 19 (0 tokens).
    const second = await expireUser(t.ctx, "spilled-expiry");
    expect(second.map((grant) => [grant.expires, grant.expiredTokens]).sort()).toEqual([[inDays(16), 0], [inDays(17), 3], [inDays(18), 3], [inDays(19), 0]]);
    const after = await stored("spilled-expiry");
    expect(after.balance.grants.map((g) => g.expires)).toEqual(live(20).slice(0, after.balance.grants.length));
    expect(after.balance.grants.length + (after.balance.spilled?.grants ?? 0)).toBe(8);
    expect(await expireUser(t.ctx, "spilled-expiry")).toEqual([]);
  });

  it("the daily job marks expired, with 0 tokens and their event, the grants that left the balance exhausted", async () => {
    t.clock.set(NOW);
    await runDailyJob(t.ctx); // sets the watermarks
    const { grantIds } = await seedHistory(t.ctx, "left", "calls", [
      { tokens: 5, expires: inDays(2), offerId: "pack", spent: 5 },
      { tokens: 5, expires: inDays(3), spent: 5 },
      { tokens: 5, expires: inDays(40), spent: 5 },
      { tokens: 5, expires: inDays(3), spent: 1 },
    ]);
    expect((await stored("left")).balance.exhausted).toEqual({ since: grantIds[0], due: inDays(2) });
    t.clock.set(inDays(4));
    await runDailyJob(t.ctx);
    const items = await Promise.all(grantIds.map(async (grantId) => (await t.db.entities.grant.get({ userId: "left", grantId }).go()).data!));
    expect(items.map((item) => [item.status, item.expiredTokens])).toEqual([
      ["expired", 0],
      ["expired", 0],
      ["active", undefined],
      ["expired", 4],
    ]);
    expect((await stored("left")).balance.exhausted).toEqual({ since: grantIds[2], due: inDays(40) });
    const { data: events } = await t.db.entities.event.query.byUser({ userId: "left" }).go();
    expect(events.filter((event) => event.type === "credits.expired").map((event) => event.grantId).sort()).toEqual([grantIds[0], grantIds[1], grantIds[3]].sort());
    await runDailyJob(t.ctx);
    const { data: again } = await t.db.entities.event.query.byUser({ userId: "left" }).go();
    expect(again.filter((event) => event.type === "credits.expired")).toHaveLength(3);
  });
});

describe("what spent grants still say", () => {
  it("a spent paid grant still unlocks its group, is the subscription, and heads the appendDate chain, until its expiry", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "lay-pass", anOffer({ offerGroup: "lay-calls", cycle: "monthly", tokenCount: 10, appendDate: true }));
    const first = await buy("spender", "lay-pass");
    await consume(t.ctx, { userId: "spender", offerGroup: "lay-calls", tokens: 10 });
    expect((await stored("spender", "lay-calls")).balance.grants).toEqual([]);
    expect(await unlockedGroups(t.ctx, "spender", new Date(NOW))).toEqual(new Set(["lay-calls"]));
    expect(await checkSubscription(t.ctx, "spender", "lay-pass")).toMatchObject({ subscribed: true, order: { orderId: first.orderId } });
    expect((await getCredits(t.ctx, "spender")).subscriptions).toMatchObject([{ orderId: first.orderId, expires: first.expires }]);
    const second = await buy("spender", "lay-pass");
    expect(second.starts).toBe(first.expires);
    t.clock.set(first.expires!);
    expect(await checkSubscription(t.ctx, "spender", "lay-pass")).toMatchObject({ subscribed: true, order: { orderId: second.orderId } });
    t.clock.set(second.expires!);
    expect(await unlockedGroups(t.ctx, "spender", new Date(second.expires!))).toEqual(new Set());
    expect(await checkSubscription(t.ctx, "spender", "lay-pass")).toEqual({ subscribed: false, order: null });
    await expireUser(t.ctx, "spender");
  });

  it("a spent free tier cannot be taken again while it runs", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "lay-free", anOffer({ offerGroup: "lay-free", cycle: "monthly", tokenCount: 5, prices: [{ amount: 0, currency: "usd" }] }));
    await createOrder(t.ctx, { userId: "free-spender", offerId: "lay-free" });
    await consume(t.ctx, { userId: "free-spender", offerGroup: "lay-free", tokens: 5 });
    await expect(createOrder(t.ctx, { userId: "free-spender", offerId: "lay-free" })).rejects.toMatchObject({ code: "already_subscribed" });
  });
});

describe("the full-state API (core/balances.ts)", () => {
  it("reads every grant of the group and stores a change to a spilled grant, once, conditionally", async () => {
    t.clock.set(NOW);
    const { grantIds } = await seedHistory(t.ctx, "full", "calls", Array.from({ length: 30 }, () => ({ tokens: 4, expires: null, spent: 0 })));
    const view = await readFullBalance(t.ctx, "full", "calls");
    expect(view.state.grants).toHaveLength(30);
    expect(view.state.spilled).toBeUndefined();
    const last = grantIds.at(-1)!;
    const now = t.clock.now();
    const next = { ...view.state, balance: view.state.balance - 3, grants: view.state.grants.map((g) => (g.grantId === last ? { ...g, remaining: 1 } : g)) };
    const entry = newLedgerEntry({ userId: "full", offerGroup: "calls", tokens: -3, reason: "adjust", grantId: last, draws: [{ grantId: last, tokens: 3 }] }, now);
    const write = () => transactWrite<string>(t.db, { ...balanceWrites(t.db, view, next, now), entry: ledgerEntryWrite(t.db, entry) });
    expect(await write()).toEqual({ committed: true });
    expect((await write()).committed).toBe(false);
    const again = await readFullBalance(t.ctx, "full", "calls");
    expect(again.state.grants.find((g) => g.grantId === last)).toMatchObject({ remaining: 1 });
    expect(again.state.balance).toBe(117);
  });
});

describe("an item stored before this layout", () => {
  it("is read with its spent grants left out and rewritten to the layout by its next write", async () => {
    t.clock.set(NOW);
    const grants: SeededGrant[] = Array.from({ length: 25 }, (_, i) => ({ tokens: 4, expires: i % 2 ? inDays(20 + i) : null, spent: i % 5 === 0 ? 4 : 0, ...(i % 4 === 0 ? { offerId: "old-pack" } : {}) }));
    const { grantIds } = await seedHistory(t.ctx, "legacy", "calls", grants);
    // The item as the code before issue 9 wrote it: every grant in one map, spent ones kept.
    const before = await stored("legacy");
    for (const item of before.items) await t.db.entities.balanceOverflow.delete({ userId: "legacy", offerGroup: "calls", itemKey: item.itemKey }).go();
    const all = grants.map((g, i) => ({
      grantId: grantIds[i]!,
      ...(g.offerId ? { orderId: `order-${i}`, offerId: g.offerId, orderOfferId: g.offerId } : {}),
      tokens: g.tokens,
      remaining: g.tokens - g.spent,
      starts: NOW,
      ...(g.expires ? { expires: g.expires } : {}),
    }));
    await t.db.entities.balance.put({ userId: "legacy", offerGroup: "calls", balance: before.balance.balance, debt: 0, version: before.balance.version, grants: all, updatedAt: NOW }).go();
    expect((await getCredits(t.ctx, "legacy")).groups[0]!.grants).toHaveLength(20);

    await consume(t.ctx, { userId: "legacy", offerGroup: "calls", tokens: 1 });
    const after = await stored("legacy");
    expect(after.balance.layout).toBe(2);
    expect(after.balance.grants).toHaveLength(MAIN_GRANTS);
    expect(after.balance.spilled).toMatchObject({ grants: 10 });
    expect(after.balance.exhausted?.since).toBe(grantIds[5]);
    expect((await listLedger(t.ctx, "legacy", { limit: 200 })).entries.reduce((sum, e) => sum + e.tokens, 0)).toBe(after.balance.balance);
  });
});
