/**
 * Reading and writing balance items and their overflow items. Reads are strongly
 * consistent (money decisions read the base table, DESIGN.md). Writes are conditional,
 * so two writers cannot both succeed from the same state (optimistic concurrency): a
 * write of the whole item is conditional on the version read ({@link balanceWrites}), and
 * refuses a state that breaks the balance invariant; a consumption covered by a few
 * grants of the map writes guarded relative draws instead ({@link balanceDrawWrite}),
 * conditional on each drawn grant.
 *
 * Layout (core/rules/balance-layout.ts): the balance item's map holds the group's first
 * grants in drain order (at most `MAIN_GRANTS`); the rest are in overflow items, read only
 * when the map cannot cover a consumption, when some of them are due, or when the whole
 * grant set is needed. A state read here holds the grants *in hand* and sums up the others
 * (`spilled`); a {@link BalanceView} adds the overflow items read, which a write needs to
 * store a changed state. Every change to overflow items is written in the same
 * transaction as a version-checked put of the balance item, so the version guards the
 * whole grant set.
 *
 * For refunds, disputes and give-backs (a grant anywhere in the set): read the whole set
 * with {@link readFullBalance}, plan on `view.state` (all grants in hand, nothing spilled;
 * add, change or remove grants freely), and store the next state with
 * {@link balanceWrites}: the named actions `balance` and `overflow:<itemKey>` (at most
 * {@link MAX_OVERFLOW_ACTIONS} of them, see there), to put in one transaction with the
 * operation's other actions. The version check makes two writers planned on the same read
 * exclusive, whatever they touch. An operation that ends an order's grants (a refund, a
 * lost dispute) also drops the order's periods in each group it touches
 * (core/rules/balance-state.ts `endOrderPeriods`: the periods of its grants that had left
 * the map, which visibility still reads). {@link balanceWrite} stores a map as it is (no
 * layout): only for a state read as a map and changed within it.
 */
import type { Context } from "./context.js";
import {
  balanceStateProblem,
  dueBound,
  emptyBalance,
  grantKey,
  extendChain,
  isExhausted,
  withExhausted,
  type BalanceState,
  type ExhaustedGrants,
  type GrantState,
} from "./rules/balance-state.js";
import {
  byKey,
  itemLowerBound,
  layoutGrants,
  layoutProblem,
  overflowItemKey,
  OVERFLOW_ITEM_GRANTS,
  type Layout,
  type OverflowItem,
} from "./rules/balance-layout.js";
import { addPeriod, periodOf, periodsBesides, type PaidPeriod } from "./rules/periods.js";
import { grantsHeld, holdsProblem, type HoldState } from "./rules/holds.js";
import { passedOver } from "./rules/drain.js";
import type { CrossingRange } from "./rules/low-balance.js";
import type { GrantFacts } from "./rules/give-back.js";
import type { BalanceItem, BalanceOverflowItem, Db } from "./db/service.js";
import { BALANCE_LAYOUT } from "./db/balance.js";
import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import { commit, type TransactionItem } from "./db/transact.js";
import { TABLE } from "./db/table.js";
import { InvariantViolation } from "./errors.js";
import { newId } from "./ids.js";
import { RetryableConflict } from "./retry.js";

/**
 * Most overflow-item actions one write may hold (puts and deletes): with the balance
 * item and an operation's own few actions, a transaction stays well under DynamoDB's
 * 100. A write that would need more (a consumption drawing from many small items) first
 * merges them ({@link mergeOverflowWrites}).
 */
export const MAX_OVERFLOW_ACTIONS = 40;

/** Overflow items read per Query when the map does not settle an operation. */
export const OVERFLOW_ITEMS_PER_READ = 4;

/**
 * A balance as read: its state (the grants in hand: the map's and those of `loaded`) and
 * the overflow items read, in key order, with the cursor of the next ones.
 */
export interface BalanceView {
  state: BalanceState;
  /** The overflow items read, as stored. */
  loaded: OverflowItem[];
  /** ElectroDB cursor after the last item read; null when none was read or none is left. */
  cursor: string | null;
}

/** A view of `state` with no overflow item read (the map only). */
export function mapView(state: BalanceState): BalanceView {
  return { state, loaded: [], cursor: null };
}

/**
 * A stored balance item as a state (also for items returned by a failed condition). An
 * item written before this layout (no `layout`) is read as legacy: exhausted grants are
 * left out (the expiring ones noted in `exhausted`), and the summaries are rebuilt from
 * its grants; it is written whole by the next write.
 */
