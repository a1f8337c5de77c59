/**
 * The benchmark's pure helpers (bench/lib.ts) and its partition arithmetic
 * (bench/report.ts `partitionLimit`): what the numbers in bench/results.json rest on.
 */
import { describe, expect, it } from "vitest";
import { closedLoop, markdownTable, median, partitionCeiling, percentile, rotation } from "../../bench/lib.js";
import { checks, partitionLimit } from "../../bench/report.js";
import type { CapacityResults, OperationCost } from "../../bench/capacity.js";

describe("bench helpers", () => {
  it("take the median and nearest-rank percentiles", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(() => percentile([1], 0)).toThrow(RangeError);
  });

  it("rotate the order of the variants so that each runs once in each position over as many rounds", () => {
    const items = ["a", "b", "c"] as const;
    const rounds = [0, 1, 2].map((r) => rotation(items, r));
    expect(rounds).toEqual([
      ["a", "b", "c"],
      ["b", "c", "a"],
      ["c", "a", "b"],
    ]);
    for (const position of [0, 1, 2]) expect(new Set(rounds.map((order) => order[position]))).toEqual(new Set(items));
    expect(rotation(items, 3)).toEqual(rounds[0]);
  });

  it("cap one partition's consumptions by its 1,000 write units a second", () => {
    expect(partitionCeiling(6)).toBe(166);
    expect(partitionCeiling(2)).toBe(500);
    expect(() => partitionCeiling(0)).toThrow(RangeError);
  });

  it("write Markdown tables, refusing a row of the wrong width", () => {
    expect(markdownTable(["a", "b"], [["1", "2"]])).toBe("| a | b |\n| --- | --- |\n| 1 | 2 |");
    expect(() => markdownTable(["a", "b"], [["1"]])).toThrow(RangeError);
  });

  it("run a closed loop: at most `concurrency` operations at once, outcomes and errors counted", async () => {
    let inFlight = 0;
    let most = 0;
    const result = await closedLoop(4, 60, async (_worker, sequence) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      if (sequence % 5 === 4) throw new Error("boom");
      return sequence % 2 === 0 ? "even" : "odd";
    });
    expect(most).toBe(4);
    expect(result.ops).toBe(result.latencies.length);
    expect((result.outcomes.even ?? 0) + (result.outcomes.odd ?? 0) + result.errors).toBe(result.ops);
    expect(result.errors).toBeGreaterThan(0);
    expect(result.errorSamples[0]).toBe("Error: boom");
    expect(result.opsPerSecond).toBeCloseTo((result.ops / result.ms) * 1000, 6);
    const capped = await closedLoop(3, 10_000, async () => "ok", 10);
    expect(capped.ops).toBe(10);
  });
});

describe("bench partition arithmetic", () => {
  const cost = (writeUnits: number): OperationCost => ({ samples: 1, requests: { median: 2, min: 2, max: 2 }, byCommand: {}, readUnits: 1, writeUnits, indexWriteUnits: 0, refusedRequests: 0, example: [] });
  const capacity = (onUser: boolean[]): CapacityResults => ({
    samples: 1,
    method: "",
    operations: { consumptionCold: cost(8), consumptionWarm: cost(8), hold: cost(0), commit: cost(0), orderCreationManual: cost(0), webhookFulfilment: cost(0), creditsRead: cost(0) },
    consumptionTransaction: [
      { action: "Update", entity: "balance", bytes: 600, units: 2, onBalancePartitionKey: onUser[0]! },
      { action: "Put", entity: "ledgerEntry", bytes: 400, units: 2, onBalancePartitionKey: onUser[1]! },
      { action: "Put", entity: "idempotencyRecord", bytes: 1500, units: 4, onBalancePartitionKey: onUser[2]! },
    ],
  });

  it("counts the units under the user's partition key and the balance item's own", () => {
    expect(partitionLimit(capacity([true, true, true]))).toMatchObject({ consumptionWriteUnits: 8, onUserPartitionKey: 8, balanceItemUnits: 2, ceilingPerUserPartition: 125, ceilingPerBalanceItem: 500 });
    expect(partitionLimit(capacity([true, false, false]))).toMatchObject({ onUserPartitionKey: 2, ceilingPerUserPartition: 500 });
  });
});

describe("bench checks", () => {
  it("flag a handler below 0.7x the raw transaction, a 5xx, and a balance off by one", () => {
    const medians = (opsPerSecond: number) => ({ rounds: [], median: { opsPerSecond, p50Ms: 1, p99Ms: 2 } });
    const row = (handler: number) => ({
      handler: medians(handler),
      rawTransaction: medians(100),
      rawUpdate: medians(400),
      ratios: { handlerToRawTransaction: handler / 100, handlerToRawUpdate: handler / 400, perRound: [] },
    });
    const consumption = { users: 64, rounds: 3, cellMs: 2000, concurrencies: [1, 8], rawTransactionPuts: [], byConcurrency: { 1: row(70), 8: row(69) } };
    const hotUser = {
      handler: { status5xx: 1 },
      balanceCheck: { seeded: 10, applied: 3, expected: 7, read: 6, ok: false },
    } as never;
    expect(checks({ consumption, hotUser }).map((c) => c.ok)).toEqual([true, false, false, false]);
  });
});
