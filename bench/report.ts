/**
 * What `npm run bench` measured, as one JSON document (bench/results.json) and as the
 * README's "Performance" section in Markdown (the tables, how to reproduce, and what
 * DynamoDB's per-partition limit means for one very busy user). Pure: results in, text out.
 */
import type { CapacityResults, OperationName } from "./capacity.js";
import type { ColdStartResults } from "./cold-start.js";
import type { ConsumptionResults, HotUserResults } from "./consumption.js";
import type { DailyJobResults } from "./daily.js";
import { formatNumber, markdownTable, partitionCeiling, PARTITION_WRITE_UNITS_PER_SECOND } from "./lib.js";

/** Everything one run measured (bench/results.json). */
export interface BenchResults {
  /** ISO 8601 instant the run started. */
  date: string;
  node: string;
  machine: { platform: string; arch: string; cpus: number; cpuModel: string; memoryGb: number; loadAverage: number[] };
  /** The run's settings. */
  parameters: { rounds: number; cellMs: number; warmMs: number; users: number; concurrencies: number[]; hotConcurrency: number; capacitySamples: number; dailyJob: { interleaved: number[]; single: number[] }; initRuns: number };
  consumption?: ConsumptionResults;
  hotUser?: HotUserResults;
  capacity?: CapacityResults;
  /** Derived from `capacity`: what one partition's write limit allows one balance. */
  partition?: PartitionLimit;
  dailyJob?: DailyJobResults;
  coldStart?: ColdStartResults;
  /** Wall time of each part and of the whole run, seconds. */
  seconds: Record<string, number>;
  /** Issue 12's targets, checked ({@link checks}). */
  checks: Array<{ check: string; ok: boolean; value: string }>;
}

/** What the per-partition write limit allows one (user, offerGroup), from measured units. */
export interface PartitionLimit {
  limitWriteUnitsPerSecond: number;
  /** Write units of one warm consumption (the meter's, transaction by AWS's rules). */
  consumptionWriteUnits: number;
  /** Of those, the units on the user's partition key (the balance item's). */
  onUserPartitionKey: number;
  /** The balance item's own units per consumption. */
  balanceItemUnits: number;
  /** Consumptions a second one partition key takes when all of a consumption's items share it. */
  ceilingPerUserPartition: number;
  /** Consumptions a second one balance item takes at most, even split off alone (one item never spans partitions). */
  ceilingPerBalanceItem: number;
}

/** The partition arithmetic from the capacity measurement. */
export function partitionLimit(capacity: CapacityResults): PartitionLimit {
  const actions = capacity.consumptionTransaction;
  const onUser = actions.filter((a) => a.onBalancePartitionKey).reduce((t, a) => t + a.units, 0);
  const balance = actions.filter((a) => a.entity === "balance").reduce((t, a) => t + a.units, 0);
  const warm = capacity.operations.consumptionWarm.writeUnits;
  return {
    limitWriteUnitsPerSecond: PARTITION_WRITE_UNITS_PER_SECOND,
    consumptionWriteUnits: warm,
    onUserPartitionKey: onUser,
    balanceItemUnits: balance,
    ceilingPerUserPartition: partitionCeiling(onUser || warm),
    ceilingPerBalanceItem: partitionCeiling(balance || 1),
  };
}

const ops = (value: number) => formatNumber(value, 0);
const ms = (value: number) => formatNumber(value, value < 10 ? 1 : 0);
const x = (value: number) => formatNumber(value, 2);

/** Human names of the measured operations. */
const OPERATION_NAMES: Record<OperationName, string> = {
  consumptionCold: "consumption, cold (the user's first in this process)",
  consumptionWarm: "consumption, warm (the same user's next)",
  hold: "hold (`POST .../reservations`)",
  commit: "commit of a hold",
  orderCreationManual: "order creation (manual provider)",
  webhookFulfilment: "webhook fulfilment (`payment_intent.succeeded`)",
  creditsRead: "credits read (`GET .../credits`)",
};

