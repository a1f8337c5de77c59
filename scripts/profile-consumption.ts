/**
 * `npx tsx scripts/profile-consumption.ts`: the own CPU of one consumption (issue 12 item 2),
 * the whole Lambda handler from the API Gateway event to the 201 response, with DynamoDB
 * answered from memory so that no network time is counted but the SDK still marshals,
 * signs, serializes and parses every request and response.
 *
 * Method.
 * 1. Capture (DynamoDB Local, started here in memory unless `--canned <file>`): a group's
 *    settings (a low-balance threshold) and `--grants` promotional grants are written
 *    through core (core/offer-groups.ts `putOfferGroup`, core/grants.ts
 *    `createPromotionalGrant`), then one consumption goes through the handler; a
 *    middleware on the client records the raw HTTP exchanges of that consumption (its
 *    `BatchGetItem` and its `TransactWriteItems`: status, headers, JSON body).
 * 2. Replay: the runtime (functions/runtime.ts `buildRuntime`, the same config shape as in
 *    Lambda) gets a `DynamoDBClient` built as in Lambda (`new DynamoDBClient({})`, region
 *    and credentials from `AWS_*` variables, the default endpoint) whose `requestHandler`
 *    (Smithy's `HttpHandler` interface: `handle(request) -> { response }`) answers each
 *    operation with its captured response, its body a stream as Node's HTTP handler gives
 *    it. Every call is a new `Idempotency-Key` for the same user and group, a million
 *    tokens a grant, so no grant empties and no low-balance threshold is crossed in a run:
 *    every call takes the common path (one guarded draw, the ledger entry, the key's record).
 * 3. Measure, in two modes (`--mode cached|read|both`, default both): `cached` is the
 *    runtime as Lambda builds it, with its per-instance balance cache (core/balance-cache.ts,
 *    when the runtime has one): after the first call the consumption plans on the copy its
 *    last write left and sends only its transaction; `read` is the same runtime without the
 *    cache, so every call reads (a cold entry: another user, or a copy that cannot be used).
 *    `--warmup` calls (default 5,000: Node 24 tiers its hot functions up later than Node
 *    20), then `--calls` (default 20,000) in `--rounds` (default 10), one at a time as a
 *    Lambda instance serves them; events and Lambda
 *    contexts are built before the clock starts. Reported: own CPU per call
 *    (`process.cpuUsage`, user + system, all threads of the process, GC included) and wall
 *    time per call, per round and their median. Checked: each call answers 201 and sends
 *    exactly one `TransactWriteItems`, one `BatchGetItem` too in `read` mode (at most one in
 *    `cached` mode), nothing else; failures are counted, and any makes the script exit 1.
 *    The machine's load average is printed: other processes on the same cores inflate
 *    own CPU too (caches, SMT), so compare runs made on a quiet machine.
 * 4. Engine: the Node.js running the script (20 here). Lambda runs Node 24 (nodejs24.x):
 *    `npm run profile:lambda-node` runs this script on it (scripts/lambda-node.sh).
 *
 * Options:
 *   --calls <n> --warmup <n> --rounds <n> --grants <n> --tokens <n>
 *   --mode cached|read|both  which path to measure (default both)
 *   --without-key            no Idempotency-Key (the key's record leaves the transaction)
 *   --profile <file>         write a V8 CPU profile of the measured calls only (node:inspector,
 *                            the profiler `node --cpu-prof` uses; project frames mapped back to
 *                            their .ts lines through tsx's source maps), then summarize it;
 *                            with --mode both, `<file>` gets `.cached` / `.read` before its extension
 *   --interval <us>          the profile's sampling interval (default 100 µs)
 *   --parts                  also time the parts in isolation ({@link measureParts}): ElectroDB
 *                            building the transaction, lib-dynamodb marshalling, the SDK's send
 *                            (serialize, sign, parse) of each request, readBalanceAndThreshold,
 *                            one ULID, the HTTP edge without core
 *   --canned <file>          replay this capture instead of starting DynamoDB Local
 *   --save-canned <file>     write the capture (a few KB of JSON)
 *   --json <file>            write the measurement as JSON
 *   --summarize <file>       only summarize a .cpuprofile (this script's, or `node --cpu-prof`'s;
 *                            `--window <from>-<to>` keeps the measured calls, the span a run
 *                            prints; a `--cpu-prof` profile keeps tsx's generated positions,
 *                            line 1 for project files); --top <n> rows per table (default 12)
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { readFileSync, writeFileSync } from "node:fs";
import { findSourceMap } from "node:module";
import { loadavg } from "node:os";
import { extname, resolve } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Session } from "node:inspector/promises";
import { BatchGetItemCommand, DynamoDBClient, TransactWriteItemsCommand, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context as LambdaContext } from "aws-lambda";
import { systemClock } from "../core/clock.js";
import { createDynamoClient } from "../core/db/client.js";
import { createPromotionalGrant } from "../core/grants.js";
import { putOfferGroup } from "../core/offer-groups.js";
import { buildRuntime, setRuntime, type Runtime, type RuntimeConfig } from "../functions/runtime.js";
import { handler } from "../functions/consumption.js";
import { createApi, honoPath, idempotencyOf, lambdaHandler, parsedBody, pathParams, validate } from "../functions/http.js";
import { consumptionBody, userPath } from "../functions/schemas.js";
import { apiEvent } from "../test/helpers/gateway.js";
import { localLambdaContext } from "./local-gateway.js";
import { ensureTable, startDynamoLocal } from "./dynamodb-local.js";

/** The API key of the profiled runtime. */
const API_KEY = "profile-key-0123456789";

