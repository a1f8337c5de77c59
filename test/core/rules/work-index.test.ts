/**
 * core/rules/work-index.ts: the work index's keys (day and shard partitions, sort keys)
 * for expiring grants, pending orders, held reservations and the outbox.
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
  const [r1, r2, r3] = ["01JRESERVAT10N000000000000A", "01JRESERVAT10N000000000000B", "01JRESERVAT10N000000000000C"];

  it("puts a held reservation under its hold's UTC expiry day and its own shard, sorted by that instant, user, group and reservation", () => {
    // Shards computed outside this code base: `printf '%s' ID | sha256sum`, first byte mod 8.
    expect(holdExpiryKeys("u1", "calls", r1, "2026-03-10T12:05:00.000Z")).toEqual({
      holdExpiryBucket: "2026-03-10#1",
      holdExpirySort: `2026-03-10T12:05:00.000Z#u1#calls#${r1}`,
    });
    expect(holdExpiryKeys("u1", "calls", r2, "2026-03-10T12:05:00.000Z").holdExpiryBucket).toBe("2026-03-10#6");
    expect(holdExpiryKeys("u1", "calls", r3, "2026-03-10T12:05:00.000Z").holdExpiryBucket).toBe("2026-03-10#7");
  });

  it("takes the shard from the reservation alone: not from the user, the group or the expiry", () => {
    fc.assert(
      fc.property(aGrantId, fc.string(), fc.string(), anInstant, anInstant, (reservationId, userId, offerGroup, a, b) => {
        const shardA = holdExpiryKeys("u1", "calls", reservationId, a.toISOString()).holdExpiryBucket.split("#")[1];
        const shardB = holdExpiryKeys(userId, offerGroup, reservationId, b.toISOString()).holdExpiryBucket.split("#")[1];
        expect(shardA).toBe(shardB);
        expect(Number(shardA)).toBe(shardOf(reservationId, DAY_SHARDS));
      }),
      PROPERTY,
    );
  });

  it("spreads the holds of one busy group over every shard of a day", () => {
    const shards = new Set<number>();
    for (let i = 0; i < 100; i++) shards.add(Number(holdExpiryKeys("u1", "calls", `01JHOLD${String(i).padStart(19, "0")}`, "2026-03-10T12:05:00.000Z").holdExpiryBucket.split("#")[1]));
    expect(shards.size).toBe(DAY_SHARDS);
  });

  it("files a hold expiring at midnight UTC under the new day, and one a millisecond before under the old", () => {
    expect(holdExpiryKeys("u1", "calls", r1, "2026-03-11T00:00:00.000Z").holdExpiryBucket).toBe("2026-03-11#1");
    expect(holdExpiryKeys("u1", "calls", r1, "2026-03-10T23:59:59.999Z").holdExpiryBucket).toBe("2026-03-10#1");
  });

  it("writes the instant as toISOString(): an offset expiry lands under its UTC day and sorts by its instant", () => {
    // "2026-03-11T01:00:00+02:00" is 2026-03-10T23:00:00Z.
    expect(holdExpiryKeys("u1", "calls", r1, "2026-03-11T01:00:00+02:00")).toEqual({
      holdExpiryBucket: "2026-03-10#1",
      holdExpirySort: `2026-03-10T23:00:00.000Z#u1#calls#${r1}`,
    });
  });

  it("keeps user ids and groups with special characters intact in the sort key", () => {
    expect(holdExpiryKeys("auth0|123", "calls#v2", r1, "2026-01-01T00:00:00.000Z").holdExpirySort).toBe(`2026-01-01T00:00:00.000Z#auth0|123#calls#v2#${r1}`);
  });

  it("refuses an expiry that is not an instant", () => {
    expect(() => holdExpiryKeys("u1", "calls", r1, "soon")).toThrow(RangeError);
    expect(() => holdExpiryKeys("u1", "calls", r1, "")).toThrow(RangeError);
  });

  it("is the UTC day of the expiry and the reservation's shard; due exactly when expires <= now", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), aGrantId, anInstant, anInstant, (userId, offerGroup, reservationId, expires, now) => {
        const keys = holdExpiryKeys(userId, offerGroup, reservationId, expires.toISOString());
        expect(keys.holdExpiryBucket).toBe(dayBucket(expires.toISOString().slice(0, 10), shardOf(reservationId, DAY_SHARDS)));
        expect(keys.holdExpirySort).toBe(`${expires.toISOString()}#${userId}#${offerGroup}#${reservationId}`);
        expect(keys.holdExpirySort < sortBoundAfter(now)).toBe(expires.getTime() <= now.getTime());
      }),
      PROPERTY,
    );
  });

  it("sorts the reservations of a partition by their hold's expiry, whoever holds them", () => {
    fc.assert(
      fc.property(anInstant, anInstant, fc.string(), fc.string(), aGrantId, aGrantId, (a, b, userA, userB, idA, idB) => {
        fc.pre(a.getTime() !== b.getTime());
        const keyA = holdExpiryKeys(userA, "calls", idA, a.toISOString()).holdExpirySort;
        const keyB = holdExpiryKeys(userB, "chat", idB, b.toISOString()).holdExpirySort;
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
