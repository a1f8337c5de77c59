/**
 * Holds (reservations), pure: tokens drawn early for work whose cost is known at the end,
 * then committed (what was used), released, or expired (API.md "Reservations (hold, then
 * commit or release)"; DESIGN.md "Holds are draws made early"; issue 11).
 *
 * Model. A hold draws its tokens from the grants at once, in drain order, like a
 * consumption that may not overdraw (core/rules/drain.ts): the group's `balance` (spendable
 * now) loses them, `held` (Σ live holds, {@link heldTokens}) gains them, and the ledger gets
 * a `hold` entry of `−tokens` with the draws. The live holds of a group are a list of
 * {@link HoldState} kept beside its {@link BalanceState} (on the balance item; the state
 * itself does not change shape): each remembers its draws with the facts of each drawn
 * grant, so that its tokens can go back to those grants by the one give-back rule
 * (core/rules/give-back.ts `giveBackPlan`) even after a grant has left the balance item.
 *
 * Ledger, per operation (each {@link PlannedEntry} becomes one ledger entry; their signed
 * tokens sum to the balance change, so "sum of entries = balance" stays exact):
 * - hold: `hold` −tokens, draws in drain order.
 * - release (and expiry of a hold): `release` +(held − refused), its draws the tokens that
 *   came back per grant, noting `debtRepaid`; then, when some grant is past its expiry,
 *   one `expire` entry −Σexpired with those grants as draws. Tokens of a refunded or
 *   disputed order's grant are refused: they do not come back (no entry: the `hold` entry
 *   already took them out of the balance) and are reported (`refused`).
 * - commit of `tokens`: `release` of the whole hold (+(held − refused), as above), then
 *   `consume` −tokens (with the reservation id, written by the caller) whose draws come
 *   first from the hold's own draws in their order (even from a grant past its expiry or
 *   of a refunded order: the work started in time), then, for more than held, like a
 *   consumption from the rest (debt with overdraft); then `expire` for what was unused and
 *   went back to a grant past its expiry. Net: −tokens against the balance before the hold,
 *   less what was refused or expired of the unused part.
 *
 * Grants held stay. A grant emptied by a hold stays in the balance item (at remaining 0)
 * while a live hold has tokens from it (DESIGN.md: a grant leaves when "remaining 0, no
 * hold"): the plans never take grants out; each says which grants the write takes out
 * (`leaving`: touched by the operation, exhausted, held by no remaining hold, and not of a
 * refunded or disputed order, whose frozen grants wait for the dispute's end), and
 * {@link withoutEmptiedUnheld} is core/rules/drain.ts `withoutEmptied` for writers that
 * must spare held grants (a plain consumption included). A held grant past its expiry
 * leaves by the expiry like any other (core/rules/expiry-plan.ts): what its holds bring
 * back later expires at once.
 *
 * Low balance: holds lower the spendable balance like consumptions, releases and
 * reversals raise it without re-arming the crossing; {@link lowBalanceAlarm} adds the
 * flag that makes hold/release flapping raise one event.
 */
import { grantKey, isDue, isExhausted, type BalanceState, type GrantDraw, type HoldState } from "./balance-state.js";
import { planConsumption, planIsFinal, withoutEmptied, type ConsumptionPlan, type Draw } from "./drain.js";
import { giveBackPlan, isEndedGrant, type GiveBack, type GiveBackMovement, type GiveBackPlan, type GrantFacts, type RefusedGiveBack } from "./give-back.js";
import { lowBalanceCrossing, type Crossing } from "./low-balance.js";

/** A reservation's statuses (API.md "Reservations"): `held`, then `committed`, `released` or `expired`. */
export const RESERVATION_STATUSES = ["held", "committed", "released", "expired"] as const;

/** Shortest hold, in seconds (API.md `ttlSeconds`: 1 to 86400). */
export const MIN_HOLD_SECONDS = 1;
/** Longest hold, in seconds (one day). */
export const MAX_HOLD_SECONDS = 86_400;

// The shapes of a live hold live beside the balance state that keeps them (core/rules/balance-state.ts).
export type { GrantDraw, HoldState } from "./balance-state.js";

/** The reason of a ledger entry a plan asks for (core/ledger.ts `reason`). */
export type PlannedReason = "hold" | "release" | "consume" | "expire" | "reverse";