/** One captured HTTP response of DynamoDB (headers lower-case, body the JSON text). */
export interface CannedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** What one consumption exchanged with DynamoDB, by operation (`BatchGetItem`, `TransactWriteItems`). */
export interface Canned {
  tableName: string;
  userId: string;
  offerGroup: string;
  /** Tokens of each consumption. */
  tokens: number;
  /** The JSON request bodies the consumption sent (low-level AttributeValue input). */
  requests: Record<string, string>;
  responses: Record<string, CannedResponse>;
}

/** The operation a DynamoDB JSON-protocol request names (`X-Amz-Target: DynamoDB_20120810.<Operation>`). */
function operationOf(headers: Record<string, string | undefined>): string {
  const target = headers["x-amz-target"] ?? headers["X-Amz-Target"] ?? "";
  return target.slice(target.indexOf(".") + 1);
}

/** The runtime configuration of the profiled handler. */
function profileConfig(tableName: string): RuntimeConfig {
  return { apiKeys: [API_KEY], defaultCurrency: "usd", tableName };
}

/** The consumption request of call `i` (a new Idempotency-Key each, unless `withKey` is false). */
function consumptionEvent(canned: Pick<Canned, "userId" | "offerGroup" | "tokens">, i: number, withKey = true): APIGatewayProxyEventV2 {
  return apiEvent({
    method: "POST",
    path: `/users/${encodeURIComponent(canned.userId)}/consumptions`,
    headers: { authorization: `Bearer ${API_KEY}`, ...(withKey ? { "idempotency-key": `profile-${i}-${process.pid}` } : {}) },
    body: { offerGroup: canned.offerGroup, tokens: canned.tokens },
  });
}

/**
 * Writes a group's settings and `grants` promotional grants on DynamoDB Local at `endpoint`
 * (table `tableName`, created if missing), sends one consumption through the handler, and
 * returns the raw exchanges of that consumption.
 * @throws Error when the consumption does not answer 201 or sends other requests than one
 *   BatchGetItem and one TransactWriteItems
 */
export async function captureCanned(options: { endpoint: string; tableName: string; grants?: number; tokens?: number }): Promise<Canned> {
  const { endpoint, tableName } = options;
  const grants = options.grants ?? 3;
  const tokens = options.tokens ?? 1;
  const client = createDynamoClient({ endpoint });
  await ensureTable(client, tableName);
  const exchanges: Array<{ operation: string; request: string; response: CannedResponse }> = [];
  // Inside the deserializer (deserialize step, low priority): sees the raw HTTP response.
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers: Record<string, string>; body?: unknown };
      const result = await next(args);
      const response = result.response as { statusCode: number; headers: Record<string, string>; body: AsyncIterable<Uint8Array> };
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
      const body = Buffer.concat(chunks);
      const sent = request.body instanceof Uint8Array ? Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength).toString("utf8") : String(request.body ?? "");
      exchanges.push({ operation: operationOf(request.headers), request: sent, response: { statusCode: response.statusCode, headers: { ...response.headers }, body: body.toString("utf8") } });
      response.body = Readable.from([body]);
      return result;
    },
    { step: "deserialize", priority: "low", name: "recordRawExchanges" },
  );
  const runtime = buildRuntime(profileConfig(tableName), systemClock, client);
  const userId = `profile-user-${Date.now().toString(36)}`;
  const offerGroup = "calls";
  try {
    await putOfferGroup(runtime.core, offerGroup, { lowBalanceThreshold: 100, expiryWarningDays: 7 });
    const year = 365 * 24 * 3600 * 1000;
    for (let g = 0; g < grants; g++) {
      // Expiries a year apart (the last never expires), a million tokens each: no grant
      // empties and no threshold is crossed during a run, whichever mode.
      const expires = g === grants - 1 ? null : new Date(Date.now() + (g + 1) * year).toISOString();
      await createPromotionalGrant(runtime.core, { userId, offerGroup, tokens: 1_000_000, expires, reason: `profile grant ${g + 1}` });
    }
    setRuntime(runtime);
    exchanges.length = 0;
    const result = await handler(consumptionEvent({ userId, offerGroup, tokens }, -1), localLambdaContext("consumption"));
    if (result.statusCode !== 201) throw new Error(`the captured consumption answered ${result.statusCode}: ${result.body}`);
    const operations = exchanges.map((exchange) => exchange.operation).join(", ");
    if (operations !== "BatchGetItem, TransactWriteItems") throw new Error(`the captured consumption sent ${operations}, not one BatchGetItem and one TransactWriteItems`);
    return {
      tableName,
      userId,
      offerGroup,
      tokens,
      requests: Object.fromEntries(exchanges.map((exchange) => [exchange.operation, exchange.request])),
      responses: Object.fromEntries(exchanges.map((exchange) => [exchange.operation, exchange.response])),
    };
  } finally {
    setRuntime(undefined);
    client.destroy();
  }
}

