/**
 * The publishing handlers on DynamoDB Local, with the real `@aws-sdk/client-eventbridge`
 * against the local PutEvents stand-in: the stream-triggered publisher (functions/
 * publisher.ts) and the daily job's backstop (functions/daily-job.ts).
 *
 * There is no DynamoDB stream fixture in `fixtures/`: the stream event is written here
 * after AWS's example in the Lambda developer guide ("Using AWS Lambda with Amazon
 * DynamoDB", https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html, the example
 * DynamoDB Streams record event: `eventID`, `eventName`, `eventVersion` "1.1",
 * `eventSource` "aws:dynamodb", `awsRegion`, `dynamodb` { `ApproximateCreationDateTime`,
 * `Keys`, `NewImage`, `SequenceNumber`, `SizeBytes`, `StreamViewType` },
 * `eventSourceARN`), with the table's real item as `Keys`/`NewImage` (read back from
 * DynamoDB Local in its wire format) and `StreamViewType` "NEW_IMAGE" as infra/table.ts
 * configures it.
 */
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent, AttributeValue as StreamAttributeValue } from "aws-lambda";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createConsoleBus } from "../../core/bus/console.js";
import { listEvents, publishPending } from "../../core/events.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { handler as dailyJob } from "../../functions/daily-job.js";
import { handler as publisher } from "../../functions/publisher.js";
import { setRuntime, type RuntimeConfig } from "../../functions/runtime.js";
import { EVENT_INSERTS } from "../../functions/stream-filters.js";
import { localLambdaContext } from "../../scripts/local-gateway.js";
import scheduled from "../fixtures/eventbridge-scheduled.json" with { type: "json" };
import { useEventBridgeStandIn } from "../helpers/eventbridge-stand-in.js";
import { useIntegrationContext } from "../helpers/context.js";
import { anOffer } from "../helpers/factories.js";

const t = useIntegrationContext({ label: "publisher" });
const BUS = "user-credits-test-EventsBus";
const stand = useEventBridgeStandIn(BUS);
const eventBridge = stand.standIn;

/** The handlers' runtime: the test's context, and the bus (or none). */
function useRuntime(withBus: boolean): void {
  const config: RuntimeConfig = { apiKeys: [], defaultCurrency: "usd", tableName: t.tableName, eventBusName: withBus ? BUS : undefined };
  setRuntime({ config, core: t.ctx, bus: withBus ? stand.bus : undefined });
}

beforeEach(async () => {
  const sink = createConsoleBus(() => {});
  for (let pass = 0; pass < 20 && (await publishPending(t.ctx, sink)).published > 0; pass++);
  eventBridge.reset();
  useRuntime(true);
});

afterEach(() => setRuntime(undefined));

/** The table's items of `userId` whose ElectroDB entity is `entity`, as DynamoDB sends them (wire format). */
async function rawItems(userId: string, entity: string): Promise<Array<Record<string, AttributeValue>>> {
  const { Items = [] } = await t.client.send(
    new ScanCommand({
      TableName: t.tableName,
      ConsistentRead: true,
      FilterExpression: "#user = :user AND #entity = :entity",
      ExpressionAttributeNames: { "#user": "userId", "#entity": "__edb_e__" },
      ExpressionAttributeValues: { ":user": { S: userId }, ":entity": { S: entity } },
    }),
  );
  return Items;
}

/** A stream record of `item` (AWS's example record, see the file's comment). */
function streamRecord(item: Record<string, AttributeValue>, eventName: "INSERT" | "MODIFY", sequence: number): DynamoDBRecord {
  const image = item as Record<string, StreamAttributeValue>; // the same wire format, typed apart by the two packages
  return {
    eventID: `c4ca4238a0b923820dcc509a6f7584${String(sequence).padStart(2, "0")}`,
    eventName,
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "us-east-1",
    dynamodb: {
      ApproximateCreationDateTime: 1772359201,
      Keys: { pk: image.pk!, sk: image.sk! },
      NewImage: image,
      SequenceNumber: `1110000000000000${String(sequence).padStart(10, "0")}`,
      SizeBytes: JSON.stringify(item).length,
      StreamViewType: "NEW_IMAGE",
    },
    eventSourceARN: `arn:aws:dynamodb:us-east-1:123456789012:table/${t.tableName}/stream/2026-03-01T00:00:00.000`,
  };
}

