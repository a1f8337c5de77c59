/**
 * A table of its own for each test file, on the run's DynamoDB Local, with a client
 * that counts the requests it sends (at the client, per command).
 */
import { inject } from "vitest";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDynamoClient } from "../../core/db/client.js";
import { createDb, type Db } from "../../core/db/service.js";
import { ensureTable } from "../../scripts/dynamodb-local.js";

/**
 * Requests sent by a client, by command name (`GetItemCommand`, `TransactWriteItemsCommand`,
 * ...), the items they read (items returned by GetItem, BatchGetItem, Query, Scan), and the
 * capacity each consumed (DynamoDB's `ConsumedCapacity`, asked for on every data request:
 * read units for reads, write units for writes, doubled inside transactions).
 */
export class RequestCounter {
  byCommand: Record<string, number> = {};
  itemsRead = 0;
  /** One entry per data request, in order: its command and the capacity units it consumed. */
  consumed: Array<{ command: string; capacityUnits: number }> = [];
  get total(): number {
    return Object.values(this.byCommand).reduce((a, b) => a + b, 0);
  }
  /** Capacity units consumed by requests of `command` since the last reset. */
  unitsOf(command: string): number {
    return this.consumed.filter((entry) => entry.command === command).reduce((total, entry) => total + entry.capacityUnits, 0);
  }
  reset(): void {
    this.byCommand = {};
    this.itemsRead = 0;
    this.consumed = [];
  }
}

/** Commands that take `ReturnConsumedCapacity`. */
const CAPACITY_COMMANDS = new Set([
  "GetItemCommand",
  "PutItemCommand",
  "UpdateItemCommand",
  "DeleteItemCommand",
  "QueryCommand",
  "ScanCommand",
  "BatchGetItemCommand",
  "BatchWriteItemCommand",
  "TransactWriteItemsCommand",
  "TransactGetItemsCommand",
]);

/** Adds a counting middleware to `client`; every logical request counts once. */
export function countRequests(client: DynamoDBClient): RequestCounter {
  const counter = new RequestCounter();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? "unknown";
      counter.byCommand[name] = (counter.byCommand[name] ?? 0) + 1;
      const input = args.input as { ReturnConsumedCapacity?: string };
      if (CAPACITY_COMMANDS.has(name) && input.ReturnConsumedCapacity === undefined) input.ReturnConsumedCapacity = "TOTAL";
      const result = await next(args);
      const output = result.output as {
        Item?: unknown;
        Items?: unknown[];
        Responses?: Record<string, unknown[]>;
        ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }>;
      };
      counter.itemsRead += (output.Item ? 1 : 0) + (output.Items?.length ?? 0);
      for (const items of Object.values(output.Responses ?? {})) if (Array.isArray(items)) counter.itemsRead += items.length;
      const capacity = output.ConsumedCapacity;
      if (capacity !== undefined) {
        const units = (Array.isArray(capacity) ? capacity : [capacity]).reduce((total, entry) => total + (entry.CapacityUnits ?? 0), 0);
        counter.consumed.push({ command: name, capacityUnits: units });
      }
      return result;
    },
    { step: "initialize", name: "countRequests" },
  );
  return counter;
}

let sequence = 0;

/** Creates a fresh table for the calling test file and returns its handles. */
export async function createTestDb(label = "t"): Promise<{ db: Db; client: DynamoDBClient; tableName: string; requests: RequestCounter; endpoint: string }> {
  const endpoint = inject("dynamoEndpoint");
  const client = createDynamoClient({ endpoint });
  const tableName = `test-${label}-${process.pid}-${Date.now().toString(36)}-${sequence++}`.slice(0, 200);
  await ensureTable(client, tableName);
  const requests = countRequests(client);
  return { db: createDb(client, tableName), client, tableName, requests, endpoint };
}