/** Requests answered by a {@link memoryHandler}, by operation. */
export type RequestCounts = Record<string, number>;

/**
 * A Smithy `HttpHandler` that answers each DynamoDB operation with its canned response
 * (body as a one-chunk stream, as Node's HTTP handler yields it) and counts the requests.
 * An operation without a canned response is answered with DynamoDB's JSON error for an
 * unknown operation (HTTP 400), so the call fails visibly.
 */
export function memoryHandler(responses: Record<string, CannedResponse>, counts: RequestCounts = {}) {
  const bodies = new Map(Object.entries(responses).map(([operation, response]) => [operation, Buffer.from(response.body, "utf8")]));
  const unknown = Buffer.from(JSON.stringify({ __type: "com.amazon.coral.service#UnknownOperationException", message: "no canned response" }));
  return {
    metadata: { handlerProtocol: "http/1.1" },
    async handle(request: { headers: Record<string, string> }) {
      const operation = operationOf(request.headers);
      counts[operation] = (counts[operation] ?? 0) + 1;
      const canned = responses[operation];
      const body = bodies.get(operation) ?? unknown;
      const headers = canned ? { ...canned.headers, "content-length": String(body.length) } : { "content-type": "application/x-amz-json-1.0", "content-length": String(body.length) };
      return { response: { statusCode: canned?.statusCode ?? 400, reason: canned ? "OK" : "Bad Request", headers, body: Readable.from([body]) } };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs() {
      return {};
    },
    destroy() {},
  };
}

/**
 * A DynamoDB client built as Lambda builds it (core/db/client.ts with no endpoint: region
 * and credentials from the `AWS_*` variables, here set to dummy values for this process)
 * whose HTTP handler answers from `canned`.
 */
export function replayClient(canned: Canned, counts: RequestCounts = {}): DynamoDBClient {
  process.env.AWS_REGION = "us-east-1";
  process.env.AWS_ACCESS_KEY_ID = "profile-dummy-key-id";
  process.env.AWS_SECRET_ACCESS_KEY = "profile-secret-access-key";
  process.env.AWS_SESSION_TOKEN = "profile-session-token";
  const requestHandler = memoryHandler(canned.responses, counts) as unknown as NonNullable<DynamoDBClientConfig["requestHandler"]>;
  return createDynamoClient({ requestHandler });
}

/** Own CPU and wall time of a run of calls. */
export interface Timing {
  calls: number;
  /** Mean own CPU per call, µs (user + system). */
  cpuUs: number;
  userUs: number;
  systemUs: number;
  /** Mean wall time per call, µs. */
  wallUs: number;
}

/** Calls `body` once for each of `count`, one at a time, and times the whole run. */
async function timed(count: number, body: (i: number) => Promise<unknown>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await body(i);
  const wall = Number(process.hrtime.bigint() - start) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  return { calls: count, cpuUs: (user + system) / count, userUs: user / count, systemUs: system / count, wallUs: wall / count };
}

type Handler = (event: APIGatewayProxyEventV2, context: LambdaContext) => Promise<APIGatewayProxyStructuredResultV2>;

/** Failures of a run: calls that did not answer 201, and the first such answer. */
interface Failures {
  count: number;
  first?: string;
}

/** The warm-up calls (a frame of its own, so profiles tell them from the measured ones). */
async function warmUp(call: Handler, events: APIGatewayProxyEventV2[], contexts: LambdaContext[], failures: Failures): Promise<void> {
  for (let i = 0; i < events.length; i++) check(await call(events[i]!, contexts[i]!), failures);
}

/** The measured calls `from`..`to` (the summarizer finds the measured window by this frame). */
async function timedCalls(call: Handler, events: APIGatewayProxyEventV2[], contexts: LambdaContext[], from: number, to: number, failures: Failures): Promise<Timing> {
  return timed(to - from, async (i) => check(await call(events[from + i]!, contexts[from + i]!), failures));
}

function check(result: APIGatewayProxyStructuredResultV2, failures: Failures): void {
  if (result.statusCode === 201) return;
  failures.count++;
  failures.first ??= `${result.statusCode} ${result.body}`;
}

/** Median of `values` (the mean of the middle two for an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * `cached`: the runtime as built (its balance cache, when it has one, serves the calls after
 * the first); `read`: the runtime without a balance cache (every call reads).
 */
export type Mode = "cached" | "read";

/** The result of {@link measureConsumption}. */
export interface Measurement {
  mode: Mode;
  /** False when the runtime has no balance cache (then `cached` is `read`). */
  runtimeHasCache: boolean;
  calls: number;
  warmup: number;
  rounds: Timing[];
  /** Median over the rounds of the mean own CPU per call, µs. */
  cpuUs: number;
  /** The least of the rounds' means, µs: the round least disturbed by other processes. */
  cpuUsMin: number;
  wallUs: number;
  failures: number;
  firstFailure?: string | undefined;
  requests: RequestCounts;
  /** The measured calls' span on the monotonic clock (µs, as V8 profiles time their samples): `--summarize --window`. */
  windowUs: [number, number];
  /** Requests per call (warm-up included), by operation. */
  requestsPerCall: Record<string, number>;
}

/**
 * Replays `canned` through the consumption handler: `warmup` calls, then `calls` in
 * `rounds`, each call with its own Idempotency-Key (unless `withKey` is false). With
 * `profile`, the measured calls (not the warm-up) run under the V8 CPU profiler and the
 * profile is returned.
 */
export async function measureConsumption(
  canned: Canned,
  options: { mode: Mode; calls: number; warmup: number; rounds: number; withKey?: boolean; profileIntervalUs?: number; profile?: boolean },
): Promise<{ measurement: Measurement; profile?: CpuProfile | undefined }> {
  const requests: RequestCounts = {};
  const client = replayClient(canned, requests);
  const runtime = buildRuntime(profileConfig(canned.tableName), systemClock, client);
  // Read loosely: the cache is the hot path's business (core/context.ts `balanceCache`).
  const core = runtime.core as unknown as Record<string, unknown>;
  const runtimeHasCache = core.balanceCache !== undefined;
  if (options.mode === "read") delete core.balanceCache;
  setRuntime(runtime);
  const total = options.warmup + options.calls;
  const events = Array.from({ length: total }, (_, i) => consumptionEvent(canned, i, options.withKey ?? true));
  const contexts = Array.from({ length: total }, () => localLambdaContext("consumption"));
  const failures: Failures = { count: 0 };
  const call = handler as Handler;
  try {
    await warmUp(call, events.slice(0, options.warmup), contexts.slice(0, options.warmup), failures);
    let session: Session | undefined;
    if (options.profile) {
      session = new Session();
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: options.profileIntervalUs ?? 100 });
      await session.post("Profiler.start");
    }
    const rounds: Timing[] = [];
    const perRound = Math.ceil(options.calls / options.rounds);
    const windowStart = Number(process.hrtime.bigint() / 1000n);
    for (let from = options.warmup; from < total; from += perRound) {
      rounds.push(await timedCalls(call, events, contexts, from, Math.min(total, from + perRound), failures));
    }
    const windowUs: [number, number] = [windowStart, Number(process.hrtime.bigint() / 1000n)];
    let profile: CpuProfile | undefined;
    if (session) {
      profile = remapToSources(((await session.post("Profiler.stop")) as { profile: CpuProfile }).profile);
      session.disconnect();
    }
    // One transaction a call; one read a call without the cache, at most one with it; nothing else.
    const reads = requests.BatchGetItem ?? 0;
    const writes = requests.TransactWriteItems ?? 0;
    const readsOk = options.mode === "read" || !runtimeHasCache ? reads === total : reads <= total;
    const others = Object.keys(requests).filter((operation) => operation !== "BatchGetItem" && operation !== "TransactWriteItems");
    if (writes !== total || !readsOk || others.length > 0) {
      failures.count += Math.max(1, Math.abs(total - writes));
      failures.first ??= `requests ${JSON.stringify(requests)} for ${total} calls`;
    }
    return {
      measurement: {
        mode: options.mode,
        runtimeHasCache,
        calls: options.calls,
        warmup: options.warmup,
        rounds,
        cpuUs: median(rounds.map((round) => round.cpuUs)),
        cpuUsMin: Math.min(...rounds.map((round) => round.cpuUs)),
        wallUs: median(rounds.map((round) => round.wallUs)),
        failures: failures.count,
        firstFailure: failures.first,
        requests,
        windowUs,
        requestsPerCall: Object.fromEntries(Object.entries(requests).map(([operation, count]) => [operation, Math.round((1000 * count) / total) / 1000])),
      },
      profile,
    };
  } finally {
    setRuntime(undefined);
    client.destroy();
  }
}

