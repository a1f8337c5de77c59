/**
 * `npm run bench`: the daily job's time for 100 and for 1,000 due grants (among 10 times
 * as many grants that are not due), measured side by side in one run on DynamoDB Local,
 * interleaved over several rounds so that the machine's noise falls on both alike.
 * Prints each round, the medians, their ratio, and requests per due grant.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { ManualClock } from "../core/clock.js";
import { silentLogger, type Context } from "../core/context.js";
import { createDynamoClient } from "../core/db/client.js";
import { createDb } from "../core/db/service.js";
import { runDailyJob } from "../core/daily-job.js";
import { createManualProvider } from "../core/payments/manual.js";
import { ensureTable, startDynamoLocal } from "../scripts/dynamodb-local.js";
import { countRequests } from "../test/helpers/db.js";
import { seedGrants } from "../test/helpers/seed.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SIZES = [100, 1000];

async function measure(endpoint: string, due: number, round: number): Promise<{ ms: number; requests: number; itemsRead: number }> {
  const client = createDynamoClient({ endpoint });
  const table = `bench-${due}-${round}-${Date.now().toString(36)}`;
  await ensureTable(client, table);
  const clock = new ManualClock("2030-01-10T00:00:00.000Z");
  const ctx: Context = { db: createDb(client, table), clock, payments: createManualProvider(), config: { defaultCurrency: "usd" }, logger: silentLogger };
  await runDailyJob(ctx); // watermarks on an empty index
  await seedGrants(
    ctx,
    Array.from({ length: due * 10 }, (_, i) => ({
      userId: `u${i}`,
      offerGroup: "calls",
      tokens: 10,
      expires: i % 10 === 0 ? "2030-01-11T12:00:00.000Z" : "2031-01-01T00:00:00.000Z",
    })),
  );
  clock.set("2030-01-12T00:00:00.000Z");
  const counter = countRequests(client);
  const started = performance.now();
  const summary = await runDailyJob(ctx);
  const ms = performance.now() - started;
  if (summary.grantsExpired !== due) throw new Error(`expected ${due} expired, got ${summary.grantsExpired}`);
  client.destroy();
  return { ms, requests: counter.total, itemsRead: counter.itemsRead };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const local = await startDynamoLocal({ dataDir: null });
try {
  const results: Record<number, Array<{ ms: number; requests: number; itemsRead: number }>> = { 100: [], 1000: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const due of round % 2 === 0 ? SIZES : [...SIZES].reverse()) {
      const r = await measure(local.endpoint, due, round);
      results[due]!.push(r);
      console.log(`round ${round + 1}: ${due} due grants: ${r.ms.toFixed(0)} ms, ${r.requests} requests, ${r.itemsRead} items read`);
    }
  }
  const m100 = median(results[100]!.map((r) => r.ms));
  const m1000 = median(results[1000]!.map((r) => r.ms));
  console.log(`median: 100 due -> ${m100.toFixed(0)} ms; 1000 due -> ${m1000.toFixed(0)} ms; ratio ${(m1000 / m100).toFixed(2)}`);
  for (const due of SIZES) {
    const r = results[due]![0]!;
    console.log(`per due grant (${due}): ${(r.requests / due).toFixed(2)} requests, ${(r.itemsRead / due).toFixed(2)} items read`);
  }
} finally {
  await local.stop();
}
