/**
 * Expired holds of groups nobody touches, released by the daily job (core/daily-job.ts,
 * hold-expiry pass) found on the work index (core/rules/work-index.ts `holdExpiryKeys`, on
 * the reservation items, core/db/reservation.ts), on DynamoDB Local: a held reservation's
 * item carries the index keys of its hold's expiry, the update that ends it (commit,
 * release, expiry by a consumption, a credits read or the job) removes them, and the
 * balance item never carries any (its writes write no index copy: measured with the
 * capacity meter); the job releases what has expired (status `expired`, ledger `release`,
 * the tokens back), keeps what has not, releases nothing twice when a request or another
 * run goes first, releases 25 holds of one group in batches reading the index, never a
 * scan, and reports (without touching it) a reservation held on its item but live on no
 * balance item. The ledger invariants (holds included) are checked after each test.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { describe, expect, it } from "vitest";
import { readBalance } from "../../core/balances.js";
import { consume } from "../../core/consumption.js";
import { silentLogger, type Context } from "../../core/context.js";
import { getCredits } from "../../core/credits.js";
import { ABANDONED_ORDERS_PASS } from "../../core/abandoned-orders.js";
import { EXPIRY_PASS, HOLD_EXPIRY_PASS, runDailyJob } from "../../core/daily-job.js";
import { createDynamoClient } from "../../core/db/client.js";
import { createDb } from "../../core/db/service.js";
import { TABLE } from "../../core/db/table.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { refundOrder } from "../../core/refunds.js";
import { commitHold, createHold, EXPIRED_HOLDS_PER_WRITE, releaseHold, type Reservation } from "../../core/reservations.js";
import { DAY_SHARDS, holdExpiryKeys, shardOf, sortBoundAfter } from "../../core/rules/work-index.js";
import { itemSize, meterCapacity, type MeteredRequest } from "../helpers/capacity-meter.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "hold-expiry-job" });

const grant = (userId: string, tokens: number) => createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens, expires: null });
const hold = (userId: string, tokens: number, ttlSeconds: number) => createHold(t.ctx, { userId, offerGroup: "calls", tokens, ttlSeconds });

/** An item as stored, read raw (no request through the code under test, which would release expired holds). */
async function raw(key: Record<string, unknown>): Promise<Record<string, any>> {
  const { Item } = await t.client.send(new GetItemCommand({ TableName: t.tableName, Key: marshall(key), ConsistentRead: true }));
  return unmarshall(Item!);
}
const storedBalance = (userId: string) => raw(t.ctx.db.entities.balance.get({ userId, offerGroup: "calls" }).params().Key);
const storedReservation = (userId: string, r: Reservation) => raw(t.ctx.db.entities.reservation.get({ userId, reservationId: r.reservationId }).params().Key);

const INDEX_ATTRIBUTES = ["holdExpiryBucket", "holdExpirySort", TABLE.workIndex.partitionKey, TABLE.workIndex.sortKey];

/** Asserts the group's balance item carries no work-index key (it is never in gsi1). */
async function expectBalanceUnindexed(userId: string): Promise<void> {
  const item = await storedBalance(userId);
  for (const attribute of INDEX_ATTRIBUTES) expect(item[attribute], `balance ${attribute}`).toBeUndefined();
}

/**
 * Asserts reservation `r` is on the work index under its hold's expiry (UTC day, its own
 * shard, the instant), still `held`, and that the index Query the job sends finds it once
 * due and not a millisecond before.
 */
async function expectIndexed(userId: string, r: Reservation): Promise<void> {
  const item = await storedReservation(userId, r);
  expect(item.status).toBe("held");
  expect(item.holdExpiryBucket).toBe(`${r.expires.slice(0, 10)}#${shardOf(r.reservationId, DAY_SHARDS)}`);
  expect(item.holdExpirySort).toBe(`${r.expires}#${userId}#calls#${r.reservationId}`);
  expect(item.gsi1pk).toContain(item.holdExpiryBucket);
  expect(item.gsi1sk).toContain(item.holdExpirySort);
  const dueAt = async (at: Date) =>
    (await t.ctx.db.entities.reservation.query.byHoldExpiry({ holdExpiryBucket: item.holdExpiryBucket }).lt({ holdExpirySort: sortBoundAfter(at) }).go({ pages: "all" })).data.map(
      (entry) => entry.reservationId,
    );
  expect(await dueAt(new Date(r.expires))).toContain(r.reservationId);
  expect(await dueAt(new Date(Date.parse(r.expires) - 1))).not.toContain(r.reservationId);
}