/** Mean own CPU of each part of a consumption timed alone, µs per call. */
export type Parts = Record<string, number>;

/**
 * Times the parts of a consumption alone, on the replay client, `count` times each:
 * - `sdk.TransactWriteItems` / `sdk.BatchGetItem`: the low-level command with the input
 *   the consumption sent (serialize, endpoint, sign, the in-memory handler, parse);
 * - `libdynamodb.TransactWrite` / `libdynamodb.BatchGet`: the same through lib-dynamodb's
 *   command with the document-level input (adds marshall/unmarshall);
 * - `electrodb.transactionParams`: building the transaction as the hot path does
 *   (core/balances.ts `balanceDrawWrite`, core/ledger.ts `ledgerEntryWrite`,
 *   core/idempotency.ts `outcomeWrite`, then `service.transaction.write(...).params()`),
 *   with `electrodb.commits` the three `commit()` builders alone;
 * - `core.readBalanceAndThreshold`: the read (ElectroDB key params, BatchGet, parse);
 * - `sdk.TransactWriteItems without loggerMiddleware`: the SDK's logger middleware removed
 *   (it filters the whole input and output for the log even with the default no-op logger);
 * - `ids.newId`: one ULID (core/ids.ts; library `ulid`, one `getRandomValues` per character);
 * - `edge.withoutConsume`: the handler with a route doing the consumption route's own work
 *   (path, body, validation, key hash) but answering a fixed result instead of calling core:
 *   Hono's Lambda adapter, the auth and body middleware, zod, the JSON response.
 * Each part is timed in 5 rounds, interleaved with the others; the median is reported.
 * Reads the current core modules: a change of their signatures breaks only this option.
 */
