/**
 * `npm run costs`: what the service costs on AWS (us-east-1, on-demand list prices), from
 * what its handlers actually do.
 *
 * Method. The real handlers run in this process on DynamoDB Local (started here, in
 * memory), as the tests run them: `buildRuntime` + each function's Lambda handler called
 * with API Gateway HTTP API v2 events (test/helpers/gateway.ts), the real `stripe` SDK
 * against the local Stripe stand-in (test/helpers/stripe-stand-in.ts; Stripe provider,
 * PaymentIntents), webhook deliveries signed with `stripe.webhooks.generateTestHeaderString`,
 * and the stream-triggered publisher (functions/publisher.ts) putting events on a local
 * EventBridge `PutEvents` stand-in. The handlers' DynamoDB client carries a meter
 * (test/helpers/capacity-meter.ts) that sets `ReturnConsumedCapacity` on every data
 * request and records the units DynamoDB reports, except where DynamoDB Local reports
 * them wrong: transactions (Local says 2 units for any small transaction) are counted from
 * their items' sizes by AWS's rules, and empty reads get AWS's minimum (see that file).
 * Measured, per operation, over `--users` users (after a warm-up user): order creations,
 * webhook fulfilments (`payment_intent.succeeded`) each followed by the publisher's run
 * for the event it wrote, and consumptions with and without an `Idempotency-Key` by a
 * user holding a few grants (three paid orders); also a publisher run for a batch of 10
 * events, and the daily job on an idle table. For each: DynamoDB requests and read/write units, the
 * events written, the bytes the table keeps (by AWS's item-size rules: +100 bytes an item,
 * again for the index copy), the log bytes the function prints, the Stripe and PutEvents
 * calls, and the handler's wall time.
 *
 * Costs per million operations = DynamoDB units x on-demand unit prices + one API Gateway
 * request + one Lambda request + Lambda duration (1024 MB, arm64, as infra/api.ts
 * configures every function) + CloudWatch Logs ingestion + EventBridge events and the
 * publisher's own Lambda and DynamoDB share. Lambda duration = the warm in-process time
 * measured here (DynamoDB Local answers in a few ms, as DynamoDB does in-region) plus
 * `--stripe-ms` (stated, default 300 ms) per Stripe API call, since the stand-in answers in
 * about 1 ms; cold starts are not included. Idle = what a deployed stage costs with no
 * requests at all. Prices are list prices without free tiers (they are per account, not per
 * stage), each with its source in PRICES below.
 *
 * Prints a table and writes `bench/costs.json`. Options: `--users <n>` (default 10),
 * `--alarms <n>` (default: the count infra/alarms.ts creates, see ALARMS), `--stripe-ms <ms>`.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
process.env.AWS_REGION ??= "us-east-1";

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ScanCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, DynamoDBStreamEvent } from "aws-lambda";
import { systemClock } from "../core/clock.js";
import { createDynamoClient } from "../core/db/client.js";
import { TABLE } from "../core/db/table.js";
import { HTTP_FUNCTIONS } from "../functions/routes.js";
import { buildRuntime, setRuntime, type RuntimeConfig } from "../functions/runtime.js";
import { ensureTable, startDynamoLocal } from "./dynamodb-local.js";
import { localLambdaContext } from "./local-gateway.js";
import { itemSize, meterCapacity, type MeteredRequest } from "../test/helpers/capacity-meter.js";
import { EventBridgeStandIn } from "../test/helpers/eventbridge-stand-in.js";
import { invoke, type ApiRequest } from "../test/helpers/gateway.js";
import { signedDelivery, StripeStandIn, stripeEvent } from "../test/helpers/stripe-stand-in.js";
import scheduledEvent from "../test/fixtures/eventbridge-scheduled.json" with { type: "json" };
import streamSample from "../test/fixtures/dynamodb-event.json" with { type: "json" };

// --- Prices -----------------------------------------------------------------------------------

/** A list price in us-east-1 and where it was read. */
interface Price {
  usd: number;
  unit: string;
  source: string;
  /** The date the source gives for its figures (or when it was read, 2026-11-30, if it gives none). */
  asOf: string;
  /** Free tier or caveat worth knowing. */
  note?: string;
}

/**
 * The prices used, US East (N. Virginia), read 2026-11-30 through the `search` tool's stored
 * pages. AWS's own pricing pages render their rate tables in the browser, so their stored
 * copies carry the rules and free tiers but few numbers; where the number comes from a
 * third-party page quoting AWS, both are named. Check them against the AWS pages before
 * relying on them.
 */