/** Asserts reservation `r` has ended (`status`) and left the work index: no key at all. */
async function expectEnded(userId: string, r: Reservation, status: "committed" | "released" | "expired"): Promise<void> {
  const item = await storedReservation(userId, r);
  expect(item.status).toBe(status);
  for (const attribute of INDEX_ATTRIBUTES) expect(item[attribute], `reservation ${attribute}`).toBeUndefined();
}

/** The user's ledger entries of reservation `r`, as [reason, tokens]. */
async function entriesOf(userId: string, r: Reservation): Promise<Array<[string, number]>> {
  const { entries } = await listLedger(t.ctx, userId, { limit: 1000 });
  return entries.filter((entry) => entry.reservationId === r.reservationId).map((entry) => [entry.reason, entry.tokens]);
}

const heldOf = (state: Awaited<ReturnType<typeof readBalance>>) => (state.holds ?? []).reduce((total, h) => total + h.tokens, 0);

describe("the work-index keys of holds", () => {
  it("are on each held reservation, off each ended one, never on the balance item: through holds, a consumption, a commit, a consumption releasing an expired hold, and a release", async () => {
    t.clock.set("2026-05-01T10:00:00.000Z");
    await grant("k1", 100);
    await expectBalanceUnindexed("k1");
    const a = await hold("k1", 10, 600);
    await expectIndexed("k1", a);
    await expectBalanceUnindexed("k1");
    const b = await hold("k1", 10, 60);
    const c = await hold("k1", 10, 3600);
    for (const r of [a, b, c]) await expectIndexed("k1", r);
    await expectBalanceUnindexed("k1");
    await consume(t.ctx, { userId: "k1", offerGroup: "calls", tokens: 5 }); // touches no hold
    for (const r of [a, b, c]) await expectIndexed("k1", r);
    await expectBalanceUnindexed("k1");
    await commitHold(t.ctx, { userId: "k1", reservationId: b.reservationId, tokens: 5 });
    await expectEnded("k1", b, "committed");
    for (const r of [a, c]) await expectIndexed("k1", r);
    await expectBalanceUnindexed("k1");
    t.clock.set("2026-05-01T10:11:00.000Z"); // a expired, c live
    await consume(t.ctx, { userId: "k1", offerGroup: "calls", tokens: 1 }); // releases a in its transaction
    await expectEnded("k1", a, "expired");
    await expectIndexed("k1", c);
    await expectBalanceUnindexed("k1");
    await releaseHold(t.ctx, { userId: "k1", reservationId: c.reservationId });
    await expectEnded("k1", c, "released");
    await expectBalanceUnindexed("k1");
  });

  it("stay through a refund that writes the balance item whole, and go with a commit refused past expiry and with a credits read releasing an expired hold", async () => {
    t.clock.set("2026-05-02T10:00:00.000Z");
    await upsertOffer(t.ctx, "pack-100", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "k2", offerId: "pack-100" });
    await confirmManualOrder(t.ctx, "k2", order.orderId);
    await grant("k2", 50);
    const r = await hold("k2", 30, 120);
    const r2 = await hold("k2", 10, 300);
    await refundOrder(t.ctx, { userId: "k2", orderId: order.orderId, mode: "unused" });
    for (const held of [r, r2]) await expectIndexed("k2", held);
    await expectBalanceUnindexed("k2");
    t.clock.set("2026-05-02T10:03:00.000Z");
    await expect(commitHold(t.ctx, { userId: "k2", reservationId: r.reservationId, tokens: 1 })).rejects.toMatchObject({ code: "reservation_expired" });
    await expectEnded("k2", r, "expired");
    await expectIndexed("k2", r2);
    t.clock.set("2026-05-02T10:06:00.000Z");
    expect((await getCredits(t.ctx, "k2")).groups[0]).toMatchObject({ held: 0 });
    await expectEnded("k2", r2, "expired");
    await expectBalanceUnindexed("k2");
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
    expect(first).toMatchObject({ holdsReleased: 1, staleHoldEntries: 0, complete: true });
    await expectEnded("j1", x, "expired");
    expect(await entriesOf("j1", x)).toEqual([["hold", -30], ["release", 30]]);
    const j1 = await readBalance(t.ctx, "j1", "calls");
    expect({ balance: j1.balance, held: heldOf(j1), holds: j1.holds!.map((h) => h.reservationId) }).toEqual({ balance: 80, held: 20, holds: [y.reservationId] });
    await expectIndexed("j1", y); // due the next day
    await expectIndexed("j2", z);

    t.clock.set(y.expires); // expires <= now is due
    expect(await runDailyJob(t.ctx)).toMatchObject({ holdsReleased: 2, staleHoldEntries: 0, complete: true });
    for (const [userId, r, balance] of [["j1", y, 100], ["j2", z, 10]] as const) {
      await expectEnded(userId, r, "expired");
      const state = await readBalance(t.ctx, userId, "calls");
      expect({ balance: state.balance, held: heldOf(state) }).toEqual({ balance, held: 0 });
      await expectBalanceUnindexed(userId);
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
    expect([one.staleHoldEntries, two.staleHoldEntries]).toEqual([0, 0]);
    await expectEnded("j3", touched, "expired");
    expect(await entriesOf("j3", touched)).toEqual([["hold", -10], ["release", 10]]);
    for (const r of many) {
      await expectEnded("j4", r, "expired");
      expect(await entriesOf("j4", r)).toEqual([["hold", -1], ["release", 1]]);
    }
    for (const userId of ["j3", "j4"]) await expectBalanceUnindexed(userId);
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

    expect(summary).toMatchObject({ holdsReleased: 25, staleHoldEntries: 0, complete: true });
    expect(withWork.ScanCommand).toBeUndefined();
    expect(idle.ScanCommand).toBeUndefined();
    // Beyond a run with nothing to do: per batch of 10 (10, 10, 5) one read and one transaction; no more index Queries.
    const extra = Object.fromEntries(Object.keys(withWork).map((command) => [command, withWork[command]! - (idle[command] ?? 0)]).filter(([, n]) => n !== 0));
    expect(extra).toEqual({ GetItemCommand: 3, TransactWriteItemsCommand: 3 });

    for (const r of holds) {
      await expectEnded("j5", r, "expired");
      expect(await entriesOf("j5", r)).toEqual([["hold", -2], ["release", 2]]);
    }
    const state = await readBalance(t.ctx, "j5", "calls");
    expect({ balance: state.balance, held: heldOf(state) }).toEqual({ balance: 100, held: 0 });
    await expectBalanceUnindexed("j5");
  });
});