export async function measureParts(canned: Canned, count: number): Promise<Parts> {
  const { balanceDrawWrite, readBalanceAndThreshold } = await import("../core/balances.js");
  const { ledgerEntryWrite, newLedgerEntry } = await import("../core/ledger.js");
  const { hashRequest, outcomeWrite } = await import("../core/idempotency.js");
  const { latchedCrossing } = await import("../core/rules/low-balance.js");
  const { newId } = await import("../core/ids.js");
  const client = replayClient(canned);
  const quiet = replayClient(canned);
  quiet.middlewareStack.remove("loggerMiddleware");
  const runtime: Runtime = buildRuntime(profileConfig(canned.tableName), systemClock, client);
  const ctx = runtime.core;
  const { userId, offerGroup, tokens } = canned;
  // The document-level inputs, as ElectroDB and core hand them to lib-dynamodb (before its marshalling).
  const documentInputs: Record<string, unknown> = {};
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { TransactItems?: unknown; RequestItems?: unknown };
      if (input.TransactItems) documentInputs.TransactWriteItems ??= structuredClone(input);
      if (input.RequestItems) documentInputs.BatchGetItem ??= structuredClone(input);
      return next(args);
    },
    { step: "initialize", priority: "high", name: "recordDocumentInputs" },
  );
  setRuntime(runtime);
  const warm = await (handler as Handler)(consumptionEvent(canned, -2), localLambdaContext("consumption"));
  client.middlewareStack.remove("recordDocumentInputs");
  setRuntime(undefined);
  if (warm.statusCode !== 201) throw new Error(`the consumption answered ${warm.statusCode}: ${warm.body}`);

  const lowTransact = JSON.parse(canned.requests.TransactWriteItems!) as Record<string, unknown>;
  delete lowTransact.ClientRequestToken; // the SDK fills it (idempotency token) on each call, as on the hot path
  const lowBatch = JSON.parse(canned.requests.BatchGetItem!) as Record<string, unknown>;
  const { state, lowBalanceThreshold } = await readBalanceAndThreshold(ctx, userId, offerGroup);
  const draws = [{ grantId: state.grants[0]!.grantId, tokens }];
  const requestHash = hashRequest({ offerGroup, tokens });
  const commits = (i: number) => {
    const now = new Date();
    const entry = newLedgerEntry({ userId, offerGroup, tokens: -tokens, reason: "consume", draws }, now);
    const crossing = latchedCrossing({ seen: state.balance, tokens, threshold: lowBalanceThreshold, latched: state.lowBalanceLatched === true });
    return [
      balanceDrawWrite(ctx.db, state, draws, tokens, now, crossing),
      ledgerEntryWrite(ctx.db, entry),
      outcomeWrite(ctx.db, userId, { scope: "consumptions", key: `parts-${i}`, requestHash }, { ok: true, result: { entry, balance: state.balance - tokens } }, now),
    ];
  };
  const parts: Record<string, () => (i: number) => Promise<unknown>> = {
    "sdk.BatchGetItem": () => async () => client.send(new BatchGetItemCommand(lowBatch as never)),
    "sdk.TransactWriteItems": () => async () => client.send(new TransactWriteItemsCommand(lowTransact as never)),
    "sdk.TransactWriteItems without loggerMiddleware": () => async () => quiet.send(new TransactWriteItemsCommand(lowTransact as never)),
    "libdynamodb.BatchGet": () => async () => client.send(new BatchGetCommand(documentInputs.BatchGetItem as never)),
    "libdynamodb.TransactWrite": () => async () => client.send(new TransactWriteCommand(documentInputs.TransactWriteItems as never)),
    "electrodb.commits": () => async (i) => commits(i),
    "electrodb.transactionParams": () => async (i) => ctx.db.service.transaction.write(() => commits(i) as never[]).params(),
    "core.readBalanceAndThreshold": () => async () => readBalanceAndThreshold(ctx, userId, offerGroup),
    // A new millisecond each time, as for consumptions a millisecond or more apart (within one, ulid only increments).
    "ids.newId": () => {
      const base = Date.now();
      return async (i) => newId(new Date(base + i));
    },
  };
  // The HTTP edge alone: the consumption route's own work (path, body, validation, key
  // hash) and the runtime's middleware (auth, body read) and Hono's Lambda adapter,
  // answering a fixed result instead of calling core.
  const edge = createApi();
  const fixed = { entry: { entryId: newId(new Date()), userId, offerGroup, tokens: -tokens, reason: "consume", createdAt: new Date().toISOString(), draws }, balance: state.balance - tokens };
  edge.post(honoPath("/users/{userId}/consumptions"), async (c) => {
    pathParams(c, userPath);
    const raw = parsedBody(c);
    validate(consumptionBody, raw);
    idempotencyOf(c, "consumptions", raw);
    return c.json(fixed, 201);
  });
  const edgeHandler = lambdaHandler(edge) as Handler;
  const edgeEvents = Array.from({ length: count + 2000 }, (_, i) => consumptionEvent(canned, i));
  const context = localLambdaContext("consumption");
  parts["edge.withoutConsume"] = () => async (i) => {
    const answer = await edgeHandler(edgeEvents[i % edgeEvents.length]!, context);
    if (answer.statusCode !== 201) throw new Error(`the edge answered ${answer.statusCode}: ${answer.body}`);
  };

  // Interleaved rounds, the median of each part's: other processes disturb all parts alike.
  const rounds = 5;
  const samples: Record<string, number[]> = {};
  setRuntime(runtime);
  try {
    for (const make of Object.values(parts)) await timed(Math.min(2000, count), make()); // warm-up
    for (let round = 0; round < rounds; round++) {
      for (const [name, make] of Object.entries(parts)) (samples[name] ??= []).push((await timed(Math.ceil(count / rounds), make())).cpuUs);
    }
  } finally {
    setRuntime(undefined);
    client.destroy();
    quiet.destroy();
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

// ---------------------------------------------------------------------------------------
// Profile summary

/** A V8 CPU profile (`.cpuprofile`, the Chrome DevTools protocol's `Profiler.Profile`). */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }>;
  /** µs, monotonic clock. */
  startTime: number;
  endTime: number;
  samples: number[];
  /** µs between samples (the first from `startTime`). */
  timeDeltas: number[];
}

