/**
 * Failures are seen: CloudWatch alarms on everything that fails without a caller to tell,
 * all sent to one SNS topic, which e-mails the stage's `alarmEmail` when one is set
 * (infra/settings.ts; AWS first sends a confirmation e-mail to that address, and nothing
 * is delivered until it is confirmed). Without an address the alarms still exist, with the
 * topic as their action, so that any other subscriber (a chat hook, a pager) can be added
 * to it.
 *
 * Watched:
 * - the daily job's failure queue (runs the scheduler could not deliver, or that failed
 *   after Lambda's retries) and the continuations' dead-letter queue: any visible message;
 * - every function's `Errors` (invocations that threw or timed out): any in 5 minutes.
 */
import { functions } from "./api";
import { publisher } from "./bus";
import { dailyJob, dailyJobContinuationFailures, dailyJobContinuationSubscriber, dailyJobFailures } from "./cron";
import type { FunctionName } from "./permissions";
import { stageSettings } from "./settings";

const settings = stageSettings();

/** The topic every alarm notifies (on alarm, and when back to OK). */
export const alarmTopic = new aws.sns.Topic("Alarms");

/** The e-mail subscription, when the stage sets an address (`ALARM_EMAIL`). */
export const alarmEmail = settings.alarmEmail
  ? new aws.sns.TopicSubscription("AlarmsEmail", { topic: alarmTopic.arn, protocol: "email", endpoint: settings.alarmEmail })
  : undefined;

/** What every alarm shares: one 5-minute period over 0, silence counts as fine, the topic notified both ways. */
const alarmDefaults = {
  period: 300,
  evaluationPeriods: 1,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 0,
  treatMissingData: "notBreaching",
  alarmActions: [alarmTopic.arn],
  okActions: [alarmTopic.arn],
};

/** An alarm raised when `queue` holds any message (SQS `ApproximateNumberOfMessagesVisible` > 0). */
function queueAlarm(name: string, queue: sst.aws.Queue, description: string): aws.cloudwatch.MetricAlarm {
  return new aws.cloudwatch.MetricAlarm(name, {
    ...alarmDefaults,
    alarmDescription: description,
    namespace: "AWS/SQS",
    metricName: "ApproximateNumberOfMessagesVisible",
    dimensions: { QueueName: queue.nodes.queue.name },
    statistic: "Maximum",
  });
}

/** Alarms on the queues where failed work waits. */
export const queueAlarms = [
  queueAlarm("ExpiryJobFailuresAlarm", dailyJobFailures, "A daily job run failed after its retries, or was never delivered: see the ExpiryJobFailures queue."),
  queueAlarm(
    "ExpiryJobContinuationsDeadLettersAlarm",
    dailyJobContinuationFailures,
    "A continuation of the daily job failed 3 times: see the ExpiryJobContinuationsDeadLetters queue.",
  ),
];

/** Every function, by its name in infra/permissions.ts, and its Lambda function name. */
const functionNames: Array<[FunctionName, $util.Input<string>]> = [
  ...Object.entries(functions).map(([name, fn]): [FunctionName, $util.Input<string>] => [name as FunctionName, fn.name]),
  ["dailyJob", dailyJob.nodes.function.apply((fn) => fn.name)],
  ["dailyJobContinuations", dailyJobContinuationSubscriber.nodes.function.apply((fn) => fn.name)],
  ["publisher", publisher.nodes.function.apply((fn) => fn.name)],
];

/** One alarm per function: any invocation error (Lambda `Errors` > 0). Named `<Function>Errors`, e.g. `OrdersErrors`. */
export const functionAlarms = functionNames.map(
  ([name, functionName]) =>
    new aws.cloudwatch.MetricAlarm(`${name.charAt(0).toUpperCase()}${name.slice(1)}Errors`, {
      ...alarmDefaults,
      alarmDescription: `The ${name} function failed (threw or timed out).`,
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: functionName },
      statistic: "Sum",
    }),
);