describe("index entries the hold-expiry pass cannot release", () => {
  it("reports a reservation held on its item but live on no balance item, and passes over one the index still shows after it ended, releasing neither", async () => {
    for (const job of [EXPIRY_PASS, HOLD_EXPIRY_PASS, ABANDONED_ORDERS_PASS]) {
      await t.ctx.db.entities.jobState.put({ job, doneBefore: "2026-07-01", updatedAt: "2026-07-01T00:00:00.000Z" }).go();
    }
    t.clock.set("2026-07-01T10:00:00.000Z");
    // Written directly, as no code path leaves them: `ghost` is the bug the pass reports (its item
    // held, no balance item holding it); `gone` is how an eventually consistent index may still
    // show a reservation a request has just ended (its item `expired`, its keys not yet gone).
    const expires = "2026-07-01T09:00:00.000Z";
    const written = (["held", "expired"] as const).map((status, i) => ({
      userId: "s1",
      reservationId: `01JSTALE00000000000000000${i}`,
      offerGroup: "calls",
      tokens: 5,
      status,
      expires,
      draws: [],
      holdEntryId: `01JSTALEENTRY000000000000${i}`,
      createdAt: "2026-07-01T08:00:00.000Z",
      ...holdExpiryKeys("s1", "calls", `01JSTALE00000000000000000${i}`, expires),
    }));
    for (const item of written) await t.ctx.db.entities.reservation.create(item).go();
    const errors: unknown[][] = [];
    const ctx: Context = { ...t.ctx, logger: { ...silentLogger, error: (...args: unknown[]) => void errors.push(args) } };
    try {
      const summary = await runDailyJob(ctx);
      expect(summary).toMatchObject({ holdsReleased: 0, staleHoldEntries: 1, complete: true });
      expect(errors).toEqual([[expect.stringContaining("not live on its balance item"), { userId: "s1", offerGroup: "calls", reservationId: written[0]!.reservationId, expires }]]);
      for (const item of written) {
        const { holdEntryId: _entry, ...kept } = item;
        expect(await raw(t.ctx.db.entities.reservation.get(item).params().Key)).toMatchObject(kept); // left as it was
      }
      expect((await listLedger(t.ctx, "s1", { limit: 10 })).entries).toEqual([]);
    } finally {
      for (const item of written) await t.ctx.db.entities.reservation.delete(item).go();
    }
  });
});

