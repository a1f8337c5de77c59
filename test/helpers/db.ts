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
 * ...), and the items they read (items returned by GetItem, BatchGetItem, Query, Scan).
 */
export class RequestCounter {
  byCommand: Record<string, number> = {};
  itemsRead = 0;
  get total(): number {
    return Object.values(this.byCommand).reduce((a, b) => a + b, 0);
  }
  reset(): void {
    this.byCommand = {};
    this.itemsRead = 0;
  }
}

/** Adds a counting middleware to `client`; every logical request counts once. */
export function countRequests(client: DynamoDBClient): RequestCounter {
  const counter = new RequestCounter();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? "unknown";
      counter.byCommand[name] = (counter.byCommand[name] ?? 0) + 1;
      const result = await next(args);
      const output = result.output as { Item?: unknown; Items?: unknown[]; Responses?: Record<string, unknown[]> };
      counter.itemsRead += (output.Item ? 1 : 0) + (output.Items?.length ?? 0);
      for (const items of Object.values(output.Responses ?? {})) if (Array.isArray(items)) counter.itemsRead += items.length;
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