/** The consumption table: per concurrency, each variant's ops/s with p50/p99, and the ratios. */
export function consumptionTable(c: ConsumptionResults): string {
  const cell = (m: { opsPerSecond: number; p50Ms: number; p99Ms: number }) => `${ops(m.opsPerSecond)} ops/s (p50 ${ms(m.p50Ms)} ms, p99 ${ms(m.p99Ms)} ms)`;
  return markdownTable(
    ["concurrency", "raw conditional `UpdateItem`", "raw 3-item `TransactWriteItems`", "handler", "handler / raw tx", "handler / raw `UpdateItem`"],
    c.concurrencies.map((n) => {
      const row = c.byConcurrency[n]!;
      return [String(n), cell(row.rawUpdate.median), cell(row.rawTransaction.median), cell(row.handler.median), x(row.ratios.handlerToRawTransaction), x(row.ratios.handlerToRawUpdate)];
    }),
  );
}

/** The hot-user table. */
export function hotUserTable(h: HotUserResults): string {
  return markdownTable(
    ["one (user, offerGroup), concurrency " + h.concurrency, "ops/s", "p50", "p99", "conflicts retried", "5xx", "402"],
    [
      ["handler", ops(h.handler.median.opsPerSecond), `${ms(h.handler.median.p50Ms)} ms`, `${ms(h.handler.median.p99Ms)} ms`, `${formatNumber(h.handler.conflictsRetried)} (${formatNumber(h.handler.conflictsPerConsumption, 2)} per consumption)`, formatNumber(h.handler.status5xx), formatNumber(h.handler.status402)],
      ["raw `UpdateItem` on one item", ops(h.rawUpdate.median.opsPerSecond), `${ms(h.rawUpdate.median.p50Ms)} ms`, `${ms(h.rawUpdate.median.p99Ms)} ms`, "-", "-", "-"],
    ],
  );
}

/** The capacity table: requests and units per operation. */
export function capacityTable(c: CapacityResults): string {
  const units = (value: number) => formatNumber(value, Number.isInteger(value) ? 0 : 2);
  return markdownTable(
    ["operation", "DynamoDB requests", "requests by command", "read units", "write units (of which index)"],
    (Object.keys(OPERATION_NAMES) as OperationName[]).map((name) => {
      const op = c.operations[name];
      const requests = op.requests.min === op.requests.max ? String(op.requests.median) : `${op.requests.median} (${op.requests.min}-${op.requests.max})`;
      const commands = Object.entries(op.byCommand)
        .map(([command, mean]) => [command, Math.round(mean * 100) / 100] as const)
        .map(([command, n]) => `${formatNumber(n, Number.isInteger(n) ? 0 : 2)} ${command.replace(/Command$/, "")}`)
        .join(", ");
      return [OPERATION_NAMES[name], requests, commands, units(op.readUnits), `${units(op.writeUnits)} (${units(op.indexWriteUnits)})`];
    }),
  );
}

/** The daily-job table. */
export function dailyJobTable(d: DailyJobResults): string {
  return markdownTable(
    ["due grants", "users", "runs", "time (median)", `x ${formatNumber(d.smallest)} due`, "requests per due grant"],
    Object.entries(d.bySize).map(([due, row]) => [formatNumber(Number(due)), formatNumber(Number(due) * 10), String(row.rounds.length), `${formatNumber(row.medianMs / 1000, 2)} s`, x(row.ratioToSmallest), formatNumber(row.requestsPerDueGrant, 2)]),
  );
}

/** The cold-start table. */
export function coldStartTable(c: ColdStartResults): string {
  return markdownTable(
    ["bundle", "KB", "init (median)", "x baseline"],
    c.bundles.map((b) => [b.name, formatNumber(b.kb, 1), `${ms(b.initMs)} ms`, x(b.initRatio)]),
  );
}