/**
 * Maps the frames of project files (loaded through tsx, which emits each module on one
 * line) back to their .ts lines and columns, through the source maps Node keeps for them
 * (`module.findSourceMap`; tsx turns source maps on). Other frames are left as they are.
 */
export function remapToSources(profile: CpuProfile): CpuProfile {
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    if (!frame.url.startsWith("file://") || frame.url.includes("/node_modules/") || !/\.[cm]?tsx?$/.test(frame.url)) continue;
    const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber) as { originalLine?: number; originalColumn?: number } | undefined;
    if (entry?.originalLine === undefined) continue;
    frame.lineNumber = entry.originalLine;
    frame.columnNumber = entry.originalColumn ?? 0;
  }
  return profile;
}

/** A row of a summary: a name, its time in ms and its share of the busy time. */
export interface Row {
  name: string;
  ms: number;
  percent: number;
}

/** What {@link summarizeProfile} returns. */
export interface ProfileSummary {
  /** Sampled time in the window, ms, and the busy part (not `(idle)`). */
  windowMs: number;
  busyMs: number;
  /** How the samples were chosen: all of them, a given window, or this script's measured-call frames. */
  narrowed: "no" | "window" | "frames";
  /** Self time by coarse group (electrodb, @smithy/*, @aws-sdk/*, zod, hono, node, GC, project module ...). */
  selfByGroup: Row[];
  /** Self time by package (each @smithy / @aws-sdk package apart) or project module. */
  selfByPackage: Row[];
  /** Self time by function. */
  selfByFunction: Row[];
  /** Total (inclusive) time by function, outside Node's internals and V8's pseudo-frames. */
  totalByFunction: Row[];
  /** Total time by group: samples with at least one frame of the group on their stack. */
  totalByGroup: Row[];
}

/**
 * Where a frame's code lives: a package (`electrodb`, `@smithy/core`), a project module
 * (`core/consumption.ts`), `node:<module>` for Node's own code, `(native)` for V8 builtins,
 * or V8's pseudo-frame (`(garbage collector)`, `(program)`, `(idle)`, `(root)`).
 */
export function packageOf(url: string, functionName: string, root = process.cwd()): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) return `node:${url.slice(5).replace(/^internal\//, "").split("/")[0]}`;
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const at = path.lastIndexOf("/node_modules/");
  if (at >= 0) {
    const [first, second] = path.slice(at + "/node_modules/".length).split("/");
    return first?.startsWith("@") ? `${first}/${second}` : (first ?? path);
  }
  const prefix = root.endsWith("/") ? root : `${root}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : path;
}

/** The coarse group of a package: `@smithy/*` and `@aws-sdk/*` together, project modules by top folder and file. */
export function groupOf(pkg: string): string {
  if (pkg.startsWith("@smithy/")) return "@smithy/*";
  if (pkg.startsWith("@aws-sdk/")) return "@aws-sdk/*";
  if (pkg.startsWith("node:")) return "node (internals)";
  if (pkg === "(garbage collector)") return "(garbage collector)";
  return pkg;
}