/**
 * One ledger entry a plan asks the writer to put (it adds ids, dates, the reservation id,
 * metadata). `tokens` is signed as stored; `draws` are per grant, unsigned, each grant once.
 * - `hold`, `expire`: tokens = −Σ draws.
 * - `consume`: tokens = −(Σ draws + debt).
 * - `release`: tokens = +Σ draws; `debtRepaid` is the part that repaid the group's debt.
 * - `reverse`: tokens = +(Σ draws + debtReversed); `debtRepaid` counts both the debt
 *   reversed and the debt the grants' tokens repaid (core/rules/reversal.ts).
 */
export interface PlannedEntry {
  reason: PlannedReason;
  tokens: number;
  draws: Draw[];
  /** `consume`: tokens that became debt (> 0 only). */
  debt?: number;
  /** `release` / `reverse`: tokens of the entry that went to the group's debt (> 0 only). */
  debtRepaid?: number;
  /** `reverse`: the part reversed as debt (the consumption's own debt part, > 0 only). */
  debtReversed?: number;
}

// --- Reading holds ------------------------------------------------------------------------

/** Tokens held by the live holds: what `GET /users/{userId}/credits` shows as `held`. */
export function heldTokens(holds: readonly HoldState[]): number {
  return holds.reduce((total, hold) => total + hold.tokens, 0);
}

/** Tokens the live holds have from each grant (grant id -> tokens > 0). */
export function grantsHeld(holds: readonly HoldState[]): Map<string, number> {
  const held = new Map<string, number>();
  for (const hold of holds) for (const draw of hold.draws) held.set(draw.grant.grantId, (held.get(draw.grant.grantId) ?? 0) + draw.tokens);
  return held;
}

/** True when the hold has expired at `now` (its `expires` is at or before it). */
export function isHoldExpired(hold: Pick<HoldState, "expires">, now: Date): boolean {
  return Date.parse(hold.expires) <= now.getTime();
}

/** The live holds that have expired at `now`, earliest expiry first (ties: reservation id). */
export function expiredHolds(holds: readonly HoldState[], now: Date): HoldState[] {
  return holds
    .filter((hold) => isHoldExpired(hold, now))
    .sort((a, b) => Date.parse(a.expires) - Date.parse(b.expires) || (a.reservationId < b.reservationId ? -1 : a.reservationId > b.reservationId ? 1 : 0));
}

/** The hold's draws as a ledger entry lists them (`{ grantId, tokens }`). */
export function ledgerDraws(draws: readonly GrantDraw[]): Draw[] {
  return draws.map((draw) => ({ grantId: draw.grant.grantId, tokens: draw.tokens }));
}

/**
 * Checks the live holds against `state`: unique reservation ids, each hold's tokens the
 * sum of its draws (integers >= 1, each grant once, no more than the grant's tokens), and
 * for each grant in hand, remaining + Σ held from it <= its tokens. Returns what is wrong,
 * or null. (A grant a hold drew from may be out of hand: spilled, expired, or ended by a
 * refund; its tokens then come back by its facts.)
 */
export function holdsProblem(state: BalanceState, holds: readonly HoldState[]): string | null {
  const ids = new Set<string>();
  for (const hold of holds) {
    if (ids.has(hold.reservationId)) return `hold ${hold.reservationId} listed twice`;
    ids.add(hold.reservationId);
    const grants = new Set<string>();
    let sum = 0;
    for (const draw of hold.draws) {
      if (!Number.isSafeInteger(draw.tokens) || draw.tokens < 1) return `hold ${hold.reservationId} draws ${draw.tokens} from ${draw.grant.grantId}`;
      if (grants.has(draw.grant.grantId)) return `hold ${hold.reservationId} draws ${draw.grant.grantId} twice`;
      if (draw.tokens > draw.grant.tokens) return `hold ${hold.reservationId} draws ${draw.tokens} from ${draw.grant.grantId} of ${draw.grant.tokens} tokens`;
      grants.add(draw.grant.grantId);
      sum += draw.tokens;
    }
    if (sum !== hold.tokens || sum < 1) return `hold ${hold.reservationId} of ${hold.tokens} tokens draws ${sum}`;
  }
  const held = grantsHeld(holds);
  for (const grant of state.grants) {
    const tokens = held.get(grant.grantId) ?? 0;
    if (grant.remaining + tokens > grant.tokens) return `grant ${grant.grantId}: remaining ${grant.remaining} + held ${tokens} > ${grant.tokens}`;
  }
  return null;
}

