/**
 * The scheduled expiry handler. Invoked daily by EventBridge Scheduler (`sst.aws.CronV2`),
 * whose input may be the scheduler's own payload or a rule envelope like
 * `test/fixtures/eventbridge-scheduled.json`; either way it runs the job at the current
 * instant, stops starting new pages 30 s before the Lambda's time runs out, and returns
 * the summary (also logged as structured JSON). When a bus is configured it then publishes
 * the outbox, as a backstop to the stream-triggered publisher (functions/publisher.ts):
 * the summary adds `published` and `publishFailed`.
 */
import type { Context as LambdaContext, ScheduledEvent } from "aws-lambda";
import { runExpiryJob, type ExpiryJobSummary } from "../core/expiry-job.js";
import { publishOutbox } from "./publisher.js";
import { runtime } from "./runtime.js";

/** Lambda entry point. */
export async function handler(
  event: ScheduledEvent | Record<string, unknown> | undefined,
  context?: LambdaContext,
): Promise<ExpiryJobSummary & { published?: number; publishFailed?: number }> {
  const { core, bus } = await runtime();
  const remaining = context?.getRemainingTimeInMillis?.();
  const deadline = remaining !== undefined ? Date.now() + remaining - 30_000 : undefined;
  core.logger.info("expiry job invoked", { source: (event as ScheduledEvent | undefined)?.source ?? "scheduler" });
  const summary = await runExpiryJob(core, deadline !== undefined ? { deadline } : {});
  if (!bus) return summary;
  const { published, failed } = await publishOutbox(core, bus, deadline);
  return { ...summary, published, publishFailed: failed };
}
