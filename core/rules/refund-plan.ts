/**
 * Refund rules, pure: how much money a refund returns, and how many tokens a refund made
 * in Stripe takes back from each grant (API.md "Orders and payment": `POST .../refund`,
 * and "Refunds and disputes started in Stripe": `charge.refunded`).
 *
 * Money is an integer in the currency's minor unit (DESIGN.md "Rules of the house":
 * never floats). Shares are exact fractions of BigInts, so every floor and ceiling is
 * exact whatever the currency (jpy is the same math as usd), the total (up to
 * 99,999,999) or the token counts (up to `MAX_TOKENS`, 1e12).
 *
 * - `unused`: `floor(left × u)`, where `left = total − refunded` (what earlier refunds,
 *   from the API or from Stripe, have not returned yet) and `u` the unused share of what
 *   is left: over the order's grants that carry tokens, `remaining / (tokens − clawedBack)`
 *   weighted by each grant's share of the order's value; for an order whose grants all
 *   carry 0 tokens (a pure subscription), the share of its period not yet elapsed.
 * - `full`: `left`.
 * - A refund made in Stripe takes, per grant, a running target
 *   `ceil(tokens × cumulativeRefunded / total)` minus what earlier refunds took, never
 *   more than the grant's remaining; the part of the target already spent is the
 *   refund's `tokensShort`.
 */
import { ConflictError } from "../errors.js";

/** How a refund asked through the API is measured (API.md `POST .../refund` `mode`). */
export type RefundMode = "unused" | "full";

/** An exact fraction `numerator / denominator`, with `0 <= numerator <= denominator` and `denominator >= 1`. */
export interface Share {
  numerator: bigint;
  denominator: bigint;
}

/** One grant of the order, as the `unused` share reads it. Integers, in tokens (weight in minor units). */
export interface RefundGrant {
  /** Tokens the grant was created with, >= 0. A grant of 0 tokens (a period) carries no tokens. */
  tokens: number;
  /** Tokens not yet drawn, expired or taken back: 0..tokens − clawedBack. */
  remaining: number;
  /** Tokens earlier refunds made in Stripe took from it (its clawbacks): 0..tokens. */
  clawedBack: number;
  /**
   * The grant's value in the order, in minor units of the order's currency (a bundle
   * item's price × its quantity, copied into the order at creation), >= 0; undefined when
   * it has no price in that currency (then every grant weighs the same).
   */
  weight?: number | undefined;
}

/** The period of a pure subscription (ISO 8601 UTC); `expires` absent: it never expires. */
export interface RefundPeriod {
  starts: string;
  expires?: string | undefined;
}

/** What {@link refundAmount} reads: the order's money, its grants, and when. */
export interface RefundAmountInput {
  mode: RefundMode;
  /** The order's `total.amount`, minor units, integer >= 0. */
  total: number;
  /** What earlier refunds of the order returned (API and Stripe), minor units, 0..total. */
  refunded: number;
  /** Every grant of the order, bundle items included (only read for `unused`). */
  grants: readonly RefundGrant[];
  /** The order's period; needed for `unused` when no grant carries tokens. */
  period?: RefundPeriod | undefined;
  now: Date;
}

/**
 * The money a refund of `input.mode` returns, integer minor units in
 * `0..total − refunded` (API.md `POST .../refund`, "Money").
 * @throws ConflictError (`409 conflict`) for an `unused` refund of a pure subscription
 *   that never expires: it has no unused share, use `full`
 * @throws RangeError on inputs that break their stated ranges (a programming error)
 */
export function refundAmount(input: RefundAmountInput): number {
  const { mode, total, refunded } = input;
  checkInteger("total", total, 0, Number.MAX_SAFE_INTEGER);
  checkInteger("refunded", refunded, 0, total);
  const left = total - refunded;
  if (mode === "full" || left === 0) return left;
  return floorOf(left, unusedShare(input));
}

