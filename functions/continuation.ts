/**
 * Continuing the daily job past one Lambda's time limit: a run that stopped at its
 * deadline sends `{ "continuation": n }` to a queue (`ExpiryJobContinuations`,
 * infra/cron.ts) whose subscriber is the same handler, which runs the job again from
 * where the work index shows it is (expired grants, warned grants and refused orders have
 * left it; the watermarks move only on complete passes). The real `@aws-sdk/client-sqs`.
 */
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";

/** Most continuations chained from one scheduled run (a runaway guard). */
export const MAX_CONTINUATIONS = 96;

/** Where a run hands over the rest of its work. */
export interface Continuation {
  /** Asks for another run, number `continuation` (>= 1) of the chain. */
  send(continuation: number): Promise<void>;
}

/**
 * A continuation through SQS `SendMessage` on `queueUrl`.
 * @param options.endpoint another endpoint than AWS's (a local stand-in)
 */
export function createSqsContinuation(options: { queueUrl: string; endpoint?: string | undefined; region?: string }): Continuation {
  const client = new SQSClient({
    ...(options.endpoint ? { endpoint: options.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
    ...(options.region ?? (options.endpoint ? "us-east-1" : undefined) ? { region: options.region ?? "us-east-1" } : {}),
  });
  return {
    async send(continuation) {
      await client.send(new SendMessageCommand({ QueueUrl: options.queueUrl, MessageBody: JSON.stringify({ continuation }) }));
    },
  };
}

/**
 * The continuation number an invocation carries: from an SQS record's body (the queue),
 * or `event.continuation`; 0 for the scheduler's own invocation (its input, or a rule
 * envelope like test/fixtures/eventbridge-scheduled.json).
 */
export function continuationOf(event: unknown): number {
  const records = (event as { Records?: Array<{ body?: string; eventSource?: string }> } | undefined)?.Records;
  const sqs = records?.find((record) => record.eventSource === "aws:sqs");
  let value: unknown = (event as { continuation?: unknown } | undefined)?.continuation;
  if (sqs?.body) {
    try {
      value = (JSON.parse(sqs.body) as { continuation?: unknown }).continuation;
    } catch {
      value = undefined;
    }
  }
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : 0;
}