export function toState(item: BalanceItem): BalanceState {
  const state: BalanceState = {
    userId: item.userId,
    offerGroup: item.offerGroup,
    balance: item.balance,
    debt: item.debt,
    version: item.version,
    grants: item.grants,
  };
  if (item.spilled) state.spilled = { ...item.spilled };
  if (item.chainUntil !== undefined) state.chainUntil = item.chainUntil;
  if (item.periods) state.periods = item.periods;
  if (item.exhausted) state.exhausted = { ...item.exhausted };
  if (item.liveHolds && item.liveHolds.length > 0) state.holds = expandHolds(item.liveHolds, item.heldGrants ?? []);
  if (item.lowBalanceLatched === true) state.lowBalanceLatched = true;
  if (item.topUpThreshold !== undefined) state.topUpThreshold = item.topUpThreshold;
  if (item.topUpLatched === true) state.topUpLatched = true;
  if (item.grantSet !== undefined) state.grantSet = item.grantSet;
  if (item.layout === undefined) return legacyState(state);
  return state;
}

/**
 * Most live holds a group keeps on its balance item (API.md "Reservations"; DESIGN.md:
 * holds count toward the item's size bound). A hold of one grant takes about 150 bytes,
 * plus about 200 per distinct grant drawn (`heldGrants`): 100 holds stay under about 35
 * KB, far below DynamoDB's 400 KB item limit (each write then costs up to ~35 write units,
 * twice that in a transaction). core/reservations.ts refuses a hold beyond it (409 `conflict`).
 */
export const MAX_HOLDS = 100;

/** The stored holds (draws by grant id) with their grants' facts put back ({@link compactHolds} undone). */
function expandHolds(stored: NonNullable<BalanceItem["liveHolds"]>, heldGrants: NonNullable<BalanceItem["heldGrants"]>): HoldState[] {
  const facts = new Map(heldGrants.map((grant) => [grant.grantId, grant]));
  return stored.map((hold) => ({
    reservationId: hold.reservationId,
    tokens: hold.tokens,
    expires: hold.expires,
    createdAt: hold.createdAt,
    draws: hold.draws.map((draw) => {
      const grant = facts.get(draw.grantId);
      if (!grant) throw new InvariantViolation(`hold ${hold.reservationId} draws grant ${draw.grantId} whose facts are not stored`, { hold });
      return { grant: { ...grant }, tokens: draw.tokens };
    }),
  }));
}

/** The holds as stored: draws by grant id, and the facts of each grant drawn once (in first-drawn order). */
function compactHolds(holds: readonly HoldState[]): { liveHolds: NonNullable<BalanceItem["liveHolds"]>; heldGrants: GrantFacts[] } {
  const facts = new Map<string, GrantFacts>();
  for (const hold of holds) for (const draw of hold.draws) if (!facts.has(draw.grant.grantId)) facts.set(draw.grant.grantId, draw.grant);
  return {
    liveHolds: holds.map((hold) => ({
      reservationId: hold.reservationId,
      tokens: hold.tokens,
      expires: hold.expires,
      createdAt: hold.createdAt,
      draws: hold.draws.map((draw) => ({ grantId: draw.grant.grantId, tokens: draw.tokens })),
    })),
    heldGrants: [...facts.values()].map((grant) => {
      const stored: GrantFacts = { grantId: grant.grantId, tokens: grant.tokens, starts: grant.starts };
      if (grant.orderId !== undefined) stored.orderId = grant.orderId;
      if (grant.offerId !== undefined) stored.offerId = grant.offerId;
      if (grant.orderOfferId !== undefined) stored.orderOfferId = grant.orderOfferId;
      if (grant.expires !== undefined) stored.expires = grant.expires;
      return stored;
    }),
  };
}

/** The state of an item stored before this layout (see {@link toState}). */
function legacyState(stored: BalanceState): BalanceState {
  let chainUntil: string | undefined;
  let periods: PaidPeriod[] = [];
  let exhausted: ExhaustedGrants | undefined;
  const grants: GrantState[] = [];
  for (const grant of stored.grants) {
    chainUntil = extendChain(chainUntil, grant.expires);
    if (!isExhausted(grant)) {
      grants.push(grant);
      continue;
    }
    exhausted = withExhausted(exhausted, grant);
    const period = periodOf(grant);
    if (period) periods = addPeriod(periods, period, new Date(0));
  }
  const state: BalanceState = { ...stored, grants, legacy: true };
  if (chainUntil !== undefined) state.chainUntil = chainUntil;
  if (periods.length > 0) state.periods = periods;
  if (exhausted) state.exhausted = exhausted;
  return state;
}

