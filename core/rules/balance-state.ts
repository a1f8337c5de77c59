/**
 * The state of one (user, offerGroup) balance as plain values, and the pure rules that
 * read it. Plans (consumption, purchase, expiry) take a `BalanceState` and return the
 * next one; `core/balances.ts` reads and writes it, and refuses to store a state that
 * breaks the invariant below ({@link balanceStateProblem}).
 *
 * Invariant: `balance = Σ grants[].remaining − debt`; `debt > 0` only when every
 * spendable grant's remaining is 0 (a new grant repays debt before anything else; a
 * grant past its expiry is not spendable).
 */
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

/**
 * Most tokens one grant may hold, and most debt a group may carry: keeps every balance,
 * sum and difference a safe integer (a balance holds far fewer than 9,000 such grants).
 */
export const MAX_TOKENS = 1_000_000_000_000;

/** A (user, offerGroup) balance: `version` 0 means the item does not exist yet. */
export interface BalanceState {
  userId: string;
  offerGroup: string;
  balance: number;
  debt: number;
  version: number;
  grants: GrantState[];
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
 * The chain head for `appendDate`: the latest expiry among the group's grants that
 * have not expired at `now`. Never-expiring (`once`) grants are not chain heads.
 * @returns that instant, or null when no grant expires in the future
 */
export function chainHead(state: BalanceState, now: Date): Date | null {
  let latest: number | null = null;
  for (const grant of state.grants) {
    if (grant.expires === undefined || isDue(grant, now)) continue;
    const at = Date.parse(grant.expires);
    if (latest === null || at > latest) latest = at;
  }
  return latest === null ? null : new Date(latest);
}

/**
 * Adds a grant of `grant.tokens` to the state: the debt is repaid first, the rest is the
 * grant's remaining. Returns the next state (version unchanged: the writer bumps it)
 * and how much debt was repaid.
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
 * Checks `balance = Σ remaining − debt`, non-negative parts, and that debt exists only
 * when no grant can still be spent; returns what is wrong, or null. With `now`, grants
 * past their expiry (whose tokens are dead, waiting for their expire entry) are not
 * counted as spendable.
 */
export function balanceStateProblem(state: BalanceState, now?: Date): string | null {
  const sum = state.grants.reduce((total, grant) => total + grant.remaining, 0);
  if (state.balance !== sum - state.debt) {
    return `balance ${state.balance} != Σ remaining ${sum} − debt ${state.debt}`;
  }
  if (state.debt < 0) return `negative debt ${state.debt}`;
  const negative = state.grants.find((grant) => grant.remaining < 0 || grant.remaining > grant.tokens);
  if (negative) return `grant ${negative.grantId} remaining ${negative.remaining} outside [0, ${negative.tokens}]`;
  const spendable = state.grants.filter((grant) => !now || !isDue(grant, now)).reduce((total, grant) => total + grant.remaining, 0);
  if (state.debt > 0 && spendable > 0) return `debt ${state.debt} while grants still hold ${spendable} spendable tokens`;
  return null;
}
