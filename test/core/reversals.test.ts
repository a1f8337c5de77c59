/**
 * Reversals (core/reversals.ts) on DynamoDB Local: full and partial reversals, the counter
 * that never lets them exceed what was consumed (409, also under concurrency), the debt
 * part reversed first as debt (and a debt part a later grant repaid, reported), tokens
 * given back latest drawn first, into a grant that left the balance item, into a grant
 * that expired since (an `expire` entry at once), refused for a refunded order's grant,
 * idempotency keys, 404s, the entry found when its id runs ahead of its `createdAt`, and
 * the DynamoDB requests of a reversal. The ledger invariants (test/helpers/invariants.ts)
 * are checked after each test.
 *
 * The clock only moves forward in this file (ids are minted from it; see the last test).
 */
import { decodeTime } from "ulid";
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { hashRequest, type IdempotentRequest } from "../../core/idempotency.js";
import { newId } from "../../core/ids.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { refundOrder } from "../../core/refunds.js";
import { createHold } from "../../core/reservations.js";
import { reverseConsumption } from "../../core/reversals.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "reversals" });
const DAY = 86_400_000;

/** Moves the clock a day on (never back: ids are minted from it). */
function nextDay(): void {
  t.clock.advance(DAY);
}
const inDays = (days: number) => new Date(t.clock.now().getTime() + days * DAY).toISOString();

async function grant(userId: string, tokens: number, days: number | null = 60) {
  return createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens, expires: days === null ? null : inDays(days) });
}

async function group(userId: string) {
  return (await getCredits(t.ctx, userId)).groups.find((g) => g.offerGroup === "calls")!;
}

async function ledger(userId: string) {
  return (await listLedger(t.ctx, userId, { limit: 1000 })).entries;
}

async function counterOf(userId: string, entryId: string) {
  return (await ledger(userId)).find((e) => e.entryId === entryId)!.reversed;
}

const spend = (userId: string, tokens: number, allowOverdraft = false) => consume(t.ctx, { userId, offerGroup: "calls", tokens, allowOverdraft });
const reverse = (userId: string, entryId: string, tokens?: number, extra: { reason?: string; idempotency?: IdempotentRequest } = {}) =>
  reverseConsumption(t.ctx, { userId, entryId, tokens, ...extra });

function key(value: string, body: unknown): IdempotentRequest {
  return { scope: "consumptions.reverse", key: value, requestHash: hashRequest(body) };
}

