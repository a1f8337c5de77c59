/**
 * Consumptions on a per-instance cache of balance items (core/balance-cache.ts; issue 12)
 * on DynamoDB Local: a warm consumption makes exactly one request (its transaction),
 * counted at the client; a stale copy is never spent from wrongly: a grant added since
 * the copy that expires first is drawn first (the grant-set guard), tokens given back to
 * an earlier grant since the copy are drawn first (the passed-over guard), and a copy that
 * cannot cover a consumption is never the reason for a 402 (a fresh read decides). The
 * ledger invariants are checked after each test.
 */
import { describe, expect, it } from "vitest";
import { createBalanceCache, type BalanceCache } from "../../core/balance-cache.js";
import { consume } from "../../core/consumption.js";
import type { Context } from "../../core/context.js";
import { getCredits } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listEvents } from "../../core/events.js";
import { hashRequest } from "../../core/idempotency.js";
import { listLedger } from "../../core/ledger.js";
import { putOfferGroup } from "../../core/offer-groups.js";
import { createHold, releaseHold } from "../../core/reservations.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "balance-cache" });
const NOW = "2026-03-10T12:00:00.000Z";
const DAY = 86_400_000;
const at = (ms: number) => new Date(t.clock.now().getTime() + ms).toISOString();

/** The instance under test: the shared context with its own cache (another instance is `t.ctx`, without one). */
function instance(): { ctx: Context; cache: BalanceCache } {
  const cache = createBalanceCache({ now: () => t.clock.now().getTime() });
  return { ctx: { ...t.ctx, balanceCache: cache }, cache };
}

const grant = (userId: string, tokens: number, expires: string | null) => createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens, expires });
const spend = (ctx: Context, userId: string, tokens: number) => consume(ctx, { userId, offerGroup: "calls", tokens });
const group = async (userId: string) => (await getCredits(t.ctx, userId)).groups.find((g) => g.offerGroup === "calls")!;

describe("a warm consumption", () => {
  it("makes exactly one DynamoDB request, its transaction; the first one reads", async () => {
    t.clock.set(NOW);
    await grant("c-warm", 100, at(30 * DAY));
    const { ctx } = instance();
    t.requests.reset();
    await spend(ctx, "c-warm", 1);
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    for (let i = 0; i < 5; i++) {
      t.requests.reset();
      const result = await consume(ctx, { userId: "c-warm", offerGroup: "calls", tokens: 2, idempotency: { scope: "consumptions", key: `w-${i}`, requestHash: hashRequest({ i }) } });
      expect(t.requests.byCommand).toEqual({ TransactWriteItemsCommand: 1 });
      expect(result.balance).toBe(99 - 2 * (i + 1));
    }
    expect(await group("c-warm")).toMatchObject({ balance: 89 });
  });

  it("reads again once its entry is older than its lifetime (a changed threshold arrives)", async () => {
    t.clock.set(NOW);
    await grant("c-ttl", 100, null);
    const { ctx } = instance();
    await spend(ctx, "c-ttl", 1);
    t.clock.advance(61_000);
    t.requests.reset();
    await spend(ctx, "c-ttl", 1);
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
  });
});

describe("a stale copy", () => {
  it("does not pass over a grant added since that expires first: the write fails its grant-set guard and the consumption draws it", async () => {
    t.clock.set(NOW);
    const later = await grant("c-new", 50, at(30 * DAY));
    const { ctx } = instance();
    await spend(ctx, "c-new", 1); // the copy: one grant
    const earlier = await grant("c-new", 10, at(2 * DAY)); // another instance adds a grant that expires first
    t.requests.reset();
    const result = await spend(ctx, "c-new", 4);
    expect(result.entry.draws).toEqual([{ grantId: earlier.grantId, tokens: 4 }]);
    // The failed condition returned the item: planned again on it, no read.
    expect(t.requests.byCommand).toEqual({ TransactWriteItemsCommand: 2 });
    expect(Object.fromEntries((await group("c-new")).grants.map((g) => [g.grantId, g.remaining]))).toEqual({ [earlier.grantId]: 6, [later.grantId]: 49 });
  });

  it("does not pass over tokens given back since to a grant that comes first: the write fails its passed-over guard", async () => {
    t.clock.set(NOW);
    const first = await grant("c-back", 10, at(5 * DAY));
    const second = await grant("c-back", 50, at(30 * DAY));
    const hold = await createHold(t.ctx, { userId: "c-back", offerGroup: "calls", tokens: 10 }); // holds all of `first`
    const { ctx } = instance();
    expect((await spend(ctx, "c-back", 1)).entry.draws).toEqual([{ grantId: second.grantId, tokens: 1 }]); // the copy: `first` at 0
    await releaseHold(t.ctx, { userId: "c-back", reservationId: hold.reservationId }); // another instance: `first` back to 10
    const result = await spend(ctx, "c-back", 3);
    expect(result.entry.draws).toEqual([{ grantId: first.grantId, tokens: 3 }]);
    expect(await group("c-back")).toMatchObject({ balance: 56, held: 0 });
  });

  it("that cannot cover a consumption is not the reason for a 402: a fresh read decides", async () => {
    t.clock.set(NOW);
    await grant("c-402", 5, null);
    const { ctx } = instance();
    await spend(ctx, "c-402", 1); // the copy: 4 left
    await grant("c-402", 100, null); // another instance's purchase
    t.requests.reset();
    expect((await spend(ctx, "c-402", 50)).balance).toBe(54);
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
  });

  it("that covers a consumption the item no longer can: refused on the item DynamoDB returned, never on the copy", async () => {
    t.clock.set(NOW);
    await grant("c-gone", 20, null);
    const { ctx } = instance();
    await spend(ctx, "c-gone", 1); // the copy: 19 left
    await spend(t.ctx, "c-gone", 15); // another instance spends: 4 left
    await expect(spend(ctx, "c-gone", 10)).rejects.toMatchObject({ code: "insufficient_credits", details: { balance: 4 } });
    expect(await group("c-gone")).toMatchObject({ balance: 4 });
  });

  it("keeps the low-balance crossing exact: one event when two instances cross together", async () => {
    t.clock.set(NOW);
    await putOfferGroup(t.ctx, "calls-lb", { lowBalanceThreshold: 50, expiryWarningDays: 7 });
    await createPromotionalGrant(t.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 100, expires: null });
    const a = instance();
    const b = instance();
    await consume(a.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 1 });
    await consume(b.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 1 });
    // Both copies say 98; each instance takes it to 58, then both cross at once.
    await consume(a.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 20 });
    await consume(b.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 20 });
    await Promise.all([consume(a.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 5 }), consume(b.ctx, { userId: "c-lb", offerGroup: "calls-lb", tokens: 5 })]);
    const entries = (await listLedger(t.ctx, "c-lb", { limit: 100 })).entries;
    expect(entries.reduce((sum, e) => sum + e.tokens, 0)).toBe(48);
    const events = (await listEvents(t.ctx, "c-lb", { limit: 100 })).events.filter((e) => e.type === "credits.low_balance");
    expect(events).toHaveLength(1);
  });
});