describe("write units of holds and consumptions (capacity meter: ReturnConsumedCapacity INDEXES; transactions counted by AWS's rules)", () => {
  it("a consumption with a live hold writes no index copy; a hold puts its small reservation item in the index, its commit takes it out", async () => {
    const CONSUMPTIONS = 25; // each costs the same: more only lengthens the test
    t.clock.set("2026-08-01T10:00:00.000Z");
    const metered = createDynamoClient({ endpoint: t.endpoint });
    const meter = meterCapacity(metered, { inspect: t.client, keys: { key: [TABLE.partitionKey, TABLE.sortKey], index: [TABLE.workIndex.partitionKey, TABLE.workIndex.sortKey] } });
    const ctx: Context = { ...t.ctx, db: createDb(metered, t.tableName) };
    // A busy group: a full map of grants (core/rules/balance-layout.ts MAIN_GRANTS), each expiring.
    for (let i = 0; i < 10; i++) await createPromotionalGrant(ctx, { userId: "w1", offerGroup: "calls", tokens: 1000, expires: `2026-${String(9 + (i % 3)).padStart(2, "0")}-${String(10 + i).padStart(2, "0")}T00:00:00.000Z` });
    const writes = () => meter.take().filter((request) => request.kind === "write");
    const total = (requests: MeteredRequest[]) => ({
      requests: requests.length,
      units: requests.reduce((sum, r) => sum + r.units, 0),
      gsi1Units: requests.reduce((sum, r) => sum + r.indexUnits, 0),
      reported: requests.reduce((sum, r) => sum + r.reportedUnits, 0),
    });

    writes();
    const held = await createHold(ctx, { userId: "w1", offerGroup: "calls", tokens: 50, ttlSeconds: 3600 });
    const hold = total(writes());
    for (let i = 0; i < CONSUMPTIONS; i++) await consume(ctx, { userId: "w1", offerGroup: "calls", tokens: 1 });
    const consumptions = total(writes());
    const { Item } = await t.client.send(new GetItemCommand({ TableName: t.tableName, Key: marshall(t.ctx.db.entities.balance.get({ userId: "w1", offerGroup: "calls" }).params().Key), ConsistentRead: true }));
    const balanceBytes = itemSize(Item!);
    await commitHold(ctx, { userId: "w1", reservationId: held.reservationId, tokens: 40 });
    const commit = total(writes());
    console.log("write units with a live hold:", { balanceBytes, hold, consumptions, commit });

    expect(consumptions).toMatchObject({ requests: CONSUMPTIONS, gsi1Units: 0 });
    expect(hold).toMatchObject({ requests: 1, gsi1Units: 1 }); // the reservation item (< 1 KB) enters the index
    expect(commit).toMatchObject({ requests: 1, gsi1Units: 1 }); // and leaves it
    await expectEnded("w1", held, "committed");
    await expectBalanceUnindexed("w1");
  });
});