describe("reversals", () => {
  it("reverses a whole consumption: a reverse entry back to its grant, linked to it, and the counter", async () => {
    nextDay();
    const g = await grant("r1", 100);
    const { entry: consumed } = await spend("r1", 30);
    const result = await reverse("r1", consumed.entryId, undefined, { reason: "the call failed" });
    expect(result.balance).toBe(100);
    expect(result.entry).toMatchObject({
      reason: "reverse",
      tokens: 30,
      draws: [{ grantId: g.grantId, tokens: 30 }],
      reversesEntryId: consumed.entryId,
      metadata: { reason: "the call failed", reversed: 30 },
    });
    expect(await group("r1")).toMatchObject({ balance: 100, debt: 0 });
    expect(await counterOf("r1", consumed.entryId)).toBe(30);
    expect((await ledger("r1")).at(-1)).toEqual(result.entry);
  });

  it("reverses in parts up to the whole, then refuses a third with 409 and writes nothing", async () => {
    nextDay();
    await grant("r2", 100);
    const { entry: consumed } = await spend("r2", 30);
    expect((await reverse("r2", consumed.entryId, 10)).balance).toBe(80);
    expect((await reverse("r2", consumed.entryId, 20)).balance).toBe(100);
    const before = await ledger("r2");
    await expect(reverse("r2", consumed.entryId, 1)).rejects.toMatchObject({ code: "conflict", details: { entryId: consumed.entryId, left: 0 } });
    await expect(reverse("r2", consumed.entryId)).rejects.toMatchObject({ code: "conflict", details: { left: 0 } });
    expect(await ledger("r2")).toEqual(before);
    expect(await counterOf("r2", consumed.entryId)).toBe(30);
  });

  it("refuses a reversal past the consumed amount with 409 (left in details) and writes nothing", async () => {
    nextDay();
    await grant("r3", 100);
    const { entry: consumed } = await spend("r3", 30);
    const before = await ledger("r3");
    await expect(reverse("r3", consumed.entryId, 31)).rejects.toMatchObject({ code: "conflict", details: { left: 30, requested: 31 } });
    expect(await ledger("r3")).toEqual(before);
    expect(await group("r3")).toMatchObject({ balance: 70 });
    expect(await counterOf("r3", consumed.entryId)).toBeUndefined();
    // Partly reversed: what is left is the limit.
    await reverse("r3", consumed.entryId, 25);
    await expect(reverse("r3", consumed.entryId, 6)).rejects.toMatchObject({ code: "conflict", details: { left: 5 } });
  });

  it("refuses bad tokens with a validation error", async () => {
    nextDay();
    await grant("r4", 10);
    const { entry: consumed } = await spend("r4", 5);
    for (const tokens of [0, -1, 1.5, Number.NaN]) await expect(reverse("r4", consumed.entryId, tokens)).rejects.toMatchObject({ code: "validation_error" });
    await expect(reverse("r4", consumed.entryId, 1, { reason: "x".repeat(501) })).rejects.toMatchObject({ code: "validation_error" });
  });

  it("gives back to the grants drawn, latest drawn first", async () => {
    nextDay();
    const soon = await grant("r5", 10, 20);
    const late = await grant("r5", 100, 60);
    const { entry: consumed } = await spend("r5", 30);
    expect(consumed.draws).toEqual([
      { grantId: soon.grantId, tokens: 10 },
      { grantId: late.grantId, tokens: 20 },
    ]);
    const result = await reverse("r5", consumed.entryId, 25);
    expect(result.entry.draws).toEqual([
      { grantId: late.grantId, tokens: 20 },
      { grantId: soon.grantId, tokens: 5 },
    ]);
    // The rest of it goes to the earliest drawn grant.
    expect((await reverse("r5", consumed.entryId)).entry.draws).toEqual([{ grantId: soon.grantId, tokens: 5 }]);
    const grants = (await group("r5")).grants;
    expect(grants.map((g) => [g.grantId, g.remaining])).toEqual([
      [soon.grantId, 10],
      [late.grantId, 100],
    ]);
  });

  it("reverses the part that went into debt first, as debt, then re-adds the grant that left", async () => {
    nextDay();
    const g = await grant("r6", 10);
    const { entry: consumed } = await spend("r6", 25, true);
    expect(consumed).toMatchObject({ tokens: -25, debt: 15 });
    expect(await group("r6")).toMatchObject({ balance: -15, debt: 15, grants: [] });
    const result = await reverse("r6", consumed.entryId, 20);
    expect(result.entry).toMatchObject({ tokens: 20, debtRepaid: 15, draws: [{ grantId: g.grantId, tokens: 5 }] });
    expect(await group("r6")).toMatchObject({ balance: 5, debt: 0, grants: [expect.objectContaining({ grantId: g.grantId, remaining: 5 })] });
  });

  it("reports a debt part a later grant repaid (debtSettled) and gives nothing for it", async () => {
    nextDay();
    const { entry: consumed } = await spend("r7", 10, true);
    await grant("r7", 50); // repays the debt of 10: remaining 40
    const result = await reverse("r7", consumed.entryId);
    expect(result.entry).toMatchObject({ tokens: 0, draws: [], metadata: { reversed: 10, debtSettled: 10 } });
    expect(result.balance).toBe(40);
    expect(await group("r7")).toMatchObject({ balance: 40, debt: 0 });
    expect(await counterOf("r7", consumed.entryId)).toBe(10);
  });

  it("gives a consumption back to a grant it exhausted, which comes back into the balance item", async () => {
    nextDay();
    const g = await grant("r8", 10);
    const { entry: consumed } = await spend("r8", 10);
    expect((await group("r8")).grants).toEqual([]);
    t.requests.reset();
    expect((await reverse("r8", consumed.entryId, 4)).balance).toBe(4);
    // The grant's facts come from its grant item: one BatchGetItem more (a promotional grant has no order to read).
    expect(t.requests.byCommand).toEqual({ GetItemCommand: 1, QueryCommand: 1, BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    expect((await group("r8")).grants).toEqual([expect.objectContaining({ grantId: g.grantId, remaining: 4, tokens: 10 })]);
    // It can be spent again, and reversed again.
    const { entry: again } = await spend("r8", 4);
    await reverse("r8", again.entryId);
    expect(await group("r8")).toMatchObject({ balance: 4 });
  });

  it("expires at once the tokens given back to a grant that expired since", async () => {
    nextDay();
    const soon = await grant("r9", 20, 5);
    await grant("r9", 100, 60);
    const { entry: consumed } = await spend("r9", 15);
    expect(consumed.draws).toEqual([{ grantId: soon.grantId, tokens: 15 }]);
    t.clock.advance(6 * DAY);
    const result = await reverse("r9", consumed.entryId);
    expect(result.entry).toMatchObject({ reason: "reverse", tokens: 15, draws: [{ grantId: soon.grantId, tokens: 15 }] });
    expect(result.balance).toBe(100);
    const tail = (await ledger("r9")).slice(-3).map((e) => [e.reason, e.tokens, e.reversesEntryId]);
    // The grant's own expiry (its 5 left) first, then the reversal and its expire entry.
    expect(tail).toEqual([
      ["expire", -5, undefined],
      ["reverse", 15, consumed.entryId],
      ["expire", -15, consumed.entryId],
    ]);
    expect(await group("r9")).toMatchObject({ balance: 100 });
  });

  it("refuses to give back to the grant of a refunded order: nothing moves, the counter does", async () => {
    nextDay();
    await upsertOffer(t.ctx, "pack-100", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "r10", offerId: "pack-100" });
    await confirmManualOrder(t.ctx, "r10", order.orderId);
    const { entry: consumed } = await spend("r10", 30);
    await refundOrder(t.ctx, { userId: "r10", orderId: order.orderId, mode: "unused" });
    expect(await group("r10")).toMatchObject({ balance: 0 });
    const result = await reverse("r10", consumed.entryId);
    expect(result.entry).toMatchObject({ tokens: 0, draws: [], metadata: { reversed: 30, refused: 30 } });
    expect(await group("r10")).toMatchObject({ balance: 0, grants: [] });
    expect(await counterOf("r10", consumed.entryId)).toBe(30);
  });

  it("lets exactly as many concurrent reversals through as the entry consumed", async () => {
    nextDay();
    await grant("r11", 100);
    const { entry: consumed } = await spend("r11", 4);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => reverse("r11", consumed.entryId, 1)));
    const won = outcomes.filter((o) => o.status === "fulfilled");
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(won).toHaveLength(4);
    expect(lost.map((o) => o.reason.code)).toEqual(["conflict", "conflict"]);
    expect(await counterOf("r11", consumed.entryId)).toBe(4);
    expect(await group("r11")).toMatchObject({ balance: 100 });
    expect((await ledger("r11")).filter((e) => e.reason === "reverse")).toHaveLength(4);
  });

  // Another reversal of the same entry commits between this one's reads, or between its
  // reads and its transaction: this one answers from what is left (409), never a 5xx.
  for (const [between, command] of [
    ["between its reads", "GetItemCommand"],
    ["before its transaction", "TransactWriteItemsCommand"],
  ] as const) {
    it(`refuses, from what is left, a reversal when another commits ${between}`, async () => {
      nextDay();
      const userId = `r16-${command}`;
      await grant(userId, 100);
      const { entry: consumed } = await spend(userId, 4);
      let armed = true;
      t.client.middlewareStack.add(
        (next, context) => async (args) => {
          if (armed && context.commandName === command) {
            armed = false;
            await reverse(userId, consumed.entryId, 3);
          }
          return next(args);
        },
        { step: "initialize", name: "interleaveReversal" },
      );
      try {
        await expect(reverse(userId, consumed.entryId, 2)).rejects.toMatchObject({ code: "conflict", details: { left: 1 } });
      } finally {
        t.client.middlewareStack.remove("interleaveReversal");
      }
      expect(armed).toBe(false);
      expect(await counterOf(userId, consumed.entryId)).toBe(3);
      expect(await group(userId)).toMatchObject({ balance: 99 });
    });
  }

  it("answers a repeated key with the stored answer, and refuses the key with another body", async () => {
    nextDay();
    await grant("r12", 100);
    const { entry: consumed } = await spend("r12", 30);
    const body = { entryId: consumed.entryId, tokens: 10 };
    const first = await reverse("r12", consumed.entryId, 10, { idempotency: key("k1", body) });
    expect(await reverse("r12", consumed.entryId, 10, { idempotency: key("k1", body) })).toEqual(first);
    await expect(reverse("r12", consumed.entryId, 11, { idempotency: key("k1", { ...body, tokens: 11 }) })).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect(await counterOf("r12", consumed.entryId)).toBe(10);
    // A full reversal under a key, repeated once nothing is left: the stored answer, not a 409.
    const whole = await reverse("r12", consumed.entryId, undefined, { idempotency: key("k2", { entryId: consumed.entryId }) });
    expect(whole.entry.tokens).toBe(20);
    expect(await reverse("r12", consumed.entryId, undefined, { idempotency: key("k2", { entryId: consumed.entryId }) })).toEqual(whole);
    // A refusal is stored under its key too.
    await expect(reverse("r12", consumed.entryId, 1, { idempotency: key("k3", { tokens: 1 }) })).rejects.toMatchObject({ code: "conflict" });
    await expect(reverse("r12", consumed.entryId, 1, { idempotency: key("k3", { tokens: 1 }) })).rejects.toMatchObject({ code: "conflict" });
    expect(await group("r12")).toMatchObject({ balance: 100 });
  });

  it("answers 404 for an entry that is not a consume, an unknown id, or no id at all", async () => {
    nextDay();
    await grant("r13", 100);
    const hold = await createHold(t.ctx, { userId: "r13", offerGroup: "calls", tokens: 5 });
    const entries = await ledger("r13");
    const adjust = entries.find((e) => e.reason === "adjust")!;
    const held = entries.find((e) => e.reason === "hold" && e.reservationId === hold.reservationId)!;
    for (const entryId of [adjust.entryId, held.entryId, newId(t.clock.now()), "not-an-id"]) {
      await expect(reverse("r13", entryId)).rejects.toMatchObject({ code: "not_found", details: { consumption: entryId } });
    }
    // Another user's consumption is not found either.
    const { entry: other } = await spend("r13", 1);
    await expect(reverse("someone-else", other.entryId)).rejects.toMatchObject({ code: "not_found" });
  });

  it("costs one Query, one GetItem and one transaction", async () => {
    nextDay();
    await grant("r14", 100);
    const { entry: consumed } = await spend("r14", 30);
    t.requests.reset();
    await reverse("r14", consumed.entryId, 10, { idempotency: key("k", { tokens: 10 }) });
    expect(t.requests.byCommand).toEqual({ GetItemCommand: 1, QueryCommand: 1, TransactWriteItemsCommand: 1 });
    console.log("reversal write units (with a key):", t.requests.unitsOf("TransactWriteItemsCommand"));
  });

  // Last: it mints an id a day ahead, so every id minted after it in this process runs ahead of its createdAt.
  it("finds an entry whose id runs ahead of its createdAt (ids minted after a later instant)", async () => {
    nextDay();
    await grant("r15", 100);
    newId(new Date(t.clock.now().getTime() + DAY));
    const { entry: consumed } = await spend("r15", 30);
    expect(decodeTime(consumed.entryId)).toBeGreaterThan(Date.parse(consumed.createdAt));
    t.requests.reset();
    expect((await reverse("r15", consumed.entryId, 30)).balance).toBe(100);
    // The GetItem at the id's instant misses; one Query backwards finds it.
    expect(t.requests.byCommand).toEqual({ GetItemCommand: 1, QueryCommand: 2, TransactWriteItemsCommand: 1 });
    expect(await counterOf("r15", consumed.entryId)).toBe(30);
  });
});
