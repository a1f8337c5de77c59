/**
 * Fast seeding for tests at scale, with `BatchWriteItem` (25 items a request), as exactly
 * the items core writes, built with core's own functions (grant items, ledger entries,
 * and the balance item and its overflow items as `balanceWrites` lays them out). Only for
 * fresh (user, offerGroup) pairs: it does not read existing balances.
 * - {@link seedGrants}: one promotional grant per pair (as `createPromotionalGrant` writes it);
 * - {@link seedHistory}: a long history in one pair (purchases and promotional grants,
 *   spent or not), as the writes of its purchases and consumptions would have left it.
 */
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import type { Context } from "../../core/context.js";
import { balanceWrites, mapView } from "../../core/balances.js";
import { addPeriod } from "../../core/rules/periods.js";
import { addGrant, emptyBalance, extendChain, type BalanceState } from "../../core/rules/balance-state.js";
import { withoutEmptied } from "../../core/rules/drain.js";
import { grantItem } from "../../core/grants.js";
import { newId } from "../../core/ids.js";
import { newLedgerEntry, type LedgerEntry } from "../../core/ledger.js";

/** The items of a balance write (`{ Put: { Item } }` actions), for a batch. */
function putItems(actions: Record<string, object>): Record<string, unknown>[] {
  return Object.values(actions).map((action) => {
    const put = (action as { Put?: { Item: Record<string, unknown> } }).Put;
    if (!put) throw new Error("a seeded balance write is made of puts only");
    return put.Item;
  });
}

/** Writes `items` with BatchWriteItem, 25 a request, `width` requests in flight. */
async function batchPut(ctx: Pick<Context, "db">, items: Record<string, unknown>[], width = 16): Promise<void> {
  const { client, table } = ctx.db;
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  for (let i = 0; i < batches.length; i += width) {
    await Promise.all(
      batches.slice(i, i + width).map(async (batch) => {
        let requests = batch.map((Item) => ({ PutRequest: { Item } }));
        while (requests.length > 0) {
          const result = await client.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
          requests = (result.UnprocessedItems?.[table] ?? []) as typeof requests;
        }
      }),
    );
  }
}

/** Seeds one grant of `tokens` for each `{ userId, offerGroup, expires }` (pairs must be new). */
export async function seedGrants(
  ctx: Pick<Context, "db" | "clock">,
  grants: Array<{ userId: string; offerGroup: string; tokens: number; expires: string | null }>,
): Promise<void> {
  const now = ctx.clock.now();
  const { entities } = ctx.db;
  const items: Record<string, unknown>[] = [];
  for (const g of grants) {
    const grantId = newId(now);
    const starts = now.toISOString();
    const empty = emptyBalance(g.userId, g.offerGroup);
    const { next } = addGrant(empty, { grantId, tokens: g.tokens, starts, ...(g.expires ? { expires: g.expires } : {}) });
    const grant = grantItem({ grantId, userId: g.userId, offerGroup: g.offerGroup, reason: "adjust", tokens: g.tokens, starts, expires: g.expires ?? undefined }, now);
    const entry = newLedgerEntry({ userId: g.userId, offerGroup: g.offerGroup, tokens: g.tokens, reason: "adjust", grantId }, now);
    items.push(entities.grant.put(grant).params().Item, ...putItems(balanceWrites(ctx.db, mapView(empty), next, now)), entities.ledgerEntry.put({ ...entry }).params().Item);
  }
  await batchPut(ctx, items, 8);
}

/** One grant of a seeded history. */
export interface SeededGrant {
  tokens: number;
  /** ISO 8601 instant, or null: never expires. */
  expires: string | null;
  /** Set for a purchase of that offer (an order id is made up; no order item is written); unset: a promotional grant. */
  offerId?: string | undefined;
  /** Tokens consumed from it, 0..tokens (ledger `consume` entries, 100 draws each). */
  spent: number;
}

/**
 * Seeds a history of `grants` (in that order, all starting at the clock's instant) in one
 * new (user, offerGroup): its grant items, its ledger `purchase`/`adjust` and `consume`
 * entries, and the balance as the code stores it (grants emptied by consumptions left
 * out, noted in the summaries; the map and overflow items laid out by `balanceWrites`).
 * @returns the stored state (the map, `spilled`) and the grant ids, in the order given
 */
export async function seedHistory(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  offerGroup: string,
  grants: readonly SeededGrant[],
): Promise<{ grantIds: string[]; items: number }> {
  const now = ctx.clock.now();
  const starts = now.toISOString();
  const { entities } = ctx.db;
  const items: Record<string, unknown>[] = [];
  const grantIds: string[] = [];
  let draws: Array<{ grantId: string; tokens: number }> = [];
  const flush = () => {
    if (draws.length === 0) return;
    const tokens = draws.reduce((total, draw) => total + draw.tokens, 0);
    items.push(entities.ledgerEntry.put({ ...newLedgerEntry({ userId, offerGroup, tokens: -tokens, reason: "consume", draws }, now) }).params().Item);
    draws = [];
  };
  const empty = emptyBalance(userId, offerGroup);
  let state: BalanceState = empty;
  for (const g of grants) {
    // A. The grant, as a purchase or a promotional grant writes it.
    const grantId = newId(now);
    const orderId = g.offerId !== undefined ? newId(now) : undefined;
    grantIds.push(grantId);
    const facts = { grantId, orderId, offerId: g.offerId, orderOfferId: g.offerId, tokens: g.tokens, starts, expires: g.expires ?? undefined };
    state = addGrant(state, facts).next;
    state.chainUntil = extendChain(state.chainUntil, facts.expires);
    items.push(entities.grant.put(grantItem({ ...facts, userId, offerGroup, reason: g.offerId !== undefined ? "purchase" : "adjust" }, now)).params().Item);
    const entry: LedgerEntry = newLedgerEntry({ userId, offerGroup, tokens: g.tokens, reason: g.offerId !== undefined ? "purchase" : "adjust", grantId, ...(orderId ? { orderId } : {}) }, now);
    items.push(entities.ledgerEntry.put({ ...entry }).params().Item);
    // B. What consumptions took from it: an emptied grant leaves, as a consumption's write does.
    if (g.spent > 0) {
      const draw = { grantId, tokens: g.spent };
      draws.push(draw);
      if (draws.length >= 100) flush();
      state = withoutEmptied(
        { ...state, balance: state.balance - g.spent, grants: state.grants.map((grant) => (grant.grantId === grantId ? { ...grant, remaining: grant.remaining - g.spent } : grant)) },
        [draw],
      );
      if ((state.periods?.length ?? 0) > 64) state.periods = addPeriod(state.periods!, undefined, now);
    }
  }
  flush();
  // C. The balance item and its overflow items, as the writer lays them out.
  items.push(...putItems(balanceWrites(ctx.db, mapView(empty), state, now)));
  await batchPut(ctx, items);
  return { grantIds, items: items.length };
}
