/**
 * The state of one (user, offerGroup) balance as plain values, and the pure rules that
 * read it. Plans (consumption, purchase, expiry) take a `BalanceState` and return the
 * next one; `core/balances.ts` reads and writes it, and refuses to store a state that
 * breaks the invariant below ({@link balanceStateProblem}).
 *
 * A group's grants live in two places (DESIGN.md "The balance item stays small, whatever
 * the history"; core/rules/balance-layout.ts): the balance item's map holds the first
 * grants in drain order (at most `MAIN_GRANTS`), overflow items hold the rest. A state
 * holds the grants *in hand* (`grants`: the map's, plus any overflow grants read with it)
 * and a summary of the others (`spilled`: their count, tokens, and a key no one of them
 * is below). A grant that is exhausted (remaining 0) by a draw leaves the state in that
 * draw; a grant of 0 tokens (a subscription period, a bundle root) stays until its expiry.
 * What the exhausted grants said about subscriptions and chains stays in the summaries
 * `periods` (core/rules/periods.ts) and `chainUntil`.
 *
 * Invariant: `balance = Σ grants[].remaining + spilled.tokens − debt`; `debt > 0` only
 * when every spendable grant's remaining is 0 (a new grant repays debt before anything
 * else; a grant past its expiry is not spendable).
 */
import type { PaidPeriod } from "./periods.js";

/**
 * One active grant as the balance item holds it (dates are ISO 8601 strings, UTC);
 * core/db/balance.ts stores exactly this shape (checked at compile time).
 */
export interface GrantState {
  grantId: string;
  /** The order that paid for it; absent for a promotional grant. */
  orderId?: string | undefined;
  /** The offer whose tokens it holds (a bundle item's own offer). */
  offerId?: string | undefined;
  /** The offer of the order (the bundle root for bundle items). */
  orderOfferId?: string | undefined;
  tokens: number;
  /** Tokens not yet drawn, expired or repaid as debt: 0..tokens. */
  remaining: number;
  starts: string;
  /** Absent: never expires (`once`). */
  expires?: string | undefined;
}

/** Tokens taken from one grant, with the grant's facts (to give them back even after it left the balance item). */
export interface GrantDraw {
  grant: Omit<GrantState, "remaining">;
  /** Integer >= 1. */
  tokens: number;
}

/** One live hold (reservation `held`) of a group, as the balance item keeps it (rules: core/rules/holds.ts). */
export interface HoldState {
  reservationId: string;
  /** Tokens held: Σ draws[].tokens, integer >= 1. */
  tokens: number;
  /** The grants drawn, in drain order at the time of the hold, each at most once. */
  draws: GrantDraw[];
  /** ISO 8601 instant at which the hold expires (it is expired at and after it). */
  expires: string;
  /** ISO 8601 instant of the hold. */
  createdAt: string;
}

/**
 * Most tokens one grant may hold, and most debt a group may carry: keeps every balance,
 * sum and difference a safe integer (a balance holds far fewer than 9,000 such grants).
 */
export const MAX_TOKENS = 1_000_000_000_000;

/**
 * The grants of a group that are not in hand (in overflow items not read): how many, the
 * tokens they hold, and `from`, a grant key (core/rules/balance-layout.ts `grantKey`) that
 * none of them is below. Stored on the balance item, `from` is exactly the smallest key
 * in overflow, and every key of the map is below it.
 */
export interface OverflowSummary {
  /** Grants not in hand, >= 1 (a state with none has no summary). */
  grants: number;
  /** Σ remaining of those grants, >= 0. */
  tokens: number;
  /** No grant not in hand has a key below it. */
  from: string;
  /** True when `from` is only a lower bound, not that smallest key (a partly read overflow). */
  inexact?: boolean | undefined;
}

/**
 * Expiring grants that left the balance exhausted while their grant items are still
 * `active` (waiting for their expiry, which marks them expired with 0 tokens): the
 * smallest of their grant ids (ULIDs, so a Query of the user's grant items from it finds
 * them all) and their earliest expiry (ISO 8601). core/expiry.ts reads and renews it.
 */
export interface ExhaustedGrants {
  since: string;
  due: string;
}

