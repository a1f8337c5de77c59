/**
 * Consumption: spending tokens of one offerGroup (the original's `tokensConsumed`,
 * which had no balance check and could add tokens with a negative count;
 * ORIGINAL-BEHAVIOUR.md §1, §5).
 *
 * Cost: one strongly consistent read (the balance item and its group's settings, in one
 * `BatchGetItem`) and one transaction (the balance change, the ledger `consume` entry
 * with its draws, the idempotency record when a key is given, and the
 * `credits.low_balance` event when the consumption crosses the group's threshold),
 * whatever the number of grants. The balance change is guarded
 * per drawn grant (core/balances.ts `balanceDrawWrite`), or by the version when the
 * consumption goes into debt. Grants already past their expiry are first expired (one more transaction,
 * only when some are due). A version conflict (another writer went first) is retried
 * with jittered backoff.
 */
import type { Context } from "./context.js";
import { isDue, MAX_TOKENS, type BalanceState } from "./rules/balance-state.js";
import { balanceDrawWrite, balanceWrite, MAX_GUARDED_DRAWS, readBalanceAndThreshold, toState } from "./balances.js";
import { eventWrite } from "./events.js";
import { lowBalanceCrossing } from "./rules/low-balance.js";
import type { BalanceItem } from "./db/service.js";
import { conditionFailed, transactWrite } from "./db/transact.js";
import { planConsumption } from "./rules/drain.js";
import { InsufficientCreditsError } from "./errors.js";
import { expireDueGrants } from "./expiry.js";
import {
  outcomeWrite,
  readRecord,
  refusal,
  replay,
  type IdempotentRequest,
  type StoredOutcome,
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
  return retryOnConflict(
    async () => {
      // A. Read the balance and the group's low-balance threshold (one consistent read);
      //    settle grants already due.
      const now = ctx.clock.now();
      let state: BalanceState;
      if (returned) state = returned;
      else ({ state, lowBalanceThreshold: threshold } = await readBalanceAndThreshold(ctx, userId, offerGroup));
      returned = undefined;
      if (state.grants.some((grant) => isDue(grant, now))) {
        await expireDueGrants(ctx, state, now);
        throw new RetryableConflict("expired due grants; read again");
      }

      // B. Plan. A refusal is stored for the key too, then thrown.
      const plan = planConsumption({ state, tokens, allowOverdraft, now });
      if (!plan.ok || plan.next.debt > MAX_TOKENS) {
        const error = new InsufficientCreditsError(offerGroup, state.balance, tokens);
        if (idempotency) {
          const stored = await storeRefusal(ctx, userId, idempotency, refusal(error), now);
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
      const crossing = lowBalanceCrossing({ seen: state.balance, tokens, threshold });
      const balanceChange =
        plan.debtAdded === 0 && plan.draws.length <= MAX_GUARDED_DRAWS
          ? balanceDrawWrite(ctx.db, state, plan.draws, tokens, now, crossing)
          : balanceWrite(ctx.db, plan.next, state.version, now);
      const written = await transactWrite(ctx.db, {
        balance: balanceChange,
        entry: ledgerEntryWrite(ctx.db, entry),
        key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result }, now),
        // The crossing's event, in the same transaction (the range guard keeps it exact).
        event: crossing.crosses ? eventWrite(ctx.db, { type: "credits.low_balance", userId, offerGroup, balance: plan.next.balance }, now).item : undefined,
      });
      if (written.committed) return result;

      // D. Cancelled: a stored outcome for the key wins; otherwise another writer went first.
      if (idempotency && conditionFailed(written, "key")) {
        const record = await readRecord(ctx, userId, idempotency);
        if (record) return replay<ConsumptionResult>(record, idempotency);
      }
      const current = written.rejections.balance?.item;
      if (current) returned = toState(current as BalanceItem);
      throw new RetryableConflict();
    },
    { onRetry: () => retryStats.conflicts++ },
  );
}

/**
 * Stores a refusal under the key. If the key already holds an outcome, that outcome
 * wins: its result is returned (or its refusal thrown) instead.
 */
async function storeRefusal(
  ctx: Context,
  userId: string,
  idempotency: IdempotentRequest,
  outcome: StoredOutcome,
  now: Date,
): Promise<ConsumptionResult | undefined> {
  const written = await transactWrite(ctx.db, { key: outcomeWrite(ctx.db, userId, idempotency, outcome, now) });
  if (written.committed) return undefined;
  const record = await readRecord(ctx, userId, idempotency);
  return record ? replay<ConsumptionResult>(record, idempotency) : undefined;
}