const PRICES = {
  dynamoWrite: {
    usd: 0.625,
    unit: "per million write request units (on-demand, Standard table class)",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/ (rules); figure quoted by https://airbyte.com/data-engineering-resources/dynamodb-pricing (after AWS's November 2024 50% cut)",
    asOf: "2025-07-21",
  },
  dynamoRead: {
    usd: 0.125,
    unit: "per million read request units (on-demand, Standard table class)",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/ (rules); figure quoted by https://airbyte.com/data-engineering-resources/dynamodb-pricing",
    asOf: "2025-07-21",
  },
  dynamoStorage: {
    usd: 0.25,
    unit: "per GB-month of table storage (items + index copies, +100 bytes per item)",
    source: "https://aws.amazon.com/dynamodb/pricing/ (\"The first 25 GB consumed per month is free, and prices start from $0.25 per GB-month thereafter\")",
    asOf: "2026-11-30",
    note: "first 25 GB-month free per account and region",
  },
  pitr: {
    usd: 0.2,
    unit: "per GB-month of continuous backups (point-in-time recovery), on the table's size (indexes other than LSIs not counted)",
    source: "figure: finops.com.py \"DynamoDB backups\" (Continuous backups: $0.20 per GB-month, quoting https://aws.amazon.com/dynamodb/pricing/on-demand/); rule: DynamoDB developer guide, \"Point-in-time backups\" (priced on the size of the table and its LSIs)",
    asOf: "2026-11-30",
  },
  lambdaGbSecond: {
    usd: 0.0000133334,
    unit: "per GB-second, Arm (first 7.5 billion GB-s a month)",
    source: "https://aws.amazon.com/lambda/pricing/ (rules); figure quoted by https://cloudchipr.com/blog/aws-lambda-pricing (US East) and artillery's lib/platform/aws-lambda/prices.js (arm64 1333340e-11)",
    asOf: "2025",
    note: "free tier 400,000 GB-s a month per account",
  },
  lambdaRequest: {
    usd: 0.2,
    unit: "per million Lambda requests",
    source: "https://aws.amazon.com/lambda/pricing/ (worked examples, as transcribed verbatim by api-evangelist/aws-lambda plans, read 2026-09-20); https://unanswered.io/guide/aws-lambda-pricing-after-free-tier",
    asOf: "2026-09-20",
    note: "free tier 1 million requests a month per account",
  },
  apiGatewayHttp: {
    usd: 1.0,
    unit: "per million HTTP API requests (first 300 million a month; metered in 512 KB increments)",
    source: "https://aws.amazon.com/api-gateway/pricing/ (rules); figure quoted by https://awsforengineers.com/blog/aws-api-gateway-pricing-explained (US East)",
    asOf: "2025-05-19",
    note: "free tier 1 million calls a month for 12 months, new accounts only",
  },
  eventBridgeEvent: {
    usd: 1.0,
    unit: "per million custom events put on a bus (64 KB chunks)",
    source: "https://cloudburn.io/blog/amazon-eventbridge-pricing (\"All prices are for US East (N. Virginia) as of March 2026\")",
    asOf: "2026-03-13",
  },
  scheduler: {
    usd: 1.0,
    unit: "per million EventBridge Scheduler invocations",
    source: "https://cloudburn.io/blog/amazon-eventbridge-pricing",
    asOf: "2026-03-13",
    note: "14 million invocations a month free",
  },
  alarm: {
    usd: 0.1,
    unit: "per standard-resolution alarm metric per month",
    source: "https://c3x.dev/resources/aws/aws_cloudwatch_metric_alarm; free tier from https://aws.amazon.com/cloudwatch/pricing/ (\"10 Alarm metrics\")",
    asOf: "2026-11-30",
    note: "10 alarm metrics free per account",
  },
  logsIngestion: {
    usd: 0.5,
    unit: "per GB of CloudWatch Logs ingested (standard class)",
    source: "https://www.factualminds.com/blog/amazon-cloudwatch-pricing-metrics-logs-alarms-dashboards/",
    asOf: "2026-06-13",
    note: "5 GB a month free per account (https://aws.amazon.com/cloudwatch/pricing/)",
  },
  snsEmail: {
    usd: 2.0,
    unit: "per 100,000 e-mail notifications",
    source: "https://www.factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols/",
    asOf: "2026-06-13",
    note: "first 1,000 e-mails a month free; only alarms send e-mail here",
  },
  sqsRequest: {
    usd: 0.4,
    unit: "per million SQS requests (standard queue)",
    source: "https://okulbida.com/posts/aws-sqs-cost-surprises-short-polling; empty receives billed: https://aws.amazon.com/premiumsupport/knowledge-center/sqs-high-charges/",
    asOf: "2026-11-30",
    note: "first 1 million requests a month free",
  },
} satisfies Record<string, Price>;

// --- Stated parameters ------------------------------------------------------------------------

/**
 * Alarms a stage has, as infra/alarms.ts creates them: one per queue where failed work
 * waits (ExpiryJobFailures, ExpiryJobContinuationsDeadLetters), one per HTTP function
 * (functions/routes.ts), one per background function (daily job, its continuations, the
 * publisher). A PARAMETER read from the code's shape: `--alarms` overrides it.
 */
const ALARMS = 2 + Object.keys(HTTP_FUNCTIONS).length + 3;

