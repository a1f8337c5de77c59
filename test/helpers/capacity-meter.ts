/**
 * What DynamoDB bills for a piece of work: a meter on a DynamoDB client that records, for
 * every request, its command and the capacity units it consumed, and the size of items as
 * DynamoDB counts it (for storage). Used by `npm run costs` (scripts/costs.ts).
 *
 * The units are DynamoDB's own where DynamoDB Local reports them right: the meter sets
 * `ReturnConsumedCapacity: "INDEXES"` (the total, split into the table's and each index's
 * part) on every command that takes it and reads `ConsumedCapacity` back. DynamoDB Local
 * returns it for every data command and applies AWS's rules to single-item reads and writes
 * (1 write unit per KB written, per item and per index copy; 1 read unit per 4 KB read
 * strongly, half eventually). Where it does not, the meter applies AWS's documented rules
 * itself (DynamoDB developer guide, "DynamoDB read and write operations" and "Amazon
 * DynamoDB Transactions: How it works"), and marks the request `adjusted`:
 * - `TransactWriteItems`: DynamoDB Local reports 2 units for a transaction of small items
 *   whatever their number (measured: 1, 2 or 3 puts of 0.4 KB all report 2). With an
 *   `inspect` client the meter reads each action's item before and after (consistently,
 *   outside the meter) and counts "two underlying reads or writes of every item in the
 *   transaction": 2 units per KB of the larger image, per action, condition checks
 *   included; plus the work index's copies, which a transaction updates after it commits
 *   (asynchronously, so at the standard 1 unit per KB): 1 write when an item enters or
 *   leaves the index or changes in it, 2 when its index key changes. The time spent reading
 *   the images is kept apart (`inspectMs`) so that it is not billed as the handler's.
 * - a `Query` or `Scan` that finds nothing reports 0 units: it is billed as a read of a
 *   missing item, 1 unit strongly consistent, 0.5 eventually ("If you perform a read
 *   operation on an item that does not exist, DynamoDB still consumes ... read throughput");
 * - a `BatchGetItem` reports units for the items found only: each key is read as its own
 *   `GetItem`, so each key not found adds 1 (or 0.5);
 * - a request refused by DynamoDB (a failed condition, a cancelled transaction) carries no
 *   `ConsumedCapacity`, yet it is billed ("capacity is consumed even when a transaction does
 *   not succeed"): it is counted as `failed`, a transaction at 2 units per KB of each item
 *   as it is, a single write at 1 unit.
 */
import { GetItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** One request as the meter saw it. */
export interface MeteredRequest {
  /** SDK command name, e.g. `TransactWriteItemsCommand`. */
  command: string;
  /** Read request units (RRU) or write request units (WRU). */
  kind: "read" | "write";
  /** Units billed: what DynamoDB reported, or AWS's minimum where that is more (see the module comment). */
  units: number;
  /** Of `units`, those consumed by the table's global secondary indexes. */
  indexUnits: number;
  /** What DynamoDB (Local) reported, before the minimums. */
  reportedUnits: number;
  /** True when `units` came from AWS's rules rather than from the reply alone. */
  adjusted: boolean;
  /** True when DynamoDB refused the request (condition failed, transaction cancelled). */
  failed: boolean;
}

const READS = new Set(["GetItemCommand", "BatchGetItemCommand", "QueryCommand", "ScanCommand", "TransactGetItemsCommand"]);
const WRITES = new Set(["PutItemCommand", "UpdateItemCommand", "DeleteItemCommand", "BatchWriteItemCommand", "TransactWriteItemsCommand"]);

/** The requests a client sent since the meter was last taken. */
export class CapacityMeter {
  private requests: MeteredRequest[] = [];
  /** Milliseconds spent reading transactions' item images (not the handler's time). */
  inspectMs = 0;

  /** Records one request (called by the middleware). */
  record(request: MeteredRequest): void {
    this.requests.push(request);
  }

  /** The requests recorded since the last `take()`, and forgets them (and `inspectMs`). */
  take(): MeteredRequest[] {
    const taken = this.requests;
    this.requests = [];
    this.inspectMs = 0;
    return taken;
  }
}

/** How the metered table is keyed: its primary key and its global secondary index's key attributes. */
export interface TableKeys {
  key: readonly [string, string];
  index: readonly [string, string];
}

type Item = Record<string, AttributeValue>;

type ConsumedCapacity = {
  CapacityUnits?: number;
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
};

/** Sums the units (and the index units) of a `ConsumedCapacity` or a list of them. */
function unitsOf(capacity: ConsumedCapacity | ConsumedCapacity[] | undefined): { units: number; indexUnits: number } | undefined {
  if (capacity === undefined) return undefined;
  let units = 0;
  let indexUnits = 0;
  for (const entry of Array.isArray(capacity) ? capacity : [capacity]) {
    units += entry.CapacityUnits ?? 0;
    for (const index of Object.values(entry.GlobalSecondaryIndexes ?? {})) indexUnits += index.CapacityUnits ?? 0;
  }
  return { units, indexUnits };
}

/** The least a read request is billed per item asked: 1 unit strongly consistent, 0.5 eventually. */
const minimumRead = (consistent: boolean | undefined) => (consistent ? 1 : 0.5);

/** Write units of `bytes`: 1 per KB begun, at least 1. */
const kilobytes = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));