/** The (user, offerGroup) balance (its map), read consistently; an empty version-0 state if none. */
export async function readBalance(ctx: Pick<Context, "db">, userId: string, offerGroup: string): Promise<BalanceState> {
  const { data } = await ctx.db.entities.balance.get({ userId, offerGroup }).go({ consistent: true });
  return data ? toState(data) : emptyBalance(userId, offerGroup);
}

/**
 * The (user, offerGroup) balance (its map) and the group's low-balance threshold, read
 * together in one strongly consistent `BatchGetItem` (one request).
 */
export async function readBalanceAndThreshold(
  ctx: Pick<Context, "db">,
  userId: string,
  offerGroup: string,
): Promise<{ state: BalanceState; lowBalanceThreshold: number | null }> {
  const { balance, offerGroupSettings: settings } = ctx.db.entities;
  const balanceKey = balance.get({ userId, offerGroup }).params().Key as Record<string, string>;
  const settingsKey = settings.get({ offerGroup }).params().Key as Record<string, string>;
  let keys = [balanceKey, settingsKey];
  const found: Record<string, unknown>[] = [];
  for (let attempt = 0; keys.length > 0; attempt++) {
    const result = await ctx.db.client.send(
      new BatchGetCommand({ RequestItems: { [ctx.db.table]: { Keys: keys, ConsistentRead: true } } }),
    );
    found.push(...(result.Responses?.[ctx.db.table] ?? []));
    keys = (result.UnprocessedKeys?.[ctx.db.table]?.Keys ?? []) as Record<string, string>[];
    if (keys.length > 0 && attempt >= 5) throw new RetryableConflict("BatchGetItem kept keys unprocessed");
  }
  const isBalance = (item: Record<string, unknown>) => item[TABLE.sortKey] === balanceKey[TABLE.sortKey];
  const balanceItem = found.find(isBalance);
  const settingsItem = found.find((item) => !isBalance(item));
  const threshold = settingsItem ? settings.parse({ Item: settingsItem }).data?.lowBalanceThreshold : undefined;
  return {
    state: balanceItem ? toState(balance.parse({ Item: balanceItem }).data as BalanceItem) : emptyBalance(userId, offerGroup),
    lowBalanceThreshold: threshold ?? null,
  };
}

/** Every balance of the user (their maps), read consistently in one Query, keyed by offerGroup. */
export async function readBalances(ctx: Pick<Context, "db">, userId: string): Promise<Map<string, BalanceState>> {
  const { data } = await ctx.db.entities.balance.query.byUser({ userId }).go({ consistent: true, pages: "all" });
  return new Map(data.map((item) => [item.offerGroup, toState(item)]));
}

/**
 * Reads the next overflow items of `view` in key order (at most `items`; "all" for the
 * rest), consistently, and returns the view with their grants in hand. Once every
 * overflow grant is in hand, `state.spilled` is gone; before, its `from` is the lower
 * bound of what is left (inexact).
 * @throws RetryableConflict when the items do not match the balance item's summary (a
 *   writer changed them since the balance item was read)
 */
export async function readMoreOverflow(ctx: Pick<Context, "db">, view: BalanceView, items: number | "all" = OVERFLOW_ITEMS_PER_READ): Promise<BalanceView> {
  const spilled = view.state.spilled;
  if (!spilled) return view;
  const { userId, offerGroup } = view.state;
  const query = ctx.db.entities.balanceOverflow.query.byGroup({ userId, offerGroup });
  const result =
    items === "all"
      ? await query.go({ consistent: true, pages: "all", cursor: view.cursor })
      : await query.go({ consistent: true, count: items, cursor: view.cursor });
  const read = result.data.map(toOverflowItem);
  const grants = read.flatMap((item) => item.grants);
  const left = spilled.grants - grants.length;
  const tokens = spilled.tokens - grants.reduce((total, grant) => total + grant.remaining, 0);
  const inHand = new Set(view.state.grants.map((grant) => grant.grantId));
  if (left < 0 || tokens < 0 || grants.some((grant) => inHand.has(grant.grantId)) || (read.length === 0 && left > 0)) {
    throw new RetryableConflict("overflow items changed since the balance was read");
  }
  const state: BalanceState = { ...view.state, grants: [...view.state.grants, ...grants] };
  if (left === 0) {
    if (tokens !== 0) throw new RetryableConflict("overflow items changed since the balance was read");
    delete state.spilled;
  } else {
    const last = read[read.length - 1];
    const bound = last ? itemLowerBound(last.itemKey) : spilled.from;
    state.spilled = { grants: left, tokens, from: bound > spilled.from ? bound : spilled.from, inexact: true };
  }
  return { state, loaded: [...view.loaded, ...read], cursor: left === 0 ? null : (result.cursor ?? null) };
}

