/**
 * Expired holds of groups nobody touches, released by the daily job (core/daily-job.ts,
 * hold-expiry pass) found on the work index (core/rules/work-index.ts `holdExpiryKeys`,
 * derived by core/db/balance.ts), on DynamoDB Local: the balance item's index keys follow
 * every write that changes its holds (hold, commit, release, a consumption or a credits
 * read releasing expired ones, a refund writing the item whole) and go with the last
 * hold; the job releases what has expired (status `expired`, ledger `release`, the tokens
 * back), keeps what has not, releases nothing twice when a request or another run goes
 * first, releases 25 holds of one group in batches, and reads the index, never a scan.
 * The ledger invariants (holds included) are checked after each test.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { describe, expect, it } from "vitest";
import { readBalance } from "../../core/balances.js";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { ABANDONED_ORDERS_PASS } from "../../core/abandoned-orders.js";
import { EXPIRY_PASS, HOLD_EXPIRY_PASS, runDailyJob } from "../../core/daily-job.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { refundOrder } from "../../core/refunds.js";
import { commitHold, createHold, EXPIRED_HOLDS_PER_WRITE, listHolds, releaseHold, type Reservation } from "../../core/reservations.js";
import { sortBoundAfter } from "../../core/rules/work-index.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "hold-expiry-job" });

const grant = (userId: string, tokens: number) => createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens, expires: null });
const hold = (userId: string, tokens: number, ttlSeconds: number) => createHold(t.ctx, { userId, offerGroup: "calls", tokens, ttlSeconds });

/** The balance item as stored (no request through the code under test, which would release expired holds). */
async function stored(userId: string): Promise<Record<string, any>> {
  const key = t.ctx.db.entities.balance.get({ userId, offerGroup: "calls" }).params().Key as Record<string, string>;
  const { Item } = await t.client.send(new GetItemCommand({ TableName: t.tableName, Key: marshall(key), ConsistentRead: true }));
  return unmarshall(Item!);
}

/**
 * Asserts the balance item is on the work index under `earliest` (the UTC day and the
 * instant of its earliest live hold), and that the index Query the job sends finds it
 * there once due; with `earliest` undefined, that it carries no work-index key at all.
 */
async function expectIndexedAt(userId: string, earliest: string | undefined): Promise<void> {
  const item = await stored(userId);
  if (earliest === undefined) {
    expect(item.liveHolds ?? []).toEqual([]);
    for (const attribute of ["holdExpiryBucket", "holdExpirySort", "gsi1pk", "gsi1sk"]) expect(item[attribute], attribute).toBeUndefined();
    return;
  }
  expect(item.holdExpiryBucket).toMatch(new RegExp(`^${earliest.slice(0, 10)}#[0-7]$`));
  expect(item.holdExpirySort).toBe(`${earliest}#${userId}#calls`);
  expect(item.gsi1pk).toContain(item.holdExpiryBucket);
  expect(item.gsi1sk).toContain(item.holdExpirySort);
  const due = await t.ctx.db.entities.balance.query
    .byHoldExpiry({ holdExpiryBucket: item.holdExpiryBucket })
    .lt({ holdExpirySort: sortBoundAfter(new Date(earliest)) })
    .go({ pages: "all" });
  expect(due.data.map((entry) => entry.userId)).toContain(userId);
}

/** The user's ledger entries of reservation `r`, as [reason, tokens]. */
async function entriesOf(userId: string, r: Reservation): Promise<Array<[string, number]>> {
  const { entries } = await listLedger(t.ctx, userId, { limit: 1000 });
  return entries.filter((entry) => entry.reservationId === r.reservationId).map((entry) => [entry.reason, entry.tokens]);
}

async function statusOf(userId: string, r: Reservation): Promise<string | undefined> {
  return (await listHolds(t.ctx, userId, { limit: 1000 })).reservations.find((item) => item.reservationId === r.reservationId)?.status;
}

