/**
 * Concurrency across processes, as many Lambdas would spend at once: several separate
 * Node processes send 300 concurrent 1-token consumptions against each balance of 100
 * (several users and offerGroups at once, each balance spread over grants with
 * different expiries). Exactly 100 succeed per balance, the rest get 402, the balance
 * ends at 0 and the ledger invariants hold; five rounds. Then purchase fulfilment,
 * expiry and consumption racing on one user keep the invariants. Nothing relies on an
 * in-process lock: conflicts are retried with jittered backoff (core/retry.ts).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { DomainError } from "../../core/errors.js";
import { expireUser } from "../../core/expiry.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "concurrency" });
const WORKER = fileURLToPath(new URL("../helpers/consumer-worker.ts", import.meta.url));
const PROCESSES = 4;
const ROUNDS = 5;
const PER_BALANCE = 300;

interface WorkerResult {
  succeeded: Record<string, number>;
  refused: number;
  errors: string[];
  errorCount: number;
  conflictsRetried: number;
}

function runWorker(input: object): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER], {
      env: { ...process.env, WORKER_INPUT: JSON.stringify(input) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.once("exit", (code) => {
      const line = out.trim().split("\n").at(-1);
      if (code !== 0 || !line) reject(new Error(`worker exited ${code}: ${err}`));
      else resolve(JSON.parse(line) as WorkerResult);
    });
  });
}

describe("concurrent consumption across processes", () => {
  it(`lets exactly 100 of ${PER_BALANCE} concurrent 1-token consumptions succeed per balance of 100, ${ROUNDS} rounds`, { timeout: 240_000 }, async () => {
    const totals = { tried: 0, succeeded: 0, refused: 0, conflictsRetried: 0, ms: 0 };
    const started = Date.now();
    for (let round = 0; round < ROUNDS; round++) {
      t.clock.set(new Date());
      const pairs = [
        { userId: `r${round}-alice`, offerGroup: "calls" },
        { userId: `r${round}-alice`, offerGroup: "data" },
        { userId: `r${round}-bob`, offerGroup: "calls" },
      ];
      const day = 86_400_000;
      for (const { userId, offerGroup } of pairs) {
        await createPromotionalGrant(t.ctx, { userId, offerGroup, tokens: 40, expires: new Date(Date.now() + 10 * day).toISOString() });
        await createPromotionalGrant(t.ctx, { userId, offerGroup, tokens: 35, expires: new Date(Date.now() + 20 * day).toISOString() });
        await createPromotionalGrant(t.ctx, { userId, offerGroup, tokens: 25, expires: null });
      }
      const startAt = Date.now() + 1500;
      const tasks = pairs.map((pair) => ({ ...pair, count: PER_BALANCE / PROCESSES }));
      const results = await Promise.all(
        Array.from({ length: PROCESSES }, () => runWorker({ endpoint: t.endpoint, tableName: t.tableName, startAt, tasks })),
      );
      for (const result of results) expect(result.errors, `round ${round}`).toEqual([]);
      for (const { userId, offerGroup } of pairs) {
        const succeeded = results.reduce((sum, r) => sum + (r.succeeded[`${userId}/${offerGroup}`] ?? 0), 0);
        expect(succeeded, `${userId}/${offerGroup}`).toBe(100);
        const group = (await getCredits(t.ctx, userId)).groups.find((g) => g.offerGroup === offerGroup)!;
        expect(group.balance).toBe(0);
        expect(group.grants.every((g) => g.remaining === 0)).toBe(true);
      }
      const refused = results.reduce((sum, r) => sum + r.refused, 0);
      expect(refused).toBe(pairs.length * (PER_BALANCE - 100));
      totals.tried += pairs.length * PER_BALANCE;
      totals.succeeded += pairs.length * 100;
      totals.refused += refused;
      totals.conflictsRetried += results.reduce((sum, r) => sum + r.conflictsRetried, 0);
    }
    totals.ms = Date.now() - started;
    console.log("concurrent consumptions across processes:", totals);
  });
});

describe("purchase fulfilment, expiry and consumption racing on one user", () => {
  it("keep the ledger invariants and lose no token", async () => {
    t.clock.set("2026-10-01T00:00:00.000Z");
    await upsertOffer(t.ctx, "race-pack", anOffer({ offerGroup: "race", tokenCount: 10, cycle: "daily" }));
    for (let i = 0; i < 6; i++) await createPromotionalGrant(t.ctx, { userId: "racer", offerGroup: "race", tokens: 5, expires: "2026-10-01T12:00:00.000Z" });
    await createPromotionalGrant(t.ctx, { userId: "racer", offerGroup: "race", tokens: 20, expires: null });
    const orders = [];
    for (let i = 0; i < 5; i++) orders.push((await createOrder(t.ctx, { userId: "racer", offerId: "race-pack" })).order.orderId);
    t.clock.set("2026-10-01T13:00:00.000Z"); // the six 5-token grants are now due

    const operations = [
      ...orders.map((orderId) => () => confirmManualOrder(t.ctx, "racer", orderId)),
      () => expireUser(t.ctx, "racer"),
      () => expireUser(t.ctx, "racer"),
      ...Array.from({ length: 30 }, () => () => consume(t.ctx, { userId: "racer", offerGroup: "race", tokens: 2 })),
    ];
    const outcomes = await Promise.allSettled(operations.map((op) => op()));
    const unexpected = outcomes.filter((o) => o.status === "rejected" && !(o.reason instanceof DomainError && o.reason.code === "insufficient_credits"));
    expect(unexpected).toEqual([]);
    const spent = 2 * outcomes.slice(7).filter((o) => o.status === "fulfilled").length;
    const group = (await getCredits(t.ctx, "racer")).groups[0]!;
    // 20 (never expires) + 5 × 10 purchased; the 30 due tokens left through expiry, never spent.
    expect(group.balance).toBe(70 - spent);
  });
});