/**
 * Whether `record` passes a Lambda filter pattern: every key of the pattern present in the
 * record, and each leaf one of the listed values (the part of Lambda's filter syntax that
 * `EVENT_INSERTS` uses: exact matches).
 */
function passes(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) return pattern.includes(value);
  if (typeof value !== "object" || value === null) return false;
  return Object.entries(pattern as Record<string, unknown>).every(([key, inner]) => key in value && passes(inner, (value as Record<string, unknown>)[key]));
}

/** A user whose manual order was just paid: one `order.paid` event in the outbox. */
async function paidOrder(userId: string): Promise<string> {
  t.clock.set("2026-03-01T10:00:00.000Z");
  await upsertOffer(t.ctx, "pack", anOffer());
  const { order } = await createOrder(t.ctx, { userId, offerId: "pack" });
  await confirmManualOrder(t.ctx, userId, order.orderId);
  return order.orderId;
}

describe("the stream-triggered publisher", () => {
  it("is woken by the insert of an event item, and by no other record", async () => {
    await paidOrder("pub-filter");
    const [event] = await rawItems("pub-filter", "event");
    const [order] = await rawItems("pub-filter", "order");
    const [ledgerEntry] = await rawItems("pub-filter", "ledgerEntry");
    expect(passes(EVENT_INSERTS, streamRecord(event!, "INSERT", 1))).toBe(true);
    expect(passes(EVENT_INSERTS, streamRecord(event!, "MODIFY", 2))).toBe(false); // marking it published
    expect(passes(EVENT_INSERTS, streamRecord(order!, "INSERT", 3))).toBe(false);
    expect(passes(EVENT_INSERTS, streamRecord(ledgerEntry!, "INSERT", 4))).toBe(false);
  });

  it("publishes the outbox when a batch arrives: each event once, with its bus entry", async () => {
    const orderId = await paidOrder("pub-1");
    const [event] = (await listEvents(t.ctx, "pub-1", { limit: 10 })).events;
    const batch: DynamoDBStreamEvent = { Records: (await rawItems("pub-1", "event")).map((item, i) => streamRecord(item, "INSERT", i)) };
    expect(batch.Records).toHaveLength(1);

    expect(await publisher(batch, localLambdaContext("publisher", 60_000))).toEqual({ published: 1, failed: 0 });
    expect(eventBridge.delivered).toEqual([
      { Source: "user-credits", DetailType: "order.paid", Detail: JSON.stringify(event), EventBusName: BUS, Time: Date.parse(event!.createdAt) / 1000 },
    ]);
    expect(JSON.parse(eventBridge.delivered[0]!.Detail!)).toMatchObject({ type: "order.paid", userId: "pub-1", orderId });

    // The same batch again (Lambda may deliver a batch twice): nothing more is put on the bus.
    expect(await publisher(batch, localLambdaContext("publisher", 60_000))).toEqual({ published: 0, failed: 0 });
    expect(eventBridge.delivered).toHaveLength(1);
  });

  it("publishes its batch's own events even when the outbox index does not show them yet", async () => {
    await paidOrder("pub-lag");
    const [item] = await rawItems("pub-lag", "event");
    const batch: DynamoDBStreamEvent = { Records: [streamRecord(item!, "INSERT", 1)] };
    // Simulate the index lagging behind the stream: the event is not in the outbox index.
    const [event] = (await listEvents(t.ctx, "pub-lag", { limit: 10 })).events;
    await t.ctx.db.entities.event.patch({ userId: "pub-lag", eventId: event!.eventId }).remove(["outboxBucket", "outboxSort"]).go();
    expect(await publisher(batch, localLambdaContext("publisher", 60_000))).toEqual({ published: 1, failed: 0 });
    expect(eventBridge.deliveredDetails()).toEqual([event]);
  });

  it("throws when PutEvents fails, so that the stream retries the batch; the retry delivers the event once", async () => {
    await paidOrder("pub-retry");
    const batch: DynamoDBStreamEvent = { Records: (await rawItems("pub-retry", "event")).map((item, i) => streamRecord(item, "INSERT", i)) };
    eventBridge.failNext(1);
    await expect(publisher(batch, localLambdaContext("publisher", 60_000))).rejects.toThrow(/1 event\(s\) were not published/);
    expect(eventBridge.calls.map((call) => call.status)).toEqual([500]);
    expect(eventBridge.delivered).toEqual([]);

    expect(await publisher(batch, localLambdaContext("publisher", 60_000))).toEqual({ published: 1, failed: 0 });
    const [event] = (await listEvents(t.ctx, "pub-retry", { limit: 10 })).events;
    expect(eventBridge.deliveredDetails()).toEqual([event]);
  });

  it("throws when an entry is rejected, and delivers it on the retry", async () => {
    await paidOrder("pub-reject");
    eventBridge.rejectNext(() => true);
    await expect(publisher({ Records: [] })).rejects.toThrow(/1 event\(s\) were not published/);
    expect(await publisher({ Records: [] })).toEqual({ published: 1, failed: 0 });
    expect(eventBridge.deliveredDetails().map((detail) => detail.userId)).toEqual(["pub-reject"]);
  });

  it("refuses to run without a bus", async () => {
    useRuntime(false);
    await expect(publisher({ Records: [] })).rejects.toThrow(/No event bus/);
  });
});

