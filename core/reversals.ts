/**
 * Reversals: giving back all or part of a consumption whose work failed (API.md
 * "Reservations": `POST /users/{userId}/consumptions/{entryId}/reverse` -> `201 { entry,
 * balance }`; issue 11). The rules are pure, in core/rules/reversal.ts `planReversal`
 * (the debt part first, as debt; then the grants the entry drew from, latest drawn first,
 * by the one give-back rule of core/rules/give-back.ts); this module reads and writes them.
 *
 * One transaction per reversal: the balance item under its version (core/balances.ts
 * `balanceWrites`, with the overflow items when some were read), the `reverse` entry (and
 * the `expire` entry of tokens given back to a grant past its expiry), each with
 * `reversesEntryId`, the idempotency record when a key is given, the release of the
 * group's expired holds (core/reservations.ts `settleExpiredHolds`, as every write that
 * touches a group does), and a conditional update of the consumed entry's counter
 * `reversed` (core/db/ledger-entry.ts): on the value read (absent for 0), so that two
 * reversals planned on the same read cannot both pass, and all reversals together never
 * exceed what the entry consumed. (The balance item's version already makes two writes
 * planned on one read exclusive; the counter keeps the bound on the entry itself, whatever
 * else is written.) A version or counter conflict is retried with jittered backoff
 * (core/retry.ts); a retry reads the entry with one GetItem at its known `createdAt`.
 *
 * The `reverse` entry: `tokens` = +(debt part reversed + tokens given to grants), `draws`
 * the tokens given per grant, `debtRepaid` the debt it lowered (the debt part reversed
 * plus what the grants' tokens repaid), `reversesEntryId`, and `metadata` `{ reason?,
 * reversed, debtSettled?, refused? }`: `reversed` is what the counter moved by (the tokens
 * asked), `debtSettled` the debt part a later grant had repaid and `refused` the grant
 * tokens of a refunded or disputed order, neither given back (core/rules/reversal.ts), so
 * that the ledger explains every token of the counter: Σ `metadata.reversed` of an
 * entry's reversals is its `reversed`.
 *
 * Finding the entry. Ledger entries are keyed by (createdAt, entryId), and the route names
 * only the id. The id is a ULID minted at `createdAt` (core/ids.ts `newId(now)`, `now` the
 * entry's `createdAt`), except that the monotonic factory never lets time run backwards
 * within one process: an id minted after a later one carries that later instant. So the
 * id's time is never before `createdAt`, and almost always equal: one GetItem at that
 * instant finds the entry; when it misses, a Query of the user's ledger backwards from
 * that instant, filtered on the id, looks at most {@link FALLBACK_ENTRIES} entries.
 *
 * Reading order. The user's balance items are read before the entry, never in parallel:
 * a reversal that commits between the two reads is then seen by the entry's counter (a
 * plan gives back no more than is left; the stale balance fails its version check), while
 * the other order could plan on a counter older than the balance and give a grant back
 * tokens it already has (core/rules/give-back.ts refuses that with a RangeError).
 *
 * Requests, per reversal (no grant due, no hold expired): one Query of the user's balance
 * items (the group is known only from the entry), the entry's GetItem, and one
 * transaction: 3 requests. Plus one BatchGetItem of the grant items of drawn
 * grants that are not in the balance item's map (exhausted, expired, ended, or spilled),
 * one Query of the overflow items when such a grant may be spilled there, and one
 * BatchGetItem of the orders of drawn grants not proven live (core/reservations.ts
 * `endedOrders`).
 *
 * Low balance: a reversal raises the balance; it never raises `credits.low_balance` and
 * leaves the group's crossing state as it is (API.md: only purchases and grants re-arm it).
 */
