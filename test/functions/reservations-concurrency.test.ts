/**
 * Reservations under concurrency across processes, through the HTTP edge (issue 11,
 * "Done when": 4 processes, 200 concurrent holds of 1 token against a balance of 100
 * while commits and releases run). Four separate Node processes (test/helpers/hold-worker.ts)
 * each call the consumption Lambda handler in-process with API Gateway v2 events, on their
 * own runtime, against this file's table on DynamoDB Local: 50 holds each, fired at a
 * common instant; each hold that answers 201 is at once committed (1 token or 0),
 * released, or kept held, while the other holds are still running. Meanwhile this process
 * reads the credits through the credits handler, again and again.
 *
 * What proves "never more than 100 tokens held and spent together": the group's ledger
 * sums to its balance (test/helpers/invariants.ts), so at every committed state
 * balance = 100 − held − spent; held + spent <= 100 is then balance >= 0 with no debt.
 * Every read during the storm shows balance >= 0, debt 0, balance + held <= 100, and
 * balance + held (= 100 − spent) never grows from one read to the next (spent only grows).
 * At the end the ledger is replayed per reservation: one `hold` of −1 for every 201, a
 * `release` of +1 and a `consume` for each commit, a `release` for each release, nothing
 * else; spent + still held <= 100; every hold answered 201 or 402, every commit and
 * release 200: no 5xx, no 409.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { handler as credits } from "../../functions/credits.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { createTestDb } from "../helpers/db.js";
import { invoke, type ApiResponse } from "../helpers/gateway.js";
import { READY_LINE, RESULT_MARKER, type HoldStep, type HoldWorkerInput, type HoldWorkerResult } from "../helpers/hold-worker.js";
import { invariantViolations } from "../helpers/invariants.js";

const WORKER = fileURLToPath(new URL("../helpers/hold-worker.ts", import.meta.url));
const API_KEY = "key-holds-race-0123456789";
const PROCESSES = 4;
const HOLDS_PER_PROCESS = 50;
const BALANCE = 100;
const USER = "holds-racer";
const GROUP = "calls";
const DAY = 86_400_000;

let table: Awaited<ReturnType<typeof createTestDb>>;

beforeAll(async () => {
  table = await createTestDb("holds-race");
  setRuntime(buildRuntime({ apiKeys: [API_KEY], defaultCurrency: "usd", tableName: table.tableName, dynamoEndpoint: table.endpoint }));
});
afterAll(() => setRuntime(undefined));
afterEach(async () => expect(await invariantViolations(table.client, table.tableName)).toEqual([]));

const auth = { authorization: `Bearer ${API_KEY}` };
const get = (path: string) => invoke(credits, { method: "GET", path, headers: auth });

/** A started worker: `ready` settles once it is warmed up; `start` sends it the common start instant. */
interface Worker {
  ready: Promise<void>;
  start(at: number): void;
  result: Promise<HoldWorkerResult>;
}

/** Starts one worker process (test/helpers/hold-worker.ts). */
function startWorker(input: HoldWorkerInput): Worker {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER], {
    env: { ...process.env, WORKER_INPUT: JSON.stringify(input) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    if (out.split("\n").includes(READY_LINE)) onReady();
  });
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const result = new Promise<HoldWorkerResult>((resolve, reject) => {
    child.once("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith(RESULT_MARKER));
      if (code !== 0 || !line) reject(new Error(`worker exited ${code}: ${err}\n${out}`));
      else resolve(JSON.parse(line.slice(RESULT_MARKER.length)) as HoldWorkerResult);
    });
  });
  // A worker that dies before it is ready must not leave the test waiting for it.
  return { ready: Promise.race([ready, result.then(() => undefined)]), start: (at) => child.stdin.end(`${at}\n`), result };
}

/** The group's view in a credits answer. */
function groupOf(response: ApiResponse): { balance: number; held: number; debt: number } {
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  const group = response.body.groups.find((g: { offerGroup: string }) => g.offerGroup === GROUP);
  expect(group, "the group in the credits").toBeDefined();
  return group;
}

