/**
 * The hot path's transaction, built without ElectroDB's builders: the `TransactWriteItems`
 * input of the common consumption, the same request ElectroDB builds for core/balances.ts
 * `balanceDrawWrite` + core/ledger.ts `ledgerEntryWrite` + core/idempotency.ts
 * `outcomeWrite` (test/core/db/consumption-transaction.test.ts checks that, property-based).
 * Issue 12: ElectroDB's builders cost about 300 µs of CPU per consumption, a fifth of its
 * own CPU (scripts/profile-consumption.ts). It is built in DynamoDB's attribute-value form
 * and sent with the low-level `TransactWriteItemsCommand`: the document client's
 * marshalling pass over the whole input cost another 50-70 µs; here only the ledger entry
 * and the stored outcome (free-form JSON) go through util-dynamodb's `marshall`.
 *
 * Only the common case: guarded draws that empty no grant (no REMOVE, no `exhausted` note,
 * no period), no low-balance event or top-up request raised. Anything else goes through ElectroDB
 * ({@link isPlainDraw} says which). The key formats are ElectroDB's for these entities
 * (core/db/keys.ts: `$credits#<attribute>_<value>`, case kept; sort keys
 * `$<entity>_<version>#...`), items carry its identity attributes `__edb_e__`/`__edb_v__`.
 */
import { TransactWriteItemsCommand, type AttributeValue, type TransactWriteItemsCommandInput } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { BalanceState } from "../rules/balance-state.js";
import { isExhausted } from "../rules/balance-state.js";
import { passedOver, type Draw } from "../rules/drain.js";
import { grantsHeld } from "../rules/holds.js";
import type { CrossingRange } from "../rules/low-balance.js";
import type { LedgerEntry } from "../ledger.js";
import type { Db } from "./service.js";
import type { TransactionResult } from "./transact.js";
import { SERVICE } from "./keys.js";

/** util-dynamodb's options for the free-form items: an absent optional field is left out, as ElectroDB leaves it out. */
const MARSHALL = { removeUndefinedValues: true } as const;

/** The low-balance and top-up decision a draw must still hold (as `balanceDrawWrite` takes it). */
export type DrawRange = CrossingRange;

/** The idempotency record a consumption stores with its outcome (as `outcomeWrite` builds it). */
export interface OutcomeRecord {
  userId: string;
  scope: string;
  key: string;
  requestHash: string;
  outcome: unknown;
  createdAt: string;
  /** Epoch seconds after which DynamoDB may delete it. */
  ttl: number;
  /** Epoch seconds of the write: a record past its TTL may be replaced. */
  nowSeconds: number;
}

/** True when the draws of `state` empty no grant and raise no event: the case this module builds. */
export function isPlainDraw(state: BalanceState, draws: readonly Draw[], range: DrawRange): boolean {
  if (state.legacy || range.raises || range.topUpRaises) return false;
  const held = grantsHeld(state.holds ?? []);
  return draws.every((draw) => {
    const grant = state.grants.find((g) => g.grantId === draw.grantId);
    return grant !== undefined && !(isExhausted({ tokens: grant.tokens, remaining: grant.remaining - draw.tokens }) && !held.has(draw.grantId));
  });
}

/**
 * The `TransactWriteItems` input of a plain consumption: the guarded balance update, the
 * ledger entry (created only if new), and the outcome record when a key is given.
 * @throws RangeError for a draw from a grant not in the map, or draws {@link isPlainDraw} refuses
 */
