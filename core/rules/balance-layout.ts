/**
 * Where a group's grants are stored, pure (DESIGN.md "The balance item stays small,
 * whatever the history"; issue 9): the balance item's map, and overflow items.
 *
 * - Order: grants are ordered by their key (core/rules/balance-state.ts `grantKey`):
 *   expiry first, never-expiring last, then grant id. For grants that have started this
 *   is the drain order (core/rules/drain.ts); a grant that starts in the future is drawn
 *   after every started one whatever its key, which the consumption checks
 *   (core/rules/drain.ts `planIsFinal`).
 * - The map holds a prefix of that order: at most {@link MAIN_GRANTS} grants, every one
 *   of them below every overflow grant. It may hold fewer while overflow grants exist
 *   (they come back when the map cannot cover a consumption, or an expiry or a write that
 *   read them refills it), so a consumption covered by the map reads and writes nothing
 *   else.
 * - Overflow items hold the rest, each grant whole (its id, remaining, dates: refunds,
 *   disputes and reversals need each one), at most {@link OVERFLOW_ITEM_GRANTS} per item.
 *   An item's key begins with a grant key no grant of it is below (its smallest when
 *   written), then a unique id: reading items in key order up to one item gives every
 *   overflow grant whose key is below that item's bound. Items may interleave: a write
 *   that adds grants to the overflow without reading it (a purchase) puts a new item.
 * - The balance item's `spilled` summary counts the overflow grants and their tokens, and
 *   `from` is exactly the smallest overflow key (the separator between map and overflow).
 *
 * The layout of a write is computed from the grants in hand after the operation (the
 * map's, the overflow items read, new grants) and what is not in hand: it fills the map,
 * rewrites the items read that changed, puts new items, and deletes emptied ones.
 */
import { grantKey, type GrantState, type OverflowSummary } from "./balance-state.js";

/**
 * Most grants in the balance item's map. Measured (test/core/long-history.test.ts): the
 * balance item with a map of 10 paid grants and its summaries is about 2.7 KB (3 write
 * units, 6 in a transaction), so a consumption with an Idempotency-Key (balance item,
 * ledger entry, idempotency record) costs 8 WCU, within 12.
 */
export const MAIN_GRANTS = 10;

/** Most grants a new overflow item holds (about 5 KB), unless a write must spill so many that {@link MAX_NEW_OVERFLOW_ITEMS} would not do. */
export const OVERFLOW_ITEM_GRANTS = 25;

/** Most overflow items one write creates: a larger spill (an item from before this layout) makes fuller items (each far below 400 KB). */
export const MAX_NEW_OVERFLOW_ITEMS = 40;

/** Separates an overflow item's lower bound from its unique id in its key (`|` is in no grant key). */
const ITEM_KEY_SEPARATOR = "|";

/** One overflow item: its key and its grants (sorted by key when written). */
export interface OverflowItem {
  itemKey: string;
  grants: GrantState[];
}

/** The key of a new overflow item whose smallest grant key is `minKey`; `id` makes it unique. */
export function overflowItemKey(minKey: string, id: string): string {
  return `${minKey}${ITEM_KEY_SEPARATOR}${id}`;
}

/** The grant key no grant of the item is below. */
export function itemLowerBound(itemKey: string): string {
  const at = itemKey.lastIndexOf(ITEM_KEY_SEPARATOR);
  return at < 0 ? itemKey : itemKey.slice(0, at);
}

/** Grants sorted by key (a new array). */
export function byKey(grants: readonly GrantState[]): GrantState[] {
  return grants
    .map((grant) => ({ grant, key: grantKey(grant) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ grant }) => grant);
}

/** What a write stores. */
export interface Layout {
  /** The map, sorted by key, at most {@link MAIN_GRANTS}. */
  main: GrantState[];
  /** The stored summary of the overflow (`from` exact), undefined when it is empty. */
  spilled: OverflowSummary | undefined;
  /** Items to write: new ones (`created`) and items read that changed. */
  puts: Array<OverflowItem & { created: boolean }>;
  /** Keys of items read that are emptied. */
  deletes: string[];
  /**
   * False when the smallest overflow key is not known from what is in hand (the
   * overflow was read only in part, and what is left of it in hand does not settle it):
   * the caller reads more items and lays out again.
   */
  complete: boolean;
}

function sameGrant(a: GrantState, b: GrantState): boolean {
  return (
    a.grantId === b.grantId &&
    a.remaining === b.remaining &&
    a.tokens === b.tokens &&
    a.starts === b.starts &&
    a.expires === b.expires &&
    a.orderId === b.orderId &&
    a.offerId === b.offerId &&
    a.orderOfferId === b.orderOfferId
  );
}

