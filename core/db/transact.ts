/**
 * DynamoDB transactions over ElectroDB commit items: one `TransactWriteItems` call,
 * all-or-nothing, at most 100 actions, no item touched twice (DynamoDB docs,
 * "TransactWriteItems"). Actions are named by the caller (`balance`, `entry`, `key`,
 * `grant:<id>`, ...), and a cancelled transaction says which named action was rejected
 * and why, so that no caller decodes a rejection by its position in the list.
 */
import type { Db } from "./service.js";

/** One action of a transaction: what an ElectroDB `...commit()` returns. */
export type TransactionItem = object;

/**
 * The actions of one transaction, by name, in the order they are sent; an undefined
 * action is left out (an optional part: no idempotency key, no event).
 */
export type Actions<N extends string = string> = { readonly [name in N]?: TransactionItem | undefined };

/** Why an action of a cancelled transaction was rejected. */
export interface Rejection {
  /** `ConditionalCheckFailed`, `TransactionConflict`, ... */
  code: string;
  /** The item as it was, for actions committed with `returnOld` and a failed condition. */
  item?: unknown;
}

/** Result of a transaction: committed, or cancelled with the rejected actions by name. */
export type TransactionResult<N extends string = string> =
  | { committed: true }
  | { committed: false; rejections: { [name in N]?: Rejection } };

/** Most actions DynamoDB accepts in one transaction. */
export const MAX_TRANSACTION_ITEMS = 100;

/**
 * Writes the named `actions` in one transaction.
 * @param token optional `ClientRequestToken`: the same token within 10 minutes makes a
 *   retried call idempotent
 * @returns committed, or the rejected actions by name (condition failures, conflicts)
 * @throws RangeError over 100 actions; SDK errors for anything but a cancellation
 */
export async function transactWrite<N extends string>(db: Db, actions: Actions<N>, token?: string): Promise<TransactionResult<N>> {
  const named = (Object.entries(actions) as Array<[N, TransactionItem | undefined]>).filter(
    (entry): entry is [N, TransactionItem] => entry[1] !== undefined,
  );
  if (named.length === 0) return { committed: true };
  if (named.length > MAX_TRANSACTION_ITEMS) {
    throw new RangeError(`a transaction holds at most ${MAX_TRANSACTION_ITEMS} actions, got ${named.length}`);
  }
  // ElectroDB types each entity's commit item separately; the list mixes entities.
  const write = db.service.transaction.write(() => named.map(([, item]) => item) as never[]);
  const result = (await write.go(token ? ({ token } as object) : undefined)) as {
    canceled: boolean;
    data: Array<{ rejected: boolean; code?: string; item?: unknown }>;
  };
  if (!result.canceled) return { committed: true };
  const rejections: { [name in N]?: Rejection } = {};
  result.data.forEach((entry, index) => {
    if (!entry.rejected) return;
    rejections[named[index]![0]] = entry.item ? { code: entry.code ?? "None", item: entry.item } : { code: entry.code ?? "None" };
  });
  return { committed: false, rejections };
}

/** True when the named action of a cancelled transaction failed its condition. */
export function conditionFailed<N extends string>(result: TransactionResult<N>, name: N): boolean {
  return !result.committed && result.rejections[name]?.code === "ConditionalCheckFailed";
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

/** True for DynamoDB's (or ElectroDB's wrapping of) a failed write condition outside a transaction. */
export function isConditionFailure(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === "object" && !seen.has(current)) {
    seen.add(current);
    const name = (current as { name?: string }).name;
    if (name === "ConditionalCheckFailedException") return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