function toOverflowItem(item: BalanceOverflowItem): OverflowItem {
  return { itemKey: item.itemKey, grants: item.grants };
}

/**
 * The whole grant set of a (user, offerGroup): the balance item and every overflow item,
 * read consistently (one GetItem, then one Query when grants are spilled). `view.state`
 * holds every grant in hand and nothing spilled; plan on it and store the next state with
 * {@link balanceWrites}. Cost: the balance item, plus about 5 KB per 25 spilled grants.
 */
export async function readFullBalance(ctx: Pick<Context, "db">, userId: string, offerGroup: string): Promise<BalanceView> {
  return readMoreOverflow(ctx, mapView(await readBalance(ctx, userId, offerGroup)), "all");
}

/** `state` with every spilled grant read into hand (one Query when some are spilled). */
export async function withAllGrants(ctx: Pick<Context, "db">, state: BalanceState): Promise<BalanceState> {
  return state.spilled ? (await readMoreOverflow(ctx, mapView(state), "all")).state : state;
}

/**
 * `next` as it is stored, planned on `view`: the grants that enter it (not in hand in
 * `view`) extend the chain (`chainUntil`), and one that holds nothing (all its tokens
 * repaid debt) does not enter: it is noted in `exhausted` when it expires, and its period
 * (a paid grant) in `periods`.
 */
export function entering(view: BalanceView, next: BalanceState, now: Date): BalanceState {
  const inHand = new Set(view.state.grants.map((grant) => grant.grantId));
  let chainUntil = next.chainUntil;
  let periods = next.periods ?? [];
  let exhausted = next.exhausted;
  const grants: GrantState[] = [];
  for (const grant of next.grants) {
    if (!inHand.has(grant.grantId)) {
      chainUntil = extendChain(chainUntil, grant.expires);
      if (isExhausted(grant)) {
        exhausted = withExhausted(exhausted, grant);
        const period = periodOf(grant);
        if (period) periods = addPeriod(periods, period, now);
        continue;
      }
    }
    grants.push(grant);
  }
  const stored: BalanceState = { ...next, grants };
  delete stored.chainUntil;
  delete stored.periods;
  delete stored.exhausted;
  if (chainUntil !== undefined) stored.chainUntil = chainUntil;
  if (periods.length > 0) stored.periods = periods;
  if (exhausted) stored.exhausted = exhausted;
  return stored;
}

/**
 * The layout (core/rules/balance-layout.ts) that stores `next` ({@link entering}),
 * planned on `view`: the map, the overflow summary, the overflow items to put and delete.
 * When `complete` is false, read more items ({@link readMoreOverflow}), plan again and lay
 * out again.
 */
export function layoutFor(view: BalanceView, next: BalanceState, now: Date): Layout {
  return layoutGrants({ grants: entering(view, next, now).grants, loaded: view.loaded, spilled: view.state.spilled, newItemId: () => newId(now) });
}

/** Overflow actions of a layout (puts and deletes). */
export function overflowActionCount(layout: Layout): number {
  return layout.puts.length + layout.deletes.length;
}

/**
 * The named transaction actions that store `next`, planned on `view`: `balance` (the
 * balance item, if still at the version read) and `overflow:<itemKey>` per overflow item
 * put (new: only if absent; rewritten: only if present) or deleted (only if present).
 * `next.grants` is every grant in hand after the operation (keep those not touched; leave
 * out those that leave); `next.spilled` is ignored (the view's is used).
 * @param layout the layout to store, when the caller computed it ({@link layoutFor})
 * @throws InvariantViolation when `next` breaks the balance invariant at `now` (nothing
 *   is written); RangeError when the layout is not complete (read more first) or needs
 *   more than {@link MAX_OVERFLOW_ACTIONS} overflow actions (merge first)
 */