/** Memory of every function (infra/api.ts, infra/bus.ts, infra/cron.ts), in GB. */
const FUNCTION_GB = 1024 / 1024;

/**
 * The log lines Lambda itself writes per invocation (`START`, `END`, `REPORT`), in bytes:
 * about 70 + 50 + 130 with a 36-character request id. Stated, not measured.
 */
const PLATFORM_LOG_BYTES = 250;

/**
 * The idle continuation queue (infra/cron.ts) is long-polled by Lambda's event source
 * mapping: 2 to 5 pollers when traffic is low (Lambda developer guide, "Configuring scaling
 * behavior for SQS event source mappings"), each `ReceiveMessage` waiting up to 20 s.
 */
const IDLE_POLLERS = { min: 2, max: 5 };
const SECONDS_PER_MONTH = 30 * 24 * 3600;

// --- Measuring --------------------------------------------------------------------------------

/** One measured call of a handler. */
interface Sample {
  ms: number;
  requests: MeteredRequest[];
  stripeCalls: number;
  putEventsCalls: number;
  eventsPut: number;
  logBytes: number;
  /** Events the call wrote into the outbox (their raw items, for the publisher's stream record). */
  newEvents: Array<Record<string, AttributeValue>>;
  /** Bytes the table holds more after the call: kept items, items with a TTL (deleted by DynamoDB later), index copies. */
  storage: { kept: number; expiring: number; index: number };
}