/** Every page of a list route (`key`: the array in each page). */
async function allPages<T>(path: string, key: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page = await get(`${path}${path.includes("?") ? "&" : "?"}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    items.push(...(page.body[key] as T[]));
    cursor = page.body.cursor;
  } while (cursor);
  return items;
}

const sumTallies = (tallies: Array<Record<string, number>>) =>
  tallies.reduce<Record<string, number>>((total, tally) => {
    for (const [status, n] of Object.entries(tally)) total[status] = (total[status] ?? 0) + n;
    return total;
  }, {});

describe("holds, commits and releases racing across processes", () => {
  it(`never hold and spend more than ${BALANCE} tokens together: ${PROCESSES * HOLDS_PER_PROCESS} concurrent 1-token holds, 0 5xx`, { timeout: 240_000 }, async () => {
    // A balance of 100 over two grants with different expiries (drain order: the expiring one first).
    for (const grant of [
      { offerGroup: GROUP, tokens: 60, expires: new Date(Date.now() + 10 * DAY).toISOString() },
      { offerGroup: GROUP, tokens: 40, expires: null },
    ]) {
      const created = await invoke(credits, { method: "POST", path: `/users/${USER}/grants`, headers: auth, body: grant });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
    }
    expect(groupOf(await get(`/users/${USER}/credits`))).toMatchObject({ balance: BALANCE, held: 0, debt: 0 });

    // The storm: four processes from a common instant, and this process reading the credits meanwhile.
    const began = Date.now();
    const workers = Array.from({ length: PROCESSES }, (_, workerId) =>
      startWorker({ endpoint: table.endpoint, tableName: table.tableName, apiKey: API_KEY, userId: USER, offerGroup: GROUP, holds: HOLDS_PER_PROCESS, workerId }),
    );
    await Promise.all(workers.map((worker) => worker.ready));
    const startAt = Date.now() + 200;
    for (const worker of workers) worker.start(startAt);
    let stormOver = false;
    const storm = Promise.all(workers.map((worker) => worker.result)).finally(() => (stormOver = true));
    const reads: Array<{ at: number; status: number; balance: number; held: number; debt: number }> = [];
    const reader = (async () => {
      while (!stormOver) {
        const at = Date.now();
        const response = await get(`/users/${USER}/credits`);
        const group = response.body?.groups?.find((g: { offerGroup: string }) => g.offerGroup === GROUP);
        reads.push({ at, status: response.status, balance: group?.balance, held: group?.held, debt: group?.debt });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const results = await storm;
    await reader;
    const wallMs = Date.now() - startAt;

    // What happened, printed before it is judged (so that a failing run still shows its numbers).
    const holds = sumTallies(results.map((r) => r.holds));
    const commits = sumTallies(results.map((r) => r.commits));
    const releases = sumTallies(results.map((r) => r.releases));
    const byStep = (step: HoldStep) => results.flatMap((r) => r.reservations[step]);
    const [commit1, commit0, released, kept] = (["commit1", "commit0", "release", "keep"] as const).map(byStep) as [string[], string[], string[], string[]];
    const succeeded = holds["201"] ?? 0;
    const spent = results.reduce((total, r) => total + r.committedTokens, 0);
    const during = reads.filter((read) => read.at >= startAt);
    const end = groupOf(await get(`/users/${USER}/credits`));
    console.log("concurrent holds across processes:", {
      holds,
      commits: { "1 token": commit1.length, "0 tokens": commit0.length, statuses: commits },
      releases,
      keptHeld: kept.length,
      spent,
      end,
      maxHeldSeen: Math.max(...reads.map((read) => read.held ?? 0)),
      creditReads: reads.length,
      creditReadsDuringStorm: during.length,
      conflictsRetried: results.reduce((total, r) => total + r.conflictsRetried, 0),
      unexpected: results.flatMap((r) => r.unexpected),
      workerMs: results.map((r) => r.ms),
      lateMs: results.map((r) => r.lateMs),
      wallMsFromStart: wallMs,
      wallMsWithSpawn: Date.now() - began,
    });

    // Every answer as expected: holds 201 or 402, commits and releases 200.
    for (const result of results) expect(result.unexpected, `${result.unexpectedCount} unexpected answers`).toEqual([]);
    expect(Object.keys(holds).filter((s) => s !== "201" && s !== "402")).toEqual([]);
    expect(succeeded + (holds["402"] ?? 0)).toBe(PROCESSES * HOLDS_PER_PROCESS);
    expect(commit1.length + commit0.length + released.length + kept.length).toBe(succeeded);
    expect(commits).toEqual({ "200": commit1.length + commit0.length });
    expect(releases).toEqual({ "200": released.length });
    expect(spent).toBe(commit1.length);
    // A hold is refused only when 100 tokens are held or spent, each by its own 1-token hold.
    expect(succeeded).toBeGreaterThanOrEqual(BALANCE);
    expect(spent + kept.length).toBeLessThanOrEqual(BALANCE);

    // Every read during the storm: nothing overdrawn, held + spent never above 100, spent never undone.
    expect(during.length).toBeGreaterThan(5);
    for (const [index, read] of reads.entries()) {
      expect(read.status, `read ${index}`).toBe(200);
      expect(read.debt, `read ${index}`).toBe(0);
      expect(read.balance, `read ${index}`).toBeGreaterThanOrEqual(0);
      expect(read.held, `read ${index}`).toBeGreaterThanOrEqual(0);
      expect(read.balance + read.held, `read ${index}`).toBeLessThanOrEqual(BALANCE);
      if (index > 0) expect(read.balance + read.held, `read ${index}: balance + held (100 − spent) grew`).toBeLessThanOrEqual(reads[index - 1]!.balance + reads[index - 1]!.held);
    }

    // The end state: what was kept is held, what was committed is spent, the rest is back.
    expect(end).toMatchObject({ held: kept.length, debt: 0, balance: BALANCE - spent - kept.length });

    // The ledger, per reservation: one hold of −1 per 201; a release of +1 per commit and per release; a consume per commit.
    type Entry = { reason: string; tokens: number; reservationId?: string };
    const entries = (await allPages<Entry & { offerGroup: string }>(`/users/${USER}/ledger?offerGroup=${GROUP}`, "entries")).filter((e) => e.offerGroup === GROUP);
    expect(entries.reduce((total, e) => total + e.tokens, 0)).toBe(end.balance);
    const of = (reason: string) => entries.filter((e) => e.reason === reason);
    expect(entries.filter((e) => !["adjust", "hold", "release", "consume"].includes(e.reason))).toEqual([]);
    expect(of("adjust").map((e) => e.tokens).sort()).toEqual([40, 60]);
    const ids = (list: Entry[]) => list.map((e) => e.reservationId!).sort();
    expect(of("hold").every((e) => e.tokens === -1)).toBe(true);
    expect(ids(of("hold"))).toEqual([...commit1, ...commit0, ...released, ...kept].sort());
    expect(of("release").every((e) => e.tokens === 1)).toBe(true);
    expect(ids(of("release"))).toEqual([...commit1, ...commit0, ...released].sort());
    const consumed = new Map(of("consume").map((e) => [e.reservationId!, e.tokens]));
    expect(consumed.size).toBe(of("consume").length);
    expect([...consumed.keys()].sort()).toEqual([...commit1, ...commit0].sort());
    for (const id of commit1) expect(consumed.get(id)).toBe(-1);
    for (const id of commit0) expect(consumed.get(id)).toBe(0);

    // The reservations as listed: their status follows their step.
    const listed = await allPages<{ reservationId: string; status: string; committedTokens?: number }>(`/users/${USER}/reservations?offerGroup=${GROUP}`, "reservations");
    const status = new Map(listed.map((r) => [r.reservationId, r.status]));
    expect(listed.length).toBe(succeeded);
    for (const id of [...commit1, ...commit0]) expect(status.get(id)).toBe("committed");
    for (const id of released) expect(status.get(id)).toBe("released");
    for (const id of kept) expect(status.get(id)).toBe("held");
    expect(await invariantViolations(table.client, table.tableName)).toEqual([]);
  });
});
