/**
 * `npx tsx bench/single-write.ts`: issue 12 item 5's first question, measured on the engine
 * alone before any of the design is built: is a consumption written as ONE conditional
 * `UpdateItem` (the ledger entry and the key's answer kept inside the balance item, in a
 * bounded list of recent entries and a map of recent keys, later moved out by the stream)
 * faster and cheaper than today's 3-item `TransactWriteItems` (balance, ledger entry, key
 * record)? Both raw, side by side on DynamoDB Local, at concurrency 1, 8 and 32 over 64
 * items, medians of interleaved rounds; and the write units each bills, from
 * `ReturnConsumedCapacity` (a transaction's by AWS's rule: 2 per KB of each item).
 *
 * The single write's item carries `recent` entries and recent keys' answers (the design
 * keeps the last few, trimmed by the stream mover); the bench keeps `RECENT` of each (a ring
 * of entries, the oldest key removed in the same update), so the item's size is the steady
 * state's.
 */
import "./env.js";
import { CreateTableCommand, DynamoDBClient, PutItemCommand, TransactWriteItemsCommand, UpdateItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { startDynamoLocal } from "../scripts/dynamodb-local.js";
import { closedLoop, markdownTable, median, percentile, rotation } from "./lib.js";

const USERS = 64;
const RECENT = Number(process.env.RECENT ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CELL_MS = Number(process.env.CELL_MS ?? 2000);
const CONCURRENCIES = [1, 8, 32];

/** A ledger entry and a key's stored answer as a consumption writes them (sizes as measured: about 330 and 520 bytes). */
function entryOf(user: string, sequence: number) {
  return {
    entryId: `01KENTRY${String(sequence).padStart(18, "0")}`,
    userId: user,
    offerGroup: "calls",
    tokens: -1,
    reason: "consume",
    draws: [{ grantId: "01KGRANT000000000000000000", tokens: 1 }],
    metadata: { callId: `call-${sequence}` },
    createdAt: new Date().toISOString(),
  };
}
const answerOf = (entry: ReturnType<typeof entryOf>) => ({ requestHash: "9f".repeat(32), state: "done", outcome: { ok: true, result: { entry, balance: 1000 } } });

const local = await startDynamoLocal({ dataDir: null });
const client = new DynamoDBClient({ endpoint: local.endpoint, region: "local", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
client.middlewareStack.remove("loggerMiddleware");
const TableName = "single-write";
await client.send(
  new CreateTableCommand({
    TableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
  }),
);

// The items: for each user a balance item for each design, full of tokens.
const users = Array.from({ length: USERS }, (_, i) => `user-${i}`);
for (const user of users) {
  await client.send(new PutItemCommand({ TableName, Item: marshall({ pk: `tx#${user}`, sk: "balance", n: 1e12 }) }));
  const recent = Array.from({ length: RECENT }, (_, i) => entryOf(user, -1 - i));
  await client.send(new PutItemCommand({ TableName, Item: marshall({ pk: `one#${user}`, sk: "balance", n: 1e12, recent, keys: {}, count: 0 }) }));
}

let sequence = 0;
const units: Record<"transaction" | "single", number[]> = { transaction: [], single: [] };

/** Today's shape: the guarded balance update, the ledger entry, the key record, one transaction. */
async function transaction(user: string): Promise<"ok"> {
  const s = sequence++;
  const entry = entryOf(user, s);
  const one: Record<string, AttributeValue> = { ":one": { N: "1" } };
  const result = await client.send(
    new TransactWriteItemsCommand({
      ReturnConsumedCapacity: "TOTAL",
      TransactItems: [
        { Update: { TableName, Key: marshall({ pk: `tx#${user}`, sk: "balance" }), UpdateExpression: "SET n = n - :one", ConditionExpression: "n >= :one", ExpressionAttributeValues: one } },
        { Put: { TableName, Item: marshall({ pk: `tx#${user}`, sk: `entry#${entry.entryId}`, ...entry }), ConditionExpression: "attribute_not_exists(pk)" } },
        { Put: { TableName, Item: marshall({ pk: `tx#${user}`, sk: `key#k-${s}`, ...answerOf(entry) }), ConditionExpression: "attribute_not_exists(pk)" } },
      ],
    }),
  );
  if (s % 50 === 0) units.transaction.push(result.ConsumedCapacity?.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0) ?? 0);
  return "ok";
}

/** Per user: the next slot of its `recent` ring, and its keys, oldest first (the stream mover's trimming, done here inline). */
const rings = new Map<string, { slot: number; keys: string[] }>();

/**
 * The single-write shape: the same guard, the entry written into the item's ring of
 * RECENT entries, the key's answer added to its map of keys (the oldest removed once it
 * holds RECENT), all in one conditional `UpdateItem`.
 */
async function single(user: string): Promise<"ok"> {
  const s = sequence++;
  const entry = entryOf(user, s);
  const key = `k-${s}`;
  const ring = rings.get(user) ?? { slot: 0, keys: [] };
  rings.set(user, ring);
  const slot = ring.slot++ % RECENT;
  ring.keys.push(key);
  const old = ring.keys.length > RECENT ? ring.keys.shift() : undefined;
  const result = await client.send(
    new UpdateItemCommand({
      TableName,
      Key: marshall({ pk: `one#${user}`, sk: "balance" }),
      UpdateExpression: `SET n = n - :one, recent[${slot}] = :entry, #keys.#key = :answer, #count = #count + :one${old ? " REMOVE #keys.#old" : ""}`,
      ConditionExpression: "n >= :one AND attribute_not_exists(#keys.#key)",
      ExpressionAttributeNames: { "#keys": "keys", "#key": key, "#count": "count", ...(old ? { "#old": old } : {}) },
      ExpressionAttributeValues: marshall({ ":one": 1, ":entry": entry, ":answer": answerOf(entry) }),
      ReturnConsumedCapacity: "TOTAL",
    }),
  );
  if (s % 50 === 0) units.single.push(result.ConsumedCapacity?.CapacityUnits ?? 0);
  return "ok";
}

// Fill each single-write item's key map to its steady size first.
for (const user of users) for (let i = 0; i < RECENT; i++) await single(user);

const variants = { transaction, single } as const;
type Variant = keyof typeof variants;
const cells: Record<number, Record<Variant, Array<{ ops: number; p50: number; p99: number }>>> = {};
for (const c of CONCURRENCIES) cells[c] = { transaction: [], single: [] };
for (const variant of Object.keys(variants) as Variant[]) await closedLoop(32, 1000, (w) => variants[variant](users[w % USERS]!)); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const concurrency of CONCURRENCIES) {
    for (const variant of rotation(Object.keys(variants) as Variant[], round)) {
      let next = 0;
      const run = await closedLoop(concurrency, CELL_MS, () => variants[variant](users[next++ % USERS]!));
      cells[concurrency]![variant].push({ ops: run.opsPerSecond, p50: percentile(run.latencies, 50), p99: percentile(run.latencies, 99) });
      if (run.errors) console.log(`${variant} c${concurrency}: ${run.errors} errors, ${run.errorSamples[0]}`);
    }
  }
}

const cell = (c: number, v: Variant) => {
  const runs = cells[c]![v];
  return { ops: median(runs.map((r) => r.ops)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) };
};
const rows = CONCURRENCIES.map((c) => {
  const tx = cell(c, "transaction");
  const one = cell(c, "single");
  return [String(c), `${tx.ops.toFixed(0)} ops/s (p50 ${tx.p50.toFixed(1)} ms)`, `${one.ops.toFixed(0)} ops/s (p50 ${one.p50.toFixed(1)} ms)`, (one.ops / tx.ops).toFixed(2)];
});
console.log(`\nSingle-write shape vs today's transaction, raw, ${USERS} items, ${RECENT} recent entries kept, medians of ${ROUNDS} interleaved rounds of ${CELL_MS} ms\n`);
console.log(markdownTable(["concurrency", "3-item TransactWriteItems", "one UpdateItem, entry and key inside", "single / transaction"], rows));
console.log(`\nwrite units billed (DynamoDB Local's report; a transaction's counted by it as 2 per item): transaction ${median(units.transaction)}, single ${median(units.single)}`);
await local.stop();
