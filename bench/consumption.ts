/**
 * Consumption throughput, measured side by side in one process on one DynamoDB Local:
 *
 * - `handler`: `POST /users/{userId}/consumptions` of 1 token with an `Idempotency-Key`,
 *   through functions/consumption.ts's Lambda handler called in process with API Gateway
 *   HTTP API v2 events (test/helpers/gateway.ts `apiEvent`), on the runtime the Lambda
 *   builds (functions/runtime.ts `buildRuntime`, made current with `setRuntime`);
 * - `rawUpdate`: the engine's floor for one guarded write: a conditional `UpdateItem`,
 *   `SET n = n - :one` if `n >= :one`, on one item per user;
 * - `rawTransaction`: the engine's floor for the transactional design: a
 *   `TransactWriteItems` of the items a consumption writes: the same guarded update of the
 *   user's item, and puts of the ledger entry and the idempotency record a real consumption
 *   wrote (captured from one handler call, keys replaced, attributes and conditions kept),
 *   so that sizes and conditions are the consumption's own.
 *
 * {@link benchConsumption}: each variant at each concurrency over `users` users, in
 * interleaved rounds (round r runs, at each concurrency, the three variants in an order
 * rotated by r), each cell a closed loop of `cellMs`. {@link benchHotUser}: one
 * (user, offerGroup) at concurrency 32 against one raw item, with the conflicts retried
 * (core/retry.ts `retryStats`), the answers by status, and a check that the balance went
 * down by exactly the consumptions answered 201.
 */
import {
  PutItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type TransactWriteItem,
} from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { systemClock } from "../core/clock.js";
import { createDynamoClient } from "../core/db/client.js";
import { createDb } from "../core/db/service.js";
import { TABLE } from "../core/db/table.js";
import { retryStats } from "../core/retry.js";
import { handler as consumptionHandler } from "../functions/consumption.js";
import { handler as creditsHandler } from "../functions/credits.js";
import { buildRuntime, setRuntime, type Runtime, type RuntimeConfig } from "../functions/runtime.js";
import { ensureTable } from "../scripts/dynamodb-local.js";
import { localLambdaContext } from "../scripts/local-gateway.js";
import { apiEvent, invoke } from "../test/helpers/gateway.js";
import { seedGrants } from "../test/helpers/seed.js";
import { closedLoop, median, percentile, rotation, type LoadResult } from "./lib.js";

/** The API key the benchmark's runtimes accept. */
export const BENCH_API_KEY = "bench-key-0123456789";
/** The offer group every benchmark consumption draws from. */
export const BENCH_GROUP = "calls";
/** Tokens each benchmark user is seeded with: more than any run consumes. */
const SEEDED_TOKENS = 1_000_000;
/** The raw items' starting count. */
const RAW_START = 1_000_000_000;

/** The three ways of consuming that are compared. */
export const VARIANTS = ["handler", "rawTransaction", "rawUpdate"] as const;
/** One of {@link VARIANTS}. */
export type Variant = (typeof VARIANTS)[number];

