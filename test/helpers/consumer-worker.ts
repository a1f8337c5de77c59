/**
 * A separate Node process that spends tokens, as one of many Lambdas would: reads its
 * work from `WORKER_INPUT` (JSON: endpoint, table, start instant, consumptions per
 * (user, offerGroup)), waits for the common start instant, fires every consumption at
 * once, and prints one JSON line: successes, refusals (402), other errors, and the
 * conflicts it retried.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { createBalanceCache } from "../../core/balance-cache.js";
import { systemClock } from "../../core/clock.js";
import { consume } from "../../core/consumption.js";
import { silentLogger } from "../../core/context.js";
import { createDynamoClient } from "../../core/db/client.js";
import { createDb } from "../../core/db/service.js";
import { DomainError } from "../../core/errors.js";
import { createManualProvider } from "../../core/payments/manual.js";
import { retryStats } from "../../core/retry.js";

interface WorkerInput {
  endpoint: string;
  tableName: string;
  startAt: number;
  tasks: Array<{ userId: string; offerGroup: string; count: number }>;
}

const input = JSON.parse(process.env.WORKER_INPUT ?? "{}") as WorkerInput;
const ctx = {
  db: createDb(createDynamoClient({ endpoint: input.endpoint }), input.tableName),
  clock: systemClock,
  payments: createManualProvider(),
  config: { defaultCurrency: "usd" },
  logger: silentLogger,
  // Each worker is an instance with its own cache of balance items, as a Lambda is (core/balance-cache.ts).
  balanceCache: createBalanceCache(),
};

const wait = input.startAt - Date.now();
if (wait > 0) await new Promise((r) => setTimeout(r, wait));
const attempts = input.tasks.flatMap(({ userId, offerGroup, count }) =>
  Array.from({ length: count }, () => consume(ctx, { userId, offerGroup, tokens: 1 }).then(() => `${userId}/${offerGroup}`)),
);
const outcomes = await Promise.allSettled(attempts);
const succeeded: Record<string, number> = {};
let refused = 0;
const errors: string[] = [];
for (const outcome of outcomes) {
  if (outcome.status === "fulfilled") succeeded[outcome.value] = (succeeded[outcome.value] ?? 0) + 1;
  else if (outcome.reason instanceof DomainError && outcome.reason.code === "insufficient_credits") refused++;
  else errors.push(String(outcome.reason?.message ?? outcome.reason));
}
console.log(JSON.stringify({ succeeded, refused, errors: errors.slice(0, 5), errorCount: errors.length, conflictsRetried: retryStats.conflicts }));
process.exit(0);