/**
 * The grants of `grants` that may sit in overflow items not read (core/rules/balance-layout.ts):
 * not in hand, not past their expiry at `now`, and with a key at or above the overflow's
 * `from` (no grant out of hand has a key below it). Tokens given back to such a grant need
 * it in hand first, or the give-back would re-add a second copy of it: the writer reads the
 * overflow items holding them and plans again. The plans of this module and
 * core/rules/reversal.ts throw a RangeError rather than do that.
 */
export function grantsOutOfHand(state: BalanceState, grants: readonly GrantFacts[], now: Date): GrantFacts[] {
  const spilled = state.spilled;
  if (!spilled) return [];
  const inHand = new Set(state.grants.map((grant) => grant.grantId));
  return grants.filter((grant) => !inHand.has(grant.grantId) && !isDue(grant, now) && grantKey(grant) >= spilled.from);
}

/** Gives `items` back by core/rules/give-back.ts, after checking that no grant they re-add may already be in overflow. */
export function giveBackInHand(state: BalanceState, items: readonly GiveBack[], now: Date): GiveBackPlan {
  const outOfHand = grantsOutOfHand(state, items.filter((item) => item.tokens > 0 && !item.orderRefundedOrDisputed).map((item) => item.grant), now);
  if (outOfHand.length > 0) {
    throw new RangeError(`grants ${outOfHand.map((grant) => grant.grantId).join(", ")} may be in overflow items not read: read them before giving tokens back`);
  }
  return giveBackPlan({ state, grants: items, now });
}

// --- Which grants leave ---------------------------------------------------------------------

/**
 * core/rules/drain.ts `withoutEmptied` sparing held grants: `next` without the grants of
 * `touched` (grant ids an operation drew from or gave back to) that are exhausted and from
 * which no hold of `holds` (the live holds after the operation) has tokens. A consumption's
 * writer passes its draws' grant ids; a hold plan's writer passes its `leaving`.
 */
export function withoutEmptiedUnheld(next: BalanceState, touched: readonly string[], holds: readonly HoldState[]): BalanceState {
  const held = grantsHeld(holds);
  return withoutEmptied(
    next,
    touched.filter((grantId) => !held.has(grantId)).map((grantId) => ({ grantId, tokens: 0 })),
  );
}

/**
 * The grants of `touched` that are exhausted in `next`, held by none of `holds`, and not of
 * an order, or a period, in `refundedOrDisputed` (give-back.ts `isEndedGrant`: a disputed
 * order's frozen grants stay for the dispute's end), each once, in `touched` order.
 */
function leavingOf(next: BalanceState, touched: Iterable<string>, holds: readonly HoldState[], refundedOrDisputed: ReadonlySet<string>): string[] {
  const held = grantsHeld(holds);
  const exhausted = new Set(
    next.grants.filter((grant) => isExhausted(grant) && !isEndedGrant(refundedOrDisputed, grant)).map((grant) => grant.grantId),
  );
  return [...new Set(touched)].filter((grantId) => exhausted.has(grantId) && !held.has(grantId));
}

// --- Hold -----------------------------------------------------------------------------------

/** What a hold does, or why it cannot. */
export type HoldPlan =
  | {
      ok: true;
      /** The new live hold. */
      hold: HoldState;
      /** The live holds after it (`holds` plus the new one, last). */
      holds: HoldState[];
      /** The next state: balance − tokens, the drawn grants lowered (none taken out: they are held). Version unchanged. */
      next: BalanceState;
      /** The `hold` entry. */
      entries: PlannedEntry[];
      /** Grants the write takes out of the balance item: always none (they are held). */
      leaving: string[];
      /** core/rules/drain.ts `planIsFinal` of the draws: false -> read more overflow and plan again. */
      final: boolean;
    }
  | {
      ok: false;
      /** The spendable tokens, which do not cover the hold (402: nothing held). */
      available: number;
      /** False when overflow not read may cover it: read more and plan again. */
      final: boolean;
    };

