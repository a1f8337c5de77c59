/**
 * Generated ids: ULIDs (library `ulid`), sortable by creation time, so that orders,
 * grants, ledger entries and events list in the order they happened (API.md, "Ids").
 */
import { randomFillSync } from "node:crypto";
import { monotonicFactory } from "ulid";

/** Random bytes drawn from the OS 4 KB at a time (ulid's default asks `getRandomValues` once per character: about 35 µs per id). */
const pool = Buffer.allocUnsafe(4096);
let next = pool.length;

/** ulid's PRNG interface, a number in [0, 1): one cryptographically random byte / 256 (each of ulid's 32 characters stays uniform). */
function pooledRandom(): number {
  if (next >= pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return pool[next++]! / 256;
}

const nextUlid = monotonicFactory(pooledRandom);

/**
 * A new ULID whose time part is `at` (from the injected clock). Within one process,
 * ids made in the same millisecond still sort in the order they were made.
 */
export function newId(at: Date): string {
  return nextUlid(at.getTime());
}