describe("the daily job's backstop", () => {
  it("publishes the outbox after expiring, and reports it in its summary", async () => {
    t.clock.set("2026-06-01T00:00:00.000Z");
    const grant = await createPromotionalGrant(t.ctx, { userId: "job-1", offerGroup: "calls", tokens: 7, expires: "2026-06-02T00:00:00.000Z" });
    t.clock.set("2026-06-03T00:05:00.000Z");
    eventBridge.failNext(1); // e.g. the stream's publisher could not publish either: the job catches up

    const summary = await dailyJob(scheduled, localLambdaContext("dailyJob", 15 * 60_000));
    expect(summary).toMatchObject({ complete: true, grantsExpired: 1, tokensRemoved: 7, published: 0, publishFailed: 1 });
    const again = await dailyJob(scheduled, localLambdaContext("dailyJob", 15 * 60_000));
    expect(again).toMatchObject({ grantsExpired: 0, published: 1, publishFailed: 0 });

    const [event] = (await listEvents(t.ctx, "job-1", { limit: 10 })).events;
    expect(event).toMatchObject({ type: "credits.expired", grantId: grant.grantId, balance: 0 });
    expect(eventBridge.delivered).toEqual([
      { Source: "user-credits", DetailType: "credits.expired", Detail: JSON.stringify(event), EventBusName: BUS, Time: Date.parse(event!.createdAt) / 1000 },
    ]);
  });

  it("returns the job's summary alone when no bus is configured (events wait in the outbox)", async () => {
    useRuntime(false);
    t.clock.set("2026-07-01T00:00:00.000Z");
    await createPromotionalGrant(t.ctx, { userId: "job-2", offerGroup: "calls", tokens: 3, expires: "2026-07-02T00:00:00.000Z" });
    t.clock.set("2026-07-03T00:05:00.000Z");
    const summary = await dailyJob(scheduled, localLambdaContext("dailyJob", 15 * 60_000));
    expect(summary).toMatchObject({ grantsExpired: 1 });
    expect(summary).not.toHaveProperty("published");
    expect(eventBridge.calls).toEqual([]);
    expect(await publishPending(t.ctx, createConsoleBus(() => {}))).toEqual({ published: 1, failed: 0 });
  });
});