/**
 * Plans holding `tokens` of `state` at `now` for `ttlSeconds`, as reservation `reservationId`:
 * drawn at once in drain order, never into debt.
 * @param holds the live holds of the group (none may be `reservationId`)
 * @returns the plan, or a refusal when the spendable balance cannot cover `tokens`
 * @throws RangeError for tokens not an integer >= 1, ttlSeconds not an integer in 1..86400,
 *   or a reservation id already held (programming errors: the route validates)
 */
export function planHold(input: {
  state: BalanceState;
  holds: readonly HoldState[];
  tokens: number;
  ttlSeconds: number;
  now: Date;
  reservationId: string;
}): HoldPlan {
  const { state, holds, tokens, ttlSeconds, now, reservationId } = input;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < MIN_HOLD_SECONDS || ttlSeconds > MAX_HOLD_SECONDS) {
    throw new RangeError(`ttlSeconds must be an integer in ${MIN_HOLD_SECONDS}..${MAX_HOLD_SECONDS}, got ${ttlSeconds}`);
  }
  if (holds.some((hold) => hold.reservationId === reservationId)) throw new RangeError(`reservation ${reservationId} is already held`);
  const plan = planConsumption({ state, tokens, allowOverdraft: false, now });
  const final = planIsFinal(state, plan, now);
  if (!plan.ok) return { ok: false, available: plan.available, final };
  const byId = new Map(state.grants.map((grant) => [grant.grantId, grant]));
  const draws: GrantDraw[] = plan.draws.map((draw) => ({ grant: factsOf(byId.get(draw.grantId)!), tokens: draw.tokens }));
  const hold: HoldState = {
    reservationId,
    tokens,
    draws,
    expires: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
    createdAt: now.toISOString(),
  };
  return {
    ok: true,
    hold,
    holds: [...holds, hold],
    next: plan.next,
    entries: [{ reason: "hold", tokens: -tokens, draws: plan.draws }],
    leaving: [],
    final,
  };
}

// --- Release ----------------------------------------------------------------------------------

/** Why a hold plan is refused: the reservation is not among the live holds (released, committed, expired, or unknown). */
export interface NotHeld {
  ok: false;
  reason: "not_held";
}

/** What giving a hold's tokens back does (a release, an expiry, the unused part of a commit). */
export interface HoldReturn {
  /** Per grant given back, as core/rules/give-back.ts reports them (debt repaid, expired at once). */
  movements: GiveBackMovement[];
  /** Tokens not given back: their grant's order is refunded or disputed. */
  refused: RefusedGiveBack[];
}

/** What a release does. */
export type ReleasePlan =
  | (HoldReturn & {
      ok: true;
      /** The hold released. */
      hold: HoldState;
      /** The live holds after it. */
      holds: HoldState[];
      /** The next state (version unchanged; grants not yet taken out: see `leaving`). */
      next: BalanceState;
      /** `release`, then `expire` when some tokens landed in a grant past its expiry. */
      entries: PlannedEntry[];
      /** Grants the write takes out of the balance item ({@link withoutEmptiedUnheld}). */
      leaving: string[];
    })
  | NotHeld;

/**
 * Plans releasing hold `reservationId` at `now`: all its tokens go back to their grants by
 * the give-back rule (the group's debt first; a grant that left comes back; what lands in a
 * grant past its expiry leaves at once; nothing into a grant of an order in
 * `refundedOrDisputed`, those tokens are reported). Used for a release, and (status
 * `expired`) for a hold past its expiry ({@link planExpireHolds}): the rule does not look at
 * the hold's expiry.
 * @param refundedOrDisputed ids of the orders, among those of the hold's grants, that are refunded or disputed now
 * @returns the plan, or `not_held` when the reservation is not a live hold (the route answers from the reservation's status)
 * @throws RangeError when a grant to give back to may be in overflow items not read ({@link grantsOutOfHand})
 */
