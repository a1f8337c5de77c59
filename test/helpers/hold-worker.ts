/**
 * A separate Node process that holds tokens and then commits or releases them, as one of
 * many Lambdas serving a user's app would, through the HTTP edge: it calls the Lambda
 * handler of functions/consumption.ts in-process with API Gateway v2 events
 * (test/helpers/gateway.ts), on its own runtime (functions/runtime.ts) pointed at the test
 * table on DynamoDB Local.
 *
 * Input, JSON in `WORKER_INPUT` ({@link HoldWorkerInput}): where the table is, the API key,
 * the user and group, and how many 1-token holds to fire. After a warm-up (modules loaded,
 * one DynamoDB request made) it prints {@link READY_LINE} and waits for the common start
 * instant, which the parent writes on its stdin once every worker is ready; then it fires
 * every hold at once; as each hold answers 201 it at once follows it with its second step,
 * chosen by the hold's index ({@link stepOf}): commit 1 token, commit 0 tokens, release,
 * or keep it held. Every request carries an `Idempotency-Key`, as a client that retries
 * would send.
 *
 * Output, one JSON line on stdout prefixed with {@link RESULT_MARKER} ({@link HoldWorkerResult}):
 * counts per HTTP status for holds, commits and releases, the reservations by step, the
 * first unexpected answers with their bodies, the conflicts retried in this process
 * (core/retry.ts `retryStats`) and how late the worker was for the start instant. The
 * module runs only as a process's entry point: the test imports it for its types and markers.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { handler as consumption } from "../../functions/consumption.js";
import { handler as credits } from "../../functions/credits.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { retryStats } from "../../core/retry.js";
import { invoke, type ApiResponse } from "./gateway.js";

/** What the parent sends (JSON in `WORKER_INPUT`). */
export interface HoldWorkerInput {
  endpoint: string;
  tableName: string;
  apiKey: string;
  userId: string;
  offerGroup: string;
  /** 1-token holds to fire at once. */
  holds: number;
  /** Distinguishes this worker's idempotency keys. */
  workerId: number;
}

/** The second step after a hold answered 201. */
export type HoldStep = "commit1" | "commit0" | "release" | "keep";

/** One answer that was not what the step expects (status and body). */
export interface UnexpectedAnswer {
  request: string;
  status: number;
  body: unknown;
}

/** What the worker prints. */
export interface HoldWorkerResult {
  /** Answers to the holds, by HTTP status. */
  holds: Record<string, number>;
  /** Answers to the commits, by HTTP status. */
  commits: Record<string, number>;
  /** Answers to the releases, by HTTP status. */
  releases: Record<string, number>;
  /** Reservation ids of the holds that answered 201, by the step that followed (a step that failed is still listed under it). */
  reservations: Record<HoldStep, string[]>;
  /** Tokens consumed by the commits that answered 200 (Σ committed tokens). */
  committedTokens: number;
  /** The first answers that were neither the expected success nor a 402 on a hold. */
  unexpected: UnexpectedAnswer[];
  unexpectedCount: number;
  /** Optimistic-concurrency conflicts retried in this process. */
  conflictsRetried: number;
  /** How late the worker was ready for the start instant, ms (0: on time). */
  lateMs: number;
  /** From the start instant to the last answer, ms. */
  ms: number;
}

/** What a worker prints once warmed up, before it waits for the start instant. */
export const READY_LINE = "HOLD-WORKER-READY";

/** Marks the result line among whatever else the process prints. */
export const RESULT_MARKER = "HOLD-WORKER-RESULT ";

/** The step that follows hold number `index` (10 in a cycle: 5 commit 1, 2 commit 0, 2 release, 1 kept). */
export function stepOf(index: number): HoldStep {
  const slot = index % 10;
  return slot < 5 ? "commit1" : slot < 7 ? "commit0" : slot < 9 ? "release" : "keep";
}

