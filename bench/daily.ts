/**
 * The daily job's time against the number of due grants: `due` grants due (expired since
 * the last run) among `10 x due` users holding one grant each, each size on a fresh table.
 * The due users are seeded with the items core writes (test/helpers/seed.ts: grant, balance,
 * ledger entry); the other 9 in 10 with their grant item only, expiring a year later, in the
 * work index as core writes it (core/grants.ts `grantItem`): the job finds its work through
 * that index and never reads their balance or ledger items, which would only slow the
 * seeding (DynamoDB Local writes about 2,000 items a second here). The job
 * (core/daily-job.ts `runDailyJob`) runs once before the seeding (its watermarks on an empty
 * index) and is timed on its next day's run, with the DynamoDB requests it sends
 * (test/helpers/db.ts `countRequests`). Sizes measured in several rounds run interleaved
 * (rotated order), the largest ones in a single round.
 */
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { ManualClock } from "../core/clock.js";
import { silentLogger, type Context } from "../core/context.js";
import { createDynamoClient } from "../core/db/client.js";
import { createDb } from "../core/db/service.js";
import { runDailyJob } from "../core/daily-job.js";
import { grantItem } from "../core/grants.js";
import { newId } from "../core/ids.js";
import { createManualProvider } from "../core/payments/manual.js";
import { ensureTable } from "../scripts/dynamodb-local.js";
import { countRequests } from "../test/helpers/db.js";
import { seedGrants } from "../test/helpers/seed.js";
import { median, rotation } from "./lib.js";

/** One timed run of the daily job. */
export interface DailyRun {
  /** Wall time of the job's run, ms. */
  ms: number;
  /** DynamoDB requests it sent, and the items they read. */
  requests: number;
  itemsRead: number;
  /** Wall time of the seeding (not part of the job), ms. */
  seedMs: number;
}

/** Seeding the due users: `width` seedGrants calls in flight at once, each writing its slice (of at most `chunk` grants). */
async function seedDue(ctx: Pick<Context, "db" | "clock">, grants: Parameters<typeof seedGrants>[1], chunk = 2000, width = 4): Promise<void> {
  const slices: Array<Parameters<typeof seedGrants>[1]> = [];
  for (let i = 0; i < grants.length; i += chunk) slices.push(grants.slice(i, i + chunk));
  for (let i = 0; i < slices.length; i += width) await Promise.all(slices.slice(i, i + width).map((slice) => seedGrants(ctx, slice)));
}

/**
 * Seeding the users not due: for each, a grant item of 10 tokens expiring at `expires`, as
 * core/grants.ts `grantItem` builds it (with its work index keys), written with
 * `BatchWriteItem` (25 items a request, 16 in flight, unprocessed items sent again).
 */
async function seedNotDue(ctx: Pick<Context, "db" | "clock">, userIds: readonly string[], expires: string): Promise<void> {
  const now = ctx.clock.now();
  const { client, table, entities } = ctx.db;
  const items = userIds.map((userId) => entities.grant.put(grantItem({ grantId: newId(now), userId, offerGroup: "calls", reason: "adjust", tokens: 10, starts: now.toISOString(), expires }, now)).params().Item);
  const batches: Array<Array<Record<string, unknown>>> = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  for (let i = 0; i < batches.length; i += 16) {
    await Promise.all(
      batches.slice(i, i + 16).map(async (batch) => {
        let requests = batch.map((Item) => ({ PutRequest: { Item } }));
        while (requests.length > 0) {
          const result = await client.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
          requests = (result.UnprocessedItems?.[table] ?? []) as typeof requests;
        }
      }),
    );
  }
}

/**
 * Times the daily job on `due` due grants among `10 x due` users, on a table of its own
 * (deleted afterwards).
 * @throws when the job did not expire exactly `due` grants, or stopped before completing
 */
export async function measureDailyJob(endpoint: string, due: number, label: string): Promise<DailyRun> {
  const client = createDynamoClient({ endpoint });
  const table = `bench-daily-${due}-${label}-${Date.now().toString(36)}`;
  try {
    await ensureTable(client, table);
    const clock = new ManualClock("2030-01-10T00:00:00.000Z");
    const ctx: Context = { db: createDb(client, table), clock, payments: createManualProvider(), config: { defaultCurrency: "usd" }, logger: silentLogger };
    await runDailyJob(ctx); // watermarks on an empty index
    const seeding = performance.now();
    const users = Array.from({ length: due * 10 }, (_, i) => `u${i}`);
    await seedDue(ctx, users.filter((_, i) => i % 10 === 0).map((userId) => ({ userId, offerGroup: "calls", tokens: 10, expires: "2030-01-11T12:00:00.000Z" })));
    await seedNotDue(ctx, users.filter((_, i) => i % 10 !== 0), "2031-01-01T00:00:00.000Z");
    const seedMs = performance.now() - seeding;
    clock.set("2030-01-12T00:00:00.000Z");
    const counter = countRequests(client);
    const started = performance.now();
    const summary = await runDailyJob(ctx);
    const ms = performance.now() - started;
    if (summary.grantsExpired !== due || !summary.complete) throw new Error(`expected ${due} grants expired in a complete run, got ${summary.grantsExpired} (complete: ${summary.complete})`);
    return { ms, requests: counter.total, itemsRead: counter.itemsRead, seedMs };
  } finally {
    await client.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
    client.destroy();
  }
}

/** Results of {@link benchDailyJob}. */
export interface DailyJobResults {
  /** Per due-grant count (as a string key): each run, the median time, the ratio to the smallest size's median, requests per due grant. */
  bySize: Record<string, { rounds: DailyRun[]; medianMs: number; ratioToSmallest: number; requestsPerDueGrant: number; itemsReadPerDueGrant: number }>;
  smallest: number;
}

/**
 * The daily job at each of `interleaved` sizes over `rounds` rounds (order rotated each
 * round), then once at each of `single`.
 */
export async function benchDailyJob(
  endpoint: string,
  options: { interleaved: readonly number[]; single: readonly number[]; rounds: number; log: (line: string) => void },
): Promise<DailyJobResults> {
  const runs = new Map<number, DailyRun[]>();
  const record = (due: number, run: DailyRun, round: number) => {
    runs.set(due, [...(runs.get(due) ?? []), run]);
    options.log(`daily job, round ${round + 1}: ${due} due grants among ${due * 10} users: ${run.ms.toFixed(0)} ms, ${run.requests} requests (seeded in ${(run.seedMs / 1000).toFixed(1)} s)`);
  };
  for (let round = 0; round < options.rounds; round++) {
    for (const due of rotation(options.interleaved, round)) record(due, await measureDailyJob(endpoint, due, `r${round}`), round);
  }
  for (const due of options.single) record(due, await measureDailyJob(endpoint, due, "single"), 0);
  const smallest = Math.min(...runs.keys());
  const base = median(runs.get(smallest)!.map((r) => r.ms));
  const bySize: DailyJobResults["bySize"] = {};
  for (const [due, list] of [...runs].sort((a, b) => a[0] - b[0])) {
    const medianMs = median(list.map((r) => r.ms));
    bySize[due] = {
      rounds: list,
      medianMs,
      ratioToSmallest: medianMs / base,
      requestsPerDueGrant: median(list.map((r) => r.requests)) / due,
      itemsReadPerDueGrant: median(list.map((r) => r.itemsRead)) / due,
    };
  }
  return { bySize, smallest };
}