/** A (user, offerGroup) balance: `version` 0 means the item does not exist yet. */
export interface BalanceState {
  userId: string;
  offerGroup: string;
  balance: number;
  debt: number;
  version: number;
  /** The grants in hand: the balance item's map, plus the overflow grants read with it. */
  grants: GrantState[];
  /** The group's grants not in hand (spilled to overflow items not read); absent when there are none. */
  spilled?: OverflowSummary | undefined;
  /**
   * The latest expiry (ISO 8601) of any expiring grant the group has held, exhausted or
   * not: the appendDate chain head while it is in the future ({@link chainHead}).
   */
  chainUntil?: string | undefined;
  /**
   * The periods of the group's paid grants that are not in the map (emptied, or spilled):
   * with the map's own grants, what visibility and subscriptions read (core/rules/periods.ts).
   */
  periods?: PaidPeriod[] | undefined;
  /** Expiring grants that left exhausted and still wait for their expiry. */
  exhausted?: ExhaustedGrants | undefined;
  /**
   * The group's live holds (reservations `held`, core/rules/holds.ts), stored on the
   * balance item; absent (an item from before holds, or none): no holds. Their tokens are
   * out of `balance` and of the grants' `remaining` already. Plans keep them as they are
   * (spreading the state); only core/reservations.ts and the consumption change them.
   */
  holds?: HoldState[] | undefined;
  /**
   * The low-balance latch (API.md "Events"; core/rules/low-balance.ts): true once a
   * crossing of the group's threshold raised `credits.low_balance` (a consumption, a hold,
   * a commit using more than held), until a purchase or a promotional grant re-arms it
   * ({@link rearmed}). While true, crossings raise nothing, so holds and releases flapping
   * around the threshold raise one event. Absent: false (stored only when true). Plans
   * keep it as it is (spreading the state); releases, reversals, expiry and disputes never
   * change it.
   */
  lowBalanceLatched?: boolean | undefined;
  /**
   * The group's automatic top-up threshold (issue 13; core/auto-top-up.ts): a lowering
   * operation taking the balance from above it to at or below it writes `top_up.requested`
   * in its own transaction (core/rules/low-balance.ts `withTopUp`). Absent: no automatic
   * top-up. Set and removed only by core/auto-top-up.ts; plans keep it as it is.
   */
  topUpThreshold?: number | undefined;
  /**
   * The top-up latch: true once a crossing of `topUpThreshold` requested a top-up, until a
   * purchase or a grant re-arms it ({@link rearmed}), as `lowBalanceLatched` does for the
   * alarm: holds flapping around the threshold request one top-up. Absent: false.
   */
  topUpLatched?: boolean | undefined;
  /**
   * The grant set's version: the item's `version` at its last whole write (core/balances.ts
   * `balanceWrite`), the only kind of write that adds grants or reorders the map; relative
   * writes leave it. A consumption planned on a copy requires it unchanged, so a grant added
   * since the copy (one that may expire first) is never passed over (issue 12). Absent on
   * items written before it.
   */
  grantSet?: number | undefined;
  /**
   * True for an item stored before this layout (all grants in the map, exhausted ones
   * kept): its summaries were rebuilt from its grants on reading, and it must be written
   * whole (core/balances.ts), never by list position.
   */
  legacy?: boolean | undefined;
}

/** The balance of a group the user never had: nothing, version 0. */
export function emptyBalance(userId: string, offerGroup: string): BalanceState {
  return { userId, offerGroup, balance: 0, debt: 0, version: 0, grants: [] };
}

/** True when the grant's expiry instant is at or before `now` (it is no longer spendable). */
export function isDue(grant: Pick<GrantState, "expires">, now: Date): boolean {
  return grant.expires !== undefined && Date.parse(grant.expires) <= now.getTime();
}

/**
 * The chain head for `appendDate`: the latest expiry among the group's grants that have
 * not expired at `now`, exhausted ones included (`chainUntil` remembers those that left
 * the state). Never-expiring (`once`) grants are not chain heads.
 * @returns that instant, or null when no grant expires in the future
 */
export function chainHead(state: BalanceState, now: Date): Date | null {
  let latest: number | null = null;
  const candidates = state.chainUntil !== undefined ? [...state.grants, { expires: state.chainUntil }] : state.grants;
  for (const grant of candidates) {
    if (grant.expires === undefined || isDue(grant, now)) continue;
    const at = Date.parse(grant.expires);
    if (latest === null || at > latest) latest = at;
  }
  return latest === null ? null : new Date(latest);
}

/** `chainUntil` after the group receives a grant expiring at `expires` (ISO 8601, or undefined: never). */
export function extendChain(chainUntil: string | undefined, expires: string | undefined): string | undefined {
  if (expires === undefined) return chainUntil;
  return chainUntil === undefined || Date.parse(expires) > Date.parse(chainUntil) ? expires : chainUntil;
}

/** The hint after `grant` leaves the state exhausted: unchanged for a grant that never expires. */
export function withExhausted(hint: ExhaustedGrants | undefined, grant: Pick<GrantState, "grantId" | "expires">): ExhaustedGrants | undefined {
  if (grant.expires === undefined) return hint;
  if (!hint) return { since: grant.grantId, due: grant.expires };
  return {
    since: grant.grantId < hint.since ? grant.grantId : hint.since,
    due: Date.parse(grant.expires) < Date.parse(hint.due) ? grant.expires : hint.due,
  };
}

/** True when a grant holds tokens and has none left: it leaves the state in the write that empties it. */
export function isExhausted(grant: Pick<GrantState, "tokens" | "remaining">): boolean {
  return grant.tokens > 0 && grant.remaining === 0;
}

