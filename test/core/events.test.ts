/**
 * Events out (core/events.ts, core/bus/*) on DynamoDB Local: events written by real
 * operations are listed in the contract's shape, and published from the outbox to
 * EventBridge (the real `@aws-sdk/client-eventbridge`, against a local PutEvents stand-in)
 * at least once, and here, since nothing crashes between publishing and marking, exactly
 * once per event id, whatever fails on the way.
 */
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { consoleLine, createConsoleBus } from "../../core/bus/console.js";
import { MAX_ENTRIES_PER_PUT, source } from "../../core/bus/eventbridge.js";
import { listEvents, publishPending, type ServiceEvent } from "../../core/events.js";
import { OUTBOX_SHARDS } from "../../core/rules/work-index.js";
import { expireUser } from "../../core/expiry.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { ENTITY_ATTRIBUTE } from "../../functions/stream-filters.js";
import { useEventBridgeStandIn, type ReceivedEntry } from "../helpers/eventbridge-stand-in.js";
import { useIntegrationContext } from "../helpers/context.js";
import { anOffer } from "../helpers/factories.js";

const t = useIntegrationContext({ label: "events" });
const BUS = "user-credits-test-EventsBus";
const stand = useEventBridgeStandIn(BUS);
const eventBridge = stand.standIn;

/** Each test starts with an empty outbox (earlier tests' events published elsewhere) and a fresh call log. */
beforeEach(async () => {
  const sink = createConsoleBus(() => {});
  for (let pass = 0; pass < 20 && (await publishPending(t.ctx, sink)).published > 0; pass++);
  eventBridge.reset();
});

/** A user with two events: `order.paid` (manual order confirmed), then `credits.expired` (a promotional grant, a day later). */
async function userWithTwoEvents(userId: string): Promise<{ orderId: string; grantId: string }> {
  t.clock.set("2026-03-01T10:00:00.000Z");
  await upsertOffer(t.ctx, "pack", anOffer({ offerGroup: "calls", tokenCount: 100, cycle: "monthly" }));
  const { order } = await createOrder(t.ctx, { userId, offerId: "pack" });
  const promo = await createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens: 10, expires: "2026-03-02T10:00:00.000Z" });
  t.clock.set("2026-03-01T10:00:01.000Z");
  await confirmManualOrder(t.ctx, userId, order.orderId);
  t.clock.set("2026-03-03T00:00:00.000Z");
  expect(await expireUser(t.ctx, userId)).toHaveLength(1);
  return { orderId: order.orderId, grantId: promo.grantId };
}

async function eventsOf(userId: string): Promise<ServiceEvent[]> {
  return (await listEvents(t.ctx, userId, { limit: 100 })).events;
}

/** The ids of the events the outbox index lists, all shards. */
async function outboxIds(): Promise<string[]> {
  const ids: string[] = [];
  for (let shard = 0; shard < OUTBOX_SHARDS; shard++) {
    const { data } = await t.db.entities.event.query.outbox({ outboxBucket: String(shard) }).go({ pages: "all" });
    ids.push(...data.map((item) => item.eventId));
  }
  return ids.sort();
}

/** The entry the SDK sends for `event` (timestamps as epoch seconds, AWS JSON 1.1). */
function expectedEntry(event: ServiceEvent): ReceivedEntry {
  return { Source: "user-credits", DetailType: event.type, Detail: JSON.stringify(event), EventBusName: BUS, Time: Date.parse(event.createdAt) / 1000 };
}

/** How many times each event id reached the stand-in in an accepted entry. */
function deliveriesById(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const detail of eventBridge.deliveredDetails()) counts[detail.eventId as string] = (counts[detail.eventId as string] ?? 0) + 1;
  return counts;
}

