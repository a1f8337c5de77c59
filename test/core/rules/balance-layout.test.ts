/**
 * core/rules/balance-layout.ts and the consumption rules built on it (core/rules/drain.ts
 * `withoutEmptied`, `planIsFinal`), issue 9: which grants leave the balance (emptied by a
 * draw), the bound on the map, the split between the map and overflow items in key order,
 * the refill of the map from overflow items read, and when a plan made on the map alone is
 * the plan on every grant. Examples, then properties over random grant sets and random
 * partial reads of the overflow (fast-check).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { grantKey, type BalanceState, type GrantState, type OverflowSummary } from "../../../core/rules/balance-state.js";
import {
  byKey,
  itemLowerBound,
  layoutGrants,
  layoutProblem,
  MAIN_GRANTS,
  MAX_NEW_OVERFLOW_ITEMS,
  OVERFLOW_ITEM_GRANTS,
  overflowItemKey,
  type Layout,
  type OverflowItem,
} from "../../../core/rules/balance-layout.js";
import { planConsumption, planIsFinal, withoutEmptied } from "../../../core/rules/drain.js";

const PROPERTY = { numRuns: 200, seed: 0x1a_0e_70 } as const;
const NOW = new Date("2026-06-15T12:00:00.000Z");
const DAY = 86_400_000;

function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY).toISOString();
}

/** A started 10-token grant: `expires` in days from NOW (null: never). */
function aGrant(id: number, expiresInDays: number | null, overrides: Partial<GrantState> = {}): GrantState {
  return {
    grantId: `01G${String(id).padStart(23, "0")}`,
    tokens: 10,
    remaining: 10,
    starts: inDays(-1),
    ...(expiresInDays === null ? {} : { expires: inDays(expiresInDays) }),
    ...overrides,
  };
}

let itemIds = 0;
const newItemId = () => `01I${String(itemIds++).padStart(23, "0")}`;

function lay(grants: GrantState[], loaded: OverflowItem[] = [], spilled?: OverflowSummary): Layout {
  return layoutGrants({ grants, loaded, spilled, newItemId });
}

function ids(grants: readonly GrantState[]): string[] {
  return grants.map((grant) => grant.grantId);
}