type Handler = (event: APIGatewayProxyEventV2, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

/** One cell: one variant at one concurrency in one round. */
export interface Cell {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  /** Latency percentiles of the cell's operations, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Operations by outcome (HTTP status for the handler, `ok`/`refused` for raw writes). */
  outcomes: Record<string, number>;
  /** Operations that threw (a bug in the harness or the engine: expected 0). */
  errors: number;
  errorSamples?: string[];
}

/** Medians over the rounds of one variant at one concurrency. */
export interface Medians {
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Summarizes a closed-loop run into a {@link Cell}. */
function cellOf(result: LoadResult<string>): Cell {
  return {
    ops: result.ops,
    seconds: result.ms / 1000,
    opsPerSecond: result.opsPerSecond,
    p50Ms: percentile(result.latencies, 50),
    p99Ms: percentile(result.latencies, 99),
    outcomes: result.outcomes as Record<string, number>,
    errors: result.errors,
    ...(result.errorSamples.length ? { errorSamples: result.errorSamples } : {}),
  };
}

/** The medians of `cells`' throughput and percentiles. */
function mediansOf(cells: readonly Cell[]): Medians {
  return {
    opsPerSecond: median(cells.map((c) => c.opsPerSecond)),
    p50Ms: median(cells.map((c) => c.p50Ms)),
    p99Ms: median(cells.map((c) => c.p99Ms)),
  };
}

/** What a real consumption's transaction wrote besides the balance: each put, as sent. */
export interface CapturedPut {
  /** The entity (ElectroDB's `__edb_e__`), e.g. `ledgerEntry`, `idempotencyRecord`. */
  entity: string;
  /** Item size by AWS's rules, bytes. */
  bytes: number;
  put: NonNullable<TransactWriteItem["Put"]>;
}

/** The handles the consumption benchmarks share. */
export interface ConsumptionRig {
  table: string;
  rawTable: string;
  runtime: Runtime;
  /** The puts the raw transaction writes (the ledger entry and the idempotency record of a real consumption). */
  captured: CapturedPut[];
  /** One consumption through the handler; resolves to its HTTP status. */
  consumeViaHandler(userId: string, key: string): Promise<string>;
  /** One guarded `UpdateItem` of the raw item `id`; `ok` or `refused` (condition failed). */
  rawUpdate(id: string): Promise<string>;
  /** One 3-item transaction on the raw item `id`; `ok` or `refused` (cancelled). */
  rawTransaction(id: string, sequence: string): Promise<string>;
  /** The group's balance of `userId`, read through the credits handler. */
  balanceOf(userId: string): Promise<number>;
  close(): void;
}

/** The size of an item in bytes by AWS's rules (names + values; see test/helpers/capacity-meter.ts `itemSize`). */
type ItemSize = (item: Record<string, AttributeValue>) => number;

/**
 * Sets up the consumption benchmarks on `endpoint`: two tables (the service's, the raw
 * items'), the handler's runtime (made current), `users` seeded in the service's table, the
 * raw items, and the puts of one real consumption, captured at the wire.
 */
export async function prepareConsumptionRig(endpoint: string, users: readonly string[], itemSize: ItemSize): Promise<ConsumptionRig> {
  const stamp = Date.now().toString(36);
  const table = `bench-consumption-${stamp}`;
  const rawTable = `bench-raw-${stamp}`;
  const admin = createDynamoClient({ endpoint });
  await ensureTable(admin, table);
  await ensureTable(admin, rawTable);
  const config: RuntimeConfig = { apiKeys: [BENCH_API_KEY], defaultCurrency: "usd", tableName: table, dynamoEndpoint: endpoint };

  // A. The users' grants, and the raw items (one per user for each raw variant).
  await seedGrants({ db: createDb(admin, table), clock: systemClock }, users.map((userId) => ({ userId, offerGroup: BENCH_GROUP, tokens: SEEDED_TOKENS, expires: null })));
  const rawIds = users.flatMap((u) => [`update#${u}`, `tx#${u}`]);
  for (let i = 0; i < rawIds.length; i += 32) {
    await Promise.all(rawIds.slice(i, i + 32).map((id) => admin.send(new PutItemCommand({ TableName: rawTable, Item: rawItem(id) }))));
  }

  // B. One real consumption, its transaction captured as it went on the wire.
  const captureClient = createDynamoClient({ endpoint });
  const transactions = captureTransactions(captureClient);
  const captureUser = "bench-capture";
  await seedGrants({ db: createDb(admin, table), clock: systemClock }, [{ userId: captureUser, offerGroup: BENCH_GROUP, tokens: SEEDED_TOKENS, expires: null }]);
  setRuntime(buildRuntime(config, systemClock, captureClient));
  const status = await consumeOnce(captureUser, "bench-capture-key");
  if (status !== "201") throw new Error(`the captured consumption answered ${status}`);
  captureClient.destroy();
  const transaction = transactions.at(-1);
  if (!transaction) throw new Error("the consumption sent no TransactWriteItems to capture");
  const captured: CapturedPut[] = transaction.TransactItems.flatMap((action) =>
    action.Put ? [{ entity: action.Put.Item?.__edb_e__?.S ?? "unknown", bytes: itemSize(action.Put.Item!), put: action.Put }] : [],
  );

  // C. The handler's runtime, as the Lambda builds it, on a client of its own.
  const client = createDynamoClient({ endpoint });
  const runtime = buildRuntime(config, systemClock, client);
  setRuntime(runtime);
  const rawClient = createDynamoClient({ endpoint });
  const rawTxClient = createDynamoClient({ endpoint });
  const one = { ":one": { N: "1" } };
  const rawKey = (id: string) => ({ [TABLE.partitionKey]: { S: `raw#${id}` }, [TABLE.sortKey]: { S: "balance" } });

  return {
    table,
    rawTable,
    runtime,
    captured,
    consumeViaHandler: consumeOnce,
    async rawUpdate(id) {
      try {
        await rawClient.send(
          new UpdateItemCommand({ TableName: rawTable, Key: rawKey(id), UpdateExpression: "SET n = n - :one", ConditionExpression: "n >= :one", ExpressionAttributeValues: one }),
        );
        return "ok";
      } catch (error) {
        if ((error as { name?: string }).name === "ConditionalCheckFailedException") return "refused";
        throw error;
      }
    },
    async rawTransaction(id, sequence) {
      const items: TransactWriteItem[] = [
        { Update: { TableName: rawTable, Key: rawKey(id), UpdateExpression: "SET n = n - :one", ConditionExpression: "n >= :one", ExpressionAttributeValues: one } },
        ...captured.map(({ put, entity }) => ({
          Put: {
            ...put,
            TableName: rawTable,
            Item: { ...put.Item, [TABLE.partitionKey]: { S: `raw#${id}` }, [TABLE.sortKey]: { S: `${entity}#${sequence}` } },
          },
        })),
      ];
      try {
        await rawTxClient.send(new TransactWriteItemsCommand({ TransactItems: items }));
        return "ok";
      } catch (error) {
        if ((error as { name?: string }).name === "TransactionCanceledException") return "refused";
        throw error;
      }
    },
    async balanceOf(userId) {
      const response = await invoke(creditsHandler as Handler, { method: "GET", path: `/users/${encodeURIComponent(userId)}/credits`, headers: { authorization: `Bearer ${BENCH_API_KEY}` } });
      if (response.status !== 200) throw new Error(`GET credits answered ${response.status}`);
      const group = (response.body.groups as Array<{ offerGroup: string; balance: number }>).find((g) => g.offerGroup === BENCH_GROUP);
      if (!group) throw new Error(`${userId} has no ${BENCH_GROUP} balance`);
      return group.balance;
    },
    close() {
      client.destroy();
      rawClient.destroy();
      rawTxClient.destroy();
      admin.destroy();
    },
  };
}

/**
 * Keeps the input of every `TransactWriteItems` `client` sends, as it goes on the wire
 * (DynamoDB JSON, read from the HTTP request's body, bytes or text, at the SDK's `build` step): the items a
 * piece of code really writes, whatever builds them.
 * @returns the list the transactions are appended to, oldest first
 */
export function captureTransactions(client: DynamoDBClient): Array<{ TransactItems: TransactWriteItem[] }> {
  const transactions: Array<{ TransactItems: TransactWriteItem[] }> = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const raw = (args.request as { body?: unknown }).body;
      // The SDK serializes to bytes (a string in older versions).
      const body = raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("utf8") : raw;
      if (typeof body === "string" && body.includes('"TransactItems"')) transactions.push(JSON.parse(body));
      return next(args);
    },
    { step: "build", name: "benchCaptureTransactions" },
  );
  return transactions;
}

