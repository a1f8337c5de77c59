/**
 * core/rules/work-index.ts: the sparse expiry index keys (UTC day, shard, sort key).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXPIRY_SHARDS, expiryBucket, expiryIndexKeys, expiryShard, utcDay } from "../../../core/rules/work-index.js";

const PROPERTY = { numRuns: 500, seed: 0x1dec_5a4d } as const;

/** ULID-like grant ids: 26 characters of Crockford's base32. */
const aGrantId = fc.stringMatching(/^01[0-9A-HJKMNP-TV-Z]{24}$/);
const anInstant = fc.date({ min: new Date("2000-01-01T00:00:00.000Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true });

describe("utcDay", () => {
  it("is the UTC calendar day of the instant", () => {
    expect(utcDay(new Date("2026-11-23T10:00:00.000Z"))).toBe("2026-11-23");
  });

  it("keeps the day up to the last millisecond before midnight UTC", () => {
    expect(utcDay(new Date("2026-03-01T23:59:59.999Z"))).toBe("2026-03-01");
  });

  it("switches to the next day exactly at midnight UTC", () => {
    expect(utcDay(new Date("2026-03-02T00:00:00.000Z"))).toBe("2026-03-02");
  });

  it("crosses years and leap days in UTC", () => {
    expect(utcDay(new Date("2026-12-31T23:59:59.999Z"))).toBe("2026-12-31");
    expect(utcDay(new Date("2027-01-01T00:00:00.000Z"))).toBe("2027-01-01");
    expect(utcDay(new Date("2028-02-29T12:00:00.000Z"))).toBe("2028-02-29");
  });

  it("is the UTC day, not the local one, for an instant given with an offset", () => {
    // 2026-03-29T00:30+02:00 is 2026-03-28T22:30Z (the night of the European DST change).
    expect(utcDay(new Date("2026-03-29T00:30:00.000+02:00"))).toBe("2026-03-28");
    // 2026-11-01T20:00-05:00 is 2026-11-02T01:00Z (just after the US DST change).
    expect(utcDay(new Date("2026-11-01T20:00:00.000-05:00"))).toBe("2026-11-02");
  });

  it("gives the same days in processes running in other time zones", async () => {
    // A separate process per zone: process.env.TZ cannot be changed reliably in-process.
    const instants = ["2026-03-01T23:59:59.999Z", "2026-03-02T00:00:00.000Z", "2026-03-28T22:30:00.000Z", "2026-11-02T01:00:00.000Z"];
    const indexModule = fileURLToPath(new URL("../../core/rules/work-index.ts", import.meta.url));
    const script = `import { utcDay } from ${JSON.stringify(indexModule)};
      console.log(JSON.stringify(${JSON.stringify(instants)}.map((at) => utcDay(new Date(at)))));`;
    const run = promisify(execFile);
    const outputs = await Promise.all(
      ["Pacific/Kiritimati", "America/Los_Angeles"].map(async (zone) => {
        const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env: { ...process.env, TZ: zone } });
        return JSON.parse(stdout) as string[];
      }),
    );
    for (const days of outputs) expect(days).toEqual(["2026-03-01", "2026-03-02", "2026-03-28", "2026-11-02"]);
  });

  it("matches the UTC date fields for any instant", () => {
    fc.assert(
      fc.property(anInstant, (at) => {
        const [year, month, day] = utcDay(at).split("-").map(Number);
        expect([year, month, day]).toEqual([at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate()]);
        expect(utcDay(at)).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      }),
      PROPERTY,
    );
  });
});

describe("expiryShard", () => {
  it("has 8 shards", () => {
    expect(EXPIRY_SHARDS).toBe(8);
  });

  it("is stable: the same grant id always lands in the same shard", () => {
    fc.assert(
      fc.property(aGrantId, (grantId) => {
        expect(expiryShard(grantId)).toBe(expiryShard(`${grantId}`));
      }),
      PROPERTY,
    );
  });

  it("is an integer in [0, EXPIRY_SHARDS)", () => {
    fc.assert(
      fc.property(fc.oneof(aGrantId, fc.string()), (grantId) => {
        const shard = expiryShard(grantId);
        expect(Number.isInteger(shard)).toBe(true);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(EXPIRY_SHARDS);
      }),
      PROPERTY,
    );
  });

  it("is pinned to sha256(grantId)[0] mod 8, so stored index keys stay valid across releases", () => {
    // Values computed outside this code base: `printf '%s' ID | sha256sum`, first byte mod 8.
    expect(
      ["01J0000000000000000000000A", "grant-1", "grant-2", "grant-3", "grant-4", "grant-5", "grant-10"].map(expiryShard),
    ).toEqual([2, 0, 5, 4, 3, 1, 6]);
  });

  it("spreads the grants of one day over every shard", () => {
    const counts = new Array<number>(EXPIRY_SHARDS).fill(0);
    for (let i = 0; i < 800; i++) counts[expiryShard(`01JDAY${String(i).padStart(20, "0")}`)]! += 1;
    for (const count of counts) {
      expect(count).toBeGreaterThan(50);
      expect(count).toBeLessThan(150);
    }
  });
});

describe("expiryBucket", () => {
  it("is the day and the shard joined by #", () => {
    expect(expiryBucket("2026-11-23", 5)).toBe("2026-11-23#5");
  });
});

describe("expiryIndexKeys", () => {
  it("puts the grant under its UTC expiry day and its shard, sorted by expiry, user and grant", () => {
    const grantId = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    expect(expiryIndexKeys("u1", grantId, "2026-11-23T23:59:59.999Z")).toEqual({
      expiryBucket: `2026-11-23#${expiryShard(grantId)}`,
      expirySort: `2026-11-23T23:59:59.999Z#u1#${grantId}`,
    });
  });

  it("files a grant expiring at midnight UTC under the new day", () => {
    expect(expiryIndexKeys("u1", "g1", "2026-11-24T00:00:00.000Z").expiryBucket).toMatch(/^2026-11-24#[0-7]$/);
  });

  it("keeps user ids with special characters intact in the sort key", () => {
    expect(expiryIndexKeys("auth0|123", "g1", "2026-01-01T00:00:00.000Z").expirySort).toBe("2026-01-01T00:00:00.000Z#auth0|123#g1");
  });

  it("uses the same shard for a grant whatever its expiry or user", () => {
    fc.assert(
      fc.property(aGrantId, anInstant, anInstant, (grantId, a, b) => {
        const shardA = expiryIndexKeys("u1", grantId, a.toISOString()).expiryBucket.split("#")[1];
        const shardB = expiryIndexKeys("someone-else", grantId, b.toISOString()).expiryBucket.split("#")[1];
        expect(shardA).toBe(shardB);
        expect(Number(shardA)).toBe(expiryShard(grantId));
      }),
      PROPERTY,
    );
  });

  it("sorts entries of a partition by expiry instant", () => {
    fc.assert(
      fc.property(anInstant, anInstant, aGrantId, aGrantId, (a, b, grantA, grantB) => {
        fc.pre(a.getTime() !== b.getTime());
        const keyA = expiryIndexKeys("user-zzz", grantA, a.toISOString()).expirySort;
        const keyB = expiryIndexKeys("user-aaa", grantB, b.toISOString()).expirySort;
        expect(keyA < keyB).toBe(a.getTime() < b.getTime());
      }),
      PROPERTY,
    );
  });
});

describe("utcDayPlus and daysBetween", () => {
  it("step in UTC calendar days across month, year and leap-day boundaries", async () => {
    const { daysBetween, utcDayPlus } = await import("../../../core/rules/work-index.js");
    expect(utcDayPlus("2028-02-28", 1)).toBe("2028-02-29");
    expect(utcDayPlus("2027-12-31", 1)).toBe("2028-01-01");
    expect(utcDayPlus(new Date("2027-03-01T23:59:59.999Z"), -1)).toBe("2027-02-28");
    expect([...daysBetween("2028-02-27", "2028-03-01")]).toEqual(["2028-02-27", "2028-02-28", "2028-02-29", "2028-03-01"]);
    expect([...daysBetween("2028-03-02", "2028-03-01")]).toEqual([]);
  });
});