const heldOf = (state: Awaited<ReturnType<typeof readBalance>>) => (state.holds ?? []).reduce((total, h) => total + h.tokens, 0);

describe("the balance item's work-index keys", () => {
  it("follow the earliest live hold through holds, a guarded consumption, a commit, a consumption releasing an expired hold, and a release", async () => {
    t.clock.set("2026-05-01T10:00:00.000Z");
    await grant("k1", 100);
    await expectIndexedAt("k1", undefined);
    const a = await hold("k1", 10, 600);
    await expectIndexedAt("k1", a.expires);
    const b = await hold("k1", 10, 60);
    await expectIndexedAt("k1", b.expires); // earlier than a's
    const c = await hold("k1", 10, 3600);
    await expectIndexedAt("k1", b.expires);
    await consume(t.ctx, { userId: "k1", offerGroup: "calls", tokens: 5 }); // touches no hold
    await expectIndexedAt("k1", b.expires);
    await commitHold(t.ctx, { userId: "k1", reservationId: b.reservationId, tokens: 5 });
    await expectIndexedAt("k1", a.expires);
    t.clock.set("2026-05-01T10:11:00.000Z"); // a expired, c live
    await consume(t.ctx, { userId: "k1", offerGroup: "calls", tokens: 1 }); // releases a in its transaction
    expect(await statusOf("k1", a)).toBe("expired");
    await expectIndexedAt("k1", c.expires);
    await releaseHold(t.ctx, { userId: "k1", reservationId: c.reservationId });
    await expectIndexedAt("k1", undefined);
  });

  it("stay through a refund that writes the item whole, and go when a credits read releases the expired hold", async () => {
    t.clock.set("2026-05-02T10:00:00.000Z");
    await upsertOffer(t.ctx, "pack-100", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "k2", offerId: "pack-100" });
    await confirmManualOrder(t.ctx, "k2", order.orderId);
    await grant("k2", 50);
    const r = await hold("k2", 30, 120);
    await refundOrder(t.ctx, { userId: "k2", orderId: order.orderId, mode: "unused" });
    await expectIndexedAt("k2", r.expires);
    t.clock.set("2026-05-02T10:03:00.000Z");
    expect((await getCredits(t.ctx, "k2")).groups[0]).toMatchObject({ held: 0 });
    expect(await statusOf("k2", r)).toBe("expired");
    await expectIndexedAt("k2", undefined);
  });
});