/**
 * Summarizes a CPU profile: self time by group, package and function; total time by
 * function and by group. `window` (monotonic µs, as printed by a run) keeps the samples
 * taken in it; without it, when the profile holds this script's `timedCalls` or `timed`
 * frame (a `node --cpu-prof` run of the whole script), only the samples from the first to
 * the last one under them count (the measured calls; a frame V8 inlined is not seen, hence
 * `window`). Times are sampled wall time: on a busy machine they include time the thread
 * waited for a core, so shares are more telling than milliseconds.
 */
export function summarizeProfile(profile: CpuProfile, options: { top?: number; root?: string; window?: [number, number] | undefined } = {}): ProfileSummary {
  const top = options.top ?? 12;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const packages = new Map<number, string>();
  for (const node of profile.nodes) packages.set(node.id, packageOf(node.callFrame.url, node.callFrame.functionName, options.root));
  // A function by name and place: the file inside its package (`@smithy/core/dist-cjs/submodules/client/index.js`), a project module, or Node's module.
  const label = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (!url) return functionName || "(anonymous)";
    const at = url.lastIndexOf("/node_modules/");
    const place = url.startsWith("node:") ? url : at >= 0 ? url.slice(at + "/node_modules/".length) : packages.get(id)!;
    return `${functionName || "(anonymous)"} ${place}:${lineNumber + 1}`;
  };
  const stackOf = (id: number) => {
    const stack: number[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(at);
    return stack;
  };

  // Sample i lasts until sample i + 1 (the last one: the mean).
  const { samples, timeDeltas } = profile;
  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of timeDeltas) times.push((t += delta));
  const durations = samples.map((_, i) => (i + 1 < samples.length ? times[i + 1]! - times[i]! : (profile.endTime - profile.startTime) / Math.max(1, samples.length)));

  // The measured window: given, or first to last sample under the measuring frames.
  let from = 0;
  let to = samples.length - 1;
  let narrowed: ProfileSummary["narrowed"] = "no";
  if (options.window) {
    const [start, end] = options.window;
    from = times.findIndex((at) => at >= start);
    to = times.findLastIndex((at) => at <= end);
    narrowed = "window";
  } else {
    const marked = samples.map((id) => stackOf(id).some((at) => ["timedCalls", "timed"].includes(byId.get(at)!.callFrame.functionName)));
    if (marked.includes(true)) {
      from = marked.indexOf(true);
      to = marked.lastIndexOf(true);
      narrowed = "frames";
    }
  }
  if (from < 0 || to < from) throw new RangeError("no sample in the window");

  const selfGroup = new Map<string, number>();
  const selfPackage = new Map<string, number>();
  const selfFunction = new Map<string, number>();
  const totalFunction = new Map<string, number>();
  const totalGroup = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  let windowUs = 0;
  let busyUs = 0;
  for (let i = from; i <= to; i++) {
    const id = samples[i]!;
    const us = durations[i]!;
    windowUs += us;
    const pkg = packages.get(id)!;
    if (pkg === "(idle)") continue;
    busyUs += us;
    add(selfGroup, groupOf(pkg), us);
    add(selfPackage, pkg, us);
    add(selfFunction, label(id), us);
    const seenFunctions = new Set<string>();
    const seenGroups = new Set<string>();
    for (const at of stackOf(id)) {
      const atPkg = packages.get(at)!;
      if (atPkg.startsWith("(")) continue;
      seenGroups.add(groupOf(atPkg));
      if (!atPkg.startsWith("node:") && atPkg !== "(native)") seenFunctions.add(label(at));
    }
    for (const key of seenFunctions) add(totalFunction, key, us);
    for (const key of seenGroups) add(totalGroup, key, us);
  }
  const rows = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, percent: Math.round((1000 * us) / Math.max(1, busyUs)) / 10 }));
  return {
    windowMs: Math.round(windowUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    narrowed,
    selfByGroup: rows(selfGroup),
    selfByPackage: rows(selfPackage),
    selfByFunction: rows(selfFunction),
    totalByFunction: rows(totalFunction),
    totalByGroup: rows(totalGroup),
  };
}

/**
 * Prints a summary as tables. With `cpuUsPerCall` (the measured own CPU per call), each
 * row also shows its share of it in µs per call.
 */
