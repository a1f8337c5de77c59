/**
 * The work index's keys, pure (DESIGN.md "Grant items"; core/db/table.ts `TABLE.workIndex`).
 * One sparse GSI holds the work still to do, each kind under its own ElectroDB prefix:
 * - **expiring grants**: an active grant that expires, under its expiry day (UTC) and a
 *   shard, sorted by expiry instant (the daily job's expiry and warning passes);
 * - **pending orders**: an order waiting for its payment, under the day it became
 *   pending and a shard, sorted by that instant (the daily job's abandoned-order pass);
 * - **expiring holds**: a reservation still held, under the day its hold expires and a
 *   shard, sorted by that instant (the daily job's hold-expiry pass: groups nobody
 *   touches get their expired holds released);
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
 * The index keys of reservation `reservationId` of (`userId`, `offerGroup`) while it is
 * held, its hold expiring at `expires` (ISO 8601 instant): under the UTC day of `expires`
 * and the reservation's shard (sha256 of its id, see {@link shardOf}: a busy group's holds
 * spread over every shard of a day), sorted by that instant (normalized to
 * `toISOString()`), user, group and reservation. The reservation item carries them from
 * its hold until its commit, release or expiry, which removes them in the same update
 * (the index is sparse). It is due once `expires <= now` (`lt(sortBoundAfter(now))`).
 * @throws RangeError when `expires` is not an instant
 */
export function holdExpiryKeys(userId: string, offerGroup: string, reservationId: string, expires: string): { holdExpiryBucket: string; holdExpirySort: string } {
  const at = Date.parse(expires);
  if (Number.isNaN(at)) throw new RangeError(`hold expiry ${JSON.stringify(expires)} is not an instant`);
  const instant = new Date(at);
  return {
    holdExpiryBucket: dayBucket(utcDay(instant), shardOf(reservationId, DAY_SHARDS)),
    holdExpirySort: `${instant.toISOString()}#${userId}#${offerGroup}#${reservationId}`,
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