export function planRelease(input: {
  state: BalanceState;
  holds: readonly HoldState[];
  reservationId: string;
  now: Date;
  refundedOrDisputed: ReadonlySet<string>;
}): ReleasePlan {
  const { state, holds, reservationId, now, refundedOrDisputed } = input;
  const hold = holds.find((candidate) => candidate.reservationId === reservationId);
  if (!hold) return { ok: false, reason: "not_held" };
  const rest = holds.filter((candidate) => candidate !== hold);
  const back = giveBack(state, hold.draws, now, refundedOrDisputed);
  return {
    ok: true,
    hold,
    holds: rest,
    next: back.next,
    entries: returnEntries("release", back, 0),
    movements: back.movements,
    refused: back.refused,
    leaving: leavingOf(back.next, hold.draws.map((draw) => draw.grant.grantId), rest, refundedOrDisputed),
  };
}

/** What releasing the expired holds does. */
export interface ExpireHoldsPlan {
  /** The holds released (status `expired`), in the order planned, each with its own entries. */
  released: Array<HoldReturn & { hold: HoldState; entries: PlannedEntry[] }>;
  /** The live holds left. */
  holds: HoldState[];
  /** The next state (version unchanged; grants not yet taken out: see `leaving`). */
  next: BalanceState;
  /** Every entry, in order (each hold's `release`, then its `expire` if any). */
  entries: PlannedEntry[];
  /** Grants the write takes out of the balance item ({@link withoutEmptiedUnheld}). */
  leaving: string[];
}

/**
 * Plans releasing every hold expired at `now` (at most `limit`, earliest expiry first, so
 * that one transaction stays within DynamoDB's 100 actions), one after the other by
 * {@link planRelease}: what the next request touching the group, and the daily job, do
 * first. No hold expired -> nothing released and `next` is `state`.
 * @throws RangeError when a grant to give back to may be in overflow items not read ({@link grantsOutOfHand})
 */
export function planExpireHolds(input: {
  state: BalanceState;
  holds: readonly HoldState[];
  now: Date;
  refundedOrDisputed: ReadonlySet<string>;
  limit?: number;
}): ExpireHoldsPlan {
  const { now, refundedOrDisputed, limit = Number.POSITIVE_INFINITY } = input;
  const due = expiredHolds(input.holds, now).slice(0, limit);
  let state = input.state;
  let holds = [...input.holds];
  const released: ExpireHoldsPlan["released"] = [];
  for (const hold of due) {
    const plan = planRelease({ state, holds, reservationId: hold.reservationId, now, refundedOrDisputed });
    if (!plan.ok) throw new Error(`hold ${hold.reservationId} vanished while planning`); // unreachable: `due` is taken from `holds`
    released.push({ hold, entries: plan.entries, movements: plan.movements, refused: plan.refused });
    state = plan.next;
    holds = plan.holds;
  }
  const touched = due.flatMap((hold) => hold.draws.map((draw) => draw.grant.grantId));
  return { released, holds, next: state, entries: released.flatMap((item) => item.entries), leaving: leavingOf(state, touched, holds, refundedOrDisputed) };
}

// --- Commit ---------------------------------------------------------------------------------

/** What a commit does, or why it cannot. */
export type CommitPlan =
  | (HoldReturn & {
      ok: true;
      /** The hold committed. */
      hold: HoldState;
      /** The live holds after it. */
      holds: HoldState[];
      /** The next state (version unchanged; grants not yet taken out: see `leaving`). */
      next: BalanceState;
      /** `release` (the whole hold, less what is refused), `consume` (−tokens), then `expire` if any. */
      entries: PlannedEntry[];
      /** The consumption: its draws (the hold's first, then the extra's, each grant once) and the debt it added. */
      consumption: { draws: Draw[]; debtAdded: number; fromHold: number };
      /** Grants the write takes out of the balance item ({@link withoutEmptiedUnheld}). */
      leaving: string[];
      /** False when the extra beyond the hold was planned without the overflow it may need: read more and plan again. */
      final: boolean;
    })
  | NotHeld
  | {
      ok: false;
      /** The hold expired at `now`: `409 reservation_expired` (its release is planned by {@link planExpireHolds}). */
      reason: "expired";
      expires: string;
    }
  | {
      ok: false;
      /** More than held, and the rest cannot cover the extra without overdraft: 402, the hold stays. */
      reason: "insufficient";
      /** Spendable tokens beyond the hold. */
      available: number;
      /** False when overflow not read may cover it. */
      final: boolean;
    };

