/**
 * The daily job (DESIGN.md, "Schedule"): EventBridge Scheduler (`sst.aws.CronV2`)
 * invokes `functions/daily-job.handler`, which expires every due grant of every user,
 * warns about grants expiring soon and abandons unpaid orders (core/daily-job.ts). The
 * job is idempotent, so every retry below is safe. After its passes it also publishes the
 * events outbox to the bus (a backstop to the stream-triggered publisher, infra/bus.ts).
 * The resources keep their deployed names (`ExpiryJob`, `ExpiryJobFailures`,
 * `ExpiryJobContinuations`): renaming them would replace them in AWS.
 */
import { bus } from "./bus";
import { table } from "./table";

/**
 * Where failed runs land, kept 14 days for inspection: invocations the scheduler could not
 * deliver (scheduler retries exhausted) and runs that failed in the function (Lambda's
 * asynchronous retries exhausted). The scheduler invokes Lambda asynchronously, so its own
 * dead-letter queue alone would never see a run that threw.
 */
export const dailyJobFailures = new sst.aws.Queue("ExpiryJobFailures", {
  transform: { queue: { messageRetentionSeconds: 14 * 24 * 60 * 60 } },
});

/**
 * Where a run that reached its deadline hands over the rest (functions/continuation.ts):
 * its subscriber is the same handler. A message stays invisible for longer than a run.
 */
export const dailyJobContinuations = new sst.aws.Queue("ExpiryJobContinuations", {
  visibilityTimeout: "16 minutes",
});

/** The job's function settings, shared by the scheduled run and its continuations. */
const jobFunction = {
  handler: "functions/daily-job.handler",
  runtime: "nodejs22.x" as const,
  architecture: "arm64" as const,
  memory: "1024 MB" as const,
  timeout: "15 minutes" as const,
  link: [table, bus, dailyJobContinuations],
  environment: { TABLE_NAME: table.name, DEFAULT_CURRENCY: "usd" },
};

/**
 * The schedule and its function: every day at 00:05 UTC, with up to 15 minutes per run
 * (a run stops starting new pages 30 s before its deadline and hands the rest to
 * `ExpiryJobContinuations`, README "Architecture").
 */
export const dailyJob = new sst.aws.CronV2("ExpiryJob", {
  schedule: "cron(5 0 * * ? *)",
  timezone: "UTC",
  retries: 3, // the scheduler's attempts to deliver a run
  dlq: dailyJobFailures.arn,
  function: {
    ...jobFunction,
    retries: 2, // Lambda's retries of a run that failed (its maximum)
    permissions: [{ actions: ["sqs:SendMessage"], resources: [dailyJobFailures.arn] }],
    transform: {
      eventInvokeConfig: { destinationConfig: { onFailure: { destination: dailyJobFailures.arn } } },
    },
  },
});

/** The continuations' consumer: the same handler, one message (one continuation) at a time. */
dailyJobContinuations.subscribe(jobFunction, { batch: { size: 1 } });