/**
 * The `u` of an `unused` refund: the unused share of what is left of the order, exact
 * (API.md `POST .../refund`, "Money, unused").
 * - Grants that carry tokens and still have some left (`tokens − clawedBack > 0`) each
 *   count `remaining / (tokens − clawedBack)`, weighted by `weight`; equal weights when
 *   a weight is missing or all are 0. A grant Stripe refunds took everything from is
 *   not part of what is left, and weighs nothing.
 * - Grants carry tokens, but none has any left: 0.
 * - No grant carries tokens (a pure subscription): the share of `period` not yet
 *   elapsed at `now` (1 before it starts, 0 once it has ended).
 * @throws ConflictError when that period never expires; RangeError on bad inputs or a
 *   missing period
 */
export function unusedShare(input: Pick<RefundAmountInput, "grants" | "period" | "now">): Share {
  input.grants.forEach(checkGrant);
  const carrying = input.grants.filter((grant) => grant.tokens > 0);
  if (carrying.length > 0) return tokenShare(weighed(carrying).filter(({ grant }) => grant.tokens - grant.clawedBack > 0));
  if (input.period === undefined) throw new RangeError("an order whose grants carry no tokens needs its period");
  return periodShare(input.period, input.now);
}

/** A grant with the weight it counts with. */
interface WeighedGrant {
  grant: RefundGrant;
  weight: bigint;
}

/** The grants with their own weights when every one has a price, else with equal weights (API.md). */
function weighed(grants: readonly RefundGrant[]): WeighedGrant[] {
  const priced = grants.every((grant) => grant.weight !== undefined);
  return grants.map((grant) => ({ grant, weight: priced ? BigInt(grant.weight!) : 1n }));
}

/** Σ weight × remaining / (tokens − clawedBack), divided by Σ weight (equal weights when that is 0); 0 for no grant. */
function tokenShare(grants: readonly WeighedGrant[]): Share {
  if (grants.length === 0) return { numerator: 0n, denominator: 1n };
  const allZero = grants.every(({ weight }) => weight === 0n);
  let sum: Share = { numerator: 0n, denominator: 1n };
  let totalWeight = 0n;
  for (const { grant, weight: own } of grants) {
    const weight = allZero ? 1n : own;
    sum = addFractions(sum, { numerator: weight * BigInt(grant.remaining), denominator: BigInt(grant.tokens - grant.clawedBack) });
    totalWeight += weight;
  }
  return reduced({ numerator: sum.numerator, denominator: sum.denominator * totalWeight });
}

/** The share of `period` not yet elapsed at `now`, to the millisecond. */
function periodShare(period: RefundPeriod, now: Date): Share {
  if (period.expires === undefined) {
    throw new ConflictError("A subscription that never expires has no unused share: refund it in full.", { mode: "unused" });
  }
  const starts = Date.parse(period.starts);
  const expires = Date.parse(period.expires);
  if (Number.isNaN(starts) || Number.isNaN(expires) || expires < starts) {
    throw new RangeError(`period ${period.starts} .. ${period.expires} is not a period`);
  }
  const at = now.getTime();
  if (at < starts) return { numerator: 1n, denominator: 1n };
  if (at >= expires) return { numerator: 0n, denominator: 1n };
  return reduced({ numerator: BigInt(expires - at), denominator: BigInt(expires - starts) });
}

/** `floor(amount × share)`, exact. */
function floorOf(amount: number, share: Share): number {
  return Number((BigInt(amount) * share.numerator) / share.denominator);
}

// --- Clawbacks of refunds made in Stripe ---------------------------------------------------

/** One grant of the order, as a clawback reads it. Integers, in tokens. */
export interface ClawbackGrant {
  grantId: string;
  /** Tokens the grant was created with, >= 0. */
  tokens: number;
  /** What it holds now, 0..tokens (0 once it has left the balance item, or while frozen). */
  remaining: number;
  /** What earlier refunds made in Stripe already took from it, 0..tokens. */
  clawedBack: number;
}

