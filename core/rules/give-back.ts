/**
 * Giving tokens back, pure: the one rule for tokens that return to the grants they were
 * taken from (won disputes now; releases of holds and reversals later), and the freeze
 * of a disputed order's tokens that a won dispute undoes (DESIGN.md "Rules of the house":
 * giving tokens back is one rule; API.md "Refunds and disputes started in Stripe",
 * `charge.dispute.created` and `charge.dispute.closed`).
 *
 * Giving back, per group:
 * 1. never into a grant of a refunded or disputed order: those tokens are not returned,
 *    only reported;
 * 2. the group's debt is repaid first (from tokens that would expire at once before the
 *    others: a debt repaid is worth more to the user than a token that dies);
 * 3. the rest goes back to its grant, which re-enters the balance item if it had left it
 *    (exhausted); a grant already past its expiry (`isDue`) loses it at once (`expire`).
 *
 * Ledger, for each grant given back to: one entry of `+tokens` (`adjust` for a dispute,
 * `release`, `reverse`) noting `debtRepaid`, then, when `expired > 0`, one `expire` entry
 * of `−expired`. The balance moves by `tokens − expired`, as the entries sum.
 */
import { isDue, type BalanceState, type GrantState } from "./balance-state.js";

/** A grant's facts as its grant item keeps them: all the balance item holds but `remaining`. */
export type GrantFacts = Omit<GrantState, "remaining">;

/** Tokens to give back to one grant. */
export interface GiveBack {
  /** The grant, with the facts needed to re-add it to the balance item if it has left it. */
  grant: GrantFacts;
  /** Tokens to give back, integer >= 0 (at most what the grant lacks: tokens − remaining). */
  tokens: number;
  /**
   * True when the grant's order is refunded or disputed, once the operation is applied
   * (a won dispute passes false: its order is `paid` again): its tokens are not returned.
   */
  orderRefundedOrDisputed: boolean;
}

/** What giving back does to one grant. Integers, in tokens; `tokens = debtRepaid + expired + what the grant regained`. */
export interface GiveBackMovement {
  grantId: string;
  /** Tokens given back: the `+` of the grant's `adjust` / `release` / `reverse` entry. */
  tokens: number;
  /** Part of `tokens` that repaid the group's debt (noted on that entry). */
  debtRepaid: number;
  /** Part of `tokens` that leaves at once, the grant being past its expiry: an `expire` entry of `−expired` when > 0. */
  expired: number;
}

/** Tokens not given back, because the grant's order is refunded or disputed. */
export interface RefusedGiveBack {
  grantId: string;
  tokens: number;
}

/** What giving tokens back does to a balance. */
export interface GiveBackPlan {
  /** The next state (version unchanged: the writer bumps it; other fields kept). */
  next: BalanceState;
  /** One per grant given more than 0 tokens and not refused, in the order given. */
  movements: GiveBackMovement[];
  /** One per grant given more than 0 tokens and refused, in the order given. */
  refused: RefusedGiveBack[];
}

/**
 * Plans giving `grants[].tokens` back to their grants in `state` at `now`, by the rule
 * above. Tokens are conserved: Σ given = Σ debtRepaid + Σ regained + Σ expired + Σ refused.
 * A valid state stays valid (`balanceStateProblem(next, now) === null`).
 * @throws RangeError for a grant listed twice, a count that is not an integer >= 0, or
 *   more tokens than the grant lacks (a programming error: nothing is given back twice)
 */
export function giveBackPlan(input: { state: BalanceState; grants: readonly GiveBack[]; now: Date }): GiveBackPlan {
  const { state, now } = input;
  checkGiveBacks(input.grants);
  // A. Refused: grants of refunded or disputed orders get nothing.
  const given = input.grants.filter((item) => item.tokens > 0);
  const refused = given.filter((item) => item.orderRefundedOrDisputed).map((item) => ({ grantId: item.grant.grantId, tokens: item.tokens }));
  const accepted = given.filter((item) => !item.orderRefundedOrDisputed).map((item) => ({ ...item, facts: currentFacts(state, item.grant) }));
  for (const item of accepted) checkFits(state, item.facts, item.tokens);
  // B. The group's debt first, from tokens that would expire at once before the others.
  const debtRepaid = repayDebt(state.debt, accepted, now);
  // C. The rest back to each grant, or out at once if it is past its expiry.
  let grants = state.grants;
  const movements: GiveBackMovement[] = [];
  for (const item of accepted) {
    const repaid = debtRepaid.get(item.grant.grantId) ?? 0;
    const rest = item.tokens - repaid;
    const due = isDue(item.facts, now);
    movements.push({ grantId: item.grant.grantId, tokens: item.tokens, debtRepaid: repaid, expired: due ? rest : 0 });
    if (!due) grants = credit(grants, item.facts, rest);
  }
  // D. The balance moves as the entries sum.
  const repaidTotal = movements.reduce((sum, movement) => sum + movement.debtRepaid, 0);
  const moved = movements.reduce((sum, movement) => sum + movement.tokens - movement.expired, 0);
  return { next: { ...state, balance: state.balance + moved, debt: state.debt - repaidTotal, grants }, movements, refused };
}

