/**
 * The scheduled daily job's handler. Invoked by EventBridge Scheduler (`sst.aws.CronV2`),
 * whose input may be the scheduler's own payload or a rule envelope like
 * `test/fixtures/eventbridge-scheduled.json`, or by its continuation queue (an SQS event,
 * functions/continuation.ts). Either way it runs the job at the current instant
 * (core/daily-job.ts: expiry, expired holds, `credits.expiring` warnings, abandoned
 * orders), stops starting new pages 30 s before the Lambda's time runs out, and, when it
 * stopped early, hands the rest to the continuation queue. When a bus is configured it
 * then publishes the outbox, as a backstop to the stream-triggered publisher
 * (functions/publisher.ts). It returns the summary (also logged as structured JSON).
 */
import type { Context as LambdaContext, ScheduledEvent, SQSEvent } from "aws-lambda";
import { runDailyJob, type DailyJobSummary } from "../core/daily-job.js";
import { publishOutbox } from "../core/events.js";
import { topUpHandler } from "../core/top-ups.js";
import { DAY_MS } from "../core/rules/time.js";
import { continuationOf, createSqsContinuation, MAX_CONTINUATIONS } from "./continuation.js";
import "./eventbridge-bus.js"; // publishes the outbox, as a backstop
import { provideAdapters, runtime } from "./runtime.js";
import "./stripe-payments.js"; // abandoning an order cancels its PaymentIntent or Checkout Session

provideAdapters({ continuation: createSqsContinuation });

/** What a run returns: the job's summary, its place in a continuation chain, what it published. */
export type JobRunSummary = DailyJobSummary & { continuation: number; continuedAs?: number; published?: number; publishFailed?: number };

/** Lambda entry point. */
export async function handler(
  event: ScheduledEvent | SQSEvent | Record<string, unknown> | undefined,
  context?: LambdaContext,
): Promise<JobRunSummary> {
  const { core, bus, continuation, config } = await runtime();
  const remaining = context?.getRemainingTimeInMillis?.();
  const deadline = remaining !== undefined ? Date.now() + remaining - 30_000 : undefined;
  const number = continuationOf(event);
  core.logger.info("daily job invoked", { source: (event as ScheduledEvent | undefined)?.source ?? "scheduler", continuation: number });

  const job = await runDailyJob(core, {
    ...(deadline !== undefined ? { deadline } : {}),
    ...(config.abandonOrdersAfterDays ? { abandonAfterMs: config.abandonOrdersAfterDays * DAY_MS } : {}),
  });
  const summary: JobRunSummary = { ...job, continuation: number };
  if (!job.complete && continuation && number < MAX_CONTINUATIONS) {
    await continuation.send(number + 1);
    summary.continuedAs = number + 1;
  }
  if (!bus) return summary;
  // The backstop also runs the automatic top-ups left in the outbox (core/top-ups.ts).
  const { published, failed } = await publishOutbox(core, bus, deadline, topUpHandler(core));
  return { ...summary, published, publishFailed: failed };
}
