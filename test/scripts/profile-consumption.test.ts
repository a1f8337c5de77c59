/**
 * scripts/profile-consumption.ts: the capture on DynamoDB Local holds the consumption's
 * real exchanges; the replay through the handler answers 201 with the requests the hot
 * path makes (one transaction a call; a read a call without the balance cache); a replay
 * missing a response is counted as failures, not hidden; the profile summary attributes
 * self and total time to the right packages.
 */
import { beforeAll, describe, expect, inject, it } from "vitest";
import {
  captureCanned,
  groupOf,
  measureConsumption,
  packageOf,
  summarizeProfile,
  type Canned,
  type CpuProfile,
} from "../../scripts/profile-consumption.js";
import { logger } from "../../functions/runtime.js";

let canned: Canned;

beforeAll(async () => {
  const tableName = `profile-${process.pid}-${Date.now().toString(36)}`;
  canned = await captureCanned({ endpoint: inject("dynamoEndpoint"), tableName, grants: 3 });
}, 60_000);

describe("capture", () => {
  it("records the consumption's BatchGetItem (balance with its grants, settings) and TransactWriteItems", () => {
    const read = JSON.parse(canned.responses.BatchGetItem!.body) as { Responses: Record<string, Array<Record<string, { L?: unknown[] }>>> };
    const items = read.Responses[canned.tableName]!;
    expect(items).toHaveLength(2);
    expect(items.some((item) => item.grants?.L?.length === 3)).toBe(true);
    const write = JSON.parse(canned.requests.TransactWriteItems!) as { TransactItems: unknown[] };
    // The balance draw, the ledger entry, the idempotency record.
    expect(write.TransactItems).toHaveLength(3);
    expect(canned.responses.TransactWriteItems!.statusCode).toBe(200);
  });
});

describe("replay", () => {
  it("answers 201 on every call, one transaction each, and a read each without the cache", async () => {
    const read = await measureConsumption(canned, { mode: "read", calls: 40, warmup: 10, rounds: 2 });
    expect(read.measurement).toMatchObject({ failures: 0, requests: { BatchGetItem: 50, TransactWriteItems: 50 } });
    expect(read.measurement.cpuUs).toBeGreaterThan(0);
    const cached = await measureConsumption(canned, { mode: "cached", calls: 40, warmup: 10, rounds: 2 });
    expect(cached.measurement.failures).toBe(0);
    expect(cached.measurement.requests.TransactWriteItems).toBe(50);
    if (cached.measurement.runtimeHasCache) expect(cached.measurement.requests.BatchGetItem ?? 0).toBeLessThan(50);
  });

  it("counts the calls that fail when DynamoDB's answer is missing", async () => {
    const { TransactWriteItems: _dropped, ...responses } = canned.responses;
    const level = logger.getLevelName();
    logger.setLogLevel("SILENT"); // each failure is logged as an unexpected one (500)
    const { measurement } = await measureConsumption({ ...canned, responses }, { mode: "read", calls: 5, warmup: 0, rounds: 1 }).finally(() => logger.setLogLevel(level));
    expect(measurement.failures).toBeGreaterThanOrEqual(5);
    expect(measurement.firstFailure).toBeDefined();
  });

  it("profiles the measured calls, mostly in the SDK and ElectroDB", async () => {
    const { profile, measurement } = await measureConsumption(canned, { mode: "read", calls: 150, warmup: 50, rounds: 1, profile: true, profileIntervalUs: 200 });
    expect(measurement.failures).toBe(0);
    const summary = summarizeProfile(profile!, { top: 50 });
    const groups = summary.selfByGroup.map((row) => row.name);
    expect(groups).toEqual(expect.arrayContaining(["@smithy/*", "electrodb"]));
    // Project frames are mapped back to their .ts lines (tsx emits each module on line 1).
    const handlerFrame = summary.totalByFunction.find((row) => row.name.includes("functions/consumption.ts"));
    expect(handlerFrame?.name).not.toMatch(/:1$/);
  }, 30_000);
});

describe("profile summary", () => {
  const root = "/work/main";
  it("names the package or project module of a frame", () => {
    expect(packageOf("file:///work/main/node_modules/@smithy/core/dist-cjs/index.js", "f", root)).toBe("@smithy/core");
    expect(packageOf("file:///work/main/node_modules/electrodb/src/entity.js", "f", root)).toBe("electrodb");
    expect(packageOf("file:///work/main/core/consumption.ts", "consume", root)).toBe("core/consumption.ts");
    expect(packageOf("node:internal/streams/readable", "read", root)).toBe("node:streams");
    expect(packageOf("", "(garbage collector)", root)).toBe("(garbage collector)");
    expect(packageOf("", "JSONParse", root)).toBe("(native)");
    expect(groupOf("@aws-sdk/lib-dynamodb")).toBe("@aws-sdk/*");
  });

  it("sums self time by group and total time by function over the samples", () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0, columnNumber: 0 });
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame("(root)", ""), children: [2, 5, 6] },
        { id: 2, callFrame: frame("consume", "file:///work/main/core/consumption.ts"), children: [3] },
        { id: 3, callFrame: frame("go", "file:///work/main/node_modules/electrodb/src/entity.js"), children: [4] },
        { id: 4, callFrame: frame("sign", "file:///work/main/node_modules/@smithy/signature-v4/dist-cjs/index.js") },
        { id: 5, callFrame: frame("(garbage collector)", "") },
        { id: 6, callFrame: frame("(idle)", "") },
      ],
      startTime: 0,
      endTime: 100,
      // Each sample lasts until the next: 10, 20, 30, 20 µs; the last one the mean, 100 / 5.
      samples: [2, 3, 4, 5, 6],
      timeDeltas: [0, 10, 20, 30, 20],
    };
    const summary = summarizeProfile(profile, { root });
    expect(summary.narrowed).toBe("no");
    // Shares of the 80 µs busy (idle left out), back in µs.
    const us = (rows: Array<{ name: string; percent: number }>, name: string) => Math.round((rows.find((row) => row.name.startsWith(name))!.percent * 80) / 100);
    expect(us(summary.selfByGroup, "core/consumption.ts")).toBe(10);
    expect(us(summary.selfByGroup, "electrodb")).toBe(20);
    expect(us(summary.selfByGroup, "@smithy/*")).toBe(30);
    expect(us(summary.selfByGroup, "(garbage collector)")).toBe(20);
    expect(summary.selfByGroup.some((row) => row.name === "(idle)")).toBe(false);
    // consume is on the stack of its own, electrodb's and the signer's samples: 60 of 80 µs.
    expect(us(summary.totalByFunction, "consume")).toBe(60);
    expect(us(summary.totalByGroup, "electrodb")).toBe(50);
  });

  it("keeps only the samples of a given window", () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: "(root)", url: "", lineNumber: 0, columnNumber: 0 }, children: [2, 3] },
        { id: 2, callFrame: { functionName: "early", url: "file:///work/main/scripts/x.ts", lineNumber: 0, columnNumber: 0 } },
        { id: 3, callFrame: { functionName: "late", url: "file:///work/main/core/y.ts", lineNumber: 0, columnNumber: 0 } },
      ],
      startTime: 1000,
      endTime: 1400,
      samples: [2, 2, 3, 3],
      timeDeltas: [0, 100, 100, 100],
    };
    const summary = summarizeProfile(profile, { root, window: [1150, 1400] });
    expect(summary.narrowed).toBe("window");
    expect(summary.selfByFunction.map((row) => row.name.split(" ")[0])).toEqual(["late"]);
  });
});