describe("layoutGrants", () => {
  it("keeps a group of at most MAIN_GRANTS grants whole in the map, in key order", () => {
    const grants = Array.from({ length: MAIN_GRANTS }, (_, i) => aGrant(i, i % 2 === 0 ? null : 30 - i));
    const layout = lay(grants);
    expect(ids(layout.main)).toEqual(ids(byKey(grants)));
    expect(layout).toMatchObject({ spilled: undefined, puts: [], deletes: [], complete: true });
  });

  it("spills the grants last in key order (latest expiry, never-expiring last) into a new overflow item", () => {
    const grants = [aGrant(1, null), ...Array.from({ length: MAIN_GRANTS }, (_, i) => aGrant(10 + i, 5 + i)), aGrant(2, 400)];
    const layout = lay(grants);
    expect(ids(layout.main)).toEqual(ids(grants.slice(1, 1 + MAIN_GRANTS)));
    expect(layout.puts).toHaveLength(1);
    expect(ids(layout.puts[0]!.grants)).toEqual([grants.at(-1)!.grantId, grants[0]!.grantId]);
    expect(layout.puts[0]).toMatchObject({ created: true });
    expect(itemLowerBound(layout.puts[0]!.itemKey)).toBe(grantKey(grants.at(-1)!));
    expect(layout.spilled).toEqual({ grants: 2, tokens: 20, from: grantKey(grants.at(-1)!) });
  });

  it("puts a new grant that belongs before the overflow's first into the map, spilling the map's last (no overflow item read)", () => {
    const map = Array.from({ length: MAIN_GRANTS }, (_, i) => aGrant(i, 10 + i));
    const spilled: OverflowSummary = { grants: 5, tokens: 50, from: grantKey(aGrant(99, null)) };
    const added = aGrant(200, 3);
    const layout = lay([...map, added], [], spilled);
    expect(ids(layout.main)).toEqual([added.grantId, ...ids(map.slice(0, MAIN_GRANTS - 1))]);
    expect(ids(layout.puts.flatMap((item) => item.grants))).toEqual([map.at(-1)!.grantId]);
    expect(layout.spilled).toEqual({ grants: 6, tokens: 60, from: grantKey(map.at(-1)!) });
    expect(layout.deletes).toEqual([]);
  });

  it("puts a new grant that belongs after the overflow's first into an item of its own, leaving the map as it is", () => {
    const map = [aGrant(1, 5), aGrant(2, 6)];
    const spilled: OverflowSummary = { grants: 3, tokens: 30, from: grantKey(aGrant(3, 40)) };
    const added = aGrant(200, 100);
    const layout = lay([...map, added], [], spilled);
    expect(ids(layout.main)).toEqual(ids(map));
    expect(ids(layout.puts.flatMap((item) => item.grants))).toEqual([added.grantId]);
    expect(layout.spilled).toEqual({ grants: 4, tokens: 40, from: spilled.from });
  });

  it("refills the map from the overflow items read: the item it took from is rewritten, an emptied one deleted, an untouched one left", () => {
    const first: OverflowItem = { itemKey: overflowItemKey(grantKey(aGrant(10, 20)), "A"), grants: [aGrant(10, 20), aGrant(11, 21)] };
    const second: OverflowItem = { itemKey: overflowItemKey(grantKey(aGrant(12, 22)), "B"), grants: Array.from({ length: MAIN_GRANTS }, (_, i) => aGrant(12 + i, 22 + i)) };
    const third: OverflowItem = { itemKey: overflowItemKey(grantKey(aGrant(40, 90)), "C"), grants: [aGrant(40, 90)] };
    const inHand = [aGrant(1, 5), ...first.grants, ...second.grants, ...third.grants];
    const layout = lay(inHand, [first, second, third]);
    expect(ids(layout.main)).toEqual(ids(inHand.slice(0, MAIN_GRANTS)));
    expect(layout.deletes).toEqual([first.itemKey]);
    expect(layout.puts.map((item) => [item.itemKey, item.created])).toEqual([[second.itemKey, false]]);
    expect(ids(layout.puts[0]!.grants)).toEqual(ids(second.grants.slice(MAIN_GRANTS - 3)));
    expect(layout.spilled).toEqual({ grants: 4, tokens: 40, from: grantKey(second.grants[MAIN_GRANTS - 3]!) });
  });

  it("is incomplete when the overflow was read in part and what is left of it in hand does not settle its smallest key", () => {
    const item: OverflowItem = { itemKey: overflowItemKey(grantKey(aGrant(10, 20)), "A"), grants: [aGrant(10, 20)] };
    const notRead: OverflowSummary = { grants: 4, tokens: 40, from: item.itemKey, inexact: true };
    expect(lay([aGrant(1, 5), ...item.grants], [item], notRead).complete).toBe(false);
    const many = [aGrant(1, 5), ...Array.from({ length: MAIN_GRANTS + 1 }, (_, i) => aGrant(10 + i, 11 + i))];
    const big: OverflowItem = { itemKey: overflowItemKey(grantKey(many[1]!), "A"), grants: many.slice(1) };
    expect(lay(many, [big], { grants: 4, tokens: 40, from: grantKey(aGrant(80, 200)), inexact: true }).complete).toBe(true);
  });

  it(`makes fuller items when a spill would take more than ${MAX_NEW_OVERFLOW_ITEMS} of ${OVERFLOW_ITEM_GRANTS} grants (an item from before this layout)`, () => {
    const grants = Array.from({ length: 4000 }, (_, i) => aGrant(i, null));
    const layout = lay(grants);
    expect(layout.puts).toHaveLength(MAX_NEW_OVERFLOW_ITEMS);
    expect(layout.puts.reduce((total, item) => total + item.grants.length, 0)).toBe(4000 - MAIN_GRANTS);
  });

  it("refuses a grant in hand twice", () => {
    expect(() => lay([aGrant(1, 5), aGrant(1, 5)])).toThrow(RangeError);
  });
});