/**
 * Adds a grant of `grant.tokens` to the state: the debt is repaid first, the rest is the
 * grant's remaining. Returns the next state (version unchanged: the writer bumps it)
 * and how much debt was repaid. A grant whose tokens all repaid the debt is in the next
 * state with remaining 0; the writer does not store it (core/balances.ts `balanceWrites`:
 * a new grant holding nothing never enters the balance item), and notes its period and
 * expiry in the summaries.
 */
export function addGrant(
  state: BalanceState,
  grant: Omit<GrantState, "remaining">,
): { next: BalanceState; debtRepaid: number } {
  const debtRepaid = Math.min(state.debt, grant.tokens);
  const next: BalanceState = {
    ...state,
    balance: state.balance + grant.tokens,
    debt: state.debt - debtRepaid,
    grants: [...state.grants, { ...grant, remaining: grant.tokens - debtRepaid }],
  };
  return { next, debtRepaid };
}

/**
 * `state` with the low-balance and top-up latches cleared ({@link BalanceState.lowBalanceLatched},
 * {@link BalanceState.topUpLatched}): what
 * a purchase or a promotional grant stores, whether or not its tokens lift the balance
 * above the threshold (a crossing still needs the balance seen above it, so a top-up that
 * leaves it low raises nothing by itself; the next fall from above does).
 */
export function rearmed(state: BalanceState): BalanceState {
  if (state.lowBalanceLatched === undefined && state.topUpLatched === undefined) return state;
  const next: BalanceState = { ...state };
  delete next.lowBalanceLatched;
  delete next.topUpLatched;
  return next;
}

/**
 * `state` without the periods of order `orderId` (core/rules/periods.ts): for a refund or
 * dispute that ends the order's grants. Its grants in the map give their periods
 * themselves and leave with them; this removes those of its grants that had left the map
 * (emptied, or spilled to overflow), so that visibility and subscriptions stop counting them.
 */
export function endOrderPeriods(state: BalanceState, orderId: string): BalanceState {
  if (!state.periods?.some((period) => period.orderId === orderId)) return state;
  const periods = state.periods.filter((period) => period.orderId !== orderId);
  const next: BalanceState = { ...state, periods };
  if (periods.length === 0) delete next.periods;
  return next;
}

/**
 * Checks `balance = Σ remaining + spilled.tokens − debt`, non-negative parts, a
 * consistent overflow summary, and that debt exists only when no grant can still be
 * spent; returns what is wrong, or null. With `now`, grants past their expiry (whose
 * tokens are dead, waiting for their expire entry) are not counted as spendable, and
 * overflow tokens are not either while the overflow may hold such grants.
 */
export function balanceStateProblem(state: BalanceState, now?: Date): string | null {
  const overflow = state.spilled;
  const outside = overflow?.tokens ?? 0;
  const sum = state.grants.reduce((total, grant) => total + grant.remaining, 0);
  if (state.balance !== sum + outside - state.debt) {
    return overflow
      ? `balance ${state.balance} != Σ remaining ${sum} + overflow ${outside} − debt ${state.debt}`
      : `balance ${state.balance} != Σ remaining ${sum} − debt ${state.debt}`;
  }
  if (state.debt < 0) return `negative debt ${state.debt}`;
  const negative = state.grants.find((grant) => grant.remaining < 0 || grant.remaining > grant.tokens);
  if (negative) return `grant ${negative.grantId} remaining ${negative.remaining} outside [0, ${negative.tokens}]`;
  if (overflow && (!Number.isSafeInteger(overflow.grants) || overflow.grants < 1 || overflow.tokens < 0)) {
    return `overflow of ${overflow.grants} grants holding ${overflow.tokens} tokens`;
  }
  const seen = new Set<string>();
  for (const grant of state.grants) {
    if (seen.has(grant.grantId)) return `grant ${grant.grantId} held twice`;
    seen.add(grant.grantId);
  }
  const spendableInHand = state.grants.filter((grant) => !now || !isDue(grant, now)).reduce((total, grant) => total + grant.remaining, 0);
  const overflowMayBeDue = overflow !== undefined && now !== undefined && overflow.from < dueBound(now);
  const spendable = spendableInHand + (overflowMayBeDue ? 0 : outside);
  if (state.debt > 0 && spendable > 0) return `debt ${state.debt} while grants still hold ${spendable} spendable tokens`;
  return null;
}

/**
 * The key of a grant in drain order, ignoring starts (core/rules/balance-layout.ts):
 * `<expires ISO>#<grantId>`, or `~#<grantId>` for a grant that never expires. Keys
 * compare as strings in the order of (expiry, never last; then grant id).
 */
export function grantKey(grant: Pick<GrantState, "grantId" | "expires">): string {
  return `${grant.expires ?? NEVER_KEY}#${grant.grantId}`;
}

/** The expiry part of grant keys that never expire (`~` sorts after every ISO instant). */
export const NEVER_KEY = "~";

/** The key bound of what is due at `now`: a grant is due exactly when its key is below it (`$` sorts after `#`). */
export function dueBound(now: Date): string {
  return `${now.toISOString()}$`;
}
