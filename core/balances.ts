/**
 * Reading and writing balance items. Reads are strongly consistent (money decisions
 * read the base table, DESIGN.md); every write is conditional on the version read, so
 * two writers cannot both succeed from the same state (optimistic concurrency).
 */
import type { Context } from "./context.js";
import { emptyBalance, type BalanceState } from "./balance-state.js";
import type { BalanceItem, Db } from "./db/service.js";
import { commit, type TransactionItem } from "./db/transact.js";

function toState(item: BalanceItem): BalanceState {
  return {
    userId: item.userId,
    offerGroup: item.offerGroup,
    balance: item.balance,
    debt: item.debt,
    version: item.version,
    grants: item.grants,
  };
}

/** The (user, offerGroup) balance, read consistently; an empty version-0 state if none. */
export async function readBalance(ctx: Pick<Context, "db">, userId: string, offerGroup: string): Promise<BalanceState> {
  const { data } = await ctx.db.entities.balance.get({ userId, offerGroup }).go({ consistent: true });
  return data ? toState(data) : emptyBalance(userId, offerGroup);
}

/** Every balance of the user, read consistently in one Query, keyed by offerGroup. */
export async function readBalances(ctx: Pick<Context, "db">, userId: string): Promise<Map<string, BalanceState>> {
  const { data } = await ctx.db.entities.balance.query.byUser({ userId }).go({ consistent: true, pages: "all" });
  return new Map(data.map((item) => [item.offerGroup, toState(item)]));
}

/**
 * The transaction action that stores `next` if the item is still at `expectedVersion`
 * (absent when 0); the stored version becomes `expectedVersion + 1`.
 */
export function balanceWrite(db: Db, next: BalanceState, expectedVersion: number, now: Date): TransactionItem {
  return commit(
    db.entities.balance
    .put({
      userId: next.userId,
      offerGroup: next.offerGroup,
      balance: next.balance,
      debt: next.debt,
      version: expectedVersion + 1,
      grants: next.grants,
      updatedAt: now.toISOString(),
    })
    .where((attr, op) => (expectedVersion === 0 ? op.notExists(attr.version) : op.eq(attr.version, expectedVersion))),
  );
}
