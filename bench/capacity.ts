/**
 * DynamoDB requests and capacity units per operation, through the real handlers in process
 * (API Gateway HTTP API v2 events, test/helpers/gateway.ts), on a client carrying the
 * capacity meter (test/helpers/capacity-meter.ts: `ReturnConsumedCapacity: "INDEXES"` on
 * every data request, i.e. the total and each index's part; transactions counted from
 * their items' sizes by AWS's rules, since DynamoDB Local reports 2 units for any small
 * transaction). Measured, `samples` times each:
 *
 * - consumption, cold: a user's first consumption in this process (1 token, with a key);
 * - consumption, warm: the same user's next consumption, in the same process;
 * - hold (`POST .../reservations`) and its commit (`POST .../commit`);
 * - order creation with the manual provider (`POST .../orders`);
 * - webhook fulfilment: a Stripe order (real `stripe` SDK against the local stand-in,
 *   test/helpers/stripe-stand-in.ts), then its `payment_intent.succeeded` delivered to the
 *   webhook handler signed with `stripe.webhooks.generateTestHeaderString`;
 * - credits read (`GET .../credits`).
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { GetItemCommand, type AttributeValue, type DynamoDBClient, type TransactWriteItem } from "@aws-sdk/client-dynamodb";
import { systemClock } from "../core/clock.js";
import { createDynamoClient } from "../core/db/client.js";
import { createDb } from "../core/db/service.js";
import { TABLE } from "../core/db/table.js";
import { buildRuntime, setRuntime, type RuntimeConfig } from "../functions/runtime.js";
import { ensureTable } from "../scripts/dynamodb-local.js";
import { itemSize, meterCapacity, type MeteredRequest } from "../test/helpers/capacity-meter.js";
import { invoke, type ApiRequest } from "../test/helpers/gateway.js";
import { seedGrants } from "../test/helpers/seed.js";
import { signedDelivery, StripeStandIn, stripeEvent } from "../test/helpers/stripe-stand-in.js";
import { BENCH_API_KEY, BENCH_GROUP, captureTransactions } from "./consumption.js";
import { median } from "./lib.js";

type Handler = (event: APIGatewayProxyEventV2, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

/** What one operation cost, over its samples. */
export interface OperationCost {
  samples: number;
  /** DynamoDB requests per operation: median, least, most. */
  requests: { median: number; min: number; max: number };
  /** Requests per operation by SDK command (means). */
  byCommand: Record<string, number>;
  /** Read request units per operation (mean). */
  readUnits: number;
  /** Write request units per operation (mean), index copies included. */
  writeUnits: number;
  /** Of `writeUnits`, those of the work index's copies (mean). */
  indexWriteUnits: number;
  /** Requests DynamoDB refused (a failed condition, a cancelled transaction), per operation (mean). */
  refusedRequests: number;
  /** The first sample's requests in order: command and units. */
  example: Array<{ command: string; units: number; indexUnits: number }>;
}

/** The operations measured, by name. */
export const OPERATIONS = ["consumptionCold", "consumptionWarm", "hold", "commit", "orderCreationManual", "webhookFulfilment", "creditsRead"] as const;
/** One of {@link OPERATIONS}. */
export type OperationName = (typeof OPERATIONS)[number];

/** One action of a warm consumption's transaction: which item, its size, what it costs. */
export interface TransactionAction {
  action: "Put" | "Update" | "ConditionCheck" | "Delete";
  /** ElectroDB entity of the item (`balance`, `ledgerEntry`, `idempotencyRecord`, ...). */
  entity: string;
  /** The item's size by AWS's rules (after the write, for an update), bytes. */
  bytes: number;
  /** Write units inside a transaction: 2 per KB begun (DynamoDB developer guide, "Amazon DynamoDB Transactions: How it works"). */
  units: number;
  /** True when the item's partition key is the balance item's (the user's). */
  onBalancePartitionKey: boolean;
}

/** Results of {@link benchCapacity}. */
export interface CapacityResults {
  samples: number;
  operations: Record<OperationName, OperationCost>;
  /** The items of one warm consumption's transaction (1 token, with a key), as sent. */
  consumptionTransaction: TransactionAction[];
  /** What the units rest on (the meter's rules). */
  method: string;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);

