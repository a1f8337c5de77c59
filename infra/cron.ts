/**
 * The daily job (DESIGN.md, "Schedule"): EventBridge Scheduler (`sst.aws.CronV2`)
 * invokes `functions/daily-job.handler`, which expires every due grant of every user,
 * warns about grants expiring soon and abandons unpaid orders, cancelling their attempts
 * at Stripe (core/daily-job.ts). The job is idempotent, so every retry below is safe.
 * After its passes it also publishes the events outbox to the bus (a backstop to the
 * stream-triggered publisher, infra/bus.ts). The resources keep their deployed names
 * (`ExpiryJob`, `ExpiryJobFailures`, `ExpiryJobContinuations`): renaming them would
 * replace them in AWS.
 */
import { accessOf, SERVICE_GRANTS, statementsOf } from "./permissions";
import { bus } from "./bus";
import { secretsNamed } from "./secrets";
import { FUNCTION_DEFAULTS, runtimeEnvironment, stageSettings } from "./settings";
import { table, tableArns } from "./table";

const settings = stageSettings();

/** How long a queue keeps a message it could not deliver: 14 days, SQS's maximum, for inspection. */
const KEEP_FOR_INSPECTION = 14 * 24 * 60 * 60;

/**
 * Where failed runs land, kept 14 days for inspection: invocations the scheduler could not
 * deliver (scheduler retries exhausted) and runs that failed in the function (Lambda's
 * asynchronous retries exhausted). The scheduler invokes Lambda asynchronously, so its own
 * dead-letter queue alone would never see a run that threw. Watched by infra/alarms.ts.
 */
export const dailyJobFailures = new sst.aws.Queue("ExpiryJobFailures", {
  transform: { queue: { messageRetentionSeconds: KEEP_FOR_INSPECTION } },
});

/**
 * Where a continuation lands after its subscriber failed it `CONTINUATION_RECEIVES` times
 * (SQS redrive), kept 14 days. Watched by infra/alarms.ts.
 */
export const dailyJobContinuationFailures = new sst.aws.Queue("ExpiryJobContinuationsDeadLetters", {
  transform: { queue: { messageRetentionSeconds: KEEP_FOR_INSPECTION } },
});

/** Receives of one continuation before SQS moves it to the dead-letter queue (its first try and 2 retries). */
export const CONTINUATION_RECEIVES = 3;

/**
 * Where a run that reached its deadline hands over the rest (functions/continuation.ts):
 * its subscriber is the same handler. A message stays invisible for longer than a run; a
 * message failed `CONTINUATION_RECEIVES` times goes to the dead-letter queue instead of
 * being retried until it expires.
 */
export const dailyJobContinuations = new sst.aws.Queue("ExpiryJobContinuations", {
  visibilityTimeout: "16 minutes",
  dlq: { queue: dailyJobContinuationFailures.arn, retry: CONTINUATION_RECEIVES },
});

/** The ARNs the job's grants name. */
const jobArns = { ...tableArns, bus: bus.arn, continuationQueue: dailyJobContinuations.arn, failureQueue: dailyJobFailures.arn };

/**
 * The job's function settings, the same for the scheduled run (`dailyJob`) and its
 * continuations (`dailyJobContinuations`): the handler, the secrets and actions of
 * infra/permissions.ts, the table and the settings, the bus and the queue by name.
 */
function jobFunction(name: "dailyJob" | "dailyJobContinuations") {
  const access = accessOf(name);
  return {
    handler: "functions/daily-job.handler",
    ...FUNCTION_DEFAULTS,
    timeout: "15 minutes" as const,
    link: secretsNamed(access.secrets),
    permissions: statementsOf(access.actions, jobArns),
    environment: {
      ...runtimeEnvironment(settings, table.name, { abandonOrders: true }),
      EVENT_BUS_NAME: bus.name,
      EXPIRY_CONTINUATION_QUEUE_URL: dailyJobContinuations.url,
    },
  };
}

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
    ...jobFunction("dailyJob"),
    retries: 2, // Lambda's retries of a run that failed (its maximum)
    permissions: [
      ...statementsOf(accessOf("dailyJob").actions, jobArns),
      ...statementsOf(SERVICE_GRANTS.dailyJob ?? {}, jobArns), // Lambda sends failed runs to the failure queue
    ],
    transform: {
      eventInvokeConfig: { destinationConfig: { onFailure: { destination: dailyJobFailures.arn } } },
    },
  },
});

/**
 * The continuations' consumer: the same handler, one message (one continuation) at a time.
 * SST adds the queue's receive actions to its role itself.
 */
export const dailyJobContinuationSubscriber = dailyJobContinuations.subscribe(jobFunction("dailyJobContinuations"), { batch: { size: 1 } });
