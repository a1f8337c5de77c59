/**
 * Consumption: spending tokens of one offerGroup (the original's `tokensConsumed`,
 * which had no balance check and could add tokens with a negative count;
 * ORIGINAL-BEHAVIOUR.md §1, §5).
 *
 * Cost: one strongly consistent read (the balance item and its group's settings, in one
 * `BatchGetItem`) and one transaction (the balance change, the ledger `consume` entry
 * with its draws, the idempotency record when a key is given, and the
 * `credits.low_balance` event when the consumption crosses the group's threshold while
 * the group's low-balance latch is off, setting it: core/rules/low-balance.ts; likewise
 * the `top_up.requested` event for the group's automatic top-up threshold, core/top-ups.ts),
 * whatever the number of grants. The balance change is guarded
 * per drawn grant (core/balances.ts `balanceDrawWrite`), or by the version when the
 * consumption goes into debt or draws many grants. Grants already past their expiry are
 * first expired (one more transaction, only when some are due). The group's holds past
 * their expiry are released in the consumption's own transaction (core/reservations.ts
 * `settleExpiredHolds`, under the version), and a grant a live hold drew from stays in the
 * balance item when the consumption empties it. A version conflict
 * (another writer went first) is retried with jittered backoff.
 *
 * The balance item's map holds the group's first grants in drain order
 * (core/rules/balance-layout.ts); when it cannot cover the consumption and grants are
 * spilled to overflow items, those are read in key order (one Query per few items) until
 * the plan is the plan on every grant (core/rules/drain.ts `planIsFinal`), and the write
 * stores the map refilled from them, under the version. A consumption larger than the
 * whole balance is refused without reading them.
 */
import type { Context } from "./context.js";
import { MAX_TOKENS, type BalanceState } from "./rules/balance-state.js";
import {
  balanceDrawWrite,
  balanceWrites,
  hasDueGrants,
  layoutFor,
  mapView,
  MAX_GUARDED_DRAWS,
  MAX_OVERFLOW_ACTIONS,
  mergeOverflowWrites,
  OVERFLOW_ITEMS_PER_READ,
  overflowActionCount,
  readBalanceAndThreshold,
  readMoreOverflow,
  toState,
  type BalanceView,
} from "./balances.js";
import { eventWrite } from "./events.js";
import { latchedCrossing, topUpOf, withRaisedLatches, withTopUp } from "./rules/low-balance.js";
import type { BalanceItem } from "./db/service.js";
import { transactWrite } from "./db/transact.js";
import { consumptionTransaction, isPlainDraw, sendConsumption } from "./db/consumption-transaction.js";
import { passedOver, planConsumption, planIsFinal, type ConsumptionPlan } from "./rules/drain.js";
import { withoutEmptiedUnheld } from "./rules/holds.js";
import { hasExpiredHolds, settleExpiredHolds } from "./reservations.js";
import { InsufficientCreditsError } from "./errors.js";
import { expireDueGrants } from "./expiry.js";
import {
  outcomeRecord,
  outcomeWrite,
  refusal,
  replayIfKeyTaken,
  storeRefusal,
  type IdempotentRequest,
} from "./idempotency.js";
import { ledgerEntryWrite, newLedgerEntry, type LedgerEntry } from "./ledger.js";
import { RetryableConflict, retryOnConflict, retryStats } from "./retry.js";

/** A consumption request (API.md `POST /users/{userId}/consumptions`). */
export interface ConsumptionInput {
  userId: string;
  offerGroup: string;
  /** Integer >= 1. */
  tokens: number;
  /** Post-paid use: the part not covered by grants becomes debt. */
  allowOverdraft?: boolean;
  /** Free-form JSON kept on the ledger entry (the caller's call id, service, ...). */
  metadata?: Record<string, unknown> | undefined;
  /** Present when the request carried an `Idempotency-Key` (scope `consumptions`). */
  idempotency?: IdempotentRequest | undefined;
}

/** What a consumption returns (API.md: `201 { entry, balance }`). */
export interface ConsumptionResult {
  entry: LedgerEntry;
  /**
   * The group's balance after the consumption, as this request saw it (negative with
   * debt); consumptions of the same group running at the same moment may have lowered it
   * further. `GET /users/{userId}/credits` reads it exactly.
   */
  balance: number;
}

/**
 * Spends `tokens` from the group, drawing grants in drain order (core/rules/drain.ts).
 * @throws InsufficientCreditsError (402) when the balance is too low and no overdraft was
 *   asked, or the overdraft would take the debt past {@link MAX_TOKENS}; DomainError `idempotency_conflict` for a reused key with another body; the
 *   stored refusal when a repeated key's first attempt was refused
 */
