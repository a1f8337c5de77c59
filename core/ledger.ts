/**
 * The ledger: every token movement, signed, with a stable id (the original's "token
 * timetable", ORIGINAL-BEHAVIOUR.md §2, now per user and complete).
 *
 * Invariants, for every (user, offerGroup) (checked by test/helpers/invariants.ts after
 * every integration test and by property-based tests):
 *   1. stored balance = Σ tokens of the pair's ledger entries;
 *   2. balance = Σ remaining of its active grants − debt;
 *   3. a grant's remaining = its tokens − its draws − what expired or was refunded −
 *      the debt it repaid;
 *   4. balance >= 0 unless a consumption asked for an overdraft.
 * Every writer upholds them by writing the entry in the same transaction as the
 * balance change it explains.
 */
import type { Context } from "./context.js";
import type { Db, LedgerEntryItem } from "./db/service.js";
import { commit, type TransactionItem } from "./db/transact.js";
import { newId } from "./ids.js";
import { checkCursor, partitionOf } from "./db/cursors.js";

/** A ledger entry as the API shows it (API.md `LedgerEntry`). */
export interface LedgerEntry {
  entryId: string;
  userId: string;
  offerGroup: string;
  /** Signed token count: + purchase/adjust/release/reverse, − consume/expire/refund/hold. */
  tokens: number;
  reason: LedgerEntryItem["reason"];
  orderId?: string;
  grantId?: string;
  draws?: Array<{ grantId: string; tokens: number }>;
  /** Overdraft a consumption added to the group's debt. */
  debt?: number;
  /** Debt a purchase (or tokens given back) repaid. */
  debtRepaid?: number;
  /** The reservation the entry belongs to (`hold`, `release`, a commit's `consume`, core/reservations.ts). */
  reservationId?: string;
  /** `consume`: tokens of it reversed so far (core/reversals.ts); absent when none. */
  reversed?: number;
  /** `reverse` (and the `expire` that follows it): the `consume` entry it reverses. */
  reversesEntryId?: string;
  createdAt: string;
  metadata?: Record<string, unknown>;
}

/** The fields a writer supplies; id and date are added by {@link newLedgerEntry}. */
export type LedgerEntryDraft = Omit<LedgerEntry, "entryId" | "createdAt">;

/** Gives a draft its id (ULID at `now`) and creation date. */
export function newLedgerEntry(draft: LedgerEntryDraft, now: Date): LedgerEntry {
  return { entryId: newId(now), createdAt: now.toISOString(), ...draft };
}

/** The stored item as the API shape (absent optional fields are left out). */
export function toLedgerEntry(item: LedgerEntryItem): LedgerEntry {
  const entry: LedgerEntry = {
    entryId: item.entryId,
    userId: item.userId,
    offerGroup: item.offerGroup,
    tokens: item.tokens,
    reason: item.reason,
    createdAt: item.createdAt,
  };
  if (item.orderId !== undefined) entry.orderId = item.orderId;
  if (item.grantId !== undefined) entry.grantId = item.grantId;
  if (item.draws !== undefined) entry.draws = item.draws;
  if (item.debt !== undefined) entry.debt = item.debt;
  if (item.debtRepaid !== undefined) entry.debtRepaid = item.debtRepaid;
  if (item.reservationId !== undefined) entry.reservationId = item.reservationId;
  if (item.reversed !== undefined) entry.reversed = item.reversed;
  if (item.reversesEntryId !== undefined) entry.reversesEntryId = item.reversesEntryId;
  if (item.metadata !== undefined) entry.metadata = item.metadata as Record<string, unknown>;
  return entry;
}

/** The transaction action that creates `entry` (fails if its id exists). */
export function ledgerEntryWrite(db: Db, entry: LedgerEntry): TransactionItem {
  return commit(db.entities.ledgerEntry.create({ ...entry }));
}

/** Filters and page of a ledger read. */
export interface LedgerQuery {
  offerGroup?: string | undefined;
  /** Inclusive lower bound on `createdAt` (ISO). */
  from?: string | undefined;
  /** Exclusive upper bound on `createdAt` (ISO). */
  to?: string | undefined;
  /** 1-1000. */
  limit: number;
  cursor?: string | null | undefined;
}

/**
 * A page of the user's ledger, oldest first, optionally for one offerGroup and a date
 * range. `cursor` is null on the last page.
 */
export async function listLedger(
  ctx: Pick<Context, "db">,
  userId: string,
  query: LedgerQuery,
): Promise<{ entries: LedgerEntry[]; cursor: string | null }> {
  const entity = ctx.db.entities.ledgerEntry;
  checkCursor(entity, query.cursor, partitionOf(entity, { userId, createdAt: "-", entryId: "-" }));
  const base = entity.query.byUser({ userId });
  const ranged =
    query.from && query.to
      ? base.between({ createdAt: query.from }, { createdAt: query.to })
      : query.from
        ? base.gte({ createdAt: query.from })
        : query.to
          ? base.lt({ createdAt: query.to })
          : base;
  const filtered = ranged.where((attr, op) => {
    const clauses: string[] = [];
    if (query.offerGroup) clauses.push(op.eq(attr.offerGroup, query.offerGroup));
    // `between` is inclusive on both ends; `to` is exclusive.
    if (query.to) clauses.push(op.lt(attr.createdAt, query.to));
    return clauses.join(" AND ");
  });
  const page = await filtered.go({ count: query.limit, cursor: query.cursor ?? null, consistent: true });
  return { entries: page.data.map(toLedgerEntry), cursor: page.cursor ?? null };
}