/**
 * Plans committing hold `reservationId` at `now` with `tokens` used (rules at the top of this
 * module): the consumption draws first from the hold's own draws, in their order; what the
 * hold had beyond `tokens` goes back to its grants by the give-back rule; more than held
 * draws the extra like a consumption (debt with `allowOverdraft`, else refused).
 * @param tokens tokens used, integer >= 0 (0: the whole hold goes back, with a `consume` of 0)
 * @param refundedOrDisputed ids of the orders, among those of the hold's grants, that are refunded or disputed now
 * @throws RangeError for tokens not an integer >= 0, or when a grant to give the unused part
 *   back to may be in overflow items not read ({@link grantsOutOfHand})
 */
export function planCommit(input: {
  state: BalanceState;
  holds: readonly HoldState[];
  reservationId: string;
  tokens: number;
  allowOverdraft: boolean;
  now: Date;
  refundedOrDisputed: ReadonlySet<string>;
}): CommitPlan {
  const { state, holds, reservationId, tokens, allowOverdraft, now, refundedOrDisputed } = input;
  if (!Number.isSafeInteger(tokens) || tokens < 0) throw new RangeError(`tokens must be an integer >= 0, got ${tokens}`);
  const hold = holds.find((candidate) => candidate.reservationId === reservationId);
  if (!hold) return { ok: false, reason: "not_held" };
  if (isHoldExpired(hold, now)) return { ok: false, reason: "expired", expires: hold.expires };
  const rest = holds.filter((candidate) => candidate !== hold);

  // A. The hold's own draws first, in their order: used, and the unused rest per grant.
  let left = tokens;
  const used: Draw[] = [];
  const unused: GrantDraw[] = [];
  for (const draw of hold.draws) {
    const take = Math.min(left, draw.tokens);
    left -= take;
    if (take > 0) used.push({ grantId: draw.grant.grantId, tokens: take });
    if (draw.tokens > take) unused.push({ grant: draw.grant, tokens: draw.tokens - take });
  }
  const fromHold = tokens - left;

  // B. More than held: the extra like a consumption from the rest of the balance.
  let next = state;
  let extra: ConsumptionPlan | undefined;
  let final = true;
  if (left > 0) {
    extra = planConsumption({ state, tokens: left, allowOverdraft, now });
    final = planIsFinal(state, extra, now);
    if (!extra.ok) return { ok: false, reason: "insufficient", available: extra.available, final };
    next = extra.next;
  }
  const draws = mergeDraws([...used, ...(extra?.ok ? extra.draws : [])]);
  const debtAdded = extra?.ok ? extra.debtAdded : 0;

  // C. Less than held: the unused part back to its grants by the give-back rule.
  const back = giveBack(next, unused, now, refundedOrDisputed);

  // D. Entries: the whole hold released (less what is refused), the consumption, what expired.
  const refusedBy = new Map(back.refused.map((item) => [item.grantId, item.tokens]));
  const released = hold.draws
    .map((draw) => ({ grantId: draw.grant.grantId, tokens: draw.tokens - (refusedBy.get(draw.grant.grantId) ?? 0) }))
    .filter((draw) => draw.tokens > 0);
  const [release, expire] = returnEntries("release", back, 0, released);
  const consume: PlannedEntry = { reason: "consume", tokens: negative(tokens), draws, ...(debtAdded > 0 ? { debt: debtAdded } : {}) };
  const touched = [...hold.draws.map((draw) => draw.grant.grantId), ...draws.map((draw) => draw.grantId)];
  return {
    ok: true,
    hold,
    holds: rest,
    next: back.next,
    entries: [release!, consume, ...(expire ? [expire] : [])],
    consumption: { draws, debtAdded, fromHold },
    movements: back.movements,
    refused: back.refused,
    leaving: leavingOf(back.next, touched, rest, refundedOrDisputed),
    final,
  };
}

// --- Low balance ----------------------------------------------------------------------------

/** A low-balance decision with the flag that remembers a crossing was raised. */
export interface LowBalanceAlarm extends Crossing {
  /**
   * The group's flag after the operation (the balance item's `lowBalanceLatched`): true
   * once a crossing raised `credits.low_balance`, until a purchase or a grant re-arms it.
   */
  disarmed: boolean;
}

