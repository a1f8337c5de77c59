/**
 * Reservations (holds): tokens drawn early for work whose cost is known at the end, then
 * committed (what was used), released, or expired (API.md "Reservations (hold, then
 * commit or release)"; DESIGN.md "Holds are draws made early"; issue 11). The rules are
 * pure, in core/rules/holds.ts; this module reads and writes them.
 *
 * Storage. The live holds of a group are on its balance item (`holds`, core/db/balance.ts;
 * at most core/balances.ts `MAX_HOLDS`): a hold, a commit, a release and a consumption each
 * read that one item and write it back under its version, with their ledger entries
 * (`hold`, `release`, `consume`, `expire`, each with `reservationId`), in one
 * `TransactWriteItems`. A reservation item per reservation (core/db/reservation.ts) keeps
 * its status and metadata, written in the same transactions, so that a reservation no
 * longer live is answered from it (a second release: the same answer; a release after a
 * commit: `409 conflict`; a commit after expiry: `409 reservation_expired`) and listed.
 *
 * Expiry. A hold past its `expires` is released (status `expired`) by the next write
 * that touches its group: a hold, a commit, a release ({@link settleExpiredHolds}), a
 * consumption (core/consumption.ts), and the credits read (core/credits.ts, through
 * {@link releaseExpiredHolds}); at most {@link EXPIRED_HOLDS_PER_WRITE} per transaction.
 * Groups nobody touches are found by the daily job (core/daily-job.ts) on the work
 * index: a reservation item carries index keys from its hold's expiry while it is `held`
 * (core/rules/work-index.ts `holdExpiryKeys`, written by {@link createHold}) and loses
 * them in the update that ends it, in the transaction that takes the hold off the
 * balance item (`reservationEnd`); the job calls {@link releaseExpiredHolds} for each
 * group with a reservation due. The balance item itself is never indexed: it is written
 * by every consumption, and an index copy would double those writes.
 *
 * Low balance. A hold, and a commit using more than held, lower the spendable balance
 * like a consumption: when that crosses the group's `lowBalanceThreshold` and the group's
 * low-balance latch is off, `credits.low_balance` is written in the same transaction and
 * the latch set (core/rules/holds.ts `lowBalanceAlarm`; core/rules/low-balance.ts).
 * Releases, commits of less than held and expiries raise the balance but never clear the
 * latch (only purchases and grants do), so holds flapping around the threshold raise one
 * event. The write is under the version read, which covers the latch.
 *
 * Requests, per operation (no grant due, no hold expired, the held grants in the map):
 * - hold: one BatchGetItem of the balance item and the group's settings (its threshold),
 *   one transaction (balance, `hold` entry, reservation item, idempotency record when a
 *   key is given, the `credits.low_balance` event when it crosses);
 * - commit, release: one Query of the user's balance items (the route names no group:
 *   the group holding the reservation is found there), one transaction; a commit using
 *   more than held while the group's latch is off also reads the group's settings (one
 *   GetItem) for its threshold;
 * - plus one BatchGetItem of the orders of the hold's grants when one of them is empty or
 *   out of the balance item (its order may be refunded or disputed: tokens are never
 *   given back to those, core/rules/give-back.ts), and one Query of the overflow items
 *   when a held grant may have been spilled there since the hold.
 * A version conflict (another writer went first) is retried with jittered backoff.
 *
 * Refunded or disputed orders ({@link endedOrders}): a refund takes every grant of the
 * order out of the balance item, and an opened dispute sets each of its grants'
 * remaining to 0 (core/rules/give-back.ts `freezePlan`), in the same transaction for
 * every group. So a grant of order O in hand with remaining > 0 proves that O is neither
 * refunded nor disputed; only the orders of held grants with no such proof are read.
 */
import type { Context } from "./context.js";
import { balanceDeltaWrite, balanceWrites, hasDueGrants, mapView, MAX_HOLDS, readBalance, readBalanceAndThreshold, readBalances, readMoreOverflow, toState, type BalanceView } from "./balances.js";
import type { BalanceItem, ReservationItem } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import type { RESERVATION_STATUSES } from "./db/reservation.js";
import { checkCursor, partitionOf } from "./db/cursors.js";
import { ConflictError, DomainError, InsufficientCreditsError, NotFoundError, ReservationExpiredError, ValidationError } from "./errors.js";
import { eventWrite } from "./events.js";
import { expireDueGrants } from "./expiry.js";
import { outcomeWrite, readRecord, refusal, replay, replayIfKeyTaken, storeRefusal, type IdempotentRequest } from "./idempotency.js";
import { newId } from "./ids.js";
import { getOfferGroup } from "./offer-groups.js";
import { ledgerEntryWrite, newLedgerEntry, type LedgerEntry } from "./ledger.js";
import { RetryableConflict, retryOnConflict, retryStats } from "./retry.js";
import { MAX_TOKENS, type BalanceState } from "./rules/balance-state.js";
import type { Draw } from "./rules/drain.js";
import {
  expiredHolds,
  grantsOutOfHand,
  ledgerDraws,
  lowBalanceAlarm,
  MAX_HOLD_SECONDS,
  MIN_HOLD_SECONDS,
  planCommit,
  planExpireHolds,
  planHold,
  planRelease,
  withoutEmptiedUnheld,
  type HoldState,
  type PlannedEntry,
} from "./rules/holds.js";
import { holdExpiryKeys } from "./rules/work-index.js";
import { latchedCrossing, topUpOf, withRaisedLatches, withTopUp, type CrossingRange } from "./rules/low-balance.js";

