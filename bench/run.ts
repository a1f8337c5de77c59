/**
 * `npm run bench`: the service's performance, every part in one run on one DynamoDB Local
 * (started here, in memory), so that ratios compare numbers taken side by side:
 *
 * 1. `consumption`: consumption through the Lambda handler against a raw conditional
 *    `UpdateItem` and a raw 3-item `TransactWriteItems`, at concurrency 1, 8 and 32 over 64
 *    users, medians of interleaved rounds (bench/consumption.ts);
 * 2. `hot`: one (user, offerGroup) at concurrency 32 against one raw item (same file);
 * 3. `capacity`: DynamoDB requests and capacity units per operation (bench/capacity.ts);
 * 4. `daily`: the daily job at 100, 1,000 and 10,000 due grants (bench/daily.ts);
 * 5. `cold`: each Lambda bundle's init time against the baseline (bench/cold-start.ts).
 *
 * Writes bench/results.json (every number, the date, Node's version, the settings) and
 * bench/results.md (the README's "Performance" section), and prints the Markdown.
 * Options: `--only <parts>` (comma-separated, default all), `--rounds <n>` (default 3),
 * `--cell-ms <ms>` (each consumption cell, default 2000), `--out <file>` (default
 * bench/results.json; the Markdown goes beside it with `.md`).
 */
import "./env.js";
import { writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { setRuntime } from "../functions/runtime.js";
import { startDynamoLocal } from "../scripts/dynamodb-local.js";
import { itemSize } from "../test/helpers/capacity-meter.js";
import { benchCapacity } from "./capacity.js";
import { benchColdStart } from "./cold-start.js";
import { benchConsumption, benchHotUser, prepareConsumptionRig, seedHotUser } from "./consumption.js";
import { benchDailyJob } from "./daily.js";
import { round } from "./lib.js";
import { checks, partitionLimit, readmeSection, type BenchResults } from "./report.js";

const PARTS = ["consumption", "hot", "capacity", "daily", "cold"] as const;
type Part = (typeof PARTS)[number];

const { values: args } = parseArgs({
  options: { only: { type: "string" }, rounds: { type: "string" }, "cell-ms": { type: "string" }, out: { type: "string" } },
  strict: true,
});
const only = new Set((args.only ?? PARTS.join(",")).split(",").map((p) => p.trim()).filter(Boolean));
for (const part of only) {
  if (!(PARTS as readonly string[]).includes(part)) {
    console.error(`bench: unknown part ${part}; parts: ${PARTS.join(", ")}`);
    process.exit(2);
  }
}
const ROUNDS = Number(args.rounds ?? 3);
const CELL_MS = Number(args["cell-ms"] ?? 2000);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || !Number.isInteger(CELL_MS) || CELL_MS < 100) {
  console.error("bench: --rounds must be a whole number >= 1 and --cell-ms one >= 100");
  process.exit(2);
}
const OUT = resolve(args.out ?? "bench/results.json");
const MARKDOWN = OUT.replace(/\.json$/, "") + ".md";

const settings: BenchResults["parameters"] = {
  rounds: ROUNDS,
  cellMs: CELL_MS,
  warmMs: 3000,
  users: 64,
  concurrencies: [1, 8, 32],
  hotConcurrency: 32,
  capacitySamples: 5,
  dailyJob: { interleaved: [100, 1000], single: [10_000] },
  initRuns: 5,
};
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const runs = (part: Part) => only.has(part);

const started = performance.now();
const results: BenchResults = {
  date: new Date().toISOString(),
  node: process.version,
  machine: { platform: process.platform, arch: process.arch, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryGb: round(totalmem() / 1024 ** 3, 1), loadAverage: loadavg().map((l) => round(l, 2)) },
  parameters: settings,
  seconds: {},
  checks: [],
};
/** Runs one part, timing it. */
async function part<T>(name: Part, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  log(`${name}...`);
  try {
    return await run();
  } finally {
    results.seconds[name] = round((performance.now() - t0) / 1000, 1);
    log(`${name} done in ${results.seconds[name]} s`);
  }
}

log(`starting DynamoDB Local (in memory); free memory ${(freemem() / 1024 ** 3).toFixed(1)} GB, load ${loadavg()[0]!.toFixed(2)}`);
const local = await startDynamoLocal({ dataDir: null });
try {
  // 1-2. Consumption, then the hot user, on one rig (the handler's runtime, the raw tables).
  if (runs("consumption") || runs("hot")) {
    const users = Array.from({ length: settings.users }, (_, i) => `bench-user-${i}`);
    const rig = await prepareConsumptionRig(local.endpoint, users, itemSize);
    log(`raw transaction puts, as a consumption writes them: ${rig.captured.map((c) => `${c.entity} ${c.bytes} B`).join(", ")}`);
    try {
      if (runs("consumption")) {
        results.consumption = await part("consumption", () =>
          benchConsumption(rig, { users, rounds: ROUNDS, cellMs: CELL_MS, concurrencies: settings.concurrencies, warmMs: settings.warmMs, log }),
        );
      }
      if (runs("hot")) {
        results.hotUser = await part("hot", async () => {
          await seedHotUser(rig, local.endpoint, "bench-hot-user");
          return benchHotUser(rig, { userId: "bench-hot-user", rounds: ROUNDS, cellMs: CELL_MS, concurrency: settings.hotConcurrency, log });
        });
      }
    } finally {
      setRuntime(undefined);
      rig.close();
    }
  }
  // 3. Requests and capacity units per operation.
  if (runs("capacity")) {
    results.capacity = await part("capacity", () => benchCapacity(local.endpoint, settings.capacitySamples));
    results.partition = partitionLimit(results.capacity);
  }
  // 4. The daily job.
  if (runs("daily")) {
    results.dailyJob = await part("daily", () => benchDailyJob(local.endpoint, { ...settings.dailyJob, rounds: ROUNDS, log }));
  }
} finally {
  await local.stop();
}
// 5. Cold start (no DynamoDB: module init only).
if (runs("cold")) results.coldStart = await part("cold", () => benchColdStart(settings.initRuns));

results.seconds.total = round((performance.now() - started) / 1000, 1);
results.checks = checks(results);
writeFileSync(OUT, `${JSON.stringify(roundDeep(results), null, 2)}\n`);
const markdown = readmeSection(results);
writeFileSync(MARKDOWN, markdown);
console.log(markdown);
for (const check of results.checks) console.log(`${check.ok ? "ok  " : "MISS"} ${check.check}: ${check.value}`);
console.log(`\nwrote ${OUT} and ${MARKDOWN} in ${results.seconds.total} s`);

/** `value` with every number rounded to 3 decimals (for the JSON file). */
function roundDeep(value: unknown): unknown {
  if (typeof value === "number") return round(value);
  if (Array.isArray(value)) return value.map(roundDeep);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, roundDeep(v)]));
  return value;
}