export function balanceWrites(db: Db, view: BalanceView, next: BalanceState, now: Date, layout: Layout = layoutFor(view, next, now)): Record<string, TransactionItem> {
  if (!layout.complete) throw new RangeError("the layout needs more overflow items read");
  if (overflowActionCount(layout) > MAX_OVERFLOW_ACTIONS) throw new RangeError(`the layout needs ${overflowActionCount(layout)} overflow actions, more than ${MAX_OVERFLOW_ACTIONS}`);
  const entered = entering(view, next, now);
  const stored: BalanceState = { ...entered, grants: layout.main };
  if (layout.spilled) stored.spilled = layout.spilled;
  else delete stored.spilled;
  // The periods of paid grants in hand that go to the overflow join the stored ones (those
  // spilled before are there already); balanceWrite leaves out the map's own.
  const inMap = new Set(layout.main.map((grant) => grant.grantId));
  let periods = entered.periods ?? [];
  for (const grant of entered.grants) {
    const period = inMap.has(grant.grantId) ? undefined : periodOf(grant);
    if (period) periods = addPeriod(periods, period, now);
  }
  if (periods.length > 0) stored.periods = periods;
  else delete stored.periods;
  const actions: Record<string, TransactionItem> = { balance: balanceWrite(db, stored, view.state.version, now) };
  const { userId, offerGroup } = next;
  for (const item of layout.puts) {
    const put = db.entities.balanceOverflow.put({ userId, offerGroup, itemKey: item.itemKey, grants: item.grants, updatedAt: now.toISOString() });
    actions[`overflow:${item.itemKey}`] = commit(item.created ? put.where((attr, op) => op.notExists(attr.itemKey)) : put.where((attr, op) => op.exists(attr.itemKey)));
  }
  for (const itemKey of layout.deletes) {
    actions[`overflow:${itemKey}`] = commit(db.entities.balanceOverflow.delete({ userId, offerGroup, itemKey }).where((attr, op) => op.exists(attr.itemKey)));
  }
  return actions;
}

/**
 * The actions that merge the small overflow items read in `view` into full ones (no
 * grant or token changes; the balance item's version moves, so the merge is atomic with
 * respect to every other writer): for a write that would touch too many small items
 * (grants spilled one purchase at a time). At most {@link MAX_OVERFLOW_ACTIONS} overflow
 * actions; run it again (after reading again) until the write fits.
 * @returns undefined when merging would not lower the number of items
 */
export function mergeOverflowWrites(db: Db, view: BalanceView, now: Date): Record<string, TransactionItem> | undefined {
  const small = view.loaded.filter((item) => item.grants.length < OVERFLOW_ITEM_GRANTS);
  const chosen: OverflowItem[] = [];
  let grants = 0;
  for (const item of small) {
    const items = Math.ceil((grants + item.grants.length) / OVERFLOW_ITEM_GRANTS);
    if (chosen.length + 1 + items > MAX_OVERFLOW_ACTIONS) break;
    chosen.push(item);
    grants += item.grants.length;
  }
  const merged = byKey(chosen.flatMap((item) => item.grants));
  if (Math.ceil(merged.length / OVERFLOW_ITEM_GRANTS) >= chosen.length) return undefined;
  const { userId, offerGroup } = view.state;
  const actions: Record<string, TransactionItem> = {
    balance: commit(
      db.entities.balance
        .patch({ userId, offerGroup })
        .add({ version: 1 })
        .set({ updatedAt: now.toISOString() })
        .where((attr, op) => op.eq(attr.version, view.state.version)),
    ),
  };
  for (const item of chosen) {
    actions[`overflow:${item.itemKey}`] = commit(db.entities.balanceOverflow.delete({ userId, offerGroup, itemKey: item.itemKey }).where((attr, op) => op.exists(attr.itemKey)));
  }
  for (let start = 0; start < merged.length; start += OVERFLOW_ITEM_GRANTS) {
    const chunk = merged.slice(start, start + OVERFLOW_ITEM_GRANTS);
    const itemKey = overflowItemKey(grantKey(chunk[0]!), newId(now));
    actions[`overflow:${itemKey}`] = commit(
      db.entities.balanceOverflow.put({ userId, offerGroup, itemKey, grants: chunk, updatedAt: now.toISOString() }).where((attr, op) => op.notExists(attr.itemKey)),
    );
  }
  return actions;
}

/**
 * Most grants one guarded draw names: each adds a SET and two conditions to the update,
 * and DynamoDB caps an expression at 4 KB. Wider consumptions use the versioned write.
 */
export const MAX_GUARDED_DRAWS = 10;

/**
 * The transaction action of a consumption covered by grants of the map: relative,
 * guarded updates instead of a version check. Each drawn grant must still be at its place
 * in the list with at least the tokens taken (`remaining >= take`); a grant the draw
 * empties must hold exactly what is taken, and leaves the list (REMOVE; an expiring one
 * is noted in `exhausted`, conditional on the note read, so concurrent draws cannot lose
 * one), and a paid one's period is appended to `periods` (core/rules/periods.ts). The
 * balance goes down by the tokens and the version up by one (so writers that
 * replace the whole item, which check the version, retry). Concurrent consumptions
 * therefore conflict only when a grant they draw runs short or moves, not whenever
 * another write came first: 300 spenders of one balance no longer cost each other a
 * retry per success.
 *
 * Exact drain order on any copy: each grant drawn whole (all but the last drawn) must
 * still hold exactly what is taken, each grant the plan passed over while empty
 * (core/rules/drain.ts `passedOver`) must still be empty, and the grant set unchanged
 * (`grantSet`, moved by every whole write, the only writes that add grants). A plan made
 * on a stale copy (core/balance-cache.ts) is then written only if it is the plan on the
 * item as it is; otherwise the condition fails and the item comes back to plan on.
 * @param state the state the draws were planned on (a map read, not legacy: for the grants' positions)
 * @param range the low-balance decision (core/rules/low-balance.ts `latchedCrossing`): the
 *   balance the write must find (`> above`, `<= atMost`), the latch it must find when
 *   `latched` is set (true: `lowBalanceLatched` set; false: absent), and `raises`: the
 *   write sets the latch; `topUpLatched` and `topUpRaises` likewise for the top-up latch
 *   (core/rules/low-balance.ts `withTopUp`)
 * @throws RangeError for a draw from a grant not in the map, or a legacy state
 */