/**
 * A key attribute as DynamoDB's wire format: the meter runs before the document client
 * (ElectroDB's, `@aws-sdk/lib-dynamodb`) marshalls its input, so keys may still be plain
 * strings or numbers.
 */
function wireValue(value: unknown): AttributeValue {
  if (typeof value === "string") return { S: value };
  if (typeof value === "number") return { N: String(value) };
  return value as AttributeValue;
}

/** The table and key of each action of a `TransactWriteItems` input. */
function transactionTargets(input: Record<string, any>, keys: TableKeys): Array<{ table: string; key: Item }> {
  return (input.TransactItems ?? []).map((action: Record<string, any>) => {
    const [type, body] = Object.entries(action)[0] as [string, Record<string, any>];
    const source = type === "Put" ? body.Item : body.Key;
    return { table: body.TableName, key: { [keys.key[0]]: wireValue(source[keys.key[0]]), [keys.key[1]]: wireValue(source[keys.key[1]]) } };
  });
}

/** Reads the current images of `targets` (consistently, one GetItem each), undefined where absent. */
async function images(inspect: DynamoDBClient, targets: Array<{ table: string; key: Item }>): Promise<Array<Item | undefined>> {
  return Promise.all(targets.map(async ({ table, key }) => (await inspect.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item));
}

/**
 * A transaction's units by AWS's rules (see the module comment): per action 2 units per KB
 * of the larger of its item's images; per work-index copy that changed, 1 unit per KB (2
 * when its index key moved).
 */
function transactionUnits(before: Array<Item | undefined>, after: Array<Item | undefined>, keys: TableKeys): { units: number; indexUnits: number } {
  let units = 0;
  let indexUnits = 0;
  const indexed = (item: Item | undefined) => item !== undefined && item[keys.index[0]] !== undefined && item[keys.index[1]] !== undefined;
  const indexKey = (item: Item) => JSON.stringify([item[keys.index[0]], item[keys.index[1]]]);
  before.forEach((old, i) => {
    const now = after[i];
    units += 2 * kilobytes(Math.max(old ? itemSize(old) : 0, now ? itemSize(now) : 0));
    const wasIn = indexed(old);
    const isIn = indexed(now);
    if (!wasIn && !isIn) return;
    if (wasIn && isIn && JSON.stringify(old) === JSON.stringify(now)) return; // a condition check, or nothing changed
    if (wasIn && isIn && indexKey(old!) !== indexKey(now!)) indexUnits += kilobytes(itemSize(old!)) + kilobytes(itemSize(now!));
    else indexUnits += kilobytes(Math.max(wasIn ? itemSize(old!) : 0, isIn ? itemSize(now!) : 0));
  });
  return { units: units + indexUnits, indexUnits };
}

/**
 * Adds the meter to `client` (a middleware at the `initialize` step, so that it sees the
 * command's input before it is serialized, and every logical request once, retries aside).
 * With `inspect` (another client on the same endpoint, not metered) and the table's keys,
 * transactions are counted from their items' images (see the module comment); without,
 * as DynamoDB reports them.
 * @returns the meter to `take()` from
 * @throws from the request, when a successful data request came back without `ConsumedCapacity`
 */
export function meterCapacity(client: DynamoDBClient, options: { inspect?: DynamoDBClient; keys?: TableKeys } = {}): CapacityMeter {
  const meter = new CapacityMeter();
  const { inspect, keys } = options;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? "unknown";
      const kind = READS.has(command) ? "read" : WRITES.has(command) ? "write" : undefined;
      if (!kind) return next(args);
      const input = args.input as Record<string, any>;
      input.ReturnConsumedCapacity = "INDEXES";

      // A. A transaction's items as they are, when the meter counts it itself.
      const counted = command === "TransactWriteItemsCommand" && inspect && keys;
      const targets = counted ? transactionTargets(input, keys) : [];
      let started = performance.now();
      const before = counted ? await images(inspect, targets) : [];
      meter.inspectMs += performance.now() - started;

      // B. The request; a refused one is billed all the same.
      let result: Awaited<ReturnType<typeof next>>;
      try {
        result = await next(args);
      } catch (error) {
        const units = counted ? transactionUnits(before, before, keys).units : command === "TransactWriteItemsCommand" ? (input.TransactItems?.length ?? 1) * 2 : 1;
        meter.record({ command, kind, units, indexUnits: 0, reportedUnits: 0, adjusted: true, failed: true });
        throw error;
      }
      const output = result.output as Record<string, any>;
      const reported = unitsOf(output.ConsumedCapacity);
      if (reported === undefined) throw new Error(`${command} returned no ConsumedCapacity: the meter cannot count it`);

      // C. The units: DynamoDB's, or AWS's rules where DynamoDB Local falls short.
      let { units, indexUnits } = reported;
      if (counted) {
        started = performance.now();
        const after = await images(inspect, targets);
        meter.inspectMs += performance.now() - started;
        ({ units, indexUnits } = transactionUnits(before, after, keys));
      } else if (command === "QueryCommand" || command === "ScanCommand") {
        units = Math.max(units, minimumRead(input.ConsistentRead));
      } else if (command === "BatchGetItemCommand") {
        for (const [table, request] of Object.entries(input.RequestItems ?? {}) as Array<[string, { Keys?: unknown[]; ConsistentRead?: boolean }]>) {
          const missing = (request.Keys?.length ?? 0) - (output.Responses?.[table]?.length ?? 0) - (output.UnprocessedKeys?.[table]?.Keys?.length ?? 0);
          units += Math.max(0, missing) * minimumRead(request.ConsistentRead);
        }
      }
      meter.record({ command, kind, units, indexUnits, reportedUnits: reported.units, adjusted: units !== reported.units, failed: false });
      return result;
    },
    { step: "initialize", name: "meterCapacity" },
  );
  return meter;
}

