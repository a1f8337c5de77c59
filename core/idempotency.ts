/**
 * Idempotency keys with Stripe's semantics (API.md "Idempotency"): once a request with
 * a key has executed, its outcome (success or refusal) is stored; a repeat with the same
 * key and the same body gets the stored outcome and changes nothing; the same key with
 * another body -> 409 `idempotency_conflict`; while the first is still running -> 409
 * `idempotency_in_progress`. Requests that never executed (validation, auth, 5xx) store
 * nothing. Records are scoped to (user, route) and kept 24 hours (TTL).
 *
 * Two ways to use it:
 * - atomic operations (consumption) write the outcome record in the same transaction
 *   as their effect ({@link outcomeWrite}); a duplicate's write then fails and it
 *   replays the stored outcome;
 * - operations with an outside side effect (order creation calls Stripe) first take a
 *   lease ({@link beginRequest}), then store the outcome ({@link finishWrite}) or end
 *   the lease on a failure that stored nothing ({@link endLease}).
 */
import { createHash } from "node:crypto";
import stringify from "safe-stable-stringify";
import type { Context } from "./context.js";
import type { Db, IdempotencyRecordItem } from "./db/service.js";
import { commit, conditionFailed, isConditionFailure, transactWrite, type TransactionItem, type TransactionResult } from "./db/transact.js";
import { DomainError, type ErrorCode } from "./errors.js";
import type { OutcomeRecord } from "./db/consumption-transaction.js";

/** How long an outcome is kept (API.md: at least 24 hours). */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

/** How long a running request holds its key before a retry may take it over. */
export const IDEMPOTENCY_LEASE_MS = 60_000;

/** A request made with an `Idempotency-Key`. */
export interface IdempotentRequest {
  /** The route: `consumptions` or `orders`. */
  scope: string;
  /** The header's value, 1-255 characters. */
  key: string;
  /** {@link hashRequest} of the parsed body. */
  requestHash: string;
}

/** A stored outcome: the result, or the domain error the request was refused with. */
export type StoredOutcome<T = unknown> =
  | { ok: true; result: T }
  | { ok: false; error: { code: ErrorCode; message: string; details?: Record<string, unknown> } };

/** SHA-256 (hex) of the canonical JSON of `body` (keys sorted), so equal JSON hashes equal. */
export function hashRequest(body: unknown): string {
  return createHash("sha256").update(stringify(body ?? null) ?? "null").digest("hex");
}

/** The outcome of a refusal, as stored. */
export function refusal(error: DomainError): StoredOutcome<never> {
  return { ok: false, error: error.toJSON() };
}

const epochSeconds = (at: Date) => Math.floor(at.getTime() / 1000);

/** The stored record, or undefined when absent or past its TTL (DynamoDB deletes lazily). */
export async function readRecord(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  request: IdempotentRequest,
): Promise<IdempotencyRecordItem | undefined> {
  const { data } = await ctx.db.entities.idempotencyRecord
    .get({ userId, scope: request.scope, key: request.key })
    .go({ consistent: true });
  if (!data || data.ttl <= epochSeconds(ctx.clock.now())) return undefined;
  return data;
}

/**
 * Stores `outcome` (a refusal) under the key, alone in its transaction. If the key
 * already holds an outcome (a concurrent request with the same key finished first), that
 * outcome wins: its result is returned, or its refusal thrown ({@link replay}).
 * @returns undefined when the refusal was stored (the caller throws it)
 */
export async function storeRefusal<T>(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  request: IdempotentRequest,
  outcome: StoredOutcome,
  now: Date,
): Promise<T | undefined> {
  const written = await transactWrite(ctx.db, { key: outcomeWrite(ctx.db, userId, request, outcome, now) });
  if (written.committed) return undefined;
  const record = await readRecord(ctx, userId, request);
  return record ? replay<T>(record, request) : undefined;
}

/**
 * After a cancelled transaction that carried the key's outcome (action `key`): when the
 * key's condition failed, another request with the same key stored its outcome first, and
 * this one answers with it ({@link replay}); otherwise undefined (another writer went first:
 * the caller re-plans).
 * @throws what {@link replay} throws
 */
export async function replayIfKeyTaken<T>(
  ctx: Pick<Context, "db" | "clock">,
  written: TransactionResult<string>,
  userId: string,
  request: IdempotentRequest | undefined,
): Promise<{ replayed: T } | undefined> {
  if (!request || !conditionFailed(written, "key")) return undefined;
  const record = await readRecord(ctx, userId, request);
  return record ? { replayed: replay<T>(record, request) } : undefined;
}

/**
 * What a repeat gets from `record`: the stored result, or the stored refusal thrown
 * again.
 * @throws DomainError `idempotency_conflict` (other body), `idempotency_in_progress`
 *   (first request still running), or the stored refusal
 */
export function replay<T>(record: IdempotencyRecordItem, request: IdempotentRequest): T {
  if (record.requestHash !== request.requestHash) {
    throw new DomainError(
      "idempotency_conflict",
      "This Idempotency-Key was used with another request body.",
      { idempotencyKey: request.key },
    );
  }
  if (record.state === "in_progress") {
    throw new DomainError(
      "idempotency_in_progress",
      "A request with this Idempotency-Key is still running; retry later.",
      { idempotencyKey: request.key },
    );
  }
  const outcome = record.outcome as StoredOutcome<T>;
  if (outcome.ok) return outcome.result;
  throw new DomainError(outcome.error.code, outcome.error.message, outcome.error.details);
}