export function balanceDrawWrite(
  db: Db,
  state: BalanceState,
  draws: ReadonlyArray<{ grantId: string; tokens: number }>,
  tokens: number,
  now: Date,
  range: CrossingRange = {},
): TransactionItem {
  if (state.legacy) throw new RangeError("a legacy balance item is written whole");
  const held = grantsHeld(state.holds ?? []);
  const lastDraw = draws.length - 1;
  const empty = passedOver(state, draws, now).map((grant) => ({ grantId: grant.grantId, index: state.grants.indexOf(grant) }));
  let exhausted = state.exhausted;
  const periods: PaidPeriod[] = [];
  const positions = draws.map((draw) => {
    const index = state.grants.findIndex((grant) => grant.grantId === draw.grantId);
    if (index < 0) throw new RangeError(`grant ${draw.grantId} is not in the balance`);
    const grant = state.grants[index]!;
    // A grant a live hold drew from stays in the list at 0 (its hold's tokens come back to it).
    const empties = isExhausted({ tokens: grant.tokens, remaining: grant.remaining - draw.tokens }) && !held.has(draw.grantId);
    if (empties) {
      exhausted = withExhausted(exhausted, grant);
      const period = periodOf(grant);
      if (period) periods.push(period);
    }
    return { ...draw, index, empties };
  });
  const seen = state.exhausted;
  const noteChanged = exhausted !== undefined && (seen === undefined || seen.since !== exhausted.since || seen.due !== exhausted.due);
  return commit(
    db.entities.balance
      .patch({ userId: state.userId, offerGroup: state.offerGroup })
      .data((attr, op) => {
        for (const { index, tokens: take, empties } of positions) {
          if (empties) op.remove(attr.grants[index]!);
          else op.subtract(attr.grants[index]!.remaining, take);
        }
        if (noteChanged) op.set(attr.exhausted, exhausted!);
        // Relative: concurrent draws each add theirs (the next whole write prunes the list).
        if (periods.length > 0) op.append(attr.periods, periods);
        if (range.raises) op.set(attr.lowBalanceLatched, true);
        if (range.topUpRaises) op.set(attr.topUpLatched, true);
        op.subtract(attr.balance, tokens);
        op.add(attr.version, 1);
        op.set(attr.updatedAt, now.toISOString());
      })
      .where((attr, op) =>
        [
          ...positions.map(({ index, grantId, tokens: take, empties }, k) =>
            `${op.eq(attr.grants[index]!.grantId, grantId)} AND ${empties || k < lastDraw ? op.eq(attr.grants[index]!.remaining, take) : op.gte(attr.grants[index]!.remaining, take)}`,
          ),
          ...empty.map(({ index, grantId }) => `${op.eq(attr.grants[index]!.grantId, grantId)} AND ${op.eq(attr.grants[index]!.remaining, 0)}`),
          state.grantSet === undefined ? op.notExists(attr.grantSet) : op.eq(attr.grantSet, state.grantSet),
          ...(noteChanged
            ? [seen ? `${op.eq(attr.exhausted.since, seen.since)} AND ${op.eq(attr.exhausted.due, seen.due)}` : op.notExists(attr.exhausted)]
            : []),
          op.exists(attr.layout),
          ...(range.above !== undefined ? [op.gt(attr.balance, range.above)] : []),
          ...(range.atMost !== undefined ? [op.lte(attr.balance, range.atMost)] : []),
          ...(range.latched === undefined ? [] : [range.latched ? op.eq(attr.lowBalanceLatched, true) : op.notExists(attr.lowBalanceLatched)]),
          ...(range.topUpLatched === undefined ? [] : [range.topUpLatched ? op.eq(attr.topUpLatched, true) : op.notExists(attr.topUpLatched)]),
        ].join(" AND "),
      ),
    { returnOld: true },
  );
}