export function consumptionTransaction(
  db: Db,
  input: { state: BalanceState; draws: readonly Draw[]; tokens: number; now: Date; range: DrawRange; entry: LedgerEntry; record?: OutcomeRecord | undefined },
): TransactWriteItemsCommandInput {
  const { state, draws, tokens, now, range, entry, record } = input;
  if (!isPlainDraw(state, draws, range)) throw new RangeError("not a plain draw: build it with ElectroDB");
  const TableName = db.table;
  const pk = `$${SERVICE}#userId_${state.userId}`;
  const S = (value: string): AttributeValue => ({ S: value });
  const N = (value: number): AttributeValue => ({ N: String(value) });

  // A. The balance: conditions, then the update, named and valued as ElectroDB names them.
  const names: Record<string, string> = { "#pk": "pk", "#sk": "sk" };
  const values: Record<string, AttributeValue> = {};
  const conditions = ["attribute_exists(#pk) AND attribute_exists(#sk)"];
  let n = 0;
  const guard = (index: number, grantId: string, operator: "=" | ">=", take: number) => {
    names["#grants"] = "grants";
    names["#grantId"] = "grantId";
    names["#remaining"] = "remaining";
    values[`:grantId${n}`] = S(grantId);
    values[`:remaining${n}`] = N(take);
    conditions.push(`#grants[${index}].#grantId = :grantId${n} AND #grants[${index}].#remaining ${operator} :remaining${n}`);
    n++;
  };
  const positions = draws.map((draw) => {
    const index = state.grants.findIndex((grant) => grant.grantId === draw.grantId);
    if (index < 0) throw new RangeError(`grant ${draw.grantId} is not in the balance`);
    return { ...draw, index };
  });
  positions.forEach(({ index, grantId, tokens: take }, k) => guard(index, grantId, k < positions.length - 1 ? "=" : ">=", take));
  for (const grant of passedOver(state, draws, now)) guard(state.grants.indexOf(grant), grant.grantId, "=", 0);
  names["#grantSet"] = "grantSet";
  if (state.grantSet === undefined) conditions.push("attribute_not_exists(#grantSet)");
  else {
    values[":grantSet0"] = N(state.grantSet);
    conditions.push("#grantSet = :grantSet0");
  }
  names["#layout"] = "layout";
  conditions.push("attribute_exists(#layout)");
  names["#balance"] = "balance";
  let b = 0;
  if (range.above !== undefined) {
    values[`:balance${b}`] = N(range.above);
    conditions.push(`#balance > :balance${b++}`);
  }
  if (range.atMost !== undefined) {
    values[`:balance${b}`] = N(range.atMost);
    conditions.push(`#balance <= :balance${b++}`);
  }
  if (range.latched !== undefined) {
    names["#lowBalanceLatched"] = "lowBalanceLatched";
    if (range.latched) {
      values[":lowBalanceLatched0"] = { BOOL: true };
      conditions.push("#lowBalanceLatched = :lowBalanceLatched0");
    } else conditions.push("attribute_not_exists(#lowBalanceLatched)");
  }
  if (range.topUpLatched !== undefined) {
    names["#topUpLatched"] = "topUpLatched";
    if (range.topUpLatched) {
      values[":topUpLatched0"] = { BOOL: true };
      conditions.push("#topUpLatched = :topUpLatched0");
    } else conditions.push("attribute_not_exists(#topUpLatched)");
  }
  const sets = positions.map(({ index, tokens: take }, u) => {
    values[`:remaining_u${u}`] = N(take);
    values[`:remaining_default_value_u${u}`] = N(0);
    return `#grants[${index}].#remaining = (if_not_exists(#grants[${index}].#remaining, :remaining_default_value_u${u}) - :remaining_u${u})`;
  });
  Object.assign(names, { "#version": "version", "#updatedAt": "updatedAt", "#userId": "userId", "#offerGroup": "offerGroup", "#__edb_e__": "__edb_e__", "#__edb_v__": "__edb_v__" });
  Object.assign(values, {
    ":balance_u0": N(tokens),
    ":balance_default_value_u0": N(0),
    ":version_u0": N(1),
    ":updatedAt_u0": S(now.toISOString()),
    ":userId_u0": S(state.userId),
    ":offerGroup_u0": S(state.offerGroup),
    ":__edb_e___u0": S("balance"),
    ":__edb_v___u0": S("1"),
  });
  sets.push(
    "#balance = (if_not_exists(#balance, :balance_default_value_u0) - :balance_u0)",
    "#updatedAt = :updatedAt_u0",
    "#userId = :userId_u0",
    "#offerGroup = :offerGroup_u0",
    "#__edb_e__ = :__edb_e___u0",
    "#__edb_v__ = :__edb_v___u0",
  );
  const balance = {
    Update: {
      UpdateExpression: `SET ${sets.join(", ")} ADD #version :version_u0`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      TableName,
      Key: { pk: S(pk), sk: S(`$balance_1#offerGroup_${state.offerGroup}`) },
      ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
      ConditionExpression: conditions.join(" AND "),
    },
  };

  // B. The ledger entry, created only if new.
  const ledger = {
    Put: {
      Item: marshall({ ...entry, pk, sk: `$ledgerEntry_1#createdAt_${entry.createdAt}#entryId_${entry.entryId}`, __edb_e__: "ledgerEntry", __edb_v__: "1" }, MARSHALL),
      TableName,
      ConditionExpression: "attribute_not_exists(#pk) AND attribute_not_exists(#sk)",
      ExpressionAttributeNames: { "#pk": "pk", "#sk": "sk" },
    },
  };

  // C. The outcome under the key, unless the key holds a live record.
  const key = record && {
    Put: {
      Item: marshall(
        {
          userId: record.userId,
          scope: record.scope,
          key: record.key,
          requestHash: record.requestHash,
          state: "done",
          outcome: record.outcome,
          createdAt: record.createdAt,
          ttl: record.ttl,
          pk,
          sk: `$idempotencyRecord_1#scope_${record.scope}#key_${record.key}`,
          __edb_e__: "idempotencyRecord",
          __edb_v__: "1",
        },
        MARSHALL,
      ),
      TableName,
      ConditionExpression: "attribute_not_exists(#requestHash) OR #ttl <= :ttl0",
      ExpressionAttributeNames: { "#requestHash": "requestHash", "#ttl": "ttl" },
      ExpressionAttributeValues: { ":ttl0": N(record.nowSeconds) },
    },
  };
  return { TransactItems: key ? [balance, ledger, key] : [balance, ledger] };
}