describe("layoutProblem", () => {
  it("accepts a sorted map below the overflow, and names what is wrong otherwise", () => {
    const map = [aGrant(1, 5), aGrant(2, 6)];
    expect(layoutProblem(map, { grants: 1, tokens: 10, from: grantKey(aGrant(3, 7)) })).toBeNull();
    expect(layoutProblem([...map].reverse(), undefined)).toMatch(/not in key order/);
    expect(layoutProblem(map, { grants: 1, tokens: 10, from: grantKey(aGrant(0, 6)) })).toMatch(/not below the overflow/);
    expect(layoutProblem(Array.from({ length: MAIN_GRANTS + 1 }, (_, i) => aGrant(i, i + 1)), undefined)).toMatch(/more than/);
  });
});

describe("withoutEmptied", () => {
  const state = (grants: GrantState[]): BalanceState => ({ userId: "u", offerGroup: "calls", balance: grants.reduce((t, g) => t + g.remaining, 0), debt: 0, version: 3, grants });

  it("takes out the grants the draws emptied, noting the expiring ones and a paid one's period", () => {
    const paid = aGrant(1, 5, { orderId: "o1", offerId: "pack", orderOfferId: "pack", remaining: 0 });
    const once = aGrant(2, null, { remaining: 0 });
    const next = withoutEmptied(state([paid, once, aGrant(3, 9, { remaining: 4 })]), [
      { grantId: paid.grantId, tokens: 10 },
      { grantId: once.grantId, tokens: 10 },
      { grantId: aGrant(3, 9).grantId, tokens: 6 },
    ]);
    expect(ids(next.grants)).toEqual([aGrant(3, 9).grantId]);
    expect(next.exhausted).toEqual({ since: paid.grantId, due: paid.expires });
    expect(next.periods).toEqual([{ offerId: "pack", orderId: "o1", starts: paid.starts, expires: paid.expires, root: true }]);
  });

  it("keeps grants at 0 that were not drawn (a 0-token period, a frozen grant)", () => {
    const period = aGrant(1, 30, { tokens: 0, remaining: 0, orderId: "o1", offerId: "plan", orderOfferId: "plan" });
    const frozen = aGrant(2, 30, { remaining: 0 });
    const before = state([period, frozen, aGrant(3, 9)]);
    expect(withoutEmptied(before, [{ grantId: aGrant(3, 9).grantId, tokens: 1 }])).toBe(before);
  });
});

describe("planIsFinal", () => {
  const map = [aGrant(1, 5), aGrant(2, 6)];
  const spilled: OverflowSummary = { grants: 3, tokens: 30, from: grantKey(aGrant(3, 7)) };
  const state: BalanceState = { userId: "u", offerGroup: "calls", balance: 50, debt: 0, version: 1, grants: map, spilled };

  it("accepts a plan the map covers with started grants below the overflow", () => {
    expect(planIsFinal(state, planConsumption({ state, tokens: 15, allowOverdraft: false, now: NOW }), NOW)).toBe(true);
  });

  it("refuses a plan the map cannot cover, a debt, or a draw from a grant not started yet, while grants are spilled", () => {
    expect(planIsFinal(state, planConsumption({ state, tokens: 25, allowOverdraft: false, now: NOW }), NOW)).toBe(false);
    expect(planIsFinal(state, planConsumption({ state, tokens: 25, allowOverdraft: true, now: NOW }), NOW)).toBe(false);
    const future: BalanceState = { ...state, grants: [aGrant(1, 5, { starts: inDays(1) })], balance: 40 };
    expect(planIsFinal(future, planConsumption({ state: future, tokens: 5, allowOverdraft: false, now: NOW }), NOW)).toBe(false);
  });

  it("accepts anything once nothing is spilled", () => {
    const whole: BalanceState = { ...state, spilled: undefined, balance: 20 };
    expect(planIsFinal(whole, planConsumption({ state: whole, tokens: 25, allowOverdraft: false, now: NOW }), NOW)).toBe(true);
  });
});