/** The same JSON (for the parts of a state a relative write must leave as they are). */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The transaction action that takes the balance item from `seen` (the state read, the map
 * only) to `next` by relative, guarded updates instead of a version check, or undefined
 * when the change is not one such an update can express (then {@link balanceWrites}
 * stores `next` whole under the version read). For holds, their commits and releases
 * (core/reservations.ts): without it every one of them rewrites the whole item under its
 * version, and concurrent ones on one group retry each other into 503s (about 3,000
 * conflicts for 335 operations in test/functions/reservations-concurrency.test.ts).
 *
 * Expressible: only grants' `remaining` (at most {@link MAX_GUARDED_DRAWS} grants, none
 * added or removed, facts unchanged), the balance, the live holds (one appended, or one
 * removed: one update cannot append to a list and remove from it) and the latch being set
 * change; debt, overflow summary, chain, exhausted note and periods stay as they are. The
 * update then requires each changed grant still at its place (`grantId`) with at least
 * what is taken (`remaining >= take`), a removed hold still at its place, fewer than
 * {@link MAX_HOLDS} holds for an appended one, and the low-balance `range` as
 * {@link balanceDrawWrite} does; it adds the balance's change and 1 to the version (so
 * whole-item writers retry). A grant a concurrent consumption empties (planned before
 * this hold drew from it) may leave the item though held: the give-back rule re-adds it
 * from the hold's stored facts (`heldGrants`, appended here for grants not held before).
 * @throws InvariantViolation when `next` breaks the balance or holds invariants (nothing written)
 */
export function balanceDeltaWrite(
  db: Db,
  seen: BalanceState,
  next: BalanceState,
  now: Date,
  range: CrossingRange = {},
): TransactionItem | undefined {
  // A. What changed, and whether a relative update can say it.
  if (seen.legacy || next.legacy || seen.version === 0) return undefined;
  if (next.debt !== seen.debt || next.chainUntil !== seen.chainUntil) return undefined;
  if (!sameJson(next.spilled, seen.spilled) || !sameJson(next.exhausted, seen.exhausted) || !sameJson(next.periods ?? [], seen.periods ?? [])) return undefined;
  if (seen.lowBalanceLatched === true && next.lowBalanceLatched !== true) return undefined;
  if ((seen.topUpLatched === true && next.topUpLatched !== true) || seen.topUpThreshold !== next.topUpThreshold) return undefined;
  if (next.grants.length !== seen.grants.length) return undefined;
  const changed: Array<{ index: number; grantId: string; delta: number }> = [];
  for (const [index, before] of seen.grants.entries()) {
    const after = next.grants[index]!;
    if (!sameJson({ ...before, remaining: 0 }, { ...after, remaining: 0 })) return undefined;
    if (after.remaining !== before.remaining) changed.push({ index, grantId: before.grantId, delta: after.remaining - before.remaining });
  }
  if (changed.length > MAX_GUARDED_DRAWS) return undefined;
  const seenHolds = seen.holds ?? [];
  const nextHolds = next.holds ?? [];
  const nextIds = new Set(nextHolds.map((hold) => hold.reservationId));
  const removed = seenHolds.flatMap((hold, index) => (nextIds.has(hold.reservationId) ? [] : [{ index, reservationId: hold.reservationId }]));
  const kept = seenHolds.filter((hold) => nextIds.has(hold.reservationId));
  const added = nextHolds.slice(kept.length);
  if (kept.some((hold, i) => !sameJson(hold, nextHolds[i]))) return undefined;
  if (removed.length + added.length > 1) return undefined;

  // B. The same checks as a whole write.
  const problem = balanceStateProblem(next, now) ?? holdsProblem(next, nextHolds) ?? (nextHolds.length > MAX_HOLDS ? `${nextHolds.length} live holds, more than ${MAX_HOLDS}` : null);
  if (problem) throw new InvariantViolation(`refused to store a broken balance: ${problem}`, { state: next, seen: seen.version, at: now.toISOString() });

  // C. The guarded update.
  const appended = compactHolds(added);
  const heldBefore = grantsHeld(seenHolds);
  const newFacts = appended.heldGrants.filter((grant) => !heldBefore.has(grant.grantId));
  const change = next.balance - seen.balance;
  return commit(
    db.entities.balance
      .patch({ userId: seen.userId, offerGroup: seen.offerGroup })
      .data((attr, op) => {
        for (const { index, delta } of changed) {
          if (delta < 0) op.subtract(attr.grants[index]!.remaining, -delta);
          else op.add(attr.grants[index]!.remaining, delta);
        }
        for (const { index } of removed) op.remove(attr.liveHolds[index]!);
        if (appended.liveHolds.length > 0) op.append(attr.liveHolds, appended.liveHolds);
        if (newFacts.length > 0) op.append(attr.heldGrants, newFacts);
        if (range.raises) op.set(attr.lowBalanceLatched, true);
        if (range.topUpRaises) op.set(attr.topUpLatched, true);
        if (change < 0) op.subtract(attr.balance, -change);
        else if (change > 0) op.add(attr.balance, change);
        op.add(attr.version, 1);
        op.set(attr.updatedAt, now.toISOString());
      })
      .where((attr, op) =>
        [
          ...changed.map(({ index, grantId, delta }) =>
            delta < 0 ? `${op.eq(attr.grants[index]!.grantId, grantId)} AND ${op.gte(attr.grants[index]!.remaining, -delta)}` : op.eq(attr.grants[index]!.grantId, grantId),
          ),
          ...removed.map(({ index, reservationId }) => op.eq(attr.liveHolds[index]!.reservationId, reservationId)),
          ...(appended.liveHolds.length > 0 ? [`(${op.notExists(attr.liveHolds)} OR ${op.size(attr.liveHolds)} < ${op.escape(MAX_HOLDS)})`] : []),
          op.exists(attr.layout),
          ...(range.above !== undefined ? [op.gt(attr.balance, range.above)] : []),
          ...(range.atMost !== undefined ? [op.lte(attr.balance, range.atMost)] : []),
          ...(range.latched === undefined ? [] : [range.latched ? op.eq(attr.lowBalanceLatched, true) : op.notExists(attr.lowBalanceLatched)]),
          ...(range.topUpLatched === undefined ? [] : [range.topUpLatched ? op.eq(attr.topUpLatched, true) : op.notExists(attr.topUpLatched)]),
        ].join(" AND "),
      ),
    { returnOld: true },
  );
}