/**
 * The low-balance crossing counting holds, with the flag that keeps releases and reversals
 * from re-arming it (API.md "Events": only purchases and grants re-arm a crossing, so holds
 * flapping around the threshold raise one event; core/rules/low-balance.ts). Here
 * `crosses` means "raise the event".
 *
 * An operation that lowers the spendable balance from `seen` to `after` (a consumption, a
 * hold, a commit of more than held) raises when `lowBalanceCrossing` says the balance
 * crosses and the group is not `disarmed`; crossing disarms it. An operation that raises
 * it re-arms only when `rearms` (a purchase or a grant), whatever `after` is (a crossing
 * still needs a balance seen above the threshold; core/rules/balance-state.ts `rearmed`);
 * a release, a commit of less than held, a reversal, a won dispute leave the flag as it
 * is. The range (`above`, `atMost`) is `lowBalanceCrossing`'s, for lowering operations;
 * the writer also conditions its write on the flag it read (core/reservations.ts: on the
 * version).
 * @param disarmed the flag as stored (absent on an item: false)
 */
export function lowBalanceAlarm(input: { seen: number; after: number; threshold: number | null; disarmed: boolean; rearms: boolean }): LowBalanceAlarm {
  const { seen, after, threshold, disarmed, rearms } = input;
  if (after < seen) {
    if (threshold === null) return { crosses: false, disarmed };
    const crossing = lowBalanceCrossing({ seen, tokens: seen - after, threshold });
    return { ...crossing, crosses: crossing.crosses && !disarmed, disarmed: disarmed || crossing.crosses };
  }
  return { crosses: false, disarmed: rearms ? false : disarmed };
}

// --- Shared steps ---------------------------------------------------------------------------

/** The facts of a grant (all but remaining). */
function factsOf(grant: GrantFacts & { remaining?: number }): GrantFacts {
  const { remaining: _remaining, ...facts } = grant;
  return facts;
}

/** `−n` without a negative zero. */
function negative(n: number): number {
  return n === 0 ? 0 : -n;
}

/** Draws with each grant once (later draws of a grant added to its first), in first-drawn order. */
function mergeDraws(draws: readonly Draw[]): Draw[] {
  const merged = new Map<string, number>();
  for (const draw of draws) merged.set(draw.grantId, (merged.get(draw.grantId) ?? 0) + draw.tokens);
  return [...merged].map(([grantId, tokens]) => ({ grantId, tokens }));
}

/** Gives `draws` back to their grants by the give-back rule (core/rules/give-back.ts), each grant in hand. */
function giveBack(state: BalanceState, draws: readonly GrantDraw[], now: Date, refundedOrDisputed: ReadonlySet<string>): GiveBackPlan {
  return giveBackInHand(
    state,
    draws.map((draw) => ({ grant: draw.grant, tokens: draw.tokens, orderRefundedOrDisputed: isEndedGrant(refundedOrDisputed, draw.grant) })),
    now,
  );
}

/**
 * The entries of tokens given back: one `reason` entry of +Σ (plus `debtReversed`, which
 * reversals add before the grants' part) with its draws (`draws`, or the movements), then one
 * `expire` entry for the parts that landed in grants past their expiry, if any.
 */
export function returnEntries(
  reason: "release" | "reverse",
  back: Pick<GiveBackPlan, "movements">,
  debtReversed: number,
  draws: Draw[] = back.movements.map((movement) => ({ grantId: movement.grantId, tokens: movement.tokens })),
): PlannedEntry[] {
  const debtRepaid = debtReversed + back.movements.reduce((sum, movement) => sum + movement.debtRepaid, 0);
  const given = draws.reduce((sum, draw) => sum + draw.tokens, 0);
  const entry: PlannedEntry = {
    reason,
    tokens: given + debtReversed,
    draws,
    ...(debtRepaid > 0 ? { debtRepaid } : {}),
    ...(debtReversed > 0 ? { debtReversed } : {}),
  };
  const expired = back.movements.filter((movement) => movement.expired > 0).map((movement) => ({ grantId: movement.grantId, tokens: movement.expired }));
  if (expired.length === 0) return [entry];
  return [entry, { reason: "expire", tokens: -expired.reduce((sum, draw) => sum + draw.tokens, 0), draws: expired }];
}
