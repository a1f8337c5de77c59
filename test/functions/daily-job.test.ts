/**
 * The daily job's handler (functions/daily-job.ts): invoked with the scheduler's input,
 * a rule envelope (AWS's sample, test/fixtures/eventbridge-scheduled.json) or its
 * continuation queue's SQS event; a run that reaches its deadline hands the rest to the
 * queue (the real `@aws-sdk/client-sqs` against a small stand-in of SQS `SendMessage`),
 * and the continuation finishes the work; unpaid orders are abandoned after the
 * configured age; expired holds of a group nobody touches are released.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import scheduled from "../fixtures/eventbridge-scheduled.json" with { type: "json" };
import { getCredits } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { upsertOffer } from "../../core/offers.js";
import { createOrder, getOrder } from "../../core/orders.js";
import { readBalance } from "../../core/balances.js";
import { listLedger } from "../../core/ledger.js";
import { createHold, listHolds } from "../../core/reservations.js";
import { handler } from "../../functions/daily-job.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { localLambdaContext } from "../../scripts/local-gateway.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "job-handler" });

/** SQS `SendMessage` (AWS JSON 1.0 protocol), recording the messages. */
class SqsStandIn {
  readonly messages: Array<{ QueueUrl: string; MessageBody: string }> = [];
  private server?: Server;
  url = "";
  async start() {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const target = req.headers["x-amz-target"];
        if (target !== "AmazonSQS.SendMessage") {
          res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
          res.end(JSON.stringify({ __type: "com.amazonaws.sqs#InvalidAction", message: `unsupported ${target}` }));
          return;
        }
        const message = JSON.parse(body) as { QueueUrl: string; MessageBody: string };
        this.messages.push(message);
        res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify({ MessageId: randomUUID(), MD5OfMessageBody: createHash("md5").update(message.MessageBody).digest("hex") }));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }
  stop() {
    return new Promise<void>((r) => this.server?.close(() => r()));
  }
}

const sqs = new SqsStandIn();
beforeAll(async () => {
  await sqs.start();
  setRuntime(
    buildRuntime(
      {
        apiKeys: [],
        defaultCurrency: "usd",
        tableName: t.tableName,
        continuationQueueUrl: `${sqs.url}/000000000000/ExpiryJobContinuations`,
        sqsEndpoint: sqs.url,
        abandonOrdersAfterDays: 2,
      },
      t.clock,
      t.client,
    ),
  );
});
afterAll(async () => {
  setRuntime(undefined);
  await sqs.stop();
});

/** The SQS event Lambda delivers for a message (AWS Lambda guide, "Using Lambda with Amazon SQS", example event). */
function sqsEvent(body: string): SQSEvent {
  return {
    Records: [
      {
        messageId: randomUUID(),
        receiptHandle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        body,
        attributes: { ApproximateReceiveCount: "1", SentTimestamp: "1545082649183", SenderId: "AIDAIENQZJOLO23YVJ4VO", ApproximateFirstReceiveTimestamp: "1545082649185" },
        messageAttributes: {},
        md5OfBody: createHash("md5").update(body).digest("hex"),
        eventSource: "aws:sqs",
        eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:ExpiryJobContinuations",
        awsRegion: "us-east-1",
      },
    ],
  };
}

describe("the daily job's handler", () => {
  it("runs on the scheduler's input and on a rule envelope alike", async () => {
    t.clock.set("2028-01-01T00:00:00.000Z");
    expect(await handler({}, localLambdaContext("job", 15 * 60_000))).toMatchObject({ complete: true, continuation: 0 });
    await createPromotionalGrant(t.ctx, { userId: "h-1", offerGroup: "calls", tokens: 4, expires: "2028-01-02T00:00:00.000Z" });
    t.clock.set("2028-01-03T00:00:00.000Z");
    expect(await handler(scheduled, localLambdaContext("job", 15 * 60_000))).toMatchObject({ complete: true, grantsExpired: 1, continuation: 0 });
    expect(sqs.messages).toEqual([]);
  });

  it("hands what it could not finish before its deadline to the continuation queue, which finishes it", async () => {
    t.clock.set("2028-02-01T00:00:00.000Z");
    await createPromotionalGrant(t.ctx, { userId: "h-2", offerGroup: "calls", tokens: 6, expires: "2028-02-02T00:00:00.000Z" });
    t.clock.set("2028-02-03T00:00:00.000Z");
    const stopped = await handler(scheduled, localLambdaContext("job", 30_000)); // 30 s left: no page may start
    expect(stopped).toMatchObject({ complete: false, grantsExpired: 0, continuation: 0, continuedAs: 1 });
    expect(sqs.messages).toEqual([{ QueueUrl: `${sqs.url}/000000000000/ExpiryJobContinuations`, MessageBody: '{"continuation":1}' }]);

    const continued = await handler(sqsEvent(sqs.messages[0]!.MessageBody), localLambdaContext("job", 15 * 60_000));
    expect(continued).toMatchObject({ complete: true, grantsExpired: 1, continuation: 1 });
    expect(continued.continuedAs).toBeUndefined();
    expect((await getCredits(t.ctx, "h-2")).groups[0]!.balance).toBe(0);
    expect(sqs.messages).toHaveLength(1);
  });

  it("abandons unpaid orders after the configured age (ABANDON_ORDERS_AFTER_DAYS)", async () => {
    t.clock.set("2028-03-01T00:00:00.000Z");
    await upsertOffer(t.ctx, "h-pack", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "h-3", offerId: "h-pack" });
    t.clock.set("2028-03-02T12:00:00.000Z");
    expect((await handler({}, localLambdaContext("job", 15 * 60_000))).ordersAbandoned).toBe(0);
    t.clock.set("2028-03-03T12:00:00.000Z");
    expect((await handler({}, localLambdaContext("job", 15 * 60_000))).ordersAbandoned).toBe(1);
    expect((await getOrder(t.ctx, "h-3", order.orderId)).status).toBe("refused");
  });

  it("releases the expired holds of a group nobody touches (expiry by the daily job)", async () => {
    t.clock.set("2028-03-04T00:00:00.000Z");
    await createPromotionalGrant(t.ctx, { userId: "h-4", offerGroup: "calls", tokens: 50, expires: null });
    const held = await createHold(t.ctx, { userId: "h-4", offerGroup: "calls", tokens: 20, ttlSeconds: 300 });
    t.clock.set("2028-03-04T06:00:00.000Z");
    expect(await handler(scheduled, localLambdaContext("job", 15 * 60_000))).toMatchObject({ complete: true, holdsReleased: 1, continuation: 0 });
    expect((await listHolds(t.ctx, "h-4", { limit: 10 })).reservations).toMatchObject([{ reservationId: held.reservationId, status: "expired", endedAt: "2028-03-04T06:00:00.000Z" }]);
    const own = (await listLedger(t.ctx, "h-4", { limit: 10 })).entries.filter((entry) => entry.reservationId === held.reservationId);
    expect(own.map((entry) => [entry.reason, entry.tokens])).toEqual([["hold", -20], ["release", 20]]);
    const state = await readBalance(t.ctx, "h-4", "calls");
    expect({ balance: state.balance, holds: state.holds }).toEqual({ balance: 50, holds: undefined });
    expect((await handler(scheduled, localLambdaContext("job", 15 * 60_000))).holdsReleased).toBe(0);
  });
});