/** The paragraph on one very busy user, with the measured numbers. */
export function partitionParagraph(p: PartitionLimit, capacity: CapacityResults, hot?: HotUserResults): string {
  const items = capacity.consumptionTransaction.map((a) => `${a.entity} ${formatNumber(a.bytes)} B: ${a.units} WCU`).join(", ");
  const shared = capacity.consumptionTransaction.every((a) => a.onBalancePartitionKey);
  return [
    `**One very busy user.** DynamoDB serves each partition up to about ${formatNumber(p.limitWriteUnitsPerSecond)} write units a second ` +
      `(and 3,000 read units), and one item never spans partitions. The design keeps one balance item per (user, offerGroup): ` +
      `a user's groups are separate items (key \`user\` / \`offerGroup\`), so consumptions of different groups never contend for one item, ` +
      `and DynamoDB's adaptive capacity can move a hot item onto a partition of its own (item isolation: DynamoDB developer guide, "Burst and adaptive capacity"). ` +
      `Each consumption is a relative, guarded write (the drawn grants' \`remaining\` and the balance lowered in place, checked by condition; no read-modify-write of the whole item), ` +
      `so concurrent consumptions of one group conflict only when a grant they draw runs short or moves, not whenever another write came first` +
      `${hot ? ` (measured above: ${formatNumber(hot.handler.conflictsRetried)} conflicts retried over ${formatNumber(hot.handler.applied)} consumptions at concurrency ${hot.concurrency}, no 5xx)` : ""}.`,
    "",
    `The limit is in write units, and a consumption is a transaction: measured, a warm consumption of 1 token with an \`Idempotency-Key\` writes ` +
      `${formatNumber(p.consumptionWriteUnits, 0)} WCU (${items}; a transaction bills 2 units per KB of each item). ` +
      (shared
        ? `All ${capacity.consumptionTransaction.length} items sit under the user's partition key, so one user's partition at ${formatNumber(p.limitWriteUnitsPerSecond)} WCU/s takes about ` +
          `**${formatNumber(p.ceilingPerUserPartition)} consumptions a second** (${formatNumber(p.limitWriteUnitsPerSecond)} / ${formatNumber(p.onUserPartitionKey)}) in the cloud, ` +
          `all of that user's groups together until DynamoDB splits the partition, whatever Lambda's concurrency; `
        : `${formatNumber(p.onUserPartitionKey)} of them under the user's partition key: one user's partition at ${formatNumber(p.limitWriteUnitsPerSecond)} WCU/s takes about **${formatNumber(p.ceilingPerUserPartition)} consumptions a second**; `) +
      `even with the ledger entries and key records split away from it, the balance item alone (${formatNumber(p.balanceItemUnits)} WCU a consumption) caps one group at ${formatNumber(p.ceilingPerBalanceItem)} a second. ` +
      `Beyond that DynamoDB throttles (the SDK retries, then the service answers 503 \`service_unavailable\`). ` +
      `A user who needs more spreads the load: several offer groups, or consumptions batched by the app (a consumption's units hardly depend on its tokens: the same three items).`,
  ].join("\n");
}

/**
 * The README "Performance" section: how to reproduce, then each table with a line on what
 * it measures, then the paragraph on one very busy user. Parts not run are left out.
 */