/** The raw item `id` with {@link RAW_START} in `n`. */
function rawItem(id: string): Record<string, AttributeValue> {
  return { [TABLE.partitionKey]: { S: `raw#${id}` }, [TABLE.sortKey]: { S: "balance" }, n: { N: String(RAW_START) } };
}

/** A prepared event per user: the consumption of 1 token; a key is laid over it per call. */
const templates = new Map<string, APIGatewayProxyEventV2>();

/** One consumption of 1 token by `userId` with `Idempotency-Key: key` through the Lambda handler; its HTTP status. */
async function consumeOnce(userId: string, key: string): Promise<string> {
  let template = templates.get(userId);
  if (!template) {
    template = apiEvent({
      method: "POST",
      path: `/users/${encodeURIComponent(userId)}/consumptions`,
      headers: { authorization: `Bearer ${BENCH_API_KEY}` },
      body: { offerGroup: BENCH_GROUP, tokens: 1 },
    });
    templates.set(userId, template);
  }
  const event = { ...template, headers: { ...template.headers, "idempotency-key": key } };
  const result = await (consumptionHandler as Handler)(event, localLambdaContext("consumption"));
  return String(result.statusCode ?? 200);
}

/** Results of {@link benchConsumption}. */
export interface ConsumptionResults {
  users: number;
  rounds: number;
  cellMs: number;
  concurrencies: number[];
  /** The puts of the raw transaction besides the balance update (a real consumption's, keys replaced): entity and size in bytes. */
  rawTransactionPuts: Array<{ entity: string; bytes: number }>;
  /** Per concurrency (as a string key), per variant: each round's cell and the medians. */
  byConcurrency: Record<string, Record<Variant, { rounds: Cell[]; median: Medians }> & { ratios: Ratios }>;
}