/** Default hold lifetime, in seconds (API.md `ttlSeconds`). */
export const DEFAULT_HOLD_SECONDS = 300;

/**
 * Most expired holds one write releases: each adds up to two ledger entries and a
 * reservation update, so with the balance item, its overflow actions (at most 40) and the
 * operation's own few, a transaction stays within DynamoDB's 100 actions.
 */
export const EXPIRED_HOLDS_PER_WRITE = 10;

/** A reservation's status (API.md). */
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/** A reservation as the API shows it (API.md `Reservation`). */
export interface Reservation {
  reservationId: string;
  userId: string;
  offerGroup: string;
  /** Tokens held, integer >= 1. */
  tokens: number;
  status: ReservationStatus;
  /** ISO 8601 instant the hold expires. */
  expires: string;
  /** The grants drawn by the hold, in drain order. */
  draws: Draw[];
  createdAt: string;
  /** The hold's metadata; present on the answers of a hold and of {@link listHolds}. */
  metadata?: Record<string, unknown>;
  /** Committed: tokens consumed. */
  committedTokens?: number;
  /** ISO 8601 instant of the commit, release or expiry. */
  endedAt?: string;
}

/** A hold request (API.md `POST /users/{userId}/reservations`). */
export interface HoldInput {
  userId: string;
  offerGroup: string;
  /** Integer 1..10^12. */
  tokens: number;
  /** 1..86400, default {@link DEFAULT_HOLD_SECONDS}. */
  ttlSeconds?: number | undefined;
  metadata?: Record<string, unknown> | undefined;
  /** Present when the request carried an `Idempotency-Key`. */
  idempotency?: IdempotentRequest | undefined;
}

/** A commit request (API.md `POST .../reservations/{reservationId}/commit`). */
export interface CommitInput {
  userId: string;
  reservationId: string;
  /** Tokens used, integer 0..10^12. */
  tokens: number;
  /** More than held: the part not covered becomes debt. */
  allowOverdraft?: boolean | undefined;
  /** Kept on the `consume` entry. */
  metadata?: Record<string, unknown> | undefined;
  idempotency?: IdempotentRequest | undefined;
}

/** A release request (API.md `POST .../reservations/{reservationId}/release`). */
export interface ReleaseInput {
  userId: string;
  reservationId: string;
  idempotency?: IdempotentRequest | undefined;
}

/** What a commit answers (API.md `200 { reservation, entry, balance }`). */
export interface CommitResult {
  reservation: Reservation;
  /** The `consume` entry, with `reservationId`. */
  entry: LedgerEntry;
  /** The group's balance after the commit, as this request saw it. */
  balance: number;
}

// --- Hold -----------------------------------------------------------------------------------

/**
 * Holds `tokens` of the group for `ttlSeconds`: drawn at once from the grants in drain
 * order (ledger `hold` entry), never into debt.
 * @returns the reservation, status `held`
 * @throws ValidationError for tokens or ttlSeconds out of range; InsufficientCreditsError
 *   (402) when the spendable balance cannot cover the hold (nothing held); ConflictError
 *   when the group already has {@link MAX_HOLDS} live holds; DomainError
 *   `idempotency_conflict` for a reused key with another body; the stored outcome for a
 *   repeated key
 */
