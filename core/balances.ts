/**
 * Reading and writing balance items. Reads are strongly consistent (money decisions
 * read the base table, DESIGN.md). Writes are conditional, so two writers cannot both
 * succeed from the same state (optimistic concurrency): a write of the whole item is
 * conditional on the version read ({@link balanceWrite}), and refuses a state that breaks
 * the balance invariant; a consumption covered by a few grants writes guarded relative
 * draws instead ({@link balanceDrawWrite}), conditional on each drawn grant.
 */
import type { Context } from "./context.js";
import { balanceStateProblem, emptyBalance, type BalanceState } from "./rules/balance-state.js";
import type { BalanceItem, Db } from "./db/service.js";
import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import { commit, type TransactionItem } from "./db/transact.js";
import { TABLE } from "./db/table.js";
import { InvariantViolation } from "./errors.js";
import { RetryableConflict } from "./retry.js";

/** A stored balance item as a state (also for items returned by a failed condition). */
export function toState(item: BalanceItem): BalanceState {
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

/**
 * The (user, offerGroup) balance and the group's low-balance threshold, read together in
 * one strongly consistent `BatchGetItem` (one request).
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

/** Every balance of the user, read consistently in one Query, keyed by offerGroup. */
export async function readBalances(ctx: Pick<Context, "db">, userId: string): Promise<Map<string, BalanceState>> {
  const { data } = await ctx.db.entities.balance.query.byUser({ userId }).go({ consistent: true, pages: "all" });
  return new Map(data.map((item) => [item.offerGroup, toState(item)]));
}

/**
 * Most grants one guarded draw names: each adds a SET and two conditions to the update,
 * and DynamoDB caps an expression at 4 KB. Wider consumptions use the versioned write.
 */
export const MAX_GUARDED_DRAWS = 10;

/**
 * The transaction action of a consumption covered by grants: relative, guarded updates
 * instead of a version check. Each drawn grant must still be at its place in the list
 * with at least the tokens taken (`remaining >= take`); the balance goes down by the
 * tokens and the version up by one (so writers that replace the whole item, which check
 * the version, retry). Concurrent consumptions therefore conflict only when a grant
 * they draw runs short, not whenever another write came first: 300 spenders of one
 * balance no longer cost each other a retry per success.
 * @param state the state the draws were planned on (for the grants' positions)
 * @param range the balance the write must find: `> above`, `<= atMost` (core/rules/low-balance.ts)
 */
export function balanceDrawWrite(
  db: Db,
  state: BalanceState,
  draws: ReadonlyArray<{ grantId: string; tokens: number }>,
  tokens: number,
  now: Date,
  range: { above?: number | undefined; atMost?: number | undefined } = {},
): TransactionItem {
  const positions = draws.map((draw) => {
    const index = state.grants.findIndex((grant) => grant.grantId === draw.grantId);
    if (index < 0) throw new RangeError(`grant ${draw.grantId} is not in the balance`);
    return { ...draw, index };
  });
  return commit(
    db.entities.balance
      .patch({ userId: state.userId, offerGroup: state.offerGroup })
      .data((attr, op) => {
        for (const { index, tokens: take } of positions) op.subtract(attr.grants[index]!.remaining, take);
        op.subtract(attr.balance, tokens);
        op.add(attr.version, 1);
        op.set(attr.updatedAt, now.toISOString());
      })
      .where((attr, op) =>
        [
          ...positions.map(({ index, grantId, tokens: take }) => `${op.eq(attr.grants[index]!.grantId, grantId)} AND ${op.gte(attr.grants[index]!.remaining, take)}`),
          ...(range.above !== undefined ? [op.gt(attr.balance, range.above)] : []),
          ...(range.atMost !== undefined ? [op.lte(attr.balance, range.atMost)] : []),
        ].join(" AND "),
      ),
    { returnOld: true },
  );
}

/**
 * The transaction action that stores `next` if the item is still at `expectedVersion`
 * (absent when 0); the stored version becomes `expectedVersion + 1`.
 * @throws InvariantViolation when `next` breaks the balance invariant at `now`
 *   (core/rules/balance-state.ts `balanceStateProblem`): nothing is written
 */
export function balanceWrite(db: Db, next: BalanceState, expectedVersion: number, now: Date): TransactionItem {
  const problem = balanceStateProblem(next, now);
  if (problem) throw new InvariantViolation(`refused to store a broken balance: ${problem}`, { state: next, expectedVersion, at: now.toISOString() });
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
    { returnOld: true },
  );
}