import { decodeTime, isValid } from "ulid";
import type { Context } from "./context.js";
import { balanceWrites, hasDueGrants, mapView, readBalances, readMoreOverflow } from "./balances.js";
import type { GrantItem, LedgerEntryItem } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import { ConflictError, InvariantViolation, NotFoundError, ValidationError, type DomainError } from "./errors.js";
import { expireDueGrants } from "./expiry.js";
import { outcomeWrite, refusal, replayIfKeyTaken, storeRefusal, type IdempotentRequest } from "./idempotency.js";
import { ledgerEntryWrite, newLedgerEntry, type LedgerEntry } from "./ledger.js";
import { grantFacts } from "./order-tokens.js";
import { endedOrders, settleExpiredHolds } from "./reservations.js";
import { RetryableConflict, retryOnConflict, retryStats } from "./retry.js";
import { emptyBalance, MAX_TOKENS, type BalanceState, type GrantDraw, type HoldState } from "./rules/balance-state.js";
import type { GrantFacts } from "./rules/give-back.js";
import { grantsOutOfHand, type PlannedEntry } from "./rules/holds.js";
import { planReversal } from "./rules/reversal.js";

/** Longest `reason`, in characters (as functions/schemas.ts allows for a grant's reason). */
export const MAX_REASON_LENGTH = 500;

/**
 * Most ledger entries the fallback Query looks at (backwards from the id's instant) for an
 * entry the GetItem missed: far more than ids ever run ahead of their `createdAt` in one
 * process, and a bound on what an unknown id costs.
 */
export const FALLBACK_ENTRIES = 2_000;

/** Entries per page of that Query. */
const FALLBACK_PAGE = 500;

/** A reversal request (API.md `POST /users/{userId}/consumptions/{entryId}/reverse`). */
export interface ReversalInput {
  userId: string;
  /** The `consume` entry to reverse. */
  entryId: string;
  /** Tokens to give back, integer 1..10^12; absent: all that is left to reverse. */
  tokens?: number | undefined;
  /** Why (the call failed, ...), at most {@link MAX_REASON_LENGTH} characters: kept in the `reverse` entry's metadata. */
  reason?: string | undefined;
  /** Present when the request carried an `Idempotency-Key`. */
  idempotency?: IdempotentRequest | undefined;
}

/** What a reversal answers (API.md `201 { entry, balance }`). */
export interface ReversalResult {
  /** The `reverse` entry (signed +tokens, with `reversesEntryId`). */
  entry: LedgerEntry;
  /** The group's balance after the reversal, as this request saw it. */
  balance: number;
}

/**
 * Reverses `tokens` (default: all that is left) of consumption `entryId`, by the rules of
 * core/rules/reversal.ts, in one transaction (see the module's notes).
 * @returns the `reverse` entry and the group's balance after it
 * @throws ValidationError for tokens not an integer in 1..10^12 or a reason too long;
 *   NotFoundError (404) for an unknown entry or one that is not a `consume`;
 *   ConflictError (409 `conflict`, `details.left`) when more than what is left to reverse
 *   is asked (or nothing is left); DomainError `idempotency_conflict` for a reused key
 *   with another body; the stored outcome for a repeated key
 */