describe("the events of real operations", () => {
  it("are listed oldest first in the contract's shape: order.paid, then credits.expired", async () => {
    const { orderId, grantId } = await userWithTwoEvents("ev-list");
    const ulid = expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(await eventsOf("ev-list")).toEqual([
      { eventId: ulid, type: "order.paid", userId: "ev-list", orderId, offerGroup: "calls", createdAt: "2026-03-01T10:00:01.000Z" },
      {
        eventId: ulid,
        type: "credits.expired",
        userId: "ev-list",
        offerGroup: "calls",
        grantId,
        balance: 100,
        expires: "2026-03-02T10:00:00.000Z",
        createdAt: "2026-03-03T00:00:00.000Z",
      },
    ]);
  });

  it("are the items whose ElectroDB entity attribute is `event` (what the stream filter matches), and only they", async () => {
    await userWithTwoEvents("ev-scan");
    const { Items = [] } = await t.client.send(new ScanCommand({ TableName: t.tableName, ConsistentRead: true }));
    const items = Items.map((item) => unmarshall(item));
    const ofUser = items.filter((item) => item.userId === "ev-scan");
    const kinds = new Set(ofUser.map((item) => item[ENTITY_ATTRIBUTE]));
    expect(kinds).toContain("event");
    expect(kinds.size).toBeGreaterThan(1); // orders, grants, balances, ledger entries too
    const events = ofUser.filter((item) => item[ENTITY_ATTRIBUTE] === "event");
    expect(events.map((item) => item.eventId).sort()).toEqual((await eventsOf("ev-scan")).map((e) => e.eventId).sort());
    for (const item of events) expect(item.type, JSON.stringify(item)).toMatch(/^(order|credits)\./);
  });
});