export function printSummary(summary: ProfileSummary, cpuUsPerCall?: number): void {
  const perCall = (percent: number) => (cpuUsPerCall ? `${((percent / 100) * cpuUsPerCall).toFixed(1).padStart(8)} µs/call` : "");
  const how = { no: "the whole profile", window: "the given window", frames: "the measured calls, by their frames" }[summary.narrowed];
  console.log(`profile: ${summary.busyMs} ms busy of ${summary.windowMs} ms sampled (${how})`);
  const table = (title: string, rows: Row[]) => {
    console.log(`\n${title}`);
    for (const row of rows) console.log(`  ${row.percent.toFixed(1).padStart(5)}% ${row.ms.toFixed(1).padStart(9)} ms${perCall(row.percent)}  ${row.name}`);
  };
  table("self time by group", summary.selfByGroup);
  table("self time by package / module", summary.selfByPackage);
  table("self time by function", summary.selfByFunction);
  table("total time by function (outside node internals)", summary.totalByFunction);
  table("total time by group (on the stack)", summary.totalByGroup);
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      calls: { type: "string", default: "20000" },
      warmup: { type: "string", default: "5000" },
      rounds: { type: "string", default: "10" },
      grants: { type: "string", default: "3" },
      tokens: { type: "string", default: "1" },
      mode: { type: "string", default: "both" },
      "without-key": { type: "boolean", default: false },
      profile: { type: "string" },
      interval: { type: "string", default: "100" },
      parts: { type: "boolean", default: false },
      canned: { type: "string" },
      "save-canned": { type: "string" },
      json: { type: "string" },
      summarize: { type: "string" },
      window: { type: "string" },
      top: { type: "string", default: "12" },
    },
  });
  const top = Number(values.top);
  if (values.summarize) {
    const window = values.window?.split("-").map(Number) as [number, number] | undefined;
    printSummary(summarizeProfile(JSON.parse(readFileSync(values.summarize, "utf8")) as CpuProfile, { top, window }));
    return;
  }

  let canned: Canned;
  if (values.canned) {
    canned = JSON.parse(readFileSync(values.canned, "utf8")) as Canned;
  } else {
    const local = await startDynamoLocal({ dataDir: null });
    try {
      canned = await captureCanned({ endpoint: local.endpoint, tableName: "profile-consumption", grants: Number(values.grants), tokens: Number(values.tokens) });
    } finally {
      await local.stop(); // no Java beside the measurement
    }
  }
  if (values["save-canned"]) writeFileSync(values["save-canned"], `${JSON.stringify(canned, null, 2)}\n`);

  const modes: Mode[] = values.mode === "both" ? ["cached", "read"] : [values.mode as Mode];
  if (modes.some((mode) => mode !== "cached" && mode !== "read")) throw new Error(`--mode: cached, read or both, not ${values.mode}`);
  const fixed = (n: number) => n.toFixed(1);
  const [load1, load5] = loadavg();
  console.log(
    `consumption handler (event -> 201), ${canned.userId}'s balance with its settings replayed, ` +
      `${values["without-key"] ? "no Idempotency-Key" : "a new Idempotency-Key each"}; node ${process.version}; load average ${load1!.toFixed(1)} / ${load5!.toFixed(1)} (1 / 5 min)`,
  );
  const results: Array<{ measurement: Measurement; profile?: ProfileSummary | undefined }> = [];
  for (const mode of modes) {
    const { measurement, profile } = await measureConsumption(canned, {
      mode,
      calls: Number(values.calls),
      warmup: Number(values.warmup),
      rounds: Number(values.rounds),
      withKey: !values["without-key"],
      profile: Boolean(values.profile),
      profileIntervalUs: Number(values.interval),
    });
    const label = mode === "cached" ? (measurement.runtimeHasCache ? "cached (the runtime's balance cache)" : "cached, but the runtime has no balance cache") : "read (no balance cache)";
    console.log(`\n${label}: ${measurement.calls} calls after ${measurement.warmup} warm-up`);
    console.log(`  own CPU ${fixed(measurement.cpuUs)} µs/call (median of ${measurement.rounds.length} rounds; least ${fixed(measurement.cpuUsMin)}), wall ${fixed(measurement.wallUs)} µs/call`);
    for (const round of measurement.rounds) {
      console.log(`    round: ${round.calls} calls, CPU ${fixed(round.cpuUs)} µs (user ${fixed(round.userUs)}, system ${fixed(round.systemUs)}), wall ${fixed(round.wallUs)} µs`);
    }
    console.log(`  requests per call: ${JSON.stringify(measurement.requestsPerCall)}; failures: ${measurement.failures}${measurement.firstFailure ? ` (first: ${measurement.firstFailure})` : ""}`);
    console.log(`  measured window (monotonic µs, for --summarize <a node --cpu-prof profile> --window): ${measurement.windowUs.join("-")}`);
    let summary: ProfileSummary | undefined;
    if (profile && values.profile) {
      const ext = extname(values.profile);
      const file = modes.length > 1 ? `${values.profile.slice(0, values.profile.length - ext.length)}.${mode}${ext}` : values.profile;
      writeFileSync(file, JSON.stringify(profile));
      console.log(`\nprofile written: ${resolve(file)} (sampling every ${values.interval} µs; the profiler adds its own cost to the calls it samples)`);
      summary = summarizeProfile(profile, { top });
      printSummary(summary, measurement.cpuUs);
    }
    results.push({ measurement, profile: summary });
    if (measurement.failures > 0) process.exitCode = 1;
  }
  let parts: Parts | undefined;
  if (values.parts) {
    parts = await measureParts(canned, Math.min(Number(values.calls), 10_000));
    console.log(`\nparts alone (own CPU, µs per call):`);
    for (const [name, us] of Object.entries(parts)) console.log(`  ${fixed(us).padStart(7)}  ${name}`);
  }
  if (values.json) {
    writeFileSync(values.json, `${JSON.stringify({ measuredAt: new Date().toISOString(), node: process.version, loadAverage: [load1, load5], results, parts }, null, 2)}\n`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