export async function reverseConsumption(ctx: Context, input: ReversalInput): Promise<ReversalResult> {
  const { userId, entryId, tokens, reason, idempotency } = input;
  if (tokens !== undefined && (!Number.isSafeInteger(tokens) || tokens < 1 || tokens > MAX_TOKENS)) {
    throw new ValidationError({ tokens: `an integer in 1..${MAX_TOKENS}` });
  }
  if (reason !== undefined && (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH)) {
    throw new ValidationError({ reason: `a string of at most ${MAX_REASON_LENGTH} characters` });
  }
  let createdAt: string | undefined; // the entry's, once found: later attempts read it with one GetItem
  return retryOnConflict(
    async () => {
      // A. The user's balances, then the entry (in that order: see the module's notes); grants
      //    already due are expired first.
      const now = ctx.clock.now();
      const balances = await readBalances(ctx, userId);
      const consumed = await readConsumption(ctx, userId, entryId, createdAt);
      createdAt = consumed.createdAt;
      const state = balances.get(consumed.offerGroup) ?? emptyBalance(userId, consumed.offerGroup);
      if (hasDueGrants(state, now)) {
        await expireDueGrants(ctx, state, now);
        throw new RetryableConflict("expired due grants; read again");
      }
      // The group's expired holds are released first, in the same transaction.
      const settled = await settleExpiredHolds(ctx, mapView(state), now);
      let view = settled?.view ?? mapView(state);

      // B. The drawn grants with their facts, in hand when they may be spilled; the orders that ended.
      const draws = await drawnGrants(ctx, view.state, consumed);
      if (grantsOutOfHand(view.state, draws.map((draw) => draw.grant), now).length > 0) view = await readMoreOverflow(ctx, view, "all");
      const refundedOrDisputed = await endedOrders(ctx, view.state, [drawsAsHold(consumed, draws)]);
      const reversedSoFar = consumed.reversed ?? 0;
      const plan = planReversal({
        state: view.state,
        entry: { tokens: consumedTokens(consumed), draws, debtAdded: consumed.debt ?? 0, reversedSoFar },
        tokens,
        now,
        refundedOrDisputed,
      });
      if (!plan.ok) {
        const asked = tokens ?? plan.left;
        const error = new ConflictError(
          plan.left === 0
            ? `Consumption ${entryId} is reversed in full already.`
            : `Consumption ${entryId} has ${plan.left} tokens left to reverse; ${asked} asked.`,
          { entryId, left: plan.left, requested: asked },
        );
        return refuse(ctx, userId, idempotency, error, now);
      }

      // C. One transaction: the balance, the entries, the counter on the value read, the key.
      const refused = plan.refused.reduce((sum, item) => sum + item.tokens, 0);
      const metadata: Record<string, unknown> = {
        ...(reason !== undefined ? { reason } : {}),
        reversed: plan.tokens,
        ...(plan.debtSettled > 0 ? { debtSettled: plan.debtSettled } : {}),
        ...(refused > 0 ? { refused } : {}),
      };
      const [reverse, expire] = plan.entries.map((planned) => entryOf(consumed, planned, planned.reason === "reverse" ? metadata : undefined, now));
      const result: ReversalResult = { entry: reverse!, balance: plan.next.balance };
      const written = await transactWrite<string>(ctx.db, {
        ...balanceWrites(ctx.db, view, plan.next, now),
        ...settled?.actions,
        reverse: ledgerEntryWrite(ctx.db, reverse!),
        expire: expire && ledgerEntryWrite(ctx.db, expire),
        counter: counterWrite(ctx, consumed, reversedSoFar, plan.reversedSoFar),
        key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result }, now),
      });
      if (written.committed) return result;

      // D. Cancelled: a stored outcome for the key wins; otherwise another writer went first (balance or counter).
      const stored = await replayIfKeyTaken<ReversalResult>(ctx, written, userId, idempotency);
      if (stored) return stored.replayed;
      throw new RetryableConflict("the balance or the entry's counter changed while reversing");
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

// --- Reading the entry --------------------------------------------------------------------

/**
 * The `consume` entry `entryId` of the user, read consistently: one GetItem at the instant
 * of its id (or at `createdAt` when known), else the fallback Query (module notes).
 * @throws NotFoundError when there is no such entry, or it is not a `consume`
 */
async function readConsumption(ctx: Pick<Context, "db">, userId: string, entryId: string, createdAt: string | undefined): Promise<LedgerEntryItem> {
  const notFound = new NotFoundError("consumption", entryId);
  if (!isValid(entryId)) throw notFound;
  const idTime = decodeTime(entryId);
  const entity = ctx.db.entities.ledgerEntry;
  const at = createdAt ?? new Date(idTime).toISOString();
  let { data: item } = await entity.get({ userId, createdAt: at, entryId }).go({ consistent: true });
  if (!item && createdAt === undefined) item = await findBefore(ctx, userId, entryId, idTime);
  if (!item || item.reason !== "consume") throw notFound;
  return item;
}

/** The entry `entryId` among the user's last {@link FALLBACK_ENTRIES} entries created at or before `idTime` (newest first). */
async function findBefore(ctx: Pick<Context, "db">, userId: string, entryId: string, idTime: number): Promise<LedgerEntryItem | null> {
  const query = ctx.db.entities.ledgerEntry.query
    .byUser({ userId })
    .lt({ createdAt: new Date(idTime + 1).toISOString() })
    .where((attr, op) => op.eq(attr.entryId, entryId));
  let cursor: string | null = null;
  for (let looked = 0; looked < FALLBACK_ENTRIES; looked += FALLBACK_PAGE) {
    const page: { data: LedgerEntryItem[]; cursor: string | null } = await query.go({ consistent: true, order: "desc", limit: FALLBACK_PAGE, pages: 1, cursor });
    if (page.data[0]) return page.data[0];
    cursor = page.cursor;
    if (!cursor) break;
  }
  return null;
}

/** Tokens the entry consumed (its signed tokens negated, never −0). */
function consumedTokens(consumed: LedgerEntryItem): number {
  return consumed.tokens === 0 ? 0 : -consumed.tokens;
}

/**
 * The entry's draws with the facts of their grants: from the grants in hand, else from
 * their grant items (one consistent BatchGetItem per 100, only for grants not in hand).
 * @throws InvariantViolation when a drawn grant has no item
 */
async function drawnGrants(ctx: Pick<Context, "db">, state: BalanceState, consumed: LedgerEntryItem): Promise<GrantDraw[]> {
  const facts = new Map<string, GrantFacts>();
  for (const { remaining: _remaining, ...grant } of state.grants) facts.set(grant.grantId, grant);
  const draws = consumed.draws ?? [];
  const missing = [...new Set(draws.map((draw) => draw.grantId).filter((grantId) => !facts.has(grantId)))];
  for (let at = 0; at < missing.length; at += 100) {
    const { data } = await ctx.db.entities.grant
      .get(missing.slice(at, at + 100).map((grantId) => ({ userId: consumed.userId, grantId })))
      .go({ consistent: true });
    for (const item of data as GrantItem[]) facts.set(item.grantId, grantFacts(item));
  }
  return draws.map((draw) => {
    const grant = facts.get(draw.grantId);
    if (!grant) throw new InvariantViolation(`consumption ${consumed.entryId} draws grant ${draw.grantId}, which has no item`, { entryId: consumed.entryId, grantId: draw.grantId });
    return { grant, tokens: draw.tokens };
  });
}

/**
 * The entry's draws shaped as a hold, for core/reservations.ts `endedOrders` (which reads
 * only the holds' draws): the orders among those of the drawn grants that are refunded or
 * disputed now.
 */
function drawsAsHold(consumed: LedgerEntryItem, draws: GrantDraw[]): HoldState {
  return { reservationId: consumed.entryId, tokens: consumedTokens(consumed), draws, expires: consumed.createdAt, createdAt: consumed.createdAt };
}

// --- Writing ----------------------------------------------------------------------------------

/** A planned `reverse` or `expire` entry as a ledger entry, linked to the consumption it reverses. */
function entryOf(consumed: LedgerEntryItem, planned: PlannedEntry, metadata: Record<string, unknown> | undefined, now: Date): LedgerEntry {
  return newLedgerEntry(
    {
      userId: consumed.userId,
      offerGroup: consumed.offerGroup,
      tokens: planned.tokens,
      reason: planned.reason as "reverse" | "expire",
      draws: planned.draws,
      reversesEntryId: consumed.entryId,
      ...(planned.debtRepaid !== undefined ? { debtRepaid: planned.debtRepaid } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
    },
    now,
  );
}

/** The consumed entry's counter raised from `from` (as read; absent for 0) to `to`, only if it still holds `from`. */
function counterWrite(ctx: Pick<Context, "db">, consumed: LedgerEntryItem, from: number, to: number): TransactionItem {
  return commit(
    ctx.db.entities.ledgerEntry
      .patch({ userId: consumed.userId, createdAt: consumed.createdAt, entryId: consumed.entryId })
      .set({ reversed: to })
      .where((attr, op) => (from === 0 ? op.notExists(attr.reversed) : op.eq(attr.reversed, from))),
  );
}

/** Stores a refusal under the key, then throws it; if the key already holds an outcome, that outcome wins (returned, or its refusal thrown). */
async function refuse(ctx: Context, userId: string, idempotency: IdempotentRequest | undefined, error: DomainError, now: Date): Promise<ReversalResult> {
  const stored = idempotency && (await storeRefusal<ReversalResult>(ctx, userId, idempotency, refusal(error), now));
  if (stored) return stored;
  throw error;
}