/** Summarizes the metered requests of each sample of one operation. */
function costOf(samples: MeteredRequest[][]): OperationCost {
  const byCommand: Record<string, number> = {};
  for (const sample of samples) for (const request of sample) byCommand[request.command] = (byCommand[request.command] ?? 0) + 1 / samples.length;
  const sum = (sample: MeteredRequest[], pick: (r: MeteredRequest) => number, kind?: "read" | "write") => sample.filter((r) => !kind || r.kind === kind).reduce((t, r) => t + pick(r), 0);
  const counts = samples.map((s) => s.length);
  return {
    samples: samples.length,
    requests: { median: median(counts), min: Math.min(...counts), max: Math.max(...counts) },
    byCommand,
    readUnits: mean(samples.map((s) => sum(s, (r) => r.units, "read"))),
    writeUnits: mean(samples.map((s) => sum(s, (r) => r.units, "write"))),
    indexWriteUnits: mean(samples.map((s) => sum(s, (r) => r.indexUnits, "write"))),
    refusedRequests: mean(samples.map((s) => s.filter((r) => r.failed).length)),
    example: (samples[0] ?? []).map(({ command, units, indexUnits }) => ({ command, units, indexUnits })),
  };
}

/**
 * Measures each operation `samples` times (one user per sample) on a fresh table of the
 * DynamoDB Local at `endpoint`, with a Stripe stand-in of its own.
 * @throws when a handler answers another status than the operation's success
 */