// --- Properties: a simulated store of the map and its overflow items ------------------------

/** What is stored: the map, the overflow summary, the overflow items by key. */
interface Store {
  main: GrantState[];
  spilled: OverflowSummary | undefined;
  items: Map<string, GrantState[]>;
}

function apply(store: Store, layout: Layout): Store {
  const items = new Map(store.items);
  for (const key of layout.deletes) items.delete(key);
  for (const item of layout.puts) items.set(item.itemKey, item.grants);
  return { main: layout.main, spilled: layout.spilled, items };
}

/** A read of the map and the first `count` overflow items in key order, as core/balances.ts `readMoreOverflow` builds it. */
function readView(store: Store, count: number): { grants: GrantState[]; loaded: OverflowItem[]; spilled: OverflowSummary | undefined } {
  const keys = [...store.items.keys()].sort();
  const loaded = keys.slice(0, count).map((itemKey) => ({ itemKey, grants: store.items.get(itemKey)! }));
  const read = loaded.flatMap((item) => item.grants);
  const left = (store.spilled?.grants ?? 0) - read.length;
  const spilled: OverflowSummary | undefined =
    left === 0 || !store.spilled
      ? undefined
      : {
          grants: left,
          tokens: store.spilled.tokens - read.reduce((t, g) => t + g.remaining, 0),
          from: loaded.length > 0 && itemLowerBound(loaded.at(-1)!.itemKey) > store.spilled.from ? itemLowerBound(loaded.at(-1)!.itemKey) : store.spilled.from,
          ...(loaded.length > 0 ? { inexact: true } : {}),
        };
  return { grants: [...store.main, ...read], loaded, spilled };
}

function storedGrants(store: Store): GrantState[] {
  return [...store.main, ...[...store.items.values()].flat()];
}

/** Every rule of the layout holds for `store`; returns what is wrong, or null. */
function storeProblem(store: Store): string | null {
  const spilled = [...store.items.values()].flat();
  const problem = layoutProblem(store.main, store.spilled);
  if (problem) return problem;
  if ((store.spilled?.grants ?? 0) !== spilled.length) return "count";
  if ((store.spilled?.tokens ?? 0) !== spilled.reduce((t, g) => t + g.remaining, 0)) return "tokens";
  if (store.spilled?.from !== spilled.map(grantKey).sort()[0]) return `from ${store.spilled?.from}`;
  for (const [key, grants] of store.items) {
    if (grants.length === 0) return "empty item";
    if (grants.some((grant) => grantKey(grant) < itemLowerBound(key))) return "item key above a grant";
  }
  return null;
}

const aGrantSet = fc
  .array(fc.record({ expiresIn: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null, freq: 3 }), remaining: fc.integer({ min: 0, max: 10 }) }), { maxLength: 120 })
  .map((shapes) => shapes.map((shape, index) => aGrant(index, shape.expiresIn, { remaining: shape.remaining })));

/** An operation on the grants in hand: some drawn, some taken out, some added. */
const anOperation = fc.record({
  change: fc.array(fc.nat(), { maxLength: 10 }),
  remove: fc.array(fc.nat(), { maxLength: 10 }),
  add: fc.array(fc.option(fc.integer({ min: 1, max: 400 }), { nil: null }), { maxLength: 6 }),
  read: fc.nat({ max: 8 }),
});