/**
 * Lays out a group's grants for a write (rules above).
 * @param grants every grant in hand after the operation (the map's, those of `loaded`, new ones)
 * @param loaded the overflow items read, as stored
 * @param spilled the overflow grants not in hand (not read), as before the operation
 * @param newItemId a fresh unique id (ULID) for a new item's key
 * @throws RangeError when a grant is in hand twice (a programming error)
 */
export function layoutGrants(input: {
  grants: readonly GrantState[];
  loaded: readonly OverflowItem[];
  spilled: OverflowSummary | undefined;
  newItemId: () => string;
  mainGrants?: number;
  itemGrants?: number;
}): Layout {
  const { loaded, spilled } = input;
  const mainGrants = input.mainGrants ?? MAIN_GRANTS;
  const itemGrants = input.itemGrants ?? OVERFLOW_ITEM_GRANTS;
  const sorted = byKey(input.grants);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.grantId === sorted[i - 1]!.grantId) throw new RangeError(`grant ${sorted[i]!.grantId} is in hand twice`);
  }

  // A. The map: the first grants in hand, below every grant not in hand.
  const below = spilled ? sorted.filter((grant) => grantKey(grant) < spilled.from).length : sorted.length;
  const main = sorted.slice(0, Math.min(mainGrants, below));
  const rest = sorted.slice(main.length);

  // B. The summary: `from` is exact when the smallest in hand is below what is not.
  const restMin = rest.length > 0 ? grantKey(rest[0]!) : undefined;
  const complete = !spilled?.inexact || (restMin !== undefined && restMin < spilled.from);
  const count = rest.length + (spilled?.grants ?? 0);
  const from = [restMin, spilled?.from].filter((key): key is string => key !== undefined).sort()[0];
  const summary: OverflowSummary | undefined =
    count > 0 && from !== undefined
      ? { grants: count, tokens: rest.reduce((total, grant) => total + grant.remaining, 0) + (spilled?.tokens ?? 0), from }
      : undefined;

  // C. Items: those read and unchanged stay; the others' grants and the new ones are packed again.
  const restById = new Map(rest.map((grant) => [grant.grantId, grant]));
  const unchanged = loaded.filter((item) => item.grants.every((grant) => restById.has(grant.grantId) && sameGrant(restById.get(grant.grantId)!, grant)));
  const kept = new Set(unchanged.flatMap((item) => item.grants.map((grant) => grant.grantId)));
  const pool = rest.filter((grant) => !kept.has(grant.grantId));
  const changed = loaded.filter((item) => !unchanged.includes(item)).sort((a, b) => (a.itemKey < b.itemKey ? -1 : 1));
  const size = Math.max(itemGrants, Math.ceil(pool.length / MAX_NEW_OVERFLOW_ITEMS));
  const puts: Layout["puts"] = [];
  const reused = new Set<string>();
  for (let start = 0; start < pool.length; start += size) {
    const chunk = pool.slice(start, start + size);
    const minKey = grantKey(chunk[0]!);
    // Reuse the changed item with the tightest bound still valid for the chunk (one put, no delete).
    const reuse = changed.findLast((item) => !reused.has(item.itemKey) && itemLowerBound(item.itemKey) <= minKey);
    if (reuse) reused.add(reuse.itemKey);
    puts.push({ itemKey: reuse ? reuse.itemKey : overflowItemKey(minKey, input.newItemId()), grants: chunk, created: !reuse });
  }
  const deletes = changed.filter((item) => !reused.has(item.itemKey)).map((item) => item.itemKey);
  return { main, spilled: summary, puts, deletes, complete };
}

/**
 * Checks a stored layout: at most {@link MAIN_GRANTS} grants in the map, sorted, each
 * below the overflow's `from`; returns what is wrong, or null.
 */
export function layoutProblem(main: readonly GrantState[], spilled: OverflowSummary | undefined): string | null {
  if (main.length > MAIN_GRANTS) return `${main.length} grants in the map, more than ${MAIN_GRANTS}`;
  for (let i = 1; i < main.length; i++) {
    if (grantKey(main[i - 1]!) >= grantKey(main[i]!)) return `map not in key order at ${main[i]!.grantId}`;
  }
  const last = main[main.length - 1];
  if (spilled && last && grantKey(last) >= spilled.from) return `map grant ${last.grantId} not below the overflow (${spilled.from})`;
  return null;
}
