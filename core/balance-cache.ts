/**
 * A per-instance cache of the balance items this instance has seen, with their group's
 * low-balance threshold (issue 12; DESIGN.md "Consumption: one request when warm"), so a
 * warm consumption makes one DynamoDB request, its transaction, instead of a consistent
 * read then the transaction.
 *
 * A cached copy may be stale: other instances write the same items. That is safe because
 * a consumption planned on a copy writes only by guarded relative draws
 * (core/balances.ts `balanceDrawWrite`): each grant drawn whole must still hold exactly
 * what is taken, the last drawn at least what is taken, each grant passed over while
 * empty still empty, and the grant set unchanged (`grantSet`: no grant added since the
 * copy). So the write happens only if its plan is the plan on the item as it is; when a
 * condition fails, DynamoDB returns the item, the consumption plans again on it, and the
 * cache keeps it. Everything else is decided on a fresh read: a refusal (402) is never
 * answered, nor stored under a key, from a copy; nor are debt, due grants, expired holds,
 * spilled grants or a wide consumption (all written whole, under the version read).
 *
 * The threshold is the group's setting (`PUT /offer-groups/{offerGroup}`), read with the
 * item: an entry lives {@link BALANCE_CACHE_TTL_MS} at most, so a changed threshold
 * reaches a warm instance within that time. Entries are evicted least recently used past
 * {@link BALANCE_CACHE_ENTRIES} (library `lru-cache`).
 */
import { LRUCache } from "lru-cache";
import type { BalanceState } from "./rules/balance-state.js";

/** Most (user, offerGroup) balances one instance keeps (a balance item is a few KB at most in the common case). */
export const BALANCE_CACHE_ENTRIES = 10_000;

/** Longest life of a cached entry, in ms: how soon a changed low-balance threshold reaches a warm instance. */
export const BALANCE_CACHE_TTL_MS = 60_000;

/** A cached balance: the state as last seen (read, returned by a failed condition, or as a write left it) and its group's threshold. */
export interface CachedBalance {
  state: BalanceState;
  /** The group's `lowBalanceThreshold` when the entry was read (null: none). */
  lowBalanceThreshold: number | null;
}

/** The per-instance cache of balance items, by (userId, offerGroup). */
export interface BalanceCache {
  /** The entry, or undefined when absent or older than its lifetime. */
  get(userId: string, offerGroup: string): CachedBalance | undefined;
  /**
   * Keeps `entry`. `read`: it comes from a read of the item and the group's settings, and
   * its lifetime starts now; otherwise (a write's copy, an item a failed condition
   * returned) it keeps the lifetime of the threshold it carries.
   */
  set(userId: string, offerGroup: string, entry: CachedBalance, read: boolean): void;
  /** Forgets the entry (after a whole-item write: the next consumption reads it again). */
  delete(userId: string, offerGroup: string): void;
}

/**
 * A cache of at most `max` entries, each living `ttlMs` from when it was read.
 * @param options.now the clock in ms (default `performance.now`; tests pass their clock)
 */
export function createBalanceCache(options: { max?: number; ttlMs?: number; now?: () => number } = {}): BalanceCache {
  const { max = BALANCE_CACHE_ENTRIES, ttlMs = BALANCE_CACHE_TTL_MS, now } = options;
  const entries = new LRUCache<string, CachedBalance>({
    max,
    ttl: ttlMs,
    ...(now ? { perf: { now } } : {}),
  });
  const key = (userId: string, offerGroup: string) => `${userId}\u0000${offerGroup}`;
  return {
    get: (userId, offerGroup) => entries.get(key(userId, offerGroup)),
    set: (userId, offerGroup, entry, read) => void entries.set(key(userId, offerGroup), entry, { noUpdateTTL: !read }),
    delete: (userId, offerGroup) => void entries.delete(key(userId, offerGroup)),
  };
}
