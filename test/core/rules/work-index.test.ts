/**
 * core/rules/work-index.ts: the work index's keys (day and shard partitions, sort keys)
 * for expiring grants, pending orders, balance items with live holds and the outbox.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DAY_SHARDS, dayBucket, expiryKeys, holdExpiryKeys, OUTBOX_SHARDS, outboxKeys, pendingKeys, shardOf, sortBoundAfter } from "../../../core/rules/work-index.js";

const PROPERTY = { numRuns: 500, seed: 0x1dec_5a4d } as const;

/** ULID-like grant ids: 26 characters of Crockford's base32. */
const aGrantId = fc.stringMatching(/^01[0-9A-HJKMNP-TV-Z]{24}$/);
const anInstant = fc.date({ min: new Date("2000-01-01T00:00:00.000Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true });
const expiryShard = (id: string) => shardOf(id, DAY_SHARDS);

describe("shardOf", () => {
  it("has 8 shards", () => {
    expect(DAY_SHARDS).toBe(8);
  });

  it("is stable: the same grant id always lands in the same shard", () => {
    fc.assert(
      fc.property(aGrantId, (grantId) => {
        expect(expiryShard(grantId)).toBe(expiryShard(`${grantId}`));
      }),
      PROPERTY,
    );
  });

  it("is an integer in [0, DAY_SHARDS)", () => {
    fc.assert(
      fc.property(fc.oneof(aGrantId, fc.string()), (grantId) => {
        const shard = expiryShard(grantId);
        expect(Number.isInteger(shard)).toBe(true);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(DAY_SHARDS);
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
    const counts = new Array<number>(DAY_SHARDS).fill(0);
    for (let i = 0; i < 800; i++) counts[expiryShard(`01JDAY${String(i).padStart(20, "0")}`)]! += 1;
    for (const count of counts) {
      expect(count).toBeGreaterThan(50);
      expect(count).toBeLessThan(150);
    }
  });
});

describe("dayBucket", () => {
  it("is the day and the shard joined by #", () => {
    expect(dayBucket("2026-11-23", 5)).toBe("2026-11-23#5");
  });
});

describe("expiryKeys", () => {
  it("puts the grant under its UTC expiry day and its shard, sorted by expiry, user and grant", () => {
    const grantId = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    expect(expiryKeys("u1", grantId, "2026-11-23T23:59:59.999Z")).toEqual({
      expiryBucket: `2026-11-23#${expiryShard(grantId)}`,
      expirySort: `2026-11-23T23:59:59.999Z#u1#${grantId}`,
    });
  });

  it("files a grant expiring at midnight UTC under the new day", () => {
    expect(expiryKeys("u1", "g1", "2026-11-24T00:00:00.000Z").expiryBucket).toMatch(/^2026-11-24#[0-7]$/);
  });

  it("keeps user ids with special characters intact in the sort key", () => {
    expect(expiryKeys("auth0|123", "g1", "2026-01-01T00:00:00.000Z").expirySort).toBe("2026-01-01T00:00:00.000Z#auth0|123#g1");
  });

  it("uses the same shard for a grant whatever its expiry or user", () => {
    fc.assert(
      fc.property(aGrantId, anInstant, anInstant, (grantId, a, b) => {
        const shardA = expiryKeys("u1", grantId, a.toISOString()).expiryBucket.split("#")[1];
        const shardB = expiryKeys("someone-else", grantId, b.toISOString()).expiryBucket.split("#")[1];
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
        const keyA = expiryKeys("user-zzz", grantA, a.toISOString()).expirySort;
        const keyB = expiryKeys("user-aaa", grantB, b.toISOString()).expirySort;
        expect(keyA < keyB).toBe(a.getTime() < b.getTime());
      }),
      PROPERTY,
    );
  });
});

describe("pendingKeys", () => {
  it("puts the order under the UTC day it became pending and its shard, sorted by that instant, user and order", () => {
    const orderId = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    expect(pendingKeys("auth0|123", orderId, new Date("2026-11-23T23:59:59.999Z"))).toEqual({
      pendingSince: "2026-11-23T23:59:59.999Z",
      pendingBucket: `2026-11-23#${expiryShard(orderId)}`,
      pendingSort: `2026-11-23T23:59:59.999Z#auth0|123#${orderId}`,
    });
  });
});

describe("holdExpiryKeys", () => {
  const hold = (expires: string) => ({ expires });

  it("has no keys without holds (the balance item leaves the index)", () => {
    expect(holdExpiryKeys("u1", "calls", [])).toBeUndefined();
  });

  it("puts the group under its earliest hold's UTC expiry day and its shard, sorted by that instant, user and group", () => {
    // Shards computed outside this code base: `printf 'u1\0calls' | sha256sum`, first byte mod 8.
    expect(holdExpiryKeys("u1", "calls", [hold("2026-03-10T12:05:00.000Z")])).toEqual({
      holdExpiryBucket: "2026-03-10#4",
      holdExpirySort: "2026-03-10T12:05:00.000Z#u1#calls",
    });
    expect(holdExpiryKeys("u1", "chat", [hold("2026-03-10T12:05:00.000Z")])!.holdExpiryBucket).toBe("2026-03-10#3");
    expect(holdExpiryKeys("u2", "calls", [hold("2026-03-10T12:05:00.000Z")])!.holdExpiryBucket).toBe("2026-03-10#0");
  });

  it("takes the earliest expiry whatever the holds' order, across days", () => {
    const holds = [hold("2026-03-11T00:00:10.000Z"), hold("2026-03-10T23:59:59.999Z"), hold("2026-03-12T08:00:00.000Z")];
    expect(holdExpiryKeys("u1", "calls", holds)).toEqual({ holdExpiryBucket: "2026-03-10#4", holdExpirySort: "2026-03-10T23:59:59.999Z#u1#calls" });
    expect(holdExpiryKeys("u1", "calls", [...holds].reverse())).toEqual(holdExpiryKeys("u1", "calls", holds));
  });

  it("files a hold expiring at midnight UTC under the new day", () => {
    expect(holdExpiryKeys("u1", "calls", [hold("2026-03-11T00:00:00.000Z")])!.holdExpiryBucket).toBe("2026-03-11#4");
  });

  it("compares instants, not strings, and writes the sort key as toISOString()", () => {
    // "2026-03-10T13:00:00+02:00" is 11:00Z: earlier than 12:00Z, though it sorts after it as a string.
    expect(holdExpiryKeys("u1", "calls", [hold("2026-03-10T12:00:00.000Z"), hold("2026-03-10T13:00:00+02:00")])!.holdExpirySort).toBe("2026-03-10T11:00:00.000Z#u1#calls");
  });

  it("keeps user ids and groups with special characters intact in the sort key", () => {
    expect(holdExpiryKeys("auth0|123", "calls#v2", [hold("2026-01-01T00:00:00.000Z")])!.holdExpirySort).toBe("2026-01-01T00:00:00.000Z#auth0|123#calls#v2");
    expect(holdExpiryKeys("auth0|123", "calls", [hold("2026-01-01T00:00:00.000Z")])!.holdExpiryBucket).toBe("2026-01-01#4");
  });

  it("refuses an expiry that is not an instant", () => {
    expect(() => holdExpiryKeys("u1", "calls", [hold("2026-01-01T00:00:00.000Z"), hold("soon")])).toThrow(RangeError);
  });

  it("is the day of the minimum and the group's shard for any set of holds; due exactly when the earliest hold has expired", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.array(anInstant, { minLength: 1, maxLength: 20 }), anInstant, (userId, offerGroup, instants, now) => {
        const keys = holdExpiryKeys(userId, offerGroup, instants.map((at) => hold(at.toISOString())))!;
        const earliest = new Date(Math.min(...instants.map((at) => at.getTime())));
        expect(keys.holdExpiryBucket).toBe(dayBucket(earliest.toISOString().slice(0, 10), shardOf(`${userId}\u0000${offerGroup}`, DAY_SHARDS)));
        expect(keys.holdExpirySort.startsWith(`${earliest.toISOString()}#`)).toBe(true);
        expect(keys.holdExpirySort < sortBoundAfter(now)).toBe(instants.some((at) => at.getTime() <= now.getTime()));
      }),
      PROPERTY,
    );
  });

  it("sorts groups of a partition by their earliest expiry", () => {
    fc.assert(
      fc.property(anInstant, anInstant, fc.string(), fc.string(), (a, b, userA, userB) => {
        fc.pre(a.getTime() !== b.getTime());
        const keyA = holdExpiryKeys(userA, "calls", [hold(a.toISOString())])!.holdExpirySort;
        const keyB = holdExpiryKeys(userB, "calls", [hold(b.toISOString())])!.holdExpirySort;
        expect(keyA < keyB).toBe(a.getTime() < b.getTime());
      }),
      PROPERTY,
    );
  });
});

describe("outboxKeys", () => {
  it("puts the event under its shard among the outbox's, sorted by event id then user", () => {
    expect(OUTBOX_SHARDS).toBe(4);
    const keys = outboxKeys("u1", "01JEVENT000000000000000000");
    expect(keys).toEqual({ outboxBucket: String(shardOf("01JEVENT000000000000000000", OUTBOX_SHARDS)), outboxSort: "01JEVENT000000000000000000#u1" });
    expect(Number(keys.outboxBucket)).toBeLessThan(OUTBOX_SHARDS);
  });
});

describe("sortBoundAfter", () => {
  it("sorts after every key of an instant at or before it, and before every later one", () => {
    fc.assert(
      fc.property(anInstant, anInstant, aGrantId, (at, other, grantId) => {
        const key = expiryKeys("u1", grantId, other.toISOString()).expirySort;
        expect(key < sortBoundAfter(at)).toBe(other.getTime() <= at.getTime());
      }),
      PROPERTY,
    );
  });
});
