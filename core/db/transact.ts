/**
 * DynamoDB transactions over ElectroDB commit items: one `TransactWriteItems` call,
 * all-or-nothing, at most 100 actions, no item touched twice (DynamoDB docs,
 * "TransactWriteItems").
 */
import type { Db } from "./service.js";

/** One action of a transaction: what an ElectroDB `...commit()` returns. */
export type TransactionItem = object;

/** Why an action of a cancelled transaction was rejected. */
export interface Rejection {
  /** Index of the action in the list given. */
  index: number;
  /** `ConditionalCheckFailed`, `TransactionConflict`, ... */
  code: string;
  /** The item as it was, for actions committed with `returnOld` and a failed condition. */
  item?: unknown;
}

/** Result of a transaction: committed, or cancelled with the rejected actions. */
export type TransactionResult = { committed: true } | { committed: false; rejections: Rejection[] };

/** Most actions DynamoDB accepts in one transaction. */
export const MAX_TRANSACTION_ITEMS = 100;

/**
 * Writes `items` in one transaction.
 * @param token optional `ClientRequestToken`: the same token within 10 minutes makes a
 *   retried call idempotent
 * @returns committed, or the rejections (condition failures, conflicts)
 * @throws RangeError over 100 items; SDK errors for anything but a cancellation
 */
export async function transactWrite(db: Db, items: TransactionItem[], token?: string): Promise<TransactionResult> {
  if (items.length === 0) return { committed: true };
  if (items.length > MAX_TRANSACTION_ITEMS) {
    throw new RangeError(`a transaction holds at most ${MAX_TRANSACTION_ITEMS} actions, got ${items.length}`);
  }
  // ElectroDB types each entity's commit item separately; the list mixes entities.
  const write = db.service.transaction.write(() => items as never[]);
  const result = (await write.go(token ? ({ token } as object) : undefined)) as {
    canceled: boolean;
    data: Array<{ rejected: boolean; code?: string; item?: unknown }>;
  };
  if (!result.canceled) return { committed: true };
  const rejections = result.data
    .map((entry, index) => ({ index, code: entry.code ?? "None", rejected: entry.rejected, item: entry.item }))
    .filter((entry) => entry.rejected)
    .map(({ index, code, item }) => (item ? { index, code, item } : { index, code }));
  return { committed: false, rejections };
}

/**
 * Turns an ElectroDB write operation (`put`, `create`, `patch`, `update`, `delete`,
 * with its `where`) into a transaction action; with `returnOld`, a rejection carries the
 * item as it is. ElectroDB offers `commit()` on every
 * write at run time but types it only inside `service.transaction.write`'s callback.
 */
export function commit(operation: unknown, options: { returnOld?: boolean } = {}): TransactionItem {
  const committable = operation as { commit(options?: object): TransactionItem };
  // `response: "all_old"` sets ReturnValuesOnConditionCheckFailure: a failed condition
  // returns the item as it is, sparing the caller a read before it retries.
  return options.returnOld ? committable.commit({ response: "all_old" }) : committable.commit();
}