export async function createHold(ctx: Context, input: HoldInput): Promise<Reservation> {
  const { userId, offerGroup, tokens, metadata, idempotency } = input;
  const ttlSeconds = input.ttlSeconds ?? DEFAULT_HOLD_SECONDS;
  if (!Number.isSafeInteger(tokens) || tokens < 1 || tokens > MAX_TOKENS) throw new ValidationError({ tokens: `an integer in 1..${MAX_TOKENS}` });
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < MIN_HOLD_SECONDS || ttlSeconds > MAX_HOLD_SECONDS) {
    throw new ValidationError({ ttlSeconds: `an integer in ${MIN_HOLD_SECONDS}..${MAX_HOLD_SECONDS}` });
  }
  let returned: BalanceState | undefined;
  let threshold: number | null = null;
  return retryOnConflict(
    async () => {
      // A. Read the balance item and the group's low-balance threshold (one request); settle
      //    grants already due, then the expired holds.
      const now = ctx.clock.now();
      let state: BalanceState;
      if (returned) state = returned;
      else ({ state, lowBalanceThreshold: threshold } = await readBalanceAndThreshold(ctx, userId, offerGroup));
      returned = undefined;
      await settleDueGrants(ctx, state, now);
      const settled = await settleExpiredHolds(ctx, mapView(state), now);
      let view = settled?.view ?? mapView(state);
      const holds = view.state.holds ?? [];

      // B. Plan (reading spilled grants only when the map does not settle it); refusals are stored for the key.
      const refuse = async (error: DomainError): Promise<Reservation> => {
        if (idempotency) {
          const stored = await storeRefusal<Reservation>(ctx, userId, idempotency, refusal(error), now);
          if (stored) return stored;
        }
        throw error;
      };
      if (holds.length >= MAX_HOLDS) {
        return refuse(new ConflictError(`The group ${offerGroup} already has ${MAX_HOLDS} live reservations; commit or release some first.`, { offerGroup, limit: MAX_HOLDS }));
      }
      const reservationId = newId(now);
      const planOn = (current: BalanceView) => planHold({ state: current.state, holds, tokens, ttlSeconds, now, reservationId });
      let plan = planOn(view);
      if (!plan.final) {
        view = await readMoreOverflow(ctx, view, "all");
        plan = planOn(view);
      }
      if (!plan.ok) return refuse(new InsufficientCreditsError(offerGroup, view.state.balance, tokens));

      // C. One transaction: the balance with the new hold, the `hold` entry, the reservation, the key.
      const entry = newLedgerEntry(
        { userId, offerGroup, tokens: -tokens, reason: "hold", draws: plan.entries[0]!.draws, reservationId, ...(metadata !== undefined ? { metadata } : {}) },
        now,
      );
      const reservation: Reservation = {
        reservationId,
        userId,
        offerGroup,
        tokens,
        status: "held",
        expires: plan.hold.expires,
        draws: ledgerDraws(plan.hold.draws),
        createdAt: plan.hold.createdAt,
        ...(metadata !== undefined ? { metadata } : {}),
      };
      const alarm = lowBalanceAlarm({ seen: view.state.balance, after: plan.next.balance, threshold, disarmed: view.state.lowBalanceLatched === true, rearms: false });
      // The top-up threshold's crossing joins the low-balance one (core/rules/low-balance.ts `withTopUp`).
      const crossing = withTopUp(latchedCrossing({ seen: view.state.balance, tokens, threshold, latched: view.state.lowBalanceLatched === true }), topUpOf(view.state, tokens));
      const next: BalanceState = withRaisedLatches(withLatch({ ...plan.next, holds: plan.holds }, alarm.disarmed), { topUpRaises: crossing.topUpRaises });
      const written = await transactWrite<string>(ctx.db, {
        ...balanceChange(ctx, settled ? undefined : state, view, next, now, crossing),
        ...settled?.actions,
        entry: ledgerEntryWrite(ctx.db, entry),
        event: alarm.crosses ? eventWrite(ctx.db, { type: "credits.low_balance", userId, offerGroup, balance: next.balance }, now).item : undefined,
        topUp: crossing.topUpRaises ? eventWrite(ctx.db, { type: "top_up.requested", userId, offerGroup, balance: next.balance }, now).item : undefined,
        reservation: commit(
          ctx.db.entities.reservation.create({
            userId,
            reservationId,
            offerGroup,
            tokens,
            status: "held",
            expires: reservation.expires,
            draws: reservation.draws,
            holdEntryId: entry.entryId,
            createdAt: reservation.createdAt,
            ...(metadata !== undefined ? { metadata } : {}),
            ...holdExpiryKeys(userId, offerGroup, reservationId, reservation.expires),
          }),
        ),
        key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result: reservation }, now),
      });
      if (written.committed) return reservation;
      return afterCancel<Reservation>(ctx, written, userId, idempotency, (state) => (returned = state));
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

// --- Release --------------------------------------------------------------------------------

/**
 * Releases reservation `reservationId`: all its tokens go back to their grants (ledger
 * `release`; the group's debt first; what lands in a grant past its expiry leaves at once,
 * `expire`; nothing into a grant of a refunded or disputed order). A reservation already
 * released or expired is answered as it is (a retry after a timeout); a hold past its
 * expiry and not yet released is released as `expired`.
 * @returns the reservation, status `released` (or `expired`)
 * @throws NotFoundError for an unknown reservation; ConflictError for a committed one
 */