/**
 * The size of a DynamoDB item in bytes, by AWS's rules (developer guide, "Item sizes and
 * formats"): each attribute's name (UTF-8 bytes) plus its value: a string's UTF-8 bytes; a
 * number's 1 byte per two significant digits plus 1; a binary's bytes; a boolean or null 1
 * byte; a list or map 3 bytes plus 1 byte per element plus the elements (a map's keys
 * counted as names); a set the sum of its elements.
 */
export function itemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name, "utf8") + valueSize(value);
  return size;
}

/** The size of one attribute value (see {@link itemSize}). */
function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S, "utf8");
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((total, s) => total + Buffer.byteLength(s, "utf8"), 0);
  if (value.NS !== undefined) return value.NS.reduce((total, n) => total + numberSize(n), 0);
  if (value.BS !== undefined) return value.BS.reduce((total, b) => total + b.byteLength, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((total, element) => total + 1 + valueSize(element), 0);
  if (value.M !== undefined) return 3 + Object.entries(value.M).reduce((total, [key, element]) => total + 1 + Buffer.byteLength(key, "utf8") + valueSize(element), 0);
  return 0;
}

/** A number's size: its significant digits, two to a byte, plus one byte. */
function numberSize(text: string): number {
  const digits = text.replace(/^[-+]/, "").replace(/[eE].*$/, "").replace(".", "").replace(/^0+/, "").replace(/0+$/, "");
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}