describe("the daily job's hold-expiry pass", () => {
  it("releases the expired holds of groups nobody touched and keeps the live ones indexed, then releases those when they expire", async () => {
    // The watermarks of a job that ran the day before (a first run would walk 35 days back).
    for (const [job, doneBefore] of [[EXPIRY_PASS, "2026-05-31"], [HOLD_EXPIRY_PASS, "2026-05-31"], [ABANDONED_ORDERS_PASS, "2026-05-24"]] as const) {
      await t.ctx.db.entities.jobState.put({ job, doneBefore, updatedAt: "2026-05-31T00:00:00.000Z" }).go();
    }
    t.clock.set("2026-06-01T10:00:00.000Z");
    await grant("j1", 100);
    await grant("j2", 10);
    const x = await hold("j1", 30, 60);
    const y = await hold("j1", 20, 86_400);
    const z = await hold("j2", 5, 86_400);

    t.clock.set("2026-06-01T12:00:00.000Z");
    const first = await runDailyJob(t.ctx);
    expect(first).toMatchObject({ holdsReleased: 1, complete: true });
    expect(await statusOf("j1", x)).toBe("expired");
    expect(await entriesOf("j1", x)).toEqual([["hold", -30], ["release", 30]]);
    const j1 = await readBalance(t.ctx, "j1", "calls");
    expect({ balance: j1.balance, held: heldOf(j1), holds: j1.holds!.map((h) => h.reservationId) }).toEqual({ balance: 80, held: 20, holds: [y.reservationId] });
    await expectIndexedAt("j1", y.expires); // moved on to the next hold's expiry (the next day)
    await expectIndexedAt("j2", z.expires);
    expect(await statusOf("j2", z)).toBe("held");

    t.clock.set(y.expires); // expires <= now is due
    expect(await runDailyJob(t.ctx)).toMatchObject({ holdsReleased: 2, complete: true });
    for (const [userId, r, balance] of [["j1", y, 100], ["j2", z, 10]] as const) {
      expect(await statusOf(userId, r)).toBe("expired");
      const state = await readBalance(t.ctx, userId, "calls");
      expect({ balance: state.balance, held: heldOf(state) }).toEqual({ balance, held: 0 });
      await expectIndexedAt(userId, undefined);
    }
    expect(await runDailyJob(t.ctx)).toMatchObject({ holdsReleased: 0 });
  });

  it("releases nothing twice: not a hold a request released first, nor under two runs and a credits read at once", async () => {
    t.clock.set("2026-06-03T10:00:00.000Z");
    await grant("j3", 100);
    await grant("j4", 100);
    const touched = await hold("j3", 10, 60);
    const many: Reservation[] = [];
    for (let i = 0; i < 12; i++) many.push(await hold("j4", 1, 60));
    t.clock.set("2026-06-03T11:00:00.000Z");
    await consume(t.ctx, { userId: "j3", offerGroup: "calls", tokens: 1 }); // releases `touched` first

    const [one, two] = await Promise.all([runDailyJob(t.ctx), runDailyJob(t.ctx), getCredits(t.ctx, "j4")]);
    expect(one.holdsReleased + two.holdsReleased).toBeLessThanOrEqual(12);
    expect(await entriesOf("j3", touched)).toEqual([["hold", -10], ["release", 10]]);
    for (const r of many) {
      expect(await statusOf("j4", r)).toBe("expired");
      expect(await entriesOf("j4", r)).toEqual([["hold", -1], ["release", 1]]);
    }
    for (const userId of ["j3", "j4"]) await expectIndexedAt(userId, undefined);
    expect((await readBalance(t.ctx, "j4", "calls")).balance).toBe(100);
  });

  it(`releases 25 expired holds of one group, ${EXPIRED_HOLDS_PER_WRITE} a transaction, reading the work index and never scanning`, async () => {
    // The same day as the runs before (the watermarks are at today): this run and the idle one walk the same days.
    t.clock.set("2026-06-03T13:00:00.000Z");
    await grant("j5", 100);
    const holds: Reservation[] = [];
    for (let i = 0; i < 25; i++) holds.push(await hold("j5", 2, 60 + i));

    t.clock.set("2026-06-03T14:00:00.000Z");
    t.requests.reset();
    const summary = await runDailyJob(t.ctx);
    const withWork = { ...t.requests.byCommand };
    t.requests.reset();
    await runDailyJob(t.ctx); // the same days, nothing left to do
    const idle = { ...t.requests.byCommand };
    console.log("daily job with 25 expired holds in one group:", { withWork, idle });

    expect(summary).toMatchObject({ holdsReleased: 25, complete: true });
    expect(withWork.ScanCommand).toBeUndefined();
    expect(idle.ScanCommand).toBeUndefined();
    // Beyond a run with nothing to do: per batch of 10 (10, 10, 5) one read and one transaction; no more index Queries.
    const extra = Object.fromEntries(Object.keys(withWork).map((command) => [command, withWork[command]! - (idle[command] ?? 0)]).filter(([, n]) => n !== 0));
    expect(extra).toEqual({ GetItemCommand: 3, TransactWriteItemsCommand: 3 });

    for (const r of holds) {
      expect(await statusOf("j5", r)).toBe("expired");
      expect(await entriesOf("j5", r)).toEqual([["hold", -2], ["release", 2]]);
    }
    const state = await readBalance(t.ctx, "j5", "calls");
    expect({ balance: state.balance, held: heldOf(state) }).toEqual({ balance: 100, held: 0 });
    await expectIndexedAt("j5", undefined);
  });
});
