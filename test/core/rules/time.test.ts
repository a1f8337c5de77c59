/**
 * core/rules/time.ts: UTC days (the day of an instant, stepping by days, ranges of days).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DAY_MS, daysBetween, utcDay, utcDayPlus } from "../../../core/rules/time.js";

const PROPERTY = { numRuns: 500, seed: 0x1dec_5a4d } as const;

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
    const indexModule = fileURLToPath(new URL("../../../core/rules/time.ts", import.meta.url));
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

describe("utcDayPlus and daysBetween", () => {
  it("step in UTC calendar days across month, year and leap-day boundaries", () => {
    expect(utcDayPlus("2028-02-28", 1)).toBe("2028-02-29");
    expect(utcDayPlus("2027-12-31", 1)).toBe("2028-01-01");
    expect(utcDayPlus(new Date("2027-03-01T23:59:59.999Z"), -1)).toBe("2027-02-28");
    expect([...daysBetween("2028-02-27", "2028-03-01")]).toEqual(["2028-02-27", "2028-02-28", "2028-02-29", "2028-03-01"]);
    expect([...daysBetween("2028-03-02", "2028-03-01")]).toEqual([]);
  });
});

describe("DAY_MS", () => {
  it("is 24 hours", () => {
    expect(DAY_MS).toBe(86_400_000);
  });
});
