/**
 * `npm start`: the service on this machine, through the very handlers the cloud runs.
 *
 * 1. Starts DynamoDB Local (`-sharedDb`, 127.0.0.1:8000, data under `.data/`, or in
 *    memory with `--in-memory`) unless `DYNAMODB_ENDPOINT` names one already running.
 * 2. Creates the table (core/db/table.ts) if missing.
 * 3. Serves the API on `PORT` (default 3000): each request becomes an API Gateway HTTP
 *    API v2 event for the function the route table names (scripts/local-gateway.ts); a
 *    request whose Host header or target cannot be read gets a JSON 400 naming it.
 * 4. Publishes the events outbox every second to the console: each event is printed as
 *    an `event {json}` line (scripts/publisher-loop.ts), where the cloud puts it on the
 *    EventBridge bus.
 * Configuration is the API contract's environment variables; without
 * `STRIPE_SECRET_KEY` the `manual` payment provider is used, and the banner says so.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { createConsoleBus } from "../core/bus/console.js";
import { createDynamoClient } from "../core/db/client.js";
import { TABLE } from "../core/db/table.js";
import { HTTP_FUNCTIONS, type HttpFunctionName } from "../functions/routes.js";
import { ensureTable, startDynamoLocal, type DynamoLocal } from "./dynamodb-local.js";
import { errorBody } from "../functions/http.js";
import { createRouteMatcher, localLambdaContext, requestUrl, toGatewayEvent, writeGatewayResult, type HttpHandler } from "./local-gateway.js";
import { startPublisherLoop } from "./publisher-loop.js";

const MAX_LOCAL_BODY = 10 * 1024 * 1024; // API Gateway's own limit; the handlers enforce 1 MB
const PUBLISH_INTERVAL_MS = 1000;

async function main() {
  const env = process.env;
  const inMemory = process.argv.includes("--in-memory");
  const port = Number(env.PORT ?? 3000);
  const tableName = (env.TABLE_NAME ||= TABLE.defaultName);

  // A. DynamoDB.
  let local: DynamoLocal | undefined;
  if (!env.DYNAMODB_ENDPOINT) {
    local = await startDynamoLocal({ port: 8000, dataDir: inMemory ? null : ".data" });
    env.DYNAMODB_ENDPOINT = local.endpoint;
  }
  const client = createDynamoClient({ endpoint: env.DYNAMODB_ENDPOINT });
  await ensureTable(client, tableName);
  client.destroy();

  // B. Configuration the handlers read.
  let generatedKey = false;
  if (!env.API_KEY) {
    env.API_KEY = randomBytes(24).toString("base64url");
    generatedKey = true;
  }
  // The portal's signing secret: a fresh one per run unless set (open portal sessions end with the run).
  const generatedPortalSecret = !env.PORTAL_SIGNING_SECRET;
  env.PORTAL_SIGNING_SECRET ||= randomBytes(48).toString("base64url");

  // C. The handlers, imported after the environment is set.
  const handlers = {} as Record<HttpFunctionName, HttpHandler>;
  for (const [name, path] of Object.entries(HTTP_FUNCTIONS) as Array<[HttpFunctionName, string]>) {
    const [file, exported] = path.split(".") as [string, string];
    const module = (await import(`../${file}.ts`)) as Record<string, HttpHandler>;
    handlers[name] = module[exported]!;
  }
  const match = createRouteMatcher();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= MAX_LOCAL_BODY) chunks.push(chunk);
    });
    req.on("end", async () => {
      try {
        if (size > MAX_LOCAL_BODY) {
          res.writeHead(413, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { code: "payload_too_large", message: "Request Entity Too Large" } }));
          return;
        }
        const target = requestUrl(req.url ?? "/", req.headers.host);
        if ("invalid" in target) {
          // Before any function, as API Gateway refuses a request it cannot read (400 > 401).
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify(errorBody("validation_error", "The request could not be read.", target.invalid)));
          return;
        }
        const { url } = target;
        const method = (req.method ?? "GET").toUpperCase();
        const route = match(method, url.pathname);
        const event = toGatewayEvent({
          method,
          url,
          headers: req.headers,
          body: Buffer.concat(chunks),
          sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
          route,
        });
        const result = await handlers[route.fn](event, localLambdaContext(route.fn));
        writeGatewayResult(res, result);
      } catch (error) {
        console.error(error);
        res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "internal_error", message: "The function failed." } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));

  const payments = env.STRIPE_SECRET_KEY
    ? `stripe${env.STRIPE_API_URL ? ` (API at ${env.STRIPE_API_URL})` : ""}${env.STRIPE_WEBHOOK_SECRET ? "" : "; STRIPE_WEBHOOK_SECRET unset: webhooks will be refused"}`
    : "manual (no STRIPE_SECRET_KEY): confirm orders with POST /users/{userId}/orders/{orderId}/confirm";
  console.log(
    [
      "user-credits is running locally",
      `  API        http://127.0.0.1:${port}`,
      `  API key    ${generatedKey ? `${env.API_KEY}  (generated; set API_KEY to choose one)` : "from API_KEY"}`,
      `  payments   ${payments}`,
      `  portal     POST /users/{userId}/portal-sessions mints links; signing secret ${generatedPortalSecret ? "generated for this run (set PORTAL_SIGNING_SECRET to keep sessions across runs)" : "from PORTAL_SIGNING_SECRET"}`,
      `  DynamoDB   ${env.DYNAMODB_ENDPOINT}${local ? (inMemory ? " (DynamoDB Local, in memory)" : " (DynamoDB Local, data in .data/)") : ""}, table ${tableName}`,
      `  events     printed below as "event {json}" lines (the outbox, published every ${PUBLISH_INTERVAL_MS / 1000} s; EventBridge in the cloud)`,
      `listening on http://127.0.0.1:${port}`,
    ].join("\n"),
  );

  // D. The events: the outbox, published to the console with the handlers' own runtime (and table).
  const { runtime } = await import("../functions/runtime.js");
  const publisher = startPublisherLoop((await runtime()).core, createConsoleBus(), PUBLISH_INTERVAL_MS);

  const stop = async () => {
    server.close();
    await publisher.stop();
    await local?.stop();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