/** What one refund made in Stripe takes from one grant. */
export interface GrantClawback {
  grantId: string;
  /** This refund's target: the running target minus what earlier refunds took, >= 0. */
  target: number;
  /** Tokens taken now: min(target, remaining). One ledger `refund` entry of −take when > 0. */
  take: number;
  /** The part of the target already spent, which cannot be taken: target − take. */
  tokensShort: number;
}

/** What one refund made in Stripe takes from the order's grants (API.md `charge.refunded`). */
export interface ClawbackPlan {
  /** One per grant given, in the same order (take and short may be 0). */
  grants: GrantClawback[];
  /** Σ take: the refund entry's `tokens`. */
  tokens: number;
  /** Σ tokensShort: the refund entry's `tokensShort`. */
  tokensShort: number;
}

/**
 * The tokens a refund made in Stripe takes back: per grant, the running target
 * `ceil(tokens × cumulativeRefunded / total)` minus `clawedBack`, never more than
 * `remaining`, the rest being `tokensShort` (API.md "Refunds and disputes started in
 * Stripe", `charge.refunded`). A refund that brings `cumulativeRefunded` to `total`
 * targets every token.
 * @param input.total the order's `total.amount`, minor units, integer >= 1
 * @param input.cumulativeRefunded the charge's `amount_refunded` with this refund, 1..total
 * @throws RangeError on inputs that break their stated ranges (a programming error)
 */
export function clawbackPlan(input: { total: number; cumulativeRefunded: number; grants: readonly ClawbackGrant[] }): ClawbackPlan {
  const { total, cumulativeRefunded } = input;
  checkInteger("total", total, 1, Number.MAX_SAFE_INTEGER);
  checkInteger("cumulativeRefunded", cumulativeRefunded, 0, total);
  const grants = input.grants.map((grant) => clawback(grant, total, cumulativeRefunded));
  return {
    grants,
    tokens: grants.reduce((sum, grant) => sum + grant.take, 0),
    tokensShort: grants.reduce((sum, grant) => sum + grant.tokensShort, 0),
  };
}

/** One grant's clawback, by the rule of {@link clawbackPlan}. */
function clawback(grant: ClawbackGrant, total: number, cumulativeRefunded: number): GrantClawback {
  checkInteger(`${grant.grantId}.tokens`, grant.tokens, 0, Number.MAX_SAFE_INTEGER);
  checkInteger(`${grant.grantId}.remaining`, grant.remaining, 0, grant.tokens);
  checkInteger(`${grant.grantId}.clawedBack`, grant.clawedBack, 0, grant.tokens);
  const runningTarget = ceilDivide(BigInt(grant.tokens) * BigInt(cumulativeRefunded), BigInt(total));
  const target = Math.max(0, runningTarget - grant.clawedBack);
  const take = Math.min(target, grant.remaining);
  return { grantId: grant.grantId, target, take, tokensShort: target - take };
}

// --- Exact arithmetic and checks -------------------------------------------------------------

/** `ceil(a / b)` for `a >= 0`, `b >= 1`, as a number (the result is at most a token count). */
function ceilDivide(a: bigint, b: bigint): number {
  return Number((a + b - 1n) / b);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function reduced(share: Share): Share {
  const divisor = gcd(share.numerator, share.denominator);
  return divisor <= 1n ? share : { numerator: share.numerator / divisor, denominator: share.denominator / divisor };
}

function addFractions(a: Share, b: Share): Share {
  return reduced({ numerator: a.numerator * b.denominator + b.numerator * a.denominator, denominator: a.denominator * b.denominator });
}

function checkGrant(grant: RefundGrant, index: number): void {
  checkInteger(`grants[${index}].tokens`, grant.tokens, 0, Number.MAX_SAFE_INTEGER);
  checkInteger(`grants[${index}].clawedBack`, grant.clawedBack, 0, grant.tokens);
  checkInteger(`grants[${index}].remaining`, grant.remaining, 0, grant.tokens - grant.clawedBack);
  if (grant.weight !== undefined) checkInteger(`grants[${index}].weight`, grant.weight, 0, Number.MAX_SAFE_INTEGER);
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}