export async function consume(ctx: Context, input: ConsumptionInput): Promise<ConsumptionResult> {
  const { userId, offerGroup, tokens, idempotency } = input;
  const allowOverdraft = input.allowOverdraft ?? false;

  // The balance as a cancelled transaction returned it: the next attempt plans on it
  // instead of reading again.
  let returned: BalanceState | undefined;
  let threshold: number | null = null;
  const cache = ctx.balanceCache;
  return retryOnConflict(
    async () => {
      // A. Read the balance and the group's low-balance threshold (one consistent read);
      //    settle grants already due (in the map or spilled).
      const now = ctx.clock.now();
      let state: BalanceState;
      const cached = returned ? undefined : cache?.get(userId, offerGroup);
      if (returned) state = returned;
      else if (cached && fastOnCopy(cached.state, input, now)) ({ state, lowBalanceThreshold: threshold } = cached);
      else {
        ({ state, lowBalanceThreshold: threshold } = await readBalanceAndThreshold(ctx, userId, offerGroup));
        cache?.set(userId, offerGroup, { state, lowBalanceThreshold: threshold }, true);
      }
      returned = undefined;
      if (hasDueGrants(state, now)) {
        await expireDueGrants(ctx, state, now);
        throw new RetryableConflict("expired due grants; read again");
      }

      // The group's expired holds are released first, in the same transaction (core/reservations.ts).
      const settled = await settleExpiredHolds(ctx, mapView(state), now);
      if (settled) state = settled.view.state;

      // B. Plan on the map; read spilled grants only while the map does not settle it (a
      //    consumption larger than the whole balance is refused without them). A refusal
      //    is stored for the key too, then thrown.
      let view: BalanceView = settled?.view ?? mapView(state);
      const planOn = (current: BalanceView) => planConsumption({ state: current.state, tokens, allowOverdraft, now });
      let plan: ConsumptionPlan = planOn(view);
      const beyondBalance = !allowOverdraft && tokens > state.balance;
      for (let reads = 0; !beyondBalance && !planIsFinal(view.state, plan, now); reads++) {
        view = await readMoreOverflow(ctx, view, overflowItemsToRead(view.state, tokens, reads));
        plan = planOn(view);
      }
      if (!plan.ok || plan.next.debt > MAX_TOKENS) {
        const error = new InsufficientCreditsError(offerGroup, state.balance, tokens);
        if (idempotency) {
          const stored = await storeRefusal<ConsumptionResult>(ctx, userId, idempotency, refusal(error), now);
          if (stored) return stored;
        }
        throw error;
      }

      // C. One transaction: the balance change, the ledger entry, the idempotency outcome.
      //    Covered by a few grants: guarded relative draws; with debt (which may only
      //    arise when no grant can be drawn) or many grants: the whole state under the
      //    version check.
      const entry = newLedgerEntry(
        {
          userId,
          offerGroup,
          tokens: -tokens,
          reason: "consume",
          draws: plan.draws,
          ...(plan.debtAdded > 0 ? { debt: plan.debtAdded } : {}),
          ...(input.metadata !== undefined ? { metadata: input.metadata } : {}),
        },
        now,
      );
      const result: ConsumptionResult = { entry, balance: plan.next.balance };
      // The low-balance and top-up decisions: the balance range and the latches they read, all required by the write.
      const crossing = withTopUp(latchedCrossing({ seen: state.balance, tokens, threshold, latched: state.lowBalanceLatched === true }), topUpOf(state, tokens));
      const latch = (next: BalanceState): BalanceState => withRaisedLatches(next, crossing);
      let balanceChange: Record<string, object> = {};
      // What a guarded write leaves on the item (for the cache), when it is one; `plain`:
      // one the hot path builds without ElectroDB (core/db/consumption-transaction.ts).
      let drawn: BalanceState | undefined;
      let plain = false;
      if (!settled && view.loaded.length === 0 && isGuarded(state, plan, now)) {
        plain = isPlainDraw(state, plan.draws, crossing);
        if (!plain) balanceChange = { balance: balanceDrawWrite(ctx.db, state, plan.draws, tokens, now, crossing) };
        drawn = { ...latch(withoutEmptiedUnheld(plan.next, plan.draws.map((draw) => draw.grantId), plan.next.holds ?? [])), version: state.version + 1 };
      } else {
        // The grants in hand are laid out again: the map refilled from what was read
        // (reading on while the overflow's smallest key is not settled).
        // A grant a live hold drew from stays at 0 (core/rules/holds.ts `withoutEmptiedUnheld`).
        // The latch set by a crossing goes with it (the version guards the latch read).
        const leave = (current: ConsumptionPlan & { ok: true }) => latch(withoutEmptiedUnheld(current.next, current.draws.map((draw) => draw.grantId), current.next.holds ?? []));
        let next = leave(plan);
        let layout = layoutFor(view, next, now);
        while (!layout.complete) {
          view = await readMoreOverflow(ctx, view);
          const wider = planOn(view);
          // A final plan stays the same on a wider view: same draws, same tokens.
          if (!wider.ok || JSON.stringify(wider.draws) !== JSON.stringify(plan.draws)) throw new RetryableConflict("the plan changed with more grants read");
          plan = wider;
          next = leave(plan);
          layout = layoutFor(view, next, now);
        }
        if (overflowActionCount(layout) > MAX_OVERFLOW_ACTIONS) {
          const merge = mergeOverflowWrites(ctx.db, view, now);
          if (!merge) throw new RangeError(`a consumption of ${tokens} tokens would rewrite too many overflow items at once`);
          await transactWrite(ctx.db, merge);
          throw new RetryableConflict("merged small overflow items; plan again");
        }
        balanceChange = balanceWrites(ctx.db, view, next, now, layout);
      }
      // The common case (guarded draws emptying no grant, no event) skips ElectroDB's
      // builders: the same transaction, built directly (core/db/consumption-transaction.ts).
      const written =
        plain
          ? await sendConsumption(
              ctx.db,
              consumptionTransaction(ctx.db, { state, draws: plan.draws, tokens, now, range: crossing, entry, record: idempotency && outcomeRecord(userId, idempotency, { ok: true, result }, now) }),
            )
          : await transactWrite<string>(ctx.db, {
              ...balanceChange,
              ...settled?.actions,
              entry: ledgerEntryWrite(ctx.db, entry),
              key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result }, now),
              // The crossing's event, in the same transaction (the range and latch guards keep it exact).
              event: crossing.raises ? eventWrite(ctx.db, { type: "credits.low_balance", userId, offerGroup, balance: plan.next.balance }, now).item : undefined,
              topUp: crossing.topUpRaises ? eventWrite(ctx.db, { type: "top_up.requested", userId, offerGroup, balance: plan.next.balance }, now).item : undefined,
            });
      if (written.committed) {
        // The cache keeps what a guarded write left; after a whole write, the next consumption reads.
        if (drawn) cache?.set(userId, offerGroup, { state: drawn, lowBalanceThreshold: threshold }, false);
        else cache?.delete(userId, offerGroup);
        return result;
      }

      // D. Cancelled: a stored outcome for the key wins; otherwise another writer went first.
      const stored = await replayIfKeyTaken<ConsumptionResult>(ctx, written, userId, idempotency);
      if (stored) return stored.replayed;
      const current = written.rejections.balance?.item;
      if (current) {
        returned = toState(current as BalanceItem);
        cache?.set(userId, offerGroup, { state: returned, lowBalanceThreshold: threshold }, false);
      }
      throw new RetryableConflict();
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

/**
 * True when a consumption planned on `state` writes by guarded relative draws
 * (core/balances.ts `balanceDrawWrite`): a layout item, no debt, few enough grants drawn
 * and passed over to name in one condition.
 */
function isGuarded(state: BalanceState, plan: ConsumptionPlan & { ok: true }, now: Date): boolean {
  return !state.legacy && plan.debtAdded === 0 && plan.draws.length + passedOver(state, plan.draws, now).length <= MAX_GUARDED_DRAWS;
}

/**
 * True when a consumption may be planned on the cached copy `state` (core/balance-cache.ts):
 * nothing due, no expired hold, and a plan that covers it from the map by guarded draws.
 * Anything else (a refusal above all: never answered from a copy) is decided on a fresh read.
 */
function fastOnCopy(state: BalanceState, input: ConsumptionInput, now: Date): boolean {
  if (state.version === 0 || hasDueGrants(state, now) || hasExpiredHolds(state, now)) return false;
  const plan = planConsumption({ state, tokens: input.tokens, allowOverdraft: input.allowOverdraft ?? false, now });
  return plan.ok && planIsFinal(state, plan, now) && isGuarded(state, plan, now);
}

/**
 * How many overflow items the `reads`-th read of a consumption asks for: all of them when
 * the consumption needs at least half of the spilled tokens (or overdraws), else a few,
 * four times more on each further read (a refill usually needs one read).
 */
function overflowItemsToRead(state: BalanceState, tokens: number, reads: number): number | "all" {
  const spilled = state.spilled?.tokens ?? 0;
  const inHand = state.balance - spilled + state.debt;
  if (tokens - inHand >= spilled / 2) return "all";
  return OVERFLOW_ITEMS_PER_READ * 4 ** reads;
}