export async function benchCapacity(endpoint: string, samples: number): Promise<CapacityResults> {
  const table = `bench-capacity-${Date.now().toString(36)}`;
  const plain = createDynamoClient({ endpoint });
  const client = createDynamoClient({ endpoint });
  const meter = meterCapacity(client, { inspect: plain, keys: { key: [TABLE.partitionKey, TABLE.sortKey], index: [TABLE.workIndex.partitionKey, TABLE.workIndex.sortKey] } });
  const transactions = captureTransactions(client);
  const stripe = await new StripeStandIn().start();
  const webhookSecret = "whsec_bench_measurement";
  const auth = { authorization: `Bearer ${BENCH_API_KEY}` };
  const base: RuntimeConfig = { apiKeys: [BENCH_API_KEY], defaultCurrency: "usd", tableName: table, dynamoEndpoint: endpoint };
  const manual = buildRuntime(base, systemClock, client);
  const withStripe = buildRuntime({ ...base, stripeSecretKey: "sk_test_bench", stripeWebhookSecret: webhookSecret, stripeApiUrl: stripe.url }, systemClock, client);
  try {
    await ensureTable(plain, table);
    const handlers = {
      offers: (await import("../functions/offers.js")).handler as Handler,
      orders: (await import("../functions/orders.js")).handler as Handler,
      consumption: (await import("../functions/consumption.js")).handler as Handler,
      credits: (await import("../functions/credits.js")).handler as Handler,
      webhook: (await import("../functions/webhook.js")).handler as Handler,
    };
    /** Calls `handler` with `request`, metered; throws unless it answered `status`. */
    const measured = async (handler: Handler, request: ApiRequest, status: number): Promise<{ body: any; requests: MeteredRequest[] }> => {
      meter.take();
      const response = await invoke(handler, request);
      const requests = meter.take();
      if (response.status !== status) throw new Error(`${request.method} ${request.path}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`);
      return { body: response.body, requests };
    };

    // A. The catalog (one 100-token offer in the benchmark's group) and the users' grants.
    setRuntime(manual);
    const offer = { name: "100 tokens", offerGroup: BENCH_GROUP, cycle: "monthly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }] };
    await measured(handlers.offers, { method: "PUT", path: "/offers/pack-100", headers: auth, body: offer }, 200);
    const users = Array.from({ length: samples }, (_, i) => `capacity-user-${i}`);
    await seedGrants({ db: createDb(plain, table), clock: systemClock }, users.map((userId) => ({ userId, offerGroup: BENCH_GROUP, tokens: 1000, expires: null })));

    // B. Per user, in the order an app calls them.
    let consumptionTransaction: TransactionAction[] = [];
    const taken: Record<OperationName, MeteredRequest[][]> = Object.fromEntries(OPERATIONS.map((name) => [name, []])) as never;
    for (const [i, userId] of users.entries()) {
      const path = `/users/${encodeURIComponent(userId)}`;
      const consumption = (key: string): ApiRequest => ({ method: "POST", path: `${path}/consumptions`, headers: { ...auth, "idempotency-key": key }, body: { offerGroup: BENCH_GROUP, tokens: 1 } });
      taken.consumptionCold.push((await measured(handlers.consumption, consumption(`cold-${i}`), 201)).requests);
      taken.consumptionWarm.push((await measured(handlers.consumption, consumption(`warm-${i}`), 201)).requests);
      if (i === 0) consumptionTransaction = await transactionActions(plain, table, transactions.at(-1));
      const hold = await measured(handlers.consumption, { method: "POST", path: `${path}/reservations`, headers: { ...auth, "idempotency-key": `hold-${i}` }, body: { offerGroup: BENCH_GROUP, tokens: 5 } }, 201);
      taken.hold.push(hold.requests);
      const reservation = encodeURIComponent(hold.body.reservationId as string);
      taken.commit.push((await measured(handlers.consumption, { method: "POST", path: `${path}/reservations/${reservation}/commit`, headers: { ...auth, "idempotency-key": `commit-${i}` }, body: { tokens: 3 } }, 200)).requests);
      taken.orderCreationManual.push((await measured(handlers.orders, { method: "POST", path: `${path}/orders`, headers: { ...auth, "idempotency-key": `order-${i}` }, body: { offerId: "pack-100" } }, 201)).requests);
      taken.creditsRead.push((await measured(handlers.credits, { method: "GET", path: `${path}/credits`, headers: auth }, 200)).requests);
    }

    // C. Webhook fulfilment: a Stripe order (not counted here), paid, and its event delivered.
    setRuntime(withStripe);
    for (const [i, userId] of users.entries()) {
      const created = await measured(handlers.orders, { method: "POST", path: `/users/${encodeURIComponent(userId)}/orders`, headers: { ...auth, "idempotency-key": `stripe-order-${i}` }, body: { offerId: "pack-100" } }, 201);
      const intent = stripe.succeed(created.body.payment.paymentIntentId as string);
      const { body, signature } = signedDelivery(stripeEvent("payment_intent.succeeded", intent), webhookSecret);
      const delivered = await measured(handlers.webhook, { method: "POST", path: "/webhooks/stripe", headers: { "stripe-signature": signature, "content-type": "application/json" }, body }, 200);
      if (delivered.body.outcome !== "applied") throw new Error(`webhook fulfilment not applied: ${JSON.stringify(delivered.body)}`);
      taken.webhookFulfilment.push(delivered.requests);
    }

    return {
      samples,
      operations: Object.fromEntries(OPERATIONS.map((name) => [name, costOf(taken[name])])) as Record<OperationName, OperationCost>,
      consumptionTransaction,
      method:
        "ReturnConsumedCapacity INDEXES on every data request (test/helpers/capacity-meter.ts); TransactWriteItems counted by AWS's rules from the items' sizes (2 units per KB per item, plus index copies), empty Query/Scan and missing BatchGetItem keys at AWS's minimum read",
    };
  } finally {
    setRuntime(undefined);
    await stripe.stop();
    client.destroy();
    plain.destroy();
  }
}

/**
 * The actions of a captured transaction, each with its item's entity, size and units
 * (an update's item read back after the write, consistently, on the un-metered client).
 * @throws when there is no transaction (the consumption sent none)
 */
async function transactionActions(plain: DynamoDBClient, table: string, transaction: { TransactItems: TransactWriteItem[] } | undefined): Promise<TransactionAction[]> {
  if (!transaction) throw new Error("the warm consumption sent no TransactWriteItems");
  const kb = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
  const actions = await Promise.all(
    transaction.TransactItems.map(async (action) => {
      const [kind, body] = Object.entries(action).find(([, value]) => value !== undefined) as [TransactionAction["action"], { Item?: Record<string, AttributeValue>; Key?: Record<string, AttributeValue> }];
      const item = body.Item ?? (await plain.send(new GetItemCommand({ TableName: table, Key: body.Key!, ConsistentRead: true }))).Item ?? {};
      const bytes = itemSize(item);
      return { action: kind, entity: item.__edb_e__?.S ?? "unknown", bytes, units: 2 * kb(bytes), pk: (body.Item ?? body.Key)?.[TABLE.partitionKey]?.S };
    }),
  );
  const balancePk = actions.find((a) => a.entity === "balance")?.pk;
  return actions.map(({ pk, ...rest }) => ({ ...rest, onBalancePartitionKey: pk !== undefined && pk === balancePk }));
}