/**
 * The transaction action that stores `next` as the balance item if it is still at
 * `expectedVersion` (absent when 0); the stored version becomes `expectedVersion + 1`.
 * `next.grants` is the map (at most `MAIN_GRANTS`, below `next.spilled.from`): a state
 * with overflow grants in hand goes through {@link balanceWrites}, which lays it out.
 * @throws InvariantViolation when `next` breaks the balance invariant at `now`
 *   (core/rules/balance-state.ts `balanceStateProblem`) or the layout's
 *   (core/rules/balance-layout.ts `layoutProblem`): nothing is written
 */
export function balanceWrite(db: Db, next: BalanceState, expectedVersion: number, now: Date): TransactionItem {
  const holds = next.holds ?? [];
  const problem =
    balanceStateProblem(next, now) ??
    layoutProblem(byKey(next.grants), next.spilled) ??
    holdsProblem(next, holds) ??
    (holds.length > MAX_HOLDS ? `${holds.length} live holds, more than ${MAX_HOLDS}` : null);
  if (problem) throw new InvariantViolation(`refused to store a broken balance: ${problem}`, { state: next, expectedVersion, at: now.toISOString() });
  const periods = periodsBesides(next.periods ?? [], next.grants, now);
  return commit(
    db.entities.balance
      .put({
        userId: next.userId,
        offerGroup: next.offerGroup,
        balance: next.balance,
        debt: next.debt,
        version: expectedVersion + 1,
        grants: byKey(next.grants),
        ...(next.spilled ? { spilled: { grants: next.spilled.grants, tokens: next.spilled.tokens, from: next.spilled.from } } : {}),
        ...(next.chainUntil !== undefined ? { chainUntil: next.chainUntil } : {}),
        ...(periods.length > 0 ? { periods } : {}),
        ...(next.exhausted ? { exhausted: next.exhausted } : {}),
        ...(holds.length > 0 ? compactHolds(holds) : {}),
        ...(next.lowBalanceLatched ? { lowBalanceLatched: true } : {}),
        ...(next.topUpThreshold !== undefined ? { topUpThreshold: next.topUpThreshold } : {}),
        ...(next.topUpLatched ? { topUpLatched: true } : {}),
        grantSet: expectedVersion + 1,
        layout: BALANCE_LAYOUT,
        updatedAt: now.toISOString(),
      })
      .where((attr, op) => (expectedVersion === 0 ? op.notExists(attr.version) : op.eq(attr.version, expectedVersion))),
    { returnOld: true },
  );
}

/** True when the group may hold a grant due at `now` in its map or among its spilled grants. */
export function hasDueGrants(state: BalanceState, now: Date): boolean {
  const bound = dueBound(now);
  return state.grants.some((grant) => grant.expires !== undefined && Date.parse(grant.expires) <= now.getTime()) || (state.spilled !== undefined && state.spilled.from < bound);
}