type Handler = (event: APIGatewayProxyEventV2, context?: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

/** Table snapshots (un-metered client): bytes per item as billed for storage. */
class TableSizes {
  private last = new Map<string, { size: number; expiring: boolean; indexed: boolean }>();
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  /** Reads the whole table; returns what grew since the previous call and the new event items. */
  async delta(): Promise<{ kept: number; expiring: number; index: number; newEvents: Array<Record<string, AttributeValue>> }> {
    const now = new Map<string, { size: number; expiring: boolean; indexed: boolean }>();
    const newEvents: Array<Record<string, AttributeValue>> = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(new ScanCommand({ TableName: this.table, ConsistentRead: true, ExclusiveStartKey: start }));
      for (const item of page.Items ?? []) {
        const key = `${item[TABLE.partitionKey]?.S}\u0000${item[TABLE.sortKey]?.S}`;
        const indexed = item[TABLE.workIndex.partitionKey] !== undefined && item[TABLE.workIndex.sortKey] !== undefined;
        const entry = { size: itemSize(item) + 100, expiring: item[TABLE.ttlAttribute] !== undefined, indexed };
        now.set(key, entry);
        if (!this.last.has(key) && item.__edb_e__?.S === "event") newEvents.push(item);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    const total = (map: typeof now) => {
      const sums = { kept: 0, expiring: 0, index: 0 };
      for (const entry of map.values()) {
        if (entry.expiring) sums.expiring += entry.size;
        else sums.kept += entry.size;
        if (entry.indexed) sums.index += entry.size;
      }
      return sums;
    };
    const before = total(this.last);
    const after = total(now);
    this.last = now;
    return { kept: after.kept - before.kept, expiring: after.expiring - before.expiring, index: after.index - before.index, newEvents };
  }
}

/** Everything a measured call needs to read its side effects. */
interface Rig {
  meter: ReturnType<typeof meterCapacity>;
  stripe: StripeStandIn;
  eventBridge: EventBridgeStandIn;
  sizes: TableSizes;
}

/**
 * Runs `call` and returns what it cost. The function's log output (stdout and stderr, where
 * Lambda's console goes to CloudWatch) is counted and kept off the terminal meanwhile.
 */
async function measure<T>(rig: Rig, call: () => Promise<T>): Promise<{ result: T; sample: Sample }> {
  await rig.sizes.delta();
  rig.meter.take();
  const stripeBefore = rig.stripe.requests.length;
  const putsBefore = rig.eventBridge.calls.length;
  const deliveredBefore = rig.eventBridge.delivered.length;
  let logBytes = 0;
  const writes = { out: process.stdout.write, err: process.stderr.write };
  const counting = ((chunk: string | Uint8Array) => {
    logBytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = counting;
  process.stderr.write = counting;
  const started = performance.now();
  let result: T;
  try {
    result = await call();
  } finally {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  }
  const ms = performance.now() - started - rig.meter.inspectMs;
  const requests = rig.meter.take();
  const { newEvents, ...storage } = await rig.sizes.delta();
  return {
    result,
    sample: {
      ms,
      requests,
      stripeCalls: rig.stripe.requests.length - stripeBefore,
      putEventsCalls: rig.eventBridge.calls.length - putsBefore,
      eventsPut: rig.eventBridge.delivered.length - deliveredBefore,
      logBytes,
      newEvents,
      storage,
    },
  };
}

/** Calls an HTTP handler; throws unless it answered `status`. */
async function call(handler: Handler, request: ApiRequest, status: number): Promise<any> {
  const response = await invoke(handler, request);
  if (response.status !== status) throw new Error(`${request.method} ${request.path}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/**
 * The DynamoDB stream event that wakes the publisher for `items`: AWS's sample record
 * (test/fixtures/dynamodb-event.json) with the item laid over `Keys`/`NewImage`, as
 * infra/bus.ts subscribes it (new images, inserts of event items).
 */
function streamEvent(items: Array<Record<string, AttributeValue>>): DynamoDBStreamEvent {
  const envelope = streamSample.Records[0]!;
  return {
    Records: items.map((item, index) => ({
      ...envelope,
      eventID: `${envelope.eventID.slice(0, 24)}${String(index).padStart(8, "0")}`,
      eventName: "INSERT",
      dynamodb: {
        ...envelope.dynamodb,
        Keys: { [TABLE.partitionKey]: item[TABLE.partitionKey]!, [TABLE.sortKey]: item[TABLE.sortKey]! },
        NewImage: item,
        StreamViewType: "NEW_IMAGE",
      },
    })),
  } as unknown as DynamoDBStreamEvent;
}

// --- Summaries --------------------------------------------------------------------------------

/** The median of `values`. */
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);

/** One operation's measurements, averaged over its samples (medians for time). */
interface OperationSummary {
  samples: number;
  dynamoRequests: number;
  byCommand: Record<string, number>;
  readUnits: number;
  writeUnits: number;
  indexWriteUnits: number;
  unitsAdjusted: number;
  failedRequests: number;
  unitsRange: { min: number; max: number };
  eventsWritten: number;
  stripeCalls: number;
  putEventsCalls: number;
  eventsPut: number;
  logBytes: number;
  storageBytes: { kept: number; expiring: number; index: number };
  ms: { median: number; min: number; max: number };
  /** The requests of the first sample, in order (the first 20): what one operation sends. */
  example: Array<Pick<MeteredRequest, "command" | "kind" | "units" | "indexUnits" | "reportedUnits">>;
}

/** Averages `samples` (each counted per `per` operations, e.g. 10 for a batch of 10 events). */
function summarize(samples: Sample[], per = 1): OperationSummary {
  const byCommand: Record<string, number> = {};
  for (const sample of samples) for (const request of sample.requests) byCommand[request.command] = (byCommand[request.command] ?? 0) + 1 / samples.length / per;
  const sum = (sample: Sample, pick: (r: MeteredRequest) => number, kind?: "read" | "write") =>
    sample.requests.filter((r) => !kind || r.kind === kind).reduce((total, r) => total + pick(r), 0);
  const totals = samples.map((s) => sum(s, (r) => r.units) / per);
  const each = (pick: (s: Sample) => number) => mean(samples.map(pick)) / per;
  return {
    samples: samples.length,
    dynamoRequests: each((s) => s.requests.length),
    byCommand: Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, round(v, 2)])),
    readUnits: each((s) => sum(s, (r) => r.units, "read")),
    writeUnits: each((s) => sum(s, (r) => r.units, "write")),
    indexWriteUnits: each((s) => sum(s, (r) => r.indexUnits, "write")),
    unitsAdjusted: each((s) => sum(s, (r) => (r.adjusted ? r.units - r.reportedUnits : 0))),
    failedRequests: each((s) => s.requests.filter((r) => r.failed).length),
    unitsRange: { min: Math.min(...totals), max: Math.max(...totals) },
    eventsWritten: each((s) => s.newEvents.length),
    stripeCalls: each((s) => s.stripeCalls),
    putEventsCalls: each((s) => s.putEventsCalls),
    eventsPut: each((s) => s.eventsPut),
    logBytes: each((s) => s.logBytes),
    storageBytes: { kept: each((s) => s.storage.kept), expiring: each((s) => s.storage.expiring), index: each((s) => s.storage.index) },
    ms: { median: median(samples.map((s) => s.ms)) / per, min: Math.min(...samples.map((s) => s.ms)) / per, max: Math.max(...samples.map((s) => s.ms)) / per },
    example: (samples[0]?.requests ?? []).slice(0, 20).map(({ command, kind, units, indexUnits, reportedUnits }) => ({ command, kind, units, indexUnits, reportedUnits })),
  };
}

const round = (value: number, digits = 4) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Dollars per million of one invocation of a function: request, duration, logs. */
function lambdaPerMillion(ms: number, logBytes: number) {
  const billedMs = Math.ceil(ms);
  return {
    billedMs,
    lambda: PRICES.lambdaRequest.usd + FUNCTION_GB * (billedMs / 1000) * PRICES.lambdaGbSecond.usd * 1e6,
    logs: ((logBytes + PLATFORM_LOG_BYTES) * 1e6 * PRICES.logsIngestion.usd) / 1024 ** 3,
  };
}

/** Dollars per million of an operation's DynamoDB units. */
const dynamoPerMillion = (op: OperationSummary) => op.readUnits * PRICES.dynamoRead.usd + op.writeUnits * PRICES.dynamoWrite.usd;

// --- The run ----------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: { users: { type: "string" }, alarms: { type: "string" }, "stripe-ms": { type: "string" } },
  strict: true,
});
const USERS = Number(args.users ?? 10);
const alarmCount = Number(args.alarms ?? ALARMS);
const STRIPE_CALL_MS = Number(args["stripe-ms"] ?? 300);
for (const [name, value] of [["--users", USERS], ["--alarms", alarmCount], ["--stripe-ms", STRIPE_CALL_MS]] as const) {
  if (!Number.isInteger(value) || value < (name === "--users" ? 1 : 0)) {
    console.error(`costs: ${name} must be a whole number${name === "--users" ? " >= 1" : " >= 0"}`);
    process.exit(2);
  }
}

const CONSUMPTIONS_PER_USER = 5;
const ORDERS_PER_USER = 3;
const WEBHOOK_SECRET = "whsec_costs_measurement";
const API_KEY = "costs-key-0123456789";
const BUS = "user-credits-costs-Events";
const auth = { authorization: `Bearer ${API_KEY}` };

// A. DynamoDB Local, the stand-ins, the tables, the metered client the handlers use.
console.log("costs: starting DynamoDB Local (in memory) and the Stripe and EventBridge stand-ins...");
const local = await startDynamoLocal({ dataDir: null });
const stripe = await new StripeStandIn().start();
const eventBridge = await new EventBridgeStandIn().start();
const client = createDynamoClient({ endpoint: local.endpoint });
const plain = createDynamoClient({ endpoint: local.endpoint });
const meter = meterCapacity(client, {
  inspect: plain,
  keys: { key: [TABLE.partitionKey, TABLE.sortKey], index: [TABLE.workIndex.partitionKey, TABLE.workIndex.sortKey] },
});
const stamp = Date.now().toString(36);
const idleTable = `costs-idle-${stamp}`;
const table = `costs-${stamp}`;
await ensureTable(plain, idleTable);
await ensureTable(plain, table);

/** Points the handlers at `tableName`, with the metered client, Stripe and the bus stand-in. */
function useTable(tableName: string): void {
  const config: RuntimeConfig = {
    apiKeys: [API_KEY],
    stripeSecretKey: "sk_test_costs",
    stripeWebhookSecret: WEBHOOK_SECRET,
    stripeApiUrl: stripe.url,
    defaultCurrency: "usd",
    tableName,
    dynamoEndpoint: local.endpoint,
    eventBusName: BUS,
    eventBridgeEndpoint: eventBridge.url,
  };
  setRuntime(buildRuntime(config, systemClock, client));
}

try {
  const handlers = {
    offers: (await import("../functions/offers.js")).handler as Handler,
    orders: (await import("../functions/orders.js")).handler as Handler,
    consumption: (await import("../functions/consumption.js")).handler as Handler,
    webhook: (await import("../functions/webhook.js")).handler as Handler,
    publisher: (await import("../functions/publisher.js")).handler,
    dailyJob: (await import("../functions/daily-job.js")).handler,
  };

  // B. Idle: the daily job on a table nobody uses (its first run sets up, the second is every day's).
  useTable(idleTable);
  const idleRig: Rig = { meter, stripe, eventBridge, sizes: new TableSizes(plain, idleTable) };
  const dailyRuns: Sample[] = [];
  for (let run = 0; run < 3; run++) {
    dailyRuns.push((await measure(idleRig, () => handlers.dailyJob(structuredClone(scheduledEvent), localLambdaContext("dailyJob", 900_000)))).sample);
  }

  // C. The catalog: one 100-token offer.
  useTable(table);
  const rig: Rig = { meter, stripe, eventBridge, sizes: new TableSizes(plain, table) };
  const offer = { name: "100 tokens", offerGroup: "calls", cycle: "monthly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }] };
  await call(handlers.offers, { method: "PUT", path: "/offers/pack-100", headers: auth, body: offer }, 200);

  // D. Users: orders, fulfilments (each followed by the publisher's run for its event), consumptions.
  console.log(`costs: measuring ${USERS} users (+1 warm-up): ${ORDERS_PER_USER} orders, fulfilments and publisher runs, ${CONSUMPTIONS_PER_USER} consumptions with a key and ${CONSUMPTIONS_PER_USER} without, each...`);
  const samples = { order: [] as Sample[], fulfilment: [] as Sample[], publisher: [] as Sample[], consumption: [] as Sample[], consumptionNoKey: [] as Sample[] };
  for (let user = 0; user <= USERS; user++) {
    const keep = <K extends keyof typeof samples>(kind: K, sample: Sample) => {
      if (user > 0) samples[kind].push(sample); // user 0 warms the code paths up
    };
    const userId = `user-${user}@example.com`;
    const path = `/users/${encodeURIComponent(userId)}`;
    for (let n = 0; n < ORDERS_PER_USER; n++) {
      const created = await measure(rig, () =>
        call(handlers.orders, { method: "POST", path: `${path}/orders`, headers: { ...auth, "idempotency-key": `order-${user}-${n}` }, body: { offerId: "pack-100" } }, 201),
      );
      keep("order", created.sample);
      const intent = stripe.succeed(created.result.payment.paymentIntentId);
      const { body, signature } = signedDelivery(stripeEvent("payment_intent.succeeded", intent), WEBHOOK_SECRET);
      const fulfilled = await measure(rig, () =>
        call(handlers.webhook, { method: "POST", path: "/webhooks/stripe", headers: { "stripe-signature": signature, "content-type": "application/json" }, body }, 200),
      );
      if (fulfilled.result.outcome !== "applied") throw new Error(`fulfilment not applied: ${JSON.stringify(fulfilled.result)}`);
      keep("fulfilment", fulfilled.sample);
      const published = await measure(rig, () => handlers.publisher(streamEvent(fulfilled.sample.newEvents), localLambdaContext("publisher", 60_000) as never));
      if (published.result.published !== fulfilled.sample.newEvents.length) throw new Error(`publisher published ${published.result.published} of ${fulfilled.sample.newEvents.length}`);
      keep("publisher", published.sample);
    }
    for (let n = 0; n < CONSUMPTIONS_PER_USER; n++) {
      const spent = await measure(rig, () =>
        call(handlers.consumption, { method: "POST", path: `${path}/consumptions`, headers: { ...auth, "idempotency-key": `spend-${user}-${n}` }, body: { offerGroup: "calls", tokens: 10, metadata: { callId: `c-${n}` } } }, 201),
      );
      keep("consumption", spent.sample);
    }
    for (let n = 0; n < CONSUMPTIONS_PER_USER; n++) {
      const bare = await measure(rig, () => call(handlers.consumption, { method: "POST", path: `${path}/consumptions`, headers: auth, body: { offerGroup: "calls", tokens: 10 } }, 201));
      keep("consumptionNoKey", bare.sample);
    }
  }

  // E. The publisher with a full batch: 10 fulfilments, then one run for their 10 inserts.
  const batchEvents: Array<Record<string, AttributeValue>> = [];
  for (let n = 0; n < 10; n++) {
    const { payment } = await call(handlers.orders, { method: "POST", path: "/users/batch-user/orders", headers: auth, body: { offerId: "pack-100" } }, 201);
    const { body, signature } = signedDelivery(stripeEvent("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId)), WEBHOOK_SECRET);
    const { sample } = await measure(rig, () =>
      call(handlers.webhook, { method: "POST", path: "/webhooks/stripe", headers: { "stripe-signature": signature, "content-type": "application/json" }, body }, 200),
    );
    batchEvents.push(...sample.newEvents);
  }
  const batch = await measure(rig, () => handlers.publisher(streamEvent(batchEvents), localLambdaContext("publisher", 60_000) as never));
  if (batch.result.published !== batchEvents.length) throw new Error(`batch publisher published ${batch.result.published} of ${batchEvents.length}`);

  // F. The daily job on the table with data (nothing due): its first run there, then every day's.
  let dailyWithData: Sample | undefined;
  for (let run = 0; run < 2; run++) {
    dailyWithData = (await measure(rig, () => handlers.dailyJob(structuredClone(scheduledEvent), localLambdaContext("dailyJob", 900_000)))).sample;
  }

  // G. Summaries and costs.
  const ops = {
    consumption: summarize(samples.consumption),
    orderCreation: summarize(samples.order),
    webhookFulfilment: summarize(samples.fulfilment),
    publisherPerEvent: summarize(samples.publisher),
    publisherPerEventBatch10: summarize([batch.sample], batchEvents.length),
    consumptionWithoutKey: summarize(samples.consumptionNoKey),
    dailyJobIdle: summarize(dailyRuns.slice(1)),
    dailyJobFirstRun: summarize(dailyRuns.slice(0, 1)),
    dailyJobWithData: summarize([dailyWithData!]),
  };

  /** Dollars per million of `op` itself: API Gateway + Lambda + logs + DynamoDB (+ its events, published one per publisher run). */
  const costOf = (op: OperationSummary, options: { api: boolean }) => {
    const durationMs = op.ms.median + op.stripeCalls * STRIPE_CALL_MS;
    const fn = lambdaPerMillion(durationMs, op.logBytes);
    const publisher = ops.publisherPerEvent;
    const pub = lambdaPerMillion(publisher.ms.median, publisher.logBytes);
    const events = op.eventsWritten * (PRICES.eventBridgeEvent.usd + pub.lambda + pub.logs + dynamoPerMillion(publisher));
    const parts = {
      apiGateway: options.api ? PRICES.apiGatewayHttp.usd : 0,
      lambda: fn.lambda,
      logs: fn.logs,
      dynamodb: dynamoPerMillion(op),
      events,
    };
    const total = Object.values(parts).reduce((a, b) => a + b, 0);
    return {
      billedMs: fn.billedMs,
      durationModel: `${op.ms.median.toFixed(1)} ms measured + ${op.stripeCalls.toFixed(1)} Stripe call(s) x ${STRIPE_CALL_MS} ms`,
      perMillion: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, round(v)])),
      totalPerMillion: round(total),
    };
  };

  /**
   * What the table keeps for good per million of a piece of work (items without a TTL, and
   * their index copies that stay), in GB, and what that costs a month (storage + PITR).
   * Idempotency records and webhook-event records carry a TTL and go after a day or more.
   */
  const kept = (parts: OperationSummary[]) => {
    const bytes = parts.reduce((total, op) => total + op.storageBytes.kept, 0);
    const indexBytes = parts.reduce((total, op) => total + op.storageBytes.index, 0);
    const expiring = parts.reduce((total, op) => total + op.storageBytes.expiring, 0);
    const gb = (n: number) => (n * 1e6) / 1024 ** 3;
    return {
      bytesEach: Math.round(bytes + indexBytes),
      expiringBytesEach: Math.round(expiring),
      gbPerMillion: round(gb(bytes + indexBytes), 3),
      usdPerMonthPerMillion: round(gb(bytes + indexBytes) * PRICES.dynamoStorage.usd + gb(bytes) * PRICES.pitr.usd, 3),
    };
  };
  const storage = {
    consumption: kept([ops.consumption]),
    paidOrder: kept([ops.orderCreation, ops.webhookFulfilment, ops.publisherPerEvent]),
  };
  const costs = {
    consumption: costOf(ops.consumption, { api: true }),
    orderCreation: costOf(ops.orderCreation, { api: true }),
    webhookFulfilment: costOf(ops.webhookFulfilment, { api: true }),
    consumptionWithoutKey: costOf(ops.consumptionWithoutKey, { api: true }),
  };
  const publishing = {
    perEventAlone: round(PRICES.eventBridgeEvent.usd + lambdaPerMillion(ops.publisherPerEvent.ms.median, ops.publisherPerEvent.logBytes).lambda + lambdaPerMillion(ops.publisherPerEvent.ms.median, ops.publisherPerEvent.logBytes).logs + dynamoPerMillion(ops.publisherPerEvent)),
    perEventInBatchesOf10: round(
      PRICES.eventBridgeEvent.usd +
        (lambdaPerMillion(batch.sample.ms, batch.sample.logBytes).lambda + lambdaPerMillion(batch.sample.ms, batch.sample.logBytes).logs) / batchEvents.length +
        dynamoPerMillion(ops.publisherPerEventBatch10),
    ),
  };

  // H. Idle: per month, no requests.
  const daily = ops.dailyJobIdle;
  const dailyRun = lambdaPerMillion(daily.ms.median, daily.logBytes);
  const runsPerMonth = 30;
  const pollRequests = (pollers: number) => pollers * (SECONDS_PER_MONTH / 20);
  const idle = {
    alarms: { count: alarmCount, usd: round(alarmCount * PRICES.alarm.usd, 2), note: `${alarmCount} standard alarms (infra/alarms.ts: 2 queue alarms + one per function); 10 alarm metrics are free per account` },
    dailyJob: {
      runsPerMonth,
      usd: round((runsPerMonth * (dailyRun.lambda + dailyRun.logs + dynamoPerMillion(daily) + PRICES.scheduler.usd)) / 1e6, 6),
      note: `${daily.dynamoRequests} DynamoDB requests (${round(daily.readUnits, 2)} RRU, ${round(daily.writeUnits, 2)} WRU) and ${daily.ms.median.toFixed(0)} ms a run on an empty table; Scheduler invocations within its free 14 million`,
    },
    continuationQueuePolling: {
      requestsPerMonth: { min: pollRequests(IDLE_POLLERS.min), max: pollRequests(IDLE_POLLERS.max) },
      usd: { min: round((pollRequests(IDLE_POLLERS.min) * PRICES.sqsRequest.usd) / 1e6, 2), max: round((pollRequests(IDLE_POLLERS.max) * PRICES.sqsRequest.usd) / 1e6, 2) },
      note: "Lambda long-polls the daily job's continuation queue (infra/cron.ts) even when it is empty: 2-5 pollers x one 20 s ReceiveMessage at a time; inside SQS's free 1 million requests a month unless the account uses them elsewhere",
    },
    storagePerGbMonth: { usd: round(PRICES.dynamoStorage.usd + PRICES.pitr.usd, 2), note: "table storage + PITR, per GB of table data (index copies add storage but not PITR); an empty table is a few KB" },
    free: "API Gateway, Lambda, the EventBridge bus, DynamoDB Streams (reads by a Lambda trigger are free), SST secrets (encrypted in SST's S3 bucket and bundled into the functions), the SNS topic (no e-mail while no alarm fires) and log groups cost nothing without traffic",
  };
  const idleTotal = { min: round(idle.alarms.usd + idle.dailyJob.usd + idle.continuationQueuePolling.usd.min, 2), max: round(idle.alarms.usd + idle.dailyJob.usd + idle.continuationQueuePolling.usd.max, 2) };

  // I. The report.
  const rows: Array<[string, OperationSummary, ReturnType<typeof costOf>]> = [
    ["consumption (Idempotency-Key, user with 3 grants)", ops.consumption, costs.consumption],
    ["order creation (Stripe PaymentIntent)", ops.orderCreation, costs.orderCreation],
    ["webhook fulfilment (payment_intent.succeeded)", ops.webhookFulfilment, costs.webhookFulfilment],
    ["consumption without Idempotency-Key", ops.consumptionWithoutKey, costs.consumptionWithoutKey],
  ];
  const line = (cells: string[], widths: number[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  const widths = [50, 6, 6, 6, 7, 8, 8, 8, 8, 8, 8, 9];
  console.log("\nPer operation (averages over the samples; time is the median):");
  console.log(line(["operation", "reqs", "RRU", "WRU", "events", "ms", "$ DDB/M", "$ λ/M", "$ API/M", "$ logs/M", "$ evt/M", "$ total/M"], widths));
  for (const [name, op, cost] of rows) {
    const p = cost.perMillion as Record<string, number>;
    console.log(
      line(
        [name, op.dynamoRequests.toFixed(1), op.readUnits.toFixed(2), op.writeUnits.toFixed(2), op.eventsWritten.toFixed(1), String(cost.billedMs), p.dynamodb!.toFixed(2), p.lambda!.toFixed(2), p.apiGateway!.toFixed(2), p.logs!.toFixed(2), p.events!.toFixed(2), cost.totalPerMillion.toFixed(2)],
        widths,
      ),
    );
  }
  console.log(`\nms = billed duration: ${rows.map(([name, , c]) => `${name.split(" (")[0]}: ${c.durationModel}`).join("; ")}.`);
  console.log(`Event publishing, per event: $${publishing.perEventAlone.toFixed(2)}/M when each event wakes the publisher alone, $${publishing.perEventInBatchesOf10.toFixed(2)}/M in batches of 10 (PutEvents $1.00/M included).`);
  console.log(
    `Storage kept for good: a consumption ${storage.consumption.bytesEach} B (${storage.consumption.gbPerMillion} GB per million, $${storage.consumption.usdPerMonthPerMillion}/month with PITR), ` +
      `a paid order (creation + fulfilment + publishing) ${storage.paidOrder.bytesEach} B (${storage.paidOrder.gbPerMillion} GB per million, $${storage.paidOrder.usdPerMonthPerMillion}/month); ` +
      `idempotency and webhook records add ${storage.consumption.expiringBytesEach} B and ${storage.paidOrder.expiringBytesEach} B for a day or more (TTL).`,
  );
  console.log(`\nIdle stage, per month: $${idleTotal.min.toFixed(2)}-$${idleTotal.max.toFixed(2)} (alarms $${idle.alarms.usd.toFixed(2)} for ${alarmCount}; continuation-queue polling $${idle.continuationQueuePolling.usd.min}-$${idle.continuationQueuePolling.usd.max}; daily job $${idle.dailyJob.usd}), plus $${idle.storagePerGbMonth.usd.toFixed(2)} per GB of data.`);
  const adjusted = Object.values(ops).reduce((total, op) => total + op.unitsAdjusted, 0);
  const failed = Object.values(ops).reduce((total, op) => total + op.failedRequests, 0);
  console.log(
    `Units: DynamoDB Local's ConsumedCapacity, except transactions (counted from their items' sizes by AWS's rules: Local reports 2 units for any small transaction) and empty reads (AWS's minimum); these rules moved ${round(adjusted, 2)} units over all averaged samples; refused requests: ${round(failed, 2)}.`,
  );

  const out = resolve("bench/costs.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        generatedAt: new Date().toISOString(),
        region: "us-east-1",
        method: "handlers in process on DynamoDB Local with a capacity meter (scripts/costs.ts); list prices without free tiers",
        parameters: { users: USERS, ordersPerUser: ORDERS_PER_USER, consumptionsPerUser: CONSUMPTIONS_PER_USER, stripeCallMs: STRIPE_CALL_MS, functionMemoryMb: 1024, architecture: "arm64", platformLogBytes: PLATFORM_LOG_BYTES, alarms: alarmCount, idlePollers: IDLE_POLLERS },
        prices: PRICES,
        operations: Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, roundDeep(op)])),
        costsPerMillion: costs,
        publishingPerMillionEvents: publishing,
        storageKept: storage,
        idlePerMonth: { ...idle, totalUsd: idleTotal },
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${out}`);
} finally {
  setRuntime(undefined);
  client.destroy();
  plain.destroy();
  await stripe.stop();
  await eventBridge.stop();
  await local.stop();
}

/** `value` with every number rounded to 4 decimals (for the JSON file). */
function roundDeep(value: unknown): unknown {
  if (typeof value === "number") return round(value);
  if (Array.isArray(value)) return value.map(roundDeep);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, roundDeep(v)]));
  return value;
}
