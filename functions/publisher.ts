/**
 * The event publisher: subscribed to the table's DynamoDB stream, filtered to the inserts
 * of event items (infra/bus.ts), it publishes the outbox to the EventBridge bus
 * (`EVENT_BUS_NAME`): first the batch's own events, re-read from
 * the table (the outbox index may not show them yet), then whatever else the outbox index
 * holds (core/events.ts). A `top_up.requested` event starts its automatic top-up first
 * (core/top-ups.ts: an order paid off-session at Stripe). Only unpublished events go out, so a record's retry, a
 * duplicate record or a concurrent run only finds less to do. When the bus refused some events the handler throws, and Lambda
 * retries the batch (a bounded number of times, infra/bus.ts); the events stay in the
 * outbox meanwhile, and the daily job publishes whatever is left (functions/daily-job.ts).
 */
import type { Context as LambdaContext, DynamoDBStreamEvent } from "aws-lambda";
import { publishEvents, publishOutbox, type PublishSummary } from "../core/events.js";
import { topUpHandler } from "../core/top-ups.js";
import "./eventbridge-bus.js";
import "./stripe-payments.js"; // automatic top-ups create and pay Stripe payments
import { runtime } from "./runtime.js";

/**
 * Lambda entry point (DynamoDB stream batch).
 * @returns what was published
 * @throws when no bus is configured, or when the bus refused some events (so that the batch is retried)
 */
export async function handler(event: DynamoDBStreamEvent, context?: LambdaContext): Promise<PublishSummary> {
  const { core, bus } = await runtime();
  if (!bus) throw new Error("No event bus: set EVENT_BUS_NAME.");
  const remaining = context?.getRemainingTimeInMillis?.();
  // First the batch's own events, read from the table (the outbox index may lag behind
  // the stream); then whatever else the outbox holds.
  const own = (event.Records ?? []).flatMap((record) => {
    const image = record.dynamodb?.NewImage;
    const userId = image?.userId?.S;
    const eventId = image?.eventId?.S;
    return userId && eventId ? [{ userId, eventId }] : [];
  });
  // `top_up.requested` events start their top-up before going out (core/top-ups.ts).
  const handle = topUpHandler(core);
  const first = await publishEvents(core, bus, own, handle);
  const rest =
    first.failed > 0
      ? { published: 0, failed: 0 } // the bus is refusing: retry the batch later rather than sweep now
      : await publishOutbox(core, bus, remaining !== undefined ? Date.now() + remaining - 10_000 : undefined, handle);
  const summary = { published: first.published + rest.published, failed: first.failed + rest.failed };
  core.logger.info("outbox published", { records: event.Records?.length ?? 0, ...summary });
  if (summary.failed > 0) throw new Error(`${summary.failed} event(s) were not published (the bus refused them, or their top-up failed); they stay in the outbox and are retried.`);
  return summary;
}
