/**
 * Page cursors (ElectroDB's, opaque to clients) checked before use: a cursor must be one
 * this list could have returned, for this entity and this user's partition. Anything
 * else (another list's, another user's, forged) is refused as a validation error
 * instead of reaching DynamoDB, which would refuse it (a 5xx) or, when it happens to fall
 * inside the key range, answer a wrong page.
 */
import { ValidationError } from "../errors.js";
import { TABLE } from "./table.js";

/** The ElectroDB entity methods used here (typed loosely: they are not in its d.ts). */
interface CursorAware {
  ownsCursor(cursor: string): boolean;
  deserializeCursor(cursor: string): Record<string, unknown> | null;
}

/**
 * Throws unless `cursor` is absent or a cursor of `entity` in partition `partitionKey`.
 * @param partitionKey the list's partition key value (from a key the entity built)
 * @throws ValidationError naming `cursor`
 */
export function checkCursor(entity: unknown, cursor: string | null | undefined, partitionKey: string): void {
  if (!cursor) return;
  const aware = entity as CursorAware;
  let owned = false;
  try {
    owned = aware.ownsCursor(cursor) && aware.deserializeCursor(cursor)?.[TABLE.partitionKey] === partitionKey;
  } catch {
    owned = false;
  }
  if (!owned) throw new ValidationError({ cursor: "is not a cursor returned by this list" });
}

/** The partition key value ElectroDB builds for an item key (`get(key).params().Key.pk`). */
export function partitionOf(entity: unknown, key: Record<string, unknown>): string {
  const params = (entity as { get(key: object): { params(): { Key: Record<string, string> } } }).get(key).params();
  return params.Key[TABLE.partitionKey]!;
}
