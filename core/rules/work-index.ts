/**
 * The sparse expiry index (DESIGN.md "Grant items"): an active grant that expires is
 * indexed under its expiry day (UTC) and a small shard number, so one day's due grants
 * spread over {@link EXPIRY_SHARDS} partitions instead of one hot key; within a
 * partition, entries sort by expiry instant. Pure.
 */
import { createHash } from "node:crypto";
import { addDays } from "date-fns";
import { UTCDate } from "@date-fns/utc";

/** Partitions per expiry day. */
export const EXPIRY_SHARDS = 8;

/** The UTC day (YYYY-MM-DD) of an instant. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The UTC day `days` days before or after `at`'s day (YYYY-MM-DD). */
export function utcDayPlus(at: Date | string, days: number): string {
  const from = typeof at === "string" ? new UTCDate(`${at}T00:00:00.000Z`) : new UTCDate(at.getTime());
  return utcDay(addDays(from, days));
}

/** Every UTC day from `first` to `last` (YYYY-MM-DD, both included), in order. */
export function* daysBetween(first: string, last: string): Generator<string> {
  for (let day = first; day <= last; day = utcDayPlus(day, 1)) yield day;
}

/** The shard of a grant, stable for its id, in [0, EXPIRY_SHARDS). */
export function expiryShard(grantId: string): number {
  return createHash("sha256").update(grantId).digest()[0]! % EXPIRY_SHARDS;
}

/** The index partition for a day and shard. */
export function expiryBucket(day: string, shard: number): string {
  return `${day}#${shard}`;
}

/** The index keys of an active grant expiring at `expires` (ISO). */
export function expiryIndexKeys(userId: string, grantId: string, expires: string): { expiryBucket: string; expirySort: string } {
  return {
    expiryBucket: expiryBucket(utcDay(new Date(expires)), expiryShard(grantId)),
    expirySort: `${expires}#${userId}#${grantId}`,
  };
}