export function readmeSection(r: BenchResults): string {
  const parts: string[] = ["## Performance", ""];
  parts.push(
    `Measured by \`npm run bench\` (\`bench/run.ts\`, results in \`bench/results.json\`) on ${r.date.slice(0, 10)}: DynamoDB Local (in memory) and the handlers in one ` +
      `Node ${r.node} process on a ${r.machine.cpus}-core ${r.machine.arch} machine (load average ${r.machine.loadAverage.map((l) => l.toFixed(1)).join(", ")} at the start). ` +
      `DynamoDB Local does not predict the cloud's absolute speed: read the ratios, measured side by side in one run, and the capacity units, which carry over.`,
    "",
    "```sh",
    `npm run bench                       # everything, about ${Math.ceil((r.seconds.total ?? 0) / 60)} min here; writes bench/results.json and bench/results.md`,
    "npm run bench -- --only consumption,hot   # some parts (consumption, hot, capacity, daily, cold)",
    "npm run bench -- --rounds 5 --cell-ms 3000  # more rounds, longer cells",
    "```",
  );
  if (r.consumption) {
    const c = r.consumption;
    parts.push(
      "",
      `### Consumption against the engine's floor`,
      "",
      `${c.users} users, each consumption 1 token with an \`Idempotency-Key\`, through \`functions/consumption.ts\`'s Lambda handler called in process with ` +
        `API Gateway v2 events, against a raw conditional \`UpdateItem\` (\`SET n = n - :one\` if \`n >= :one\`, one item per user) and a raw \`TransactWriteItems\` of the items a ` +
        `consumption writes (that update, and the ledger entry and idempotency record a real consumption wrote, keys replaced). Medians of ${c.rounds} interleaved rounds ` +
        `(each round runs the three at each concurrency, in an order rotated every round), ${formatNumber(c.cellMs / 1000, 1)} s a cell, closed loop.`,
      "",
      consumptionTable(c),
    );
  }
  if (r.hotUser) {
    const h = r.hotUser;
    parts.push(
      "",
      `### One very busy (user, offerGroup)`,
      "",
      `${h.concurrency} concurrent consumptions of 1 token (a key each) on one balance, against ${h.concurrency} concurrent \`UpdateItem\`s on one raw item; medians of ${h.rounds} interleaved rounds of ` +
        `${formatNumber(h.cellMs / 1000, 1)} s. Every consumption was applied once or refused: the balance read afterwards is the seeded tokens minus the ${formatNumber(h.handler.applied)} answered 201 ` +
        `(${h.balanceCheck.ok ? "checked" : `**check failed**: expected ${h.balanceCheck.expected}, read ${h.balanceCheck.read}`}). Conflicts retried: the version or guard conflicts the service retried (core/retry.ts \`retryStats\`), over all rounds. Handler / raw \`UpdateItem\`: ${x(h.handlerToRawUpdate)}.`,
      "",
      hotUserTable(h),
    );
  }
  if (r.capacity) {
    parts.push(
      "",
      `### DynamoDB requests and capacity units per operation`,
      "",
      `Through the handlers, with \`ReturnConsumedCapacity: INDEXES\` on every request (\`test/helpers/capacity-meter.ts\`; transactions counted by AWS's rules from their items' sizes, ` +
        `since DynamoDB Local reports 2 units for any small transaction); means over ${r.capacity.samples} users. Cold: the user's first consumption in this process; warm: the next one.`,
      "",
      capacityTable(r.capacity),
    );
  }
  if (r.partition && r.capacity) parts.push("", partitionParagraph(r.partition, r.capacity, r.hotUser));
  if (r.dailyJob) {
    parts.push(
      "",
      `### The daily job`,
      "",
      `Due grants among ten times as many users (one grant each; the users not due hold a grant expiring a year later, in the work index, ` +
        `and nothing else: the job never reads their other items), on a fresh table each, timed on \`core/daily-job.ts\` \`runDailyJob\`'s next day's run; ` +
        `the smaller sizes in ${r.parameters.rounds} interleaved rounds (median), the largest once.`,
      "",
      dailyJobTable(r.dailyJob),
    );
  }
  if (r.coldStart) {
    parts.push(
      "",
      `### Cold start`,
      "",
      `Each Lambda bundle, built as SST 4.17 builds it (\`scripts/bundles.ts\`), imported in fresh \`node\` processes, median of ${r.coldStart.runs}; ` +
        `the baseline bundle only constructs a DynamoDB client (${ms(r.coldStart.baselineMs)} ms).`,
      "",
      coldStartTable(r.coldStart),
    );
  }
  return `${parts.join("\n")}\n`;
}

/** Issue 12's targets, checked: a warm consumption's requests, the throughput ratios, the hot user's answers. */
export function checks(r: Pick<BenchResults, "consumption" | "hotUser" | "capacity">): BenchResults["checks"] {
  const out: BenchResults["checks"] = [];
  if (r.capacity) {
    const warm = r.capacity.operations.consumptionWarm.requests;
    out.push({ check: "a warm consumption makes exactly 1 DynamoDB request", ok: warm.min === 1 && warm.max === 1, value: warm.min === warm.max ? String(warm.max) : `${warm.min}-${warm.max}` });
  }
  if (r.consumption) {
    for (const n of r.consumption.concurrencies) {
      const ratio = r.consumption.byConcurrency[n]!.ratios.handlerToRawTransaction;
      out.push({ check: `handler >= 0.7x raw TransactWriteItems at concurrency ${n}`, ok: ratio >= 0.7, value: x(ratio) });
    }
  }
  if (r.hotUser) {
    out.push({ check: "hot user: no 5xx", ok: r.hotUser.handler.status5xx === 0, value: String(r.hotUser.handler.status5xx) });
    out.push({ check: "hot user: balance = seeded - consumptions answered 201", ok: r.hotUser.balanceCheck.ok, value: `${r.hotUser.balanceCheck.read} (expected ${r.hotUser.balanceCheck.expected})` });
  }
  return out;
}
