/**
 * Consumption rules, pure: which grants a consumption draws from, in which order, and
 * what the balance becomes (API.md "Credits and consumption").
 *
 * Drain order:
 * 1. grants that have started (starts <= now) before grants that start in the future
 *    (future grants are already spendable, after the current ones);
 * 2. among them, the one that expires first first; never-expiring (`once`) grants last;
 * 3. for started grants, equal expiry: the older grant first (grant ids are ULIDs, so
 *    id order is creation order); future grants go by start, then the same rules.
 * Grants past their expiry (`isDue`) and empty grants are never drawn.
 *
 * A grant a consumption empties leaves the balance in that consumption's write
 * ({@link withoutEmptied}; DESIGN.md "The balance item stays small, whatever the
 * history"): its grant item and the ledger keep its history, and if it expires,
 * `exhausted` remembers that its item still waits for its expiry. A plan is made on the
 * grants in hand; when the group has grants spilled to
 * overflow items, {@link planIsFinal} says whether it is the plan on all of them.
 */
import { grantKey, isDue, isExhausted, withExhausted, type BalanceState, type GrantState } from "./balance-state.js";
import { periodOf } from "./periods.js";

const NEVER = Number.POSITIVE_INFINITY;

function expiresAt(grant: GrantState): number {
  return grant.expires === undefined ? NEVER : Date.parse(grant.expires);
}

/** Compares two grants by the drain order above (negative: `a` is drawn first). */
export function compareDrainOrder(a: GrantState, b: GrantState, now: Date): number {
  const t = now.getTime();
  const aFuture = Date.parse(a.starts) > t;
  const bFuture = Date.parse(b.starts) > t;
  if (aFuture !== bFuture) return aFuture ? 1 : -1;
  if (aFuture) {
    const byStart = Date.parse(a.starts) - Date.parse(b.starts);
    if (byStart !== 0) return byStart;
  }
  const ea = expiresAt(a);
  const eb = expiresAt(b);
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.grantId < b.grantId ? -1 : a.grantId > b.grantId ? 1 : 0;
}

/** The spendable grants (remaining > 0, not due) in drain order. */
export function drainOrder(grants: readonly GrantState[], now: Date): GrantState[] {
  return grants
    .filter((grant) => grant.remaining > 0 && !isDue(grant, now))
    .sort((a, b) => compareDrainOrder(a, b, now));
}

/** One grant drawn by a consumption. */
export interface Draw {
  grantId: string;
  tokens: number;
}

/** What a consumption does to a balance, or why it cannot. */
export type ConsumptionPlan =
  | { ok: true; draws: Draw[]; debtAdded: number; next: BalanceState }
  | { ok: false; available: number };

/**
 * Plans a consumption of `tokens` (integer >= 1) from `state` at `now`.
 * Without overdraft, more than the spendable tokens is refused (`ok: false`, nothing
 * changes). With `allowOverdraft`, the uncovered part becomes debt and the balance goes
 * negative (post-paid use).
 * @returns the draws, the debt added and the next state (version unchanged)
 */
export function planConsumption(input: {
  state: BalanceState;
  tokens: number;
  allowOverdraft: boolean;
  now: Date;
}): ConsumptionPlan {
  const { state, tokens, allowOverdraft, now } = input;
  if (!Number.isInteger(tokens) || tokens < 1) throw new RangeError(`tokens must be an integer >= 1, got ${tokens}`);
  const order = drainOrder(state.grants, now);
  const available = order.reduce((total, grant) => total + grant.remaining, 0);
  if (tokens > available && !allowOverdraft) return { ok: false, available };

  const draws: Draw[] = [];
  const taken = new Map<string, number>();
  let left = tokens;
  for (const grant of order) {
    if (left === 0) break;
    const take = Math.min(grant.remaining, left);
    draws.push({ grantId: grant.grantId, tokens: take });
    taken.set(grant.grantId, take);
    left -= take;
  }
  const next: BalanceState = {
    ...state,
    balance: state.balance - tokens,
    debt: state.debt + left,
    grants: state.grants.map((grant) => {
      const take = taken.get(grant.grantId);
      return take === undefined ? grant : { ...grant, remaining: grant.remaining - take };
    }),
  };
  return { ok: true, draws, debtAdded: left, next };
}

/**
 * What a consumption stores: `next` (its plan's next state) without the grants its
 * `draws` emptied. They leave the balance in the write that empties them (DESIGN.md "The
 * balance item stays small, whatever the history"); an expiring one is noted in
 * `exhausted` (its grant item waits for its expiry), a paid one's period in `periods`
 * (core/rules/periods.ts). Grants at 0 that were not drawn (0-token periods, frozen ones) stay.
 */
export function withoutEmptied(next: BalanceState, draws: readonly Draw[]): BalanceState {
  const drawn = new Set(draws.map((draw) => draw.grantId));
  let exhausted = next.exhausted;
  let periods = next.periods ?? [];
  const grants: GrantState[] = [];
  for (const grant of next.grants) {
    if (drawn.has(grant.grantId) && isExhausted(grant)) {
      exhausted = withExhausted(exhausted, grant);
      const period = periodOf(grant);
      if (period) periods = [...periods, period];
    } else grants.push(grant);
  }
  if (grants.length === next.grants.length) return next;
  return { ...next, grants, ...(exhausted ? { exhausted } : {}), ...(periods.length > 0 ? { periods } : {}) };
}

/**
 * True when `plan`, made on the grants in hand of `state` at `now`, is the plan on all the
 * group's grants: nothing is spilled to overflow items not read, or every grant drawn has
 * started and sits below every spilled grant (so none of those comes first in drain
 * order), and no debt is planned (and no refusal made) while spilled grants hold tokens.
 */
export function planIsFinal(state: BalanceState, plan: ConsumptionPlan, now: Date): boolean {
  const spilled = state.spilled;
  if (!spilled) return true;
  if (!plan.ok || plan.debtAdded > 0) return spilled.tokens === 0;
  const byId = new Map(state.grants.map((grant) => [grant.grantId, grant]));
  return plan.draws.every((draw) => {
    const grant = byId.get(draw.grantId)!;
    return Date.parse(grant.starts) <= now.getTime() && grantKey(grant) < spilled.from;
  });
}

/**
 * The grants a plan passed over although they come before its last drawn grant in drain
 * order: in the state it planned on they held nothing (a grant kept at 0 for a live hold,
 * core/rules/holds.ts), but they would be drawn first if they held tokens. A write made
 * from that plan requires each still empty, and each grant drawn whole still holding
 * exactly what was taken: then the plan is the plan on the item as it is, however old the
 * copy it was made on (issue 12: a per-instance cache of balance items), as long as no
 * grant was added since (the grant set's version, core/rules/balance-state.ts `grantSet`).
 * @returns the passed-over grants, in the state's order
 */
export function passedOver(state: BalanceState, draws: readonly Draw[], now: Date): GrantState[] {
  const last = draws.at(-1);
  const lastGrant = last && state.grants.find((grant) => grant.grantId === last.grantId);
  if (!lastGrant) return [];
  const drawn = new Set(draws.map((draw) => draw.grantId));
  return state.grants.filter(
    (grant) => !drawn.has(grant.grantId) && grant.remaining === 0 && !isDue(grant, now) && compareDrainOrder(grant, lastGrant, now) < 0,
  );
}