export async function releaseHold(ctx: Context, input: ReleaseInput): Promise<Reservation> {
  const { userId, reservationId, idempotency } = input;
  return retryOnConflict(
    async () => {
      const now = ctx.clock.now();
      const found = await findLiveHold(ctx, userId, reservationId);
      if (!found) {
        const ended = await notLive<Reservation>(ctx, userId, reservationId, idempotency);
        if ("replayed" in ended) return ended.replayed;
        const { stored } = ended;
        if (stored.status === "committed") throw new ConflictError(`Reservation ${reservationId} is committed; it cannot be released.`, { reservationId, status: stored.status });
        return stored; // released or expired: the same answer again
      }
      await settleDueGrants(ctx, found.state, now);

      // A. The expired holds first (this one too, if it has expired: then it ends `expired`).
      const settled = await settleExpiredHolds(ctx, mapView(found.state), now);
      let view = settled?.view ?? mapView(found.state);
      const actions: Record<string, TransactionItem | undefined> = { ...settled?.actions };
      let reservation: Reservation;
      let next = view.state;
      if (settled?.released.includes(reservationId)) {
        reservation = { ...reservationOf(found.state, found.hold), status: "expired", endedAt: now.toISOString() };
      } else {
        // B. The release, its grants in hand.
        view = await withGrantsInHand(ctx, view, [found.hold], now);
        const refundedOrDisputed = await endedOrders(ctx, view.state, [found.hold]);
        const plan = planRelease({ state: view.state, holds: view.state.holds ?? [], reservationId, now, refundedOrDisputed });
        if (!plan.ok) throw new RetryableConflict("the hold vanished while planning");
        next = withoutEmptiedUnheld({ ...plan.next, holds: plan.holds }, plan.leaving, plan.holds);
        for (const [name, { write }] of Object.entries(entryWrites(ctx, "release", found.state, reservationId, plan.entries, now))) actions[name] = write;
        actions.reservation = reservationEnd(ctx, userId, reservationId, { status: "released", endedAt: now.toISOString() });
        reservation = { ...reservationOf(found.state, found.hold), status: "released", endedAt: now.toISOString() };
      }
      const written = await transactWrite<string>(ctx.db, {
        ...balanceChange(ctx, settled ? undefined : found.state, view, next, now),
        ...actions,
        key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result: reservation }, now),
      });
      if (written.committed) return reservation;
      return afterCancel<Reservation>(ctx, written, userId, idempotency);
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

// --- Commit ---------------------------------------------------------------------------------

/**
 * Commits reservation `reservationId` with `tokens` used, in one transaction: a `release`
 * of the whole hold and a `consume` of `tokens` (with `reservationId`) drawn first from
 * the hold's own draws (even from a grant expired since the hold), the extra beyond the
 * hold like a consumption; the unused part goes back to its grants (API.md).
 * @returns the reservation (status `committed`), the `consume` entry, the balance after it
 * @throws NotFoundError for an unknown reservation; ReservationExpiredError (409
 *   `reservation_expired`) past its expiry (its hold is released as `expired` in the same
 *   request); ConflictError when it is already committed or released (a repeat under the
 *   same Idempotency-Key gets the stored answer instead); InsufficientCreditsError (402)
 *   when more than held is used and the rest of the balance cannot cover it without
 *   overdraft (the hold stays); ValidationError for tokens out of range
 */
export async function commitHold(ctx: Context, input: CommitInput): Promise<CommitResult> {
  const { userId, reservationId, tokens, metadata, idempotency } = input;
  const allowOverdraft = input.allowOverdraft ?? false;
  if (!Number.isSafeInteger(tokens) || tokens < 0 || tokens > MAX_TOKENS) throw new ValidationError({ tokens: `an integer in 0..${MAX_TOKENS}` });
  let threshold: number | null | undefined; // read only when a commit lowers the balance with the latch off
  return retryOnConflict(
    async () => {
      const now = ctx.clock.now();
      const found = await findLiveHold(ctx, userId, reservationId);
      if (!found) {
        const ended = await notLive<CommitResult>(ctx, userId, reservationId, idempotency);
        if ("replayed" in ended) return ended.replayed;
        const { stored } = ended;
        if (stored.status === "expired") throw new ReservationExpiredError(reservationId, stored.expires);
        throw new ConflictError(`Reservation ${reservationId} is ${stored.status}; it cannot be committed.`, { reservationId, status: stored.status });
      }
      await settleDueGrants(ctx, found.state, now);
      const refuse = async (error: DomainError, actions: Record<string, TransactionItem | undefined> = {}, view?: BalanceView, next?: BalanceState): Promise<CommitResult> => {
        if (!idempotency && !view) throw error;
        const written = await transactWrite<string>(ctx.db, {
          ...(view && next ? balanceWrites(ctx.db, view, next, now) : {}),
          ...actions,
          key: idempotency && outcomeWrite(ctx.db, userId, idempotency, refusal(error), now),
        });
        if (!written.committed) return afterCancel<CommitResult>(ctx, written, userId, idempotency);
        throw error;
      };

      // A. The expired holds first: this one among them -> 409 reservation_expired, its release written.
      const settled = await settleExpiredHolds(ctx, mapView(found.state), now);
      let view = settled?.view ?? mapView(found.state);
      if (settled?.released.includes(reservationId)) {
        return refuse(new ReservationExpiredError(reservationId, found.hold.expires), settled.actions, view, view.state);
      }

      // B. Plan on the hold's grants in hand (the extra beyond the hold may need the overflow).
      view = await withGrantsInHand(ctx, view, [found.hold], now);
      const refundedOrDisputed = await endedOrders(ctx, view.state, [found.hold]);
      const planOn = (current: BalanceView) =>
        planCommit({ state: current.state, holds: current.state.holds ?? [], reservationId, tokens, allowOverdraft, now, refundedOrDisputed });
      let plan = planOn(view);
      if ((plan.ok || plan.reason === "insufficient") && !plan.final) {
        view = await readMoreOverflow(ctx, view, "all");
        plan = planOn(view);
      }
      if (!plan.ok) {
        if (plan.reason === "insufficient") return refuse(new InsufficientCreditsError(found.state.offerGroup, view.state.balance, tokens));
        throw new RetryableConflict(`the hold is ${plan.reason} while planning`); // settled above: unreachable but for a race
      }

      // C. One transaction: the balance, the release / consume / expire entries, the reservation, the key.
      const planned = withoutEmptiedUnheld({ ...plan.next, holds: plan.holds }, plan.leaving, plan.holds);
      const [seen, latched] = [view.state.balance, view.state.lowBalanceLatched === true];
      if (planned.balance < seen && !latched && threshold === undefined) threshold = (await getOfferGroup(ctx, found.state.offerGroup)).lowBalanceThreshold;
      const alarm = lowBalanceAlarm({ seen, after: planned.balance, threshold: threshold ?? null, disarmed: latched, rearms: false });
      const lowered = planned.balance < seen;
      // The low-balance decision the write must still hold (the crossing's balance range and the
      // latch read), joined with the top-up threshold's (core/rules/low-balance.ts `withTopUp`).
      const lowRange: CrossingRange = !lowered ? {} : threshold !== undefined && threshold !== null ? latchedCrossing({ seen, tokens: seen - planned.balance, threshold, latched }) : latched ? { latched: true } : {};
      const range: CrossingRange = lowered ? withTopUp(lowRange, topUpOf(view.state, seen - planned.balance)) : lowRange;
      const next = withRaisedLatches(withLatch(planned, alarm.disarmed), { topUpRaises: range.topUpRaises });
      const entries = entryWrites(ctx, "commit", found.state, reservationId, plan.entries, now, metadata);
      const consumed = entries.consume!;
      const reservation: Reservation = { ...reservationOf(found.state, found.hold), status: "committed", committedTokens: tokens, endedAt: now.toISOString() };
      const result: CommitResult = { reservation, entry: consumed.entry, balance: next.balance };
      const written = await transactWrite<string>(ctx.db, {
        ...balanceChange(ctx, settled ? undefined : found.state, view, next, now, range),
        ...settled?.actions,
        ...Object.fromEntries(Object.entries(entries).map(([name, { write }]) => [name, write])),
        reservation: reservationEnd(ctx, userId, reservationId, { status: "committed", committedTokens: tokens, consumeEntryId: consumed.entry.entryId, endedAt: now.toISOString() }),
        key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result }, now),
        event: alarm.crosses ? eventWrite(ctx.db, { type: "credits.low_balance", userId, offerGroup: found.state.offerGroup, balance: next.balance }, now).item : undefined,
        topUp: range.topUpRaises ? eventWrite(ctx.db, { type: "top_up.requested", userId, offerGroup: found.state.offerGroup, balance: next.balance }, now).item : undefined,
      });
      if (written.committed) return result;
      return afterCancel<CommitResult>(ctx, written, userId, idempotency);
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

// --- Listing --------------------------------------------------------------------------------

/** Filters and page of {@link listHolds}. */
export interface ReservationQuery {
  offerGroup?: string | undefined;
  status?: ReservationStatus | undefined;
  /** 1..1000. */
  limit: number;
  cursor?: string | null | undefined;
}

/**
 * A page of the user's reservations, oldest first (one consistent Query of their
 * reservation items), optionally of one group and one status. A hold past its expiry
 * that no request has released yet is listed `held` until one does.
 */
export async function listHolds(ctx: Pick<Context, "db">, userId: string, query: ReservationQuery): Promise<{ reservations: Reservation[]; cursor: string | null }> {
  const entity = ctx.db.entities.reservation;
  checkCursor(entity, query.cursor, partitionOf(entity, { userId, reservationId: "-" }));
  const page = await entity.query
    .byUser({ userId })
    .where((attr, op) => {
      const clauses: string[] = [];
      if (query.offerGroup) clauses.push(op.eq(attr.offerGroup, query.offerGroup));
      if (query.status) clauses.push(op.eq(attr.status, query.status));
      return clauses.join(" AND ");
    })
    .go({ count: query.limit, cursor: query.cursor ?? null, consistent: true });
  return { reservations: page.data.map(toReservation), cursor: page.cursor ?? null };
}

// --- Expired holds ----------------------------------------------------------------------------

/** The release of a group's expired holds, to write with an operation on the group. */
export interface SettledHolds {
  /** The view to plan the operation on: its state with the expired holds released (version unchanged). */
  view: BalanceView;
  /** Their ledger entries and reservation updates, named `hold-end:<reservationId>:<n>`. */
  actions: Record<string, TransactionItem>;
  /** The reservations released (status `expired`). */
  released: string[];
}

/**
 * Plans releasing the holds of `view` expired at `now` (at most
 * {@link EXPIRED_HOLDS_PER_WRITE}, earliest first): every write that touches a group does
 * this first, in its own transaction (the balance item written from `view.state`, under
 * the version read). Reads the overflow when a held grant may be spilled there, and the
 * orders of held grants that may be refunded or disputed ({@link endedOrders}).
 * @returns undefined when no hold has expired
 */
export async function settleExpiredHolds(ctx: Pick<Context, "db">, view: BalanceView, now: Date): Promise<SettledHolds | undefined> {
  const holds = view.state.holds ?? [];
  const due = expiredHolds(holds, now).slice(0, EXPIRED_HOLDS_PER_WRITE);
  if (due.length === 0) return undefined;
  const inHand = await withGrantsInHand(ctx, view, due, now);
  const refundedOrDisputed = await endedOrders(ctx, inHand.state, due);
  const plan = planExpireHolds({ state: inHand.state, holds, now, refundedOrDisputed, limit: EXPIRED_HOLDS_PER_WRITE });
  const state = withoutEmptiedUnheld({ ...plan.next, holds: plan.holds }, plan.leaving, plan.holds);
  const actions: Record<string, TransactionItem> = {};
  for (const { hold, entries } of plan.released) {
    for (const [name, { write }] of Object.entries(entryWrites(ctx, `hold-end:${hold.reservationId}`, view.state, hold.reservationId, entries, now))) actions[name] = write;
    actions[`hold-end:${hold.reservationId}`] = reservationEnd(ctx, view.state.userId, hold.reservationId, { status: "expired", endedAt: now.toISOString() });
  }
  return { view: { ...inHand, state }, actions, released: plan.released.map((item) => item.hold.reservationId) };
}

/**
 * Releases the expired holds of one group (at most {@link EXPIRED_HOLDS_PER_WRITE}) in
 * one transaction: for reads that show the balance (core/credits.ts) and the daily job's
 * hold-expiry pass (core/daily-job.ts). Nothing expired: no write (one read).
 * @returns how many holds it released
 */
export async function releaseExpiredHolds(ctx: Pick<Context, "db" | "clock">, userId: string, offerGroup: string): Promise<number> {
  return retryOnConflict(
    async () => {
      const now = ctx.clock.now();
      const state = await readBalance(ctx, userId, offerGroup);
      const settled = await settleExpiredHolds(ctx, mapView(state), now);
      if (!settled) return 0;
      const written = await transactWrite<string>(ctx.db, { ...balanceWrites(ctx.db, settled.view, settled.view.state, now), ...settled.actions });
      if (written.committed) return settled.released.length;
      throw new RetryableConflict();
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

/** `state` with its low-balance latch set (`on`) or absent (core/rules/balance-state.ts `lowBalanceLatched`). */
function withLatch(state: BalanceState, on: boolean): BalanceState {
  if (on === (state.lowBalanceLatched === true)) return state;
  const next: BalanceState = { ...state };
  if (on) next.lowBalanceLatched = true;
  else delete next.lowBalanceLatched;
  return next;
}

/** True when some live hold of `state` has expired at `now`. */
export function hasExpiredHolds(state: BalanceState, now: Date): boolean {
  return expiredHolds(state.holds ?? [], now).length > 0;
}

// --- Shared steps ---------------------------------------------------------------------------

/** Expires the group's due grants first (one more transaction, only when some are due), then asks for a fresh read. */
async function settleDueGrants(ctx: Context, state: BalanceState, now: Date): Promise<void> {
  if (!hasDueGrants(state, now)) return;
  await expireDueGrants(ctx, state, now);
  throw new RetryableConflict("expired due grants; read again");
}

/** The group holding live hold `reservationId`, found in one consistent Query of the user's balance items. */
async function findLiveHold(ctx: Pick<Context, "db">, userId: string, reservationId: string): Promise<{ state: BalanceState; hold: HoldState } | undefined> {
  for (const state of (await readBalances(ctx, userId)).values()) {
    const hold = state.holds?.find((candidate) => candidate.reservationId === reservationId);
    if (hold) return { state, hold };
  }
  return undefined;
}

/**
 * What a commit or release of a reservation no longer live on its balance item answers
 * from: the outcome stored under the request's key (a repeat), else the stored reservation
 * (committed, released or expired), for the caller to answer or refuse.
 * @throws NotFoundError for an unknown reservation; what `replay` throws
 */
async function notLive<T>(ctx: Context, userId: string, reservationId: string, idempotency: IdempotentRequest | undefined): Promise<{ replayed: T } | { stored: Reservation }> {
  const record = idempotency && (await readRecord(ctx, userId, idempotency));
  if (record) return { replayed: replay<T>(record, idempotency!) };
  return { stored: await readReservation(ctx, userId, reservationId) };
}

/** The stored reservation (no longer live: the balance item decides what is held). */
async function readReservation(ctx: Pick<Context, "db">, userId: string, reservationId: string): Promise<Reservation> {
  const { data } = await ctx.db.entities.reservation.get({ userId, reservationId }).go({ consistent: true });
  if (!data) throw new NotFoundError("reservation", reservationId);
  // Held on its item but not on the balance item read a moment before: a write landed between the reads.
  if (data.status === "held") throw new RetryableConflict("the reservation changed while it was read");
  return toReservation(data);
}

/**
 * The balance write of `next`: relative and guarded (core/balances.ts `balanceDeltaWrite`)
 * when `stored` is the item as read (no expired hold settled in this write) and only the
 * map was read, so that concurrent holds, commits and releases of one group do not retry
 * each other; otherwise the whole item under the version read.
 * @param range the low-balance decision the relative write must still hold (balance range, latch read)
 */
function balanceChange(
  ctx: Pick<Context, "db">,
  stored: BalanceState | undefined,
  view: BalanceView,
  next: BalanceState,
  now: Date,
  range?: Parameters<typeof balanceDeltaWrite>[4],
): Record<string, TransactionItem> {
  const relative = stored && view.loaded.length === 0 ? balanceDeltaWrite(ctx.db, stored, next, now, range) : undefined;
  return relative ? { balance: relative } : balanceWrites(ctx.db, view, next, now);
}

/** The stored item as the API shape. */
function toReservation(item: ReservationItem): Reservation {
  const reservation: Reservation = {
    reservationId: item.reservationId,
    userId: item.userId,
    offerGroup: item.offerGroup,
    tokens: item.tokens,
    status: item.status,
    expires: item.expires,
    draws: item.draws,
    createdAt: item.createdAt,
  };
  if (item.metadata !== undefined) reservation.metadata = item.metadata as Record<string, unknown>;
  if (item.committedTokens !== undefined) reservation.committedTokens = item.committedTokens;
  if (item.endedAt !== undefined) reservation.endedAt = item.endedAt;
  return reservation;
}

/** A live hold as a reservation (status `held`; no metadata: it is on the reservation item). */
function reservationOf(state: BalanceState, hold: HoldState): Reservation {
  return {
    reservationId: hold.reservationId,
    userId: state.userId,
    offerGroup: state.offerGroup,
    tokens: hold.tokens,
    status: "held",
    expires: hold.expires,
    draws: ledgerDraws(hold.draws),
    createdAt: hold.createdAt,
  };
}

/**
 * The transaction action that ends reservation `reservationId` (only while it is `held`):
 * its status and end, and its work-index keys removed (ElectroDB then removes the index
 * keys: it leaves the hold-expiry index, core/db/reservation.ts).
 */
function reservationEnd(
  ctx: Pick<Context, "db">,
  userId: string,
  reservationId: string,
  fields: { status: Exclude<ReservationStatus, "held">; endedAt: string; committedTokens?: number; consumeEntryId?: string },
): TransactionItem {
  return commit(
    ctx.db.entities.reservation
      .patch({ userId, reservationId })
      .set(fields)
      .remove(["holdExpiryBucket", "holdExpirySort"])
      .where((attr, op) => op.eq(attr.status, "held")),
  );
}

/**
 * The ledger entries of a plan, each with the reservation id, as named transaction
 * actions (`<prefix>:<reason>`; the `consume` one named `consume` and carrying `metadata`).
 */
function entryWrites(
  ctx: Pick<Context, "db">,
  prefix: string,
  state: Pick<BalanceState, "userId" | "offerGroup">,
  reservationId: string,
  entries: readonly PlannedEntry[],
  now: Date,
  metadata?: Record<string, unknown>,
): Record<string, { entry: LedgerEntry; write: TransactionItem }> {
  const writes: Record<string, { entry: LedgerEntry; write: TransactionItem }> = {};
  entries.forEach((planned, index) => {
    const entry = newLedgerEntry(
      {
        userId: state.userId,
        offerGroup: state.offerGroup,
        tokens: planned.tokens,
        reason: planned.reason,
        draws: planned.draws,
        reservationId,
        ...(planned.debt !== undefined ? { debt: planned.debt } : {}),
        ...(planned.debtRepaid !== undefined ? { debtRepaid: planned.debtRepaid } : {}),
        ...(planned.reason === "consume" && metadata !== undefined ? { metadata } : {}),
      },
      now,
    );
    const name = planned.reason === "consume" ? "consume" : `${prefix}:${planned.reason}:${index}`;
    writes[name] = { entry, write: ledgerEntryWrite(ctx.db, entry) };
  });
  return writes;
}

/** `view` with every grant the holds drew from in hand: the whole overflow read when one may be spilled there. */
async function withGrantsInHand(ctx: Pick<Context, "db">, view: BalanceView, holds: readonly HoldState[], now: Date): Promise<BalanceView> {
  const facts = holds.flatMap((hold) => hold.draws.map((draw) => draw.grant));
  return grantsOutOfHand(view.state, facts, now).length > 0 ? readMoreOverflow(ctx, view, "all") : view;
}

/**
 * What, among the grants `holds` drew from, tokens may not go back to now (core/rules/
 * give-back.ts `isEndedGrant`): the ids of their orders that are refunded or disputed, and,
 * for a renewing order, which goes on while one of its periods is refunded or disputed
 * (issue 13), the ids of that period's grants (the grant item `refunded`, or its invoice
 * under an open or lost dispute). A grant in hand still holding tokens is neither (a
 * refund or a dispute empties its scope's grants); the others' orders are read in one
 * consistent BatchGetItem, and a renewing order's grants (BatchGetItem) and periods
 * (Query) only when one of them is unsure.
 */
export async function endedOrders(ctx: Pick<Context, "db">, state: BalanceState, holds: readonly HoldState[]): Promise<Set<string>> {
  const live = new Set(state.grants.filter((grant) => grant.remaining > 0).map((grant) => grant.grantId));
  const unsure = new Map<string, Set<string>>(); // orderId -> its held grants not live in hand
  for (const draw of holds.flatMap((hold) => hold.draws)) {
    const { grantId, orderId } = draw.grant;
    if (orderId === undefined || live.has(grantId)) continue;
    (unsure.get(orderId) ?? unsure.set(orderId, new Set()).get(orderId)!).add(grantId);
  }
  const orderIds = [...unsure.keys()];
  const ended = new Set<string>();
  for (let at = 0; at < orderIds.length; at += 100) {
    const { data } = await ctx.db.entities.order
      .get(orderIds.slice(at, at + 100).map((orderId) => ({ userId: state.userId, orderId })))
      .go({ consistent: true, attributes: ["orderId", "status", "renewal", "disputes"] });
    for (const order of data) {
      if (order.status === "refunded" || order.status === "disputed") ended.add(order.orderId);
      else if (order.renewal === "auto") for (const grantId of await endedPeriodGrants(ctx, state.userId, order, unsure.get(order.orderId)!)) ended.add(grantId);
    }
  }
  return ended;
}

/** Of a renewing order's `grantIds`, those of a period refunded (the grant item `refunded`) or under an open or lost dispute. */
async function endedPeriodGrants(
  ctx: Pick<Context, "db">,
  userId: string,
  order: { orderId: string; disputes?: ReadonlyArray<{ status: string; invoiceId?: string | undefined }> | undefined },
  grantIds: ReadonlySet<string>,
): Promise<string[]> {
  const { data: grants } = await ctx.db.entities.grant
    .get([...grantIds].map((grantId) => ({ userId, grantId })))
    .go({ consistent: true, attributes: ["grantId", "status"] });
  const ended = grants.filter((grant) => grant.status === "refunded").map((grant) => grant.grantId);
  const disputed = new Set((order.disputes ?? []).filter((dispute) => dispute.invoiceId !== undefined && (dispute.status === "open" || dispute.status === "lost")).map((dispute) => dispute.invoiceId!));
  if (disputed.size > 0) {
    const { data: periods } = await ctx.db.entities.renewalInvoice.query.byOrder({ userId, orderId: order.orderId }).go({ consistent: true, pages: "all" });
    for (const period of periods) if (disputed.has(period.invoiceId)) ended.push(...period.grantIds.filter((grantId) => grantIds.has(grantId)));
  }
  return ended;
}

/**
 * After a cancelled transaction: a stored outcome for the key wins (replayed); otherwise
 * another writer went first (the balance item as it now is goes to `keep`, when given,
 * to plan again without a read), and the operation is retried.
 */
async function afterCancel<T>(
  ctx: Context,
  written: Awaited<ReturnType<typeof transactWrite<string>>>,
  userId: string,
  idempotency: IdempotentRequest | undefined,
  keep?: (state: BalanceState) => void,
): Promise<T> {
  const stored = await replayIfKeyTaken<T>(ctx, written, userId, idempotency);
  if (stored) return stored.replayed;
  const current = written.committed ? undefined : written.rejections.balance?.item;
  if (current && keep) keep(toState(current as BalanceItem));
  throw new RetryableConflict();
}
