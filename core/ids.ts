/**
 * Generated ids: ULIDs (library `ulid`), sortable by creation time, so that orders,
 * grants, ledger entries and events list in the order they happened (API.md, "Ids").
 */
import { monotonicFactory } from "ulid";

const nextUlid = monotonicFactory();

/**
 * A new ULID whose time part is `at` (from the injected clock). Within one process,
 * ids made in the same millisecond still sort in the order they were made.
 */
export function newId(at: Date): string {
  return nextUlid(at.getTime());
}