/** The grant as the balance item holds it when it is there (its facts win), else the facts given. */
function currentFacts(state: BalanceState, facts: GrantFacts): GrantFacts {
  return state.grants.find((grant) => grant.grantId === facts.grantId) ?? facts;
}

/** How much of `debt` each grant's tokens repay: due grants first, then the others, each in the order given. */
function repayDebt(debt: number, items: ReadonlyArray<GiveBack & { facts: GrantFacts }>, now: Date): Map<string, number> {
  const repaid = new Map<string, number>();
  const dueFirst = [...items.filter((item) => isDue(item.facts, now)), ...items.filter((item) => !isDue(item.facts, now))];
  let left = debt;
  for (const item of dueFirst) {
    if (left === 0) break;
    const part = Math.min(left, item.tokens);
    repaid.set(item.grant.grantId, part);
    left -= part;
  }
  return repaid;
}

/**
 * Adds `tokens` to the grant's remaining, re-adding the grant (at the end) if it has left
 * the balance item; 0 tokens leave the grants as they are (an exhausted grant stays out).
 */
function credit(grants: GrantState[], facts: GrantFacts, tokens: number): GrantState[] {
  if (tokens === 0) return grants;
  const present = grants.find((grant) => grant.grantId === facts.grantId);
  if (present) return grants.map((grant) => (grant === present ? { ...grant, remaining: grant.remaining + tokens } : grant));
  return [...grants, { ...facts, remaining: tokens }];
}

/** Refuses giving a grant more than it lacks (tokens − remaining; all its tokens when it has left the balance item). */
function checkFits(state: BalanceState, facts: GrantFacts, tokens: number): void {
  const held = state.grants.find((grant) => grant.grantId === facts.grantId)?.remaining ?? 0;
  if (held + tokens > facts.tokens) {
    throw new RangeError(`grant ${facts.grantId} holds ${held} of its ${facts.tokens} tokens: ${tokens} more is more than was taken`);
  }
}

function checkGiveBacks(items: readonly GiveBack[]): void {
  const seen = new Set<string>();
  for (const item of items) {
    const { grantId } = item.grant;
    if (seen.has(grantId)) throw new RangeError(`grant ${grantId} is given back to twice`);
    seen.add(grantId);
    if (!Number.isSafeInteger(item.tokens) || item.tokens < 0) {
      throw new RangeError(`tokens given back to ${grantId} must be an integer >= 0, got ${item.tokens}`);
    }
  }
}

// --- Dispute opened: the freeze a won dispute gives back ------------------------------------

/** One grant frozen: `tokens` is signed as its ledger `adjust` entry, `−remaining` (< 0). */
export interface FreezeMovement {
  grantId: string;
  tokens: number;
}

/** What opening a dispute does to one group's balance. */
export interface FreezePlan {
  /** The next state: the order's grants at remaining 0, still in the balance item (a dispute is on them). */
  next: BalanceState;
  /** One per grant of the order that held tokens, in the state's order. */
  movements: FreezeMovement[];
}

/**
 * Freezes the tokens of order `orderId` in `state` (API.md `charge.dispute.created`):
 * each of its grants in the balance item loses its remaining, through one ledger
 * `adjust` entry of `−remaining` (with `metadata.disputeId`); grants with nothing left
 * have no entry. The debt is unchanged. A won dispute gives the same tokens back to the
 * same grants with {@link giveBackPlan}, which restores `state` when nothing changed in
 * between (and no frozen grant has passed its expiry).
 */
export function freezePlan(input: { state: BalanceState; orderId: string }): FreezePlan {
  const { state, orderId } = input;
  const frozen = state.grants.filter((grant) => grant.orderId === orderId && grant.remaining > 0);
  if (frozen.length === 0) return { next: state, movements: [] };
  const frozenIds = new Set(frozen.map((grant) => grant.grantId));
  const removed = frozen.reduce((sum, grant) => sum + grant.remaining, 0);
  return {
    next: {
      ...state,
      balance: state.balance - removed,
      grants: state.grants.map((grant) => (frozenIds.has(grant.grantId) ? { ...grant, remaining: 0 } : grant)),
    },
    movements: frozen.map((grant) => ({ grantId: grant.grantId, tokens: -grant.remaining })),
  };
}

/**
 * True when tokens may not go back to `grant` (the give-back rule's
 * `orderRefundedOrDisputed`): its order is refunded or disputed as a whole, or, for a
 * renewing order (issue 13), the grant's own period was refunded or is disputed while the
 * order goes on. `ended` holds both kinds of ids, orders' and grants' (ULIDs, never equal;
 * core/reservations.ts `endedOrders` reads them).
 */
export function isEndedGrant(ended: ReadonlySet<string>, grant: { grantId: string; orderId?: string | undefined }): boolean {
  return ended.has(grant.grantId) || (grant.orderId !== undefined && ended.has(grant.orderId));
}