/**
 * Sends `input` (from {@link consumptionTransaction}) and reports it as core/db/transact.ts
 * `transactWrite` does, actions named `balance`, `entry`, `key`: committed, or cancelled
 * with each rejected action's code and, for the balance, the item as it is (parsed as
 * ElectroDB parses it).
 * @throws an Error whose cause is the SDK's error, for anything but a cancellation
 */
export async function sendConsumption(db: Db, input: TransactWriteItemsCommandInput): Promise<TransactionResult<"balance" | "entry" | "key">> {
  try {
    await db.client.send(new TransactWriteItemsCommand(input));
    return { committed: true };
  } catch (error) {
    const reasons = (error as { name?: string; CancellationReasons?: Array<{ Code?: string; Item?: Record<string, unknown> }> }).CancellationReasons;
    if ((error as { name?: string }).name !== "TransactionCanceledException" || !reasons) {
      // As ElectroDB reports it on the other paths: the SDK's error as the cause.
      throw new Error(`Error thrown by DynamoDB client: "${(error as Error).message}"`, { cause: error });
    }
    const rejections: { balance?: { code: string; item?: unknown }; entry?: { code: string }; key?: { code: string } } = {};
    const names = ["balance", "entry", "key"] as const;
    reasons.forEach((reason, index) => {
      const name = names[index];
      if (!name || !reason.Code || reason.Code === "None") return;
      if (name === "balance" && reason.Item) {
        rejections.balance = { code: reason.Code, item: db.entities.balance.parse({ Item: unmarshall(reason.Item as never) }).data };
      } else rejections[name] = { code: reason.Code };
    });
    return { committed: false, rejections };
  }
}