/**
 * The record {@link outcomeWrite} stores, as plain data (for core/db/consumption-transaction.ts,
 * which builds the hot path's transaction without ElectroDB).
 */
export function outcomeRecord(userId: string, request: IdempotentRequest, outcome: StoredOutcome, now: Date): OutcomeRecord {
  const seconds = epochSeconds(now);
  return { userId, scope: request.scope, key: request.key, requestHash: request.requestHash, outcome, createdAt: now.toISOString(), ttl: seconds + IDEMPOTENCY_TTL_SECONDS, nowSeconds: seconds };
}

/**
 * The transaction action that stores a finished outcome, only if no live record holds
 * the key (absent, or past its TTL).
 */
export function outcomeWrite(
  db: Db,
  userId: string,
  request: IdempotentRequest,
  outcome: StoredOutcome,
  now: Date,
): TransactionItem {
  return commit(
    db.entities.idempotencyRecord
      .put({
        userId,
        scope: request.scope,
        key: request.key,
        requestHash: request.requestHash,
        state: "done",
        outcome,
        createdAt: now.toISOString(),
        ttl: epochSeconds(now) + IDEMPOTENCY_TTL_SECONDS,
      })
      .where((attr, op) => `${op.notExists(attr.requestHash)} OR ${op.lte(attr.ttl, epochSeconds(now))}`),
  );
}

/**
 * The transaction action that completes a leased request with its outcome (only while
 * this lease, identified by `orderId`, still holds the key).
 */
export function finishWrite(
  db: Db,
  userId: string,
  request: IdempotentRequest,
  reservedId: string,
  outcome: StoredOutcome,
  now: Date,
): TransactionItem {
  return commit(
    db.entities.idempotencyRecord
      .patch({ userId, scope: request.scope, key: request.key })
      .set({ state: "done", outcome, ttl: epochSeconds(now) + IDEMPOTENCY_TTL_SECONDS })
      .remove(["leaseUntil"])
      .where((attr, op) => `${op.eq(attr.orderId, reservedId)} AND ${op.eq(attr.state, "in_progress")}`),
  );
}

/** Result of {@link beginRequest}. */
export type Begin =
  | { started: true; reservedId: string; takenOver: boolean }
  | { started: false; record: IdempotencyRecordItem };

/**
 * Takes the key for a request with an outside side effect. `reservedId` is the id the
 * request will create (an order id); a retry that takes over an abandoned lease reuses
 * the id stored with it, so the provider's idempotency key (per order attempt) returns
 * the same payment.
 * @returns started (with the id to use), or the live record to replay
 */
export async function beginRequest(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  request: IdempotentRequest,
  reservedId: string,
): Promise<Begin> {
  const now = ctx.clock.now();
  const lease = (id: string) => ({
    userId,
    scope: request.scope,
    key: request.key,
    requestHash: request.requestHash,
    state: "in_progress" as const,
    orderId: id,
    createdAt: now.toISOString(),
    leaseUntil: new Date(now.getTime() + IDEMPOTENCY_LEASE_MS).toISOString(),
    ttl: epochSeconds(now) + IDEMPOTENCY_TTL_SECONDS,
  });
  const entity = ctx.db.entities.idempotencyRecord;
  // A. Fresh key: one conditional write.
  try {
    await entity
      .put(lease(reservedId))
      .where((attr, op) => `${op.notExists(attr.requestHash)} OR ${op.lte(attr.ttl, epochSeconds(now))}`)
      .go();
    return { started: true, reservedId, takenOver: false };
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
  // B. The key is held: replay it, unless its lease is over (the request failed with a
  //    5xx, or died). A retry of the same request takes over its reserved id; another
  //    body starts afresh (a failed request stored no outcome).
  const existing = await readRecord(ctx, userId, request);
  if (!existing) throw new DomainError("idempotency_in_progress", "The Idempotency-Key is contended; retry later.");
  const abandoned =
    existing.state === "in_progress" && existing.leaseUntil !== undefined && Date.parse(existing.leaseUntil) <= now.getTime();
  if (!abandoned) return { started: false, record: existing };
  const sameRequest = existing.requestHash === request.requestHash;
  const id = sameRequest ? (existing.orderId ?? reservedId) : reservedId;
  try {
    await entity
      .put(lease(id))
      .where((attr, op) => `${op.eq(attr.state, "in_progress")} AND ${op.eq(attr.leaseUntil, existing.leaseUntil!)}`)
      .go();
    return { started: true, reservedId: id, takenOver: sameRequest };
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    throw new DomainError("idempotency_in_progress", "A request with this Idempotency-Key is still running; retry later.");
  }
}

/**
 * Ends a lease after a failure that stored nothing (5xx): the record stays, its lease
 * over, so a retry executes again, taking over the reserved id (the same order, hence
 * the same payment through the provider's idempotency key, never a second order).
 */
export async function endLease(
  ctx: Pick<Context, "db" | "clock">,
  userId: string,
  request: IdempotentRequest,
  reservedId: string,
): Promise<void> {
  try {
    await ctx.db.entities.idempotencyRecord
      .patch({ userId, scope: request.scope, key: request.key })
      .set({ leaseUntil: ctx.clock.now().toISOString() })
      .where((attr, op) => `${op.eq(attr.orderId, reservedId)} AND ${op.eq(attr.state, "in_progress")}`)
      .go();
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}
