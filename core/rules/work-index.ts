/**
 * The work index's keys, pure (DESIGN.md "Grant items"; core/db/table.ts `TABLE.workIndex`).
 * One sparse GSI holds the work still to do, each kind under its own ElectroDB prefix:
 * - **expiring grants**: an active grant that expires, under its expiry day (UTC) and a
 *   shard, sorted by expiry instant (the daily job's expiry and warning passes);
 * - **pending orders**: an order waiting for its payment, under the day it became
 *   pending and a shard, sorted by that instant (the daily job's abandoned-order pass);
 * - **expiring holds**: a balance item with live holds (reservations), under the day its
 *   earliest hold expires and a shard, sorted by that instant (the daily job's
 *   hold-expiry pass: groups nobody touches get their expired holds released);
 * - **the outbox**: an event not yet published, under a shard, sorted by event id.
 * An item leaves the index when its work is done. Day partitions spread over
 * {@link DAY_SHARDS} shards instead of one hot key; core/day-walk.ts walks them.
 */
import { createHash } from "node:crypto";
import { utcDay } from "./time.js";

/** Partitions per day, for expiring grants, pending orders and expiring holds. */
export const DAY_SHARDS = 8;

/** Partitions of the outbox. */
export const OUTBOX_SHARDS = 4;

/**
 * The shard of an item among `shards`, stable for its id: the first byte of
 * sha256(id) modulo `shards`. Pinned: stored index keys must stay valid across releases.
 */
export function shardOf(id: string, shards: number): number {
  return createHash("sha256").update(id).digest()[0]! % shards;
}

/** The index partition of a day and shard: `<YYYY-MM-DD>#<shard>`. */
export function dayBucket(day: string, shard: number): string {
  return `${day}#${shard}`;
}

/** The index keys of an active grant expiring at `expires` (ISO 8601, UTC). */
export function expiryKeys(userId: string, grantId: string, expires: string): { expiryBucket: string; expirySort: string } {
  return {
    expiryBucket: dayBucket(utcDay(new Date(expires)), shardOf(grantId, DAY_SHARDS)),
    expirySort: `${expires}#${userId}#${grantId}`,
  };
}

/** The index keys of an order pending since `since`. */
export function pendingKeys(userId: string, orderId: string, since: Date): { pendingSince: string; pendingBucket: string; pendingSort: string } {
  const at = since.toISOString();
  return {
    pendingSince: at,
    pendingBucket: dayBucket(utcDay(since), shardOf(orderId, DAY_SHARDS)),
    pendingSort: `${at}#${userId}#${orderId}`,
  };
}

/**
 * The index keys of a (user, offerGroup) balance item with live holds expiring at
 * `holds[].expires` (ISO 8601 instants): under the UTC day of the earliest and the
 * group's shard (sha256 of `<userId> NUL <offerGroup>`, see {@link shardOf}), sorted by
 * that instant (normalized to `toISOString()`), user and group. The item is due once its
 * earliest hold has expired; after its expired holds are released, the keys move on to
 * the next earliest (or go, with the last hold).
 * @returns undefined when there is no hold (the item leaves the index: it is sparse)
 * @throws RangeError when an `expires` is not an instant
 */
export function holdExpiryKeys(
  userId: string,
  offerGroup: string,
  holds: ReadonlyArray<{ expires: string }>,
): { holdExpiryBucket: string; holdExpirySort: string } | undefined {
  let earliest: number | undefined;
  for (const { expires } of holds) {
    const at = Date.parse(expires);
    if (Number.isNaN(at)) throw new RangeError(`hold expiry ${JSON.stringify(expires)} is not an instant`);
    if (earliest === undefined || at < earliest) earliest = at;
  }
  if (earliest === undefined) return undefined;
  const at = new Date(earliest);
  return {
    holdExpiryBucket: dayBucket(utcDay(at), shardOf(`${userId}\u0000${offerGroup}`, DAY_SHARDS)),
    holdExpirySort: `${at.toISOString()}#${userId}#${offerGroup}`,
  };
}

/** The outbox keys of an unpublished event (ULID ids sort oldest first). */
export function outboxKeys(userId: string, eventId: string): { outboxBucket: string; outboxSort: string } {
  return { outboxBucket: String(shardOf(eventId, OUTBOX_SHARDS)), outboxSort: `${eventId}#${userId}` };
}

/**
 * The sort-key bound that comes after every entry keyed `<instant>#...` with instant at or
 * before `at` (`$` sorts after `#`): `lt(bound)` finds what is due at `at`.
 */
export function sortBoundAfter(at: Date): string {
  return `${at.toISOString()}$`;
}