/**
 * Says it is ready (a {@link READY_LINE} line on stdout) and waits for the common start
 * instant, a line on stdin (ms since epoch) that the parent sends once every worker is ready.
 */
async function ready(): Promise<number> {
  console.log(READY_LINE);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return Number(line);
  }
  throw new Error("stdin closed before the start instant came");
}

/** Runs the worker on `input`: warm-up, the common start, every hold with its step. */
async function run(input: HoldWorkerInput): Promise<HoldWorkerResult> {
  setRuntime(buildRuntime({ apiKeys: [input.apiKey], defaultCurrency: "usd", tableName: input.tableName, dynamoEndpoint: input.endpoint }));
  const headers = (key: string) => ({ authorization: `Bearer ${input.apiKey}`, "idempotency-key": key });
  const base = `/users/${encodeURIComponent(input.userId)}/reservations`;
  const result: HoldWorkerResult = {
    holds: {},
    commits: {},
    releases: {},
    reservations: { commit1: [], commit0: [], release: [], keep: [] },
    committedTokens: 0,
    unexpected: [],
    unexpectedCount: 0,
    conflictsRetried: 0,
    lateMs: 0,
    ms: 0,
  };
  const count = (tally: Record<string, number>, response: ApiResponse) => {
    tally[response.status] = (tally[response.status] ?? 0) + 1;
  };
  const unexpected = (request: string, response: ApiResponse) => {
    result.unexpectedCount++;
    if (result.unexpected.length < 5) result.unexpected.push({ request, status: response.status, body: response.body });
  };

  /** Hold number `index`, then its step if the hold answered 201. */
  const holdThenStep = async (index: number): Promise<void> => {
    const key = `w${input.workerId}-${index}`;
    const held = await invoke(consumption, { method: "POST", path: base, headers: headers(`${key}-hold`), body: { offerGroup: input.offerGroup, tokens: 1, ttlSeconds: 600 } });
    count(result.holds, held);
    if (held.status === 402) return;
    if (held.status !== 201) return unexpected(`hold ${key}`, held);
    const reservationId = held.body.reservationId as string;
    const step = stepOf(index);
    result.reservations[step].push(reservationId);
    if (step === "keep") return;
    if (step === "release") {
      const released = await invoke(consumption, { method: "POST", path: `${base}/${reservationId}/release`, headers: headers(`${key}-release`) });
      count(result.releases, released);
      if (released.status !== 200 || released.body.status !== "released") unexpected(`release ${key}`, released);
      return;
    }
    const tokens = step === "commit1" ? 1 : 0;
    const committed = await invoke(consumption, { method: "POST", path: `${base}/${reservationId}/commit`, headers: headers(`${key}-commit`), body: { tokens } });
    count(result.commits, committed);
    if (committed.status !== 200 || committed.body.reservation?.status !== "committed" || committed.body.entry?.tokens !== -tokens) unexpected(`commit ${key}`, committed);
    else result.committedTokens += tokens;
  };

  // Warm-up: the handlers' modules, the runtime and a DynamoDB connection (a read of another user).
  const warm = await invoke(credits, { method: "GET", path: `/users/warm-up-${input.workerId}/credits`, headers: headers("unused") });
  if (warm.status !== 200) throw new Error(`warm-up answered ${warm.status}: ${JSON.stringify(warm.body)}`);

  const startAt = await ready();
  const wait = startAt - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  else result.lateMs = -wait;
  const started = Date.now();
  await Promise.all(Array.from({ length: input.holds }, (_, index) => holdThenStep(index)));
  result.ms = Date.now() - started;
  result.conflictsRetried = retryStats.conflicts;
  return result;
}

// Run only as a process's entry point (the test imports this module for its types and helpers).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run(JSON.parse(process.env.WORKER_INPUT ?? "{}") as HoldWorkerInput);
  console.log(RESULT_MARKER + JSON.stringify(result));
  process.exit(0);
}