describe("publishing to EventBridge", () => {
  it("puts each event on the bus once: source user-credits, detail-type its type, detail the event; then the outbox is empty", async () => {
    await userWithTwoEvents("ev-pub");
    const events = await eventsOf("ev-pub");
    expect(await outboxIds()).toEqual(events.map((e) => e.eventId).sort());

    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 2, failed: 0 });
    expect(source).toBe("user-credits");
    expect(eventBridge.calls.every((call) => call.target === "AWSEvents.PutEvents" && call.status === 200)).toBe(true);
    expect(eventBridge.delivered).toHaveLength(2);
    expect(eventBridge.delivered).toEqual(expect.arrayContaining(events.map(expectedEntry)));
    expect(eventBridge.deliveredDetails()).toEqual(expect.arrayContaining(events as unknown as Array<Record<string, unknown>>));

    // Published events leave the outbox index, stay listed, and a second pass has nothing to do.
    expect(await outboxIds()).toEqual([]);
    expect(await eventsOf("ev-pub")).toEqual(events);
    const calls = eventBridge.calls.length;
    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 0, failed: 0 });
    expect(eventBridge.calls).toHaveLength(calls);
    const item = await t.db.entities.event.get({ userId: "ev-pub", eventId: events[0]!.eventId }).go({ consistent: true });
    expect(item.data).toMatchObject({ publishedAt: "2026-03-03T00:00:00.000Z" });
    expect(item.data).not.toHaveProperty("outboxBucket");
  });

  it("leaves the events in the outbox when PutEvents fails (HTTP 500), and the next pass delivers each once", async () => {
    await userWithTwoEvents("ev-500");
    const ids = (await eventsOf("ev-500")).map((e) => e.eventId).sort();
    eventBridge.failNext(1);

    // The pass's first call fails (the two events may share it or, from two outbox shards, not).
    const first = await publishPending(t.ctx, stand.bus);
    expect(first.failed).toBeGreaterThanOrEqual(1);
    expect(first.published + first.failed).toBe(2);
    expect(eventBridge.calls[0]).toMatchObject({ status: 500 });
    const left = await outboxIds();
    expect(left).toHaveLength(first.failed);
    expect(eventBridge.calls[0]!.entries.map((entry) => JSON.parse(entry.Detail!).eventId).sort()).toEqual(left);

    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: first.failed, failed: 0 });
    expect(await outboxIds()).toEqual([]);
    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 0, failed: 0 });
    expect(deliveriesById()).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
  });

  it("leaves an entry EventBridge rejected in the outbox, delivers it on the next pass, and never resends its accepted neighbours", async () => {
    await userWithTwoEvents("ev-reject");
    const events = await eventsOf("ev-reject");
    const expired = events.find((e) => e.type === "credits.expired")!;
    eventBridge.rejectNext((entry) => entry.DetailType === "credits.expired");

    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 1, failed: 1 });
    expect(await outboxIds()).toEqual([expired.eventId]);
    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 1, failed: 0 });
    expect(await outboxIds()).toEqual([]);
    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 0, failed: 0 });

    // The rejected entry reached the stand-in twice (refused, then accepted); each id was accepted once.
    expect(eventBridge.calls.flatMap((call) => call.entries).filter((entry) => entry.Detail === JSON.stringify(expired))).toHaveLength(2);
    expect(deliveriesById()).toEqual(Object.fromEntries(events.map((e) => [e.eventId, 1])));
  });

  it("does not publish again an event the index still lists after it was published (index lag)", async () => {
    await userWithTwoEvents("ev-lag");
    const [first] = await eventsOf("ev-lag");
    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 2, failed: 0 });
    // As the eventually consistent index may look for a moment: published, yet still listed.
    const stale = { outboxBucket: "0", outboxSort: `${first!.eventId}#ev-lag` };
    await t.db.entities.event.patch({ userId: "ev-lag", eventId: first!.eventId }).set(stale).go();
    try {
      expect(await outboxIds()).toEqual([first!.eventId]);
      const calls = eventBridge.calls.length;
      expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 0, failed: 0 });
      expect(eventBridge.calls).toHaveLength(calls);
    } finally {
      await t.db.entities.event.patch({ userId: "ev-lag", eventId: first!.eventId }).remove(["outboxBucket", "outboxSort"]).go();
    }
  });

  it("sends at most 10 entries per PutEvents call", async () => {
    t.clock.set("2026-04-01T00:00:00.000Z");
    for (let i = 0; i < 23; i++) {
      await createPromotionalGrant(t.ctx, { userId: "ev-many", offerGroup: "calls", tokens: 1, expires: "2026-04-02T00:00:00.000Z" });
    }
    t.clock.set("2026-04-03T00:00:00.000Z");
    await expireUser(t.ctx, "ev-many");
    const events = await eventsOf("ev-many");
    expect(events).toHaveLength(23);

    // The bus alone, given all 23: three calls, in order.
    expect(await stand.bus.publish(events)).toEqual(events.map((e) => e.eventId));
    expect(eventBridge.calls.map((call) => call.entries.length)).toEqual([10, 10, 3]);
    expect(eventBridge.delivered).toEqual(events.map(expectedEntry));

    // Through the outbox: every call within the limit, each event once.
    eventBridge.reset();
    expect(await publishPending(t.ctx, stand.bus)).toEqual({ published: 23, failed: 0 });
    expect(Math.max(...eventBridge.calls.map((call) => call.entries.length))).toBeLessThanOrEqual(MAX_ENTRIES_PER_PUT);
    expect(deliveriesById()).toEqual(Object.fromEntries(events.map((e) => [e.eventId, 1])));
  });

  it("throws the SDK's error when its first PutEvents call fails, and returns what earlier calls accepted when a later one fails", async () => {
    const events: ServiceEvent[] = Array.from({ length: 12 }, (_, i) => ({
      eventId: `01KTESTDIRECT${String(i).padStart(13, "0")}`,
      type: "credits.low_balance",
      userId: "ev-direct",
      offerGroup: "calls",
      balance: i,
      createdAt: "2026-04-10T00:00:00.000Z",
    }));
    eventBridge.failNext(1);
    await expect(stand.bus.publish(events)).rejects.toMatchObject({ name: "InternalException" });
    eventBridge.failNext(1, { skip: 1 });
    expect(await stand.bus.publish(events)).toEqual(events.slice(0, 10).map((e) => e.eventId));
    expect(eventBridge.calls.map((call) => [call.entries.length, call.status])).toEqual([
      [10, 500],
      [10, 200],
      [2, 500],
    ]);
  });
});

describe("the console bus (npm start)", () => {
  it("prints each event as one `event {json}` line and accepts them all", async () => {
    const lines: string[] = [];
    const event: ServiceEvent = { eventId: "01KTESTCONSOLE0000000000000", type: "order.paid", userId: "u1", orderId: "o1", offerGroup: "calls", createdAt: "2026-01-01T00:00:00.000Z" };
    expect(await createConsoleBus((line) => lines.push(line)).publish([event, { ...event, eventId: "01KTESTCONSOLE0000000000001" }])).toEqual([
      event.eventId,
      "01KTESTCONSOLE0000000000001",
    ]);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(consoleLine(event));
    expect(lines[0]).toBe(`event ${JSON.stringify(event)}`);
    expect(lines[0]!.includes("\n")).toBe(false);
  });
});