/** Ratios of the handler's median throughput to the raw variants' (and per round, each round's own). */
export interface Ratios {
  handlerToRawTransaction: number;
  handlerToRawUpdate: number;
  perRound: Array<{ handlerToRawTransaction: number; handlerToRawUpdate: number }>;
}

/** Runs one cell of `variant` at `concurrency` over `users`. */
async function runCell(rig: ConsumptionRig, variant: Variant, concurrency: number, users: readonly string[], cellMs: number, tag: string): Promise<Cell> {
  // Worker w takes the users w, w + concurrency, w + 2 x concurrency, ... in turn: every user is
  // in use, and none by two workers at once while there are at least as many users as workers.
  const mine = Array.from({ length: concurrency }, (_, w) => {
    const own = users.filter((_, i) => i % concurrency === w);
    return own.length ? own : [users[w % users.length]!];
  });
  const turn = new Array<number>(concurrency).fill(0);
  const userFor = (worker: number) => mine[worker]![turn[worker]!++ % mine[worker]!.length]!;
  const op = (worker: number, sequence: number): Promise<string> => {
    const user = userFor(worker);
    if (variant === "handler") return rig.consumeViaHandler(user, `${tag}-${sequence}`);
    if (variant === "rawUpdate") return rig.rawUpdate(`update#${user}`);
    return rig.rawTransaction(`tx#${user}`, `${tag}-${sequence}`);
  };
  return cellOf(await closedLoop(concurrency, cellMs, op));
}

/**
 * The comparison at each of `concurrencies`: `rounds` interleaved rounds, preceded by a
 * warm-up of every variant at concurrency 32 for `warmMs` (not recorded: DynamoDB Local's JIT
 * and the handler's first calls).
 * @param log progress lines
 */
export async function benchConsumption(
  rig: ConsumptionRig,
  options: { users: readonly string[]; rounds: number; cellMs: number; concurrencies: readonly number[]; warmMs: number; log: (line: string) => void },
): Promise<ConsumptionResults> {
  const { users, rounds, cellMs, concurrencies, log } = options;
  for (const variant of VARIANTS) await runCell(rig, variant, 32, users, options.warmMs, `warm-${variant}`);
  const cells: Record<string, Record<Variant, Cell[]>> = {};
  for (const c of concurrencies) cells[c] = { handler: [], rawTransaction: [], rawUpdate: [] };
  for (let round = 0; round < rounds; round++) {
    for (const concurrency of concurrencies) {
      for (const variant of rotation(VARIANTS, round)) {
        const cell = await runCell(rig, variant, concurrency, users, cellMs, `r${round}-c${concurrency}-${variant}`);
        cells[concurrency]![variant].push(cell);
        log(`round ${round + 1}, concurrency ${concurrency}, ${variant}: ${cell.opsPerSecond.toFixed(0)} ops/s, p50 ${cell.p50Ms.toFixed(1)} ms, p99 ${cell.p99Ms.toFixed(1)} ms${cell.errors ? `, ${cell.errors} errors (${cell.errorSamples?.[0]})` : ""}`);
      }
    }
  }
  const byConcurrency: ConsumptionResults["byConcurrency"] = {};
  for (const concurrency of concurrencies) {
    const of = cells[concurrency]!;
    const entry = Object.fromEntries(VARIANTS.map((v) => [v, { rounds: of[v], median: mediansOf(of[v]) }])) as Record<Variant, { rounds: Cell[]; median: Medians }>;
    byConcurrency[concurrency] = {
      ...entry,
      ratios: {
        handlerToRawTransaction: entry.handler.median.opsPerSecond / entry.rawTransaction.median.opsPerSecond,
        handlerToRawUpdate: entry.handler.median.opsPerSecond / entry.rawUpdate.median.opsPerSecond,
        perRound: of.handler.map((cell, r) => ({
          handlerToRawTransaction: cell.opsPerSecond / of.rawTransaction[r]!.opsPerSecond,
          handlerToRawUpdate: cell.opsPerSecond / of.rawUpdate[r]!.opsPerSecond,
        })),
      },
    };
  }
  const rawTransactionPuts = rig.captured.map(({ entity, bytes }) => ({ entity, bytes }));
  return { users: users.length, rounds, cellMs, concurrencies: [...concurrencies], rawTransactionPuts, byConcurrency };
}

