/**
 * Expiry rules, pure: a grant whose expiry instant has come (expires <= now) loses its
 * remaining tokens, through a ledger `expire` entry of exactly that amount, and leaves
 * the balance item (DESIGN.md "appendDate": unused tokens are removed at the grant's
 * own expiry, never rolled over). Fixes the original, which removed them with no
 * ledger row (ORIGINAL-BEHAVIOUR.md §3.4, §5.10).
 */
import { isDue, type BalanceState, type GrantState } from "./balance-state.js";

/** One grant leaving the balance, with the tokens it still held. */
export interface ExpiredGrant {
  grant: GrantState;
  /** Tokens removed (the grant's remaining), >= 0. */
  tokens: number;
}

/** What expiring the due grants of a balance does. */
export interface ExpiryPlan {
  expired: ExpiredGrant[];
  next: BalanceState;
}

/**
 * Plans the expiry of every grant of `state` that is due at `now` (at most `limit`,
 * earliest expiry first, so one transaction stays within DynamoDB's 100 actions).
 * @returns the grants leaving and the next state (version unchanged); no grant due ->
 *   `expired` is empty and `next` equals `state`
 */
export function planExpiry(input: { state: BalanceState; now: Date; limit?: number }): ExpiryPlan {
  const { state, now, limit = Number.POSITIVE_INFINITY } = input;
  const due = state.grants
    .filter((grant) => isDue(grant, now))
    .sort((a, b) => Date.parse(a.expires!) - Date.parse(b.expires!) || (a.grantId < b.grantId ? -1 : 1))
    .slice(0, limit);
  if (due.length === 0) return { expired: [], next: state };
  const leaving = new Set(due.map((grant) => grant.grantId));
  const removed = due.reduce((total, grant) => total + grant.remaining, 0);
  return {
    expired: due.map((grant) => ({ grant, tokens: grant.remaining })),
    next: {
      ...state,
      balance: state.balance - removed,
      grants: state.grants.filter((grant) => !leaving.has(grant.grantId)),
    },
  };
}