describe("layoutGrants: properties", () => {
  it("stores every grant once, keeps the map a bounded prefix below an exact overflow summary, whatever is read and changed", () => {
    fc.assert(
      fc.property(aGrantSet, anOperation, (grants, operation) => {
        let store = apply({ main: [], spilled: undefined, items: new Map() }, lay(grants));
        expect(storeProblem(store)).toBeNull();
        expect(ids(byKey(storedGrants(store)))).toEqual(ids(byKey(grants)));

        // Read some items, change what is in hand, lay out again (reading on while incomplete).
        let count = operation.read;
        for (;;) {
          const view = readView(store, count);
          const removed = new Set(operation.remove.map((i) => view.grants[i % Math.max(1, view.grants.length)]?.grantId));
          const changed = new Set(operation.change.map((i) => view.grants[i % Math.max(1, view.grants.length)]?.grantId));
          const after = [
            ...view.grants.filter((g) => !removed.has(g.grantId)).map((g) => (changed.has(g.grantId) ? { ...g, remaining: Math.max(0, g.remaining - 1) } : g)),
            ...operation.add.map((expires, i) => aGrant(1000 + i, expires)),
          ];
          const layout = layoutGrants({ grants: after, loaded: view.loaded, spilled: view.spilled, newItemId });
          if (!layout.complete) {
            count++;
            continue;
          }
          const untouched = storedGrants(store).filter((g) => !view.grants.some((h) => h.grantId === g.grantId));
          store = apply(store, layout);
          expect(storeProblem(store)).toBeNull();
          expect(ids(byKey(storedGrants(store)))).toEqual(ids(byKey([...untouched, ...after])));
          return;
        }
      }),
      PROPERTY,
    );
  });

  it("refills the map to MAIN_GRANTS when the whole overflow is read", () => {
    fc.assert(
      fc.property(aGrantSet, fc.nat({ max: 30 }), (grants, drop) => {
        const store = apply({ main: [], spilled: undefined, items: new Map() }, lay(grants));
        const view = readView(store, Number.MAX_SAFE_INTEGER);
        const kept = view.grants.slice(Math.min(drop, view.grants.length));
        const next = apply(store, layoutGrants({ grants: kept, loaded: view.loaded, spilled: view.spilled, newItemId }));
        expect(next.main.length).toBe(Math.min(MAIN_GRANTS, kept.length));
        expect(ids(next.main)).toEqual(ids(byKey(kept).slice(0, MAIN_GRANTS)));
      }),
      PROPERTY,
    );
  });
});

describe("planIsFinal: properties", () => {
  it("a plan on the map that it calls final is the plan on every grant", () => {
    const aGroup = fc
      .array(
        fc.record({
          expiresIn: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null, freq: 3 }),
          startsIn: fc.integer({ min: -30, max: 5 }),
          remaining: fc.integer({ min: 0, max: 10 }),
        }),
        { maxLength: 60 },
      )
      .map((shapes) => shapes.map((shape, i) => aGrant(i, shape.expiresIn === null ? null : Math.max(shape.expiresIn, shape.startsIn + 1), { remaining: shape.remaining, starts: inDays(shape.startsIn) })));
    fc.assert(
      fc.property(aGroup, fc.integer({ min: 1, max: 400 }), fc.boolean(), (grants, tokens, allowOverdraft) => {
        const balance = grants.reduce((t, g) => t + g.remaining, 0);
        const layout = lay(grants);
        const whole: BalanceState = { userId: "u", offerGroup: "calls", balance, debt: 0, version: 1, grants };
        const map: BalanceState = { ...whole, grants: layout.main, spilled: layout.spilled };
        const onMap = planConsumption({ state: map, tokens, allowOverdraft, now: NOW });
        if (!planIsFinal(map, onMap, NOW)) return;
        const onAll = planConsumption({ state: whole, tokens, allowOverdraft, now: NOW });
        expect(onMap.ok).toBe(onAll.ok);
        if (onMap.ok && onAll.ok) {
          expect(onMap.draws).toEqual(onAll.draws);
          expect(onMap.next.balance).toBe(onAll.next.balance);
          expect(onMap.debtAdded).toBe(onAll.debtAdded);
        }
      }),
      PROPERTY,
    );
  });
});