/** Results of {@link benchHotUser}. */
export interface HotUserResults {
  concurrency: number;
  rounds: number;
  cellMs: number;
  handler: { rounds: Array<Cell & { conflictsRetried: number }>; median: Medians; conflictsRetried: number; conflictsPerConsumption: number; status5xx: number; status402: number; applied: number };
  rawUpdate: { rounds: Cell[]; median: Medians };
  /** Handler throughput over raw `UpdateItem` on one item (medians). */
  handlerToRawUpdate: number;
  /** Seeded tokens minus the consumptions answered 201 equals the balance read afterwards. */
  balanceCheck: { seeded: number; applied: number; expected: number; read: number; ok: boolean };
}

/**
 * One very busy (user, offerGroup): `concurrency` workers consuming 1 token each (a key
 * per consumption) from the same balance, against the same number of workers on one raw
 * item, in `rounds` interleaved rounds. Afterwards the balance is read through the credits
 * handler: it must be the seeded tokens minus the consumptions answered 201.
 */
export async function benchHotUser(
  rig: ConsumptionRig,
  options: { userId: string; rounds: number; cellMs: number; concurrency: number; log: (line: string) => void },
): Promise<HotUserResults> {
  const { userId, rounds, cellMs, concurrency, log } = options;
  const handlerCells: Array<Cell & { conflictsRetried: number }> = [];
  const rawCells: Cell[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const variant of rotation(["handler", "rawUpdate"] as const, round)) {
      if (variant === "handler") {
        const before = retryStats.conflicts;
        const cell = cellOf(await closedLoop(concurrency, cellMs, (_w, s) => rig.consumeViaHandler(userId, `hot-r${round}-${s}`)));
        const conflictsRetried = retryStats.conflicts - before;
        handlerCells.push({ ...cell, conflictsRetried });
        log(`hot user, round ${round + 1}, handler: ${cell.opsPerSecond.toFixed(0)} ops/s, p50 ${cell.p50Ms.toFixed(1)} ms, p99 ${cell.p99Ms.toFixed(1)} ms, ${conflictsRetried} conflicts retried, answers ${JSON.stringify(cell.outcomes)}`);
      } else {
        const cell = cellOf(await closedLoop(concurrency, cellMs, () => rig.rawUpdate("hot")));
        rawCells.push(cell);
        log(`hot user, round ${round + 1}, raw UpdateItem: ${cell.opsPerSecond.toFixed(0)} ops/s, p50 ${cell.p50Ms.toFixed(1)} ms, p99 ${cell.p99Ms.toFixed(1)} ms`);
      }
    }
  }
  const count = (status: (s: number) => boolean) => handlerCells.reduce((total, cell) => total + Object.entries(cell.outcomes).filter(([s]) => status(Number(s))).reduce((t, [, n]) => t + n, 0), 0);
  const applied = count((s) => s === 201);
  const conflictsRetried = handlerCells.reduce((total, cell) => total + cell.conflictsRetried, 0);
  const read = await rig.balanceOf(userId);
  const handlerMedian = mediansOf(handlerCells);
  const rawMedian = mediansOf(rawCells);
  return {
    concurrency,
    rounds,
    cellMs,
    handler: {
      rounds: handlerCells,
      median: handlerMedian,
      conflictsRetried,
      conflictsPerConsumption: applied ? conflictsRetried / applied : 0,
      status5xx: count((s) => s >= 500) + handlerCells.reduce((total, cell) => total + cell.errors, 0),
      status402: count((s) => s === 402),
      applied,
    },
    rawUpdate: { rounds: rawCells, median: rawMedian },
    handlerToRawUpdate: handlerMedian.opsPerSecond / rawMedian.opsPerSecond,
    balanceCheck: { seeded: SEEDED_TOKENS, applied, expected: SEEDED_TOKENS - applied, read, ok: read === SEEDED_TOKENS - applied },
  };
}

/** Seeds the hot user (one grant of {@link SEEDED_TOKENS}) and its raw item. */
export async function seedHotUser(rig: ConsumptionRig, endpoint: string, userId: string): Promise<void> {
  const admin: DynamoDBClient = createDynamoClient({ endpoint });
  try {
    await seedGrants({ db: createDb(admin, rig.table), clock: systemClock }, [{ userId, offerGroup: BENCH_GROUP, tokens: SEEDED_TOKENS, expires: null }]);
    await admin.send(new PutItemCommand({ TableName: rig.rawTable, Item: rawItem("hot") }));
  } finally {
    admin.destroy();
  }
}
