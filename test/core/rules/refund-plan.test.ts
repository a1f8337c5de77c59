/**
 * core/rules/refund-plan.ts: the money of a refund asked through the API (`unused`:
 * what is left times the unused share of the order's grants, or of a pure
 * subscription's period; `full`: what is left), and the tokens a refund made in Stripe
 * takes back from each grant (a running target per grant, never more than remains),
 * exact to the minor unit and to the token (API.md "Orders and payment", `POST
 * .../refund`, and "Refunds and disputes started in Stripe", `charge.refunded`).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConflictError } from "../../../core/errors.js";
import { MAX_TOKENS } from "../../../core/rules/balance-state.js";
import {
  clawbackPlan,
  refundAmount,
  unusedShare,
  type ClawbackGrant,
  type RefundAmountInput,
  type RefundGrant,
} from "../../../core/rules/refund-plan.js";

const PROPERTY = { numRuns: 400, seed: 0x2ef0_9d00 } as const;

const NOW = new Date("2026-06-16T00:00:00.000Z");
const MAX_TOTAL = 99_999_999;

/** A grant of `tokens` with `spent` of them used and nothing clawed back, unweighted. */
function aGrant(tokens: number, spent = 0, overrides: Partial<RefundGrant> = {}): RefundGrant {
  return { tokens, remaining: tokens - spent, clawedBack: 0, ...overrides };
}

/** An `unused` refund of an order of `total` with these grants, nothing refunded before. */
function unused(total: number, grants: RefundGrant[], overrides: Partial<RefundAmountInput> = {}): number {
  return refundAmount({ mode: "unused", total, refunded: 0, grants, now: NOW, ...overrides });
}

function aClawbackGrant(grantId: string, tokens: number, overrides: Partial<ClawbackGrant> = {}): ClawbackGrant {
  return { grantId, tokens, remaining: tokens, clawedBack: 0, ...overrides };
}

describe("refundAmount: unused, an order of tokens", () => {
  it("returns the unused share of the total: 1000 usd cents, 100 tokens, 40 spent -> 600", () => {
    expect(unused(1000, [aGrant(100, 40)])).toBe(600);
  });

  it("returns everything for an order nothing was spent of, and nothing for one spent entirely", () => {
    expect(unused(1000, [aGrant(100)])).toBe(1000);
    expect(unused(1000, [aGrant(100, 100)])).toBe(0);
  });

  it("rounds down to the minor unit: 1000 cents, 2 of 3 tokens left -> 666", () => {
    expect(unused(1000, [aGrant(3, 1)])).toBe(666);
  });

  it("is exact where floating point is not: 100 cents, 29 of 100 tokens left -> 29 (float says 28)", () => {
    expect(Math.floor(100 * (29 / 100))).toBe(28);
    expect(unused(100, [aGrant(100, 71)])).toBe(29);
  });

  it("does the same math in a currency without decimals: 1200 jpy, 5 of 7 tokens left -> 857 yen", () => {
    expect(unused(1200, [aGrant(7, 2)], { total: 1200 })).toBe(857);
  });

  it("returns what is left after a refund made in Stripe that clawed its share: 300 refunded, 30 tokens clawed -> 300 more", () => {
    // 1000 cents, 100 tokens, 40 spent; a dashboard refund of 300 took ceil(100 × 300 / 1000) = 30 tokens.
    const plan = clawbackPlan({ total: 1000, cumulativeRefunded: 300, grants: [aClawbackGrant("g1", 100, { remaining: 60 })] });
    expect(plan.grants[0]).toMatchObject({ take: 30, tokensShort: 0 });
    const amount = unused(1000, [{ tokens: 100, remaining: 30, clawedBack: 30 }], { refunded: 300 });
    expect(amount).toBe(300);
    // In all, the customer gets back 600: what an unused refund alone would have returned.
    expect(300 + amount).toBe(unused(1000, [aGrant(100, 40)]));
  });

  it("returns nothing more after a refund made in Stripe that could not claw back what had been spent", () => {
    // 90 of 100 tokens spent; a dashboard refund of 300 aims at 30 tokens, takes the 10 left, 20 short.
    const plan = clawbackPlan({ total: 1000, cumulativeRefunded: 300, grants: [aClawbackGrant("g1", 100, { remaining: 10 })] });
    expect(plan).toMatchObject({ tokens: 10, tokensShort: 20 });
    expect(unused(1000, [{ tokens: 100, remaining: 0, clawedBack: 10 }], { refunded: 300 })).toBe(0);
  });

  it("weighs a bundle's grants by their share of the order's value: 60% half used, 40% unused -> 700 of 1000", () => {
    const grants = [aGrant(100, 50, { weight: 600 }), aGrant(10, 0, { weight: 400 })];
    expect(unused(1000, grants)).toBe(700);
  });

  it("weighs every grant the same when one item has no price in the order's currency: 750 of 1000", () => {
    const grants = [aGrant(100, 50, { weight: 600 }), aGrant(10, 0)];
    expect(unused(1000, grants)).toBe(750);
  });

  it("weighs every grant the same when all weights are 0", () => {
    const grants = [aGrant(100, 50, { weight: 0 }), aGrant(10, 0, { weight: 0 })];
    expect(unused(1000, grants)).toBe(750);
  });

  it("leaves out a bundle's 0-token root grant: only grants that carry tokens count", () => {
    const grants = [aGrant(0, 0, { weight: 5000 }), aGrant(100, 50, { weight: 600 }), aGrant(10, 0, { weight: 400 })];
    expect(unused(1000, grants)).toBe(700);
  });

  it("leaves out a grant that refunds made in Stripe emptied entirely: it is not part of what is left", () => {
    // A 1-cent dashboard refund took the only token of a 1-token item (ceil), and 1 of 1000 of the other.
    const grants = [{ tokens: 1, remaining: 0, clawedBack: 1, weight: 900 }, { tokens: 1000, remaining: 999, clawedBack: 1, weight: 100 }];
    expect(unused(1000, grants, { refunded: 1 })).toBe(999);
  });

  it("returns nothing when refunds made in Stripe emptied every grant that carries tokens", () => {
    expect(unused(1000, [{ tokens: 1, remaining: 0, clawedBack: 1 }], { refunded: 1 })).toBe(0);
  });

  it("stays exact with the largest totals and token counts: 99,999,999 and 1e12 - 1 of 1e12 tokens -> 99,999,998", () => {
    expect(unused(MAX_TOTAL, [aGrant(MAX_TOKENS, 1)])).toBe(99_999_998);
    const grants = [aGrant(MAX_TOKENS, 333_333_333_333, { weight: MAX_TOTAL - 2 }), aGrant(MAX_TOKENS - 7, 1, { weight: 1 }), aGrant(999_999_999_989, 0, { weight: 1 })];
    // u = (99,999,997 × 666,666,666,667/1e12 + 999,999,999,992/999,999,999,993 + 1) / 99,999,999 -> 66,666,666.
    expect(unused(MAX_TOTAL, grants)).toBe(66_666_666);
  });

  it("returns nothing once earlier refunds returned the whole total", () => {
    expect(unused(1000, [aGrant(100)], { refunded: 1000 })).toBe(0);
  });

  it("returns nothing for a free order", () => {
    expect(unused(0, [aGrant(100)])).toBe(0);
  });
});

describe("refundAmount: unused, a pure subscription (every grant carries 0 tokens)", () => {
  const MONTH = { starts: "2026-06-01T00:00:00.000Z", expires: "2026-07-01T00:00:00.000Z" };

  it("returns the share of the period not yet elapsed: half of 30 days -> 500 of 1000", () => {
    expect(unused(1000, [aGrant(0)], { period: MONTH })).toBe(500);
  });

  it("rounds down to the minor unit: 999 cents, a third elapsed -> 666", () => {
    const now = new Date("2026-06-11T00:00:00.000Z");
    expect(unused(999, [aGrant(0)], { period: MONTH, now })).toBe(666);
  });

  it("applies the share to what earlier refunds left: 400 refunded, half elapsed -> 300", () => {
    expect(unused(1000, [aGrant(0)], { period: MONTH, refunded: 400 })).toBe(300);
  });

  it("returns everything before the period starts, and nothing once it has ended", () => {
    expect(unused(1000, [aGrant(0)], { period: MONTH, now: new Date("2026-05-31T23:59:59.999Z") })).toBe(1000);
    expect(unused(1000, [aGrant(0)], { period: MONTH, now: new Date(MONTH.expires) })).toBe(0);
  });

  it("refuses a subscription that never expires with a conflict (use full)", () => {
    const refund = () => unused(1000, [aGrant(0)], { period: { starts: MONTH.starts } });
    expect(refund).toThrow(ConflictError);
    expect(refund).toThrow(expect.objectContaining({ code: "conflict" }));
  });

  it("refunds a subscription that never expires in full", () => {
    expect(refundAmount({ mode: "full", total: 1000, refunded: 0, grants: [aGrant(0)], period: { starts: MONTH.starts }, now: NOW })).toBe(1000);
  });

  it("treats an order without grants as a subscription: it needs the period", () => {
    expect(unused(1000, [], { period: MONTH })).toBe(500);
    expect(() => unused(1000, [])).toThrow(RangeError);
  });
});

describe("refundAmount: full", () => {
  it("returns what earlier refunds left of the total, whatever was spent", () => {
    const grants = [aGrant(100, 100)];
    expect(refundAmount({ mode: "full", total: 1000, refunded: 0, grants, now: NOW })).toBe(1000);
    expect(refundAmount({ mode: "full", total: 1000, refunded: 300, grants, now: NOW })).toBe(700);
    expect(refundAmount({ mode: "full", total: 1000, refunded: 1000, grants, now: NOW })).toBe(0);
  });
});

describe("refundAmount: inputs outside their ranges are programming errors", () => {
  it.each([
    ["refunded above the total", { refunded: 1001 }],
    ["a negative total", { total: -1 }],
    ["a total that is not an integer", { total: 10.5 }],
    ["remaining above tokens minus clawedBack", { grants: [{ tokens: 100, remaining: 80, clawedBack: 30 }] }],
    ["clawedBack above tokens", { grants: [{ tokens: 100, remaining: 0, clawedBack: 101 }] }],
    ["a negative weight", { grants: [aGrant(100, 0, { weight: -1 })] }],
  ] as const)("throws a RangeError for %s", (_name, overrides) => {
    expect(() => unused(1000, [aGrant(100)], overrides as Partial<RefundAmountInput>)).toThrow(RangeError);
  });
});

describe("clawbackPlan", () => {
  it("takes a grant's share of the refunded amount: 300 of 1000 refunded -> 30 of 100 tokens", () => {
    expect(clawbackPlan({ total: 1000, cumulativeRefunded: 300, grants: [aClawbackGrant("g1", 100, { remaining: 60 })] })).toEqual({
      grants: [{ grantId: "g1", target: 30, take: 30, tokensShort: 0 }],
      tokens: 30,
      tokensShort: 0,
    });
  });

  it("never takes more than remains: the spent part of the target is tokensShort", () => {
    const plan = clawbackPlan({ total: 1000, cumulativeRefunded: 300, grants: [aClawbackGrant("g1", 100, { remaining: 10 })] });
    expect(plan).toEqual({ grants: [{ grantId: "g1", target: 30, take: 10, tokensShort: 20 }], tokens: 10, tokensShort: 20 });
  });

  it("takes the running target minus what earlier refunds took: 300 then 250 more -> 30 then 25", () => {
    const plan = clawbackPlan({ total: 1000, cumulativeRefunded: 550, grants: [aClawbackGrant("g1", 100, { remaining: 30, clawedBack: 30 })] });
    expect(plan.grants[0]).toEqual({ grantId: "g1", target: 25, take: 25, tokensShort: 0 });
  });

  it("rounds the running target up: a 1-cent refund of 1000 takes 1 of 7 tokens", () => {
    expect(clawbackPlan({ total: 1000, cumulativeRefunded: 1, grants: [aClawbackGrant("g1", 7)] }).grants[0]!.take).toBe(1);
  });

  it("targets every token once the whole total is refunded", () => {
    const grants = [aClawbackGrant("g1", 100, { remaining: 70, clawedBack: 30 }), aClawbackGrant("g2", 9, { remaining: 2, clawedBack: 3 })];
    expect(clawbackPlan({ total: 1000, cumulativeRefunded: 1000, grants })).toEqual({
      grants: [
        { grantId: "g1", target: 70, take: 70, tokensShort: 0 },
        { grantId: "g2", target: 6, take: 2, tokensShort: 4 },
      ],
      tokens: 72,
      tokensShort: 4,
    });
  });

  it("takes from each grant of a bundle its own share, and nothing from a 0-token grant", () => {
    const grants = [aClawbackGrant("root", 0), aClawbackGrant("calls", 60), aClawbackGrant("data", 500, { remaining: 100 })];
    expect(clawbackPlan({ total: 900, cumulativeRefunded: 450, grants }).grants).toEqual([
      { grantId: "root", target: 0, take: 0, tokensShort: 0 },
      { grantId: "calls", target: 30, take: 30, tokensShort: 0 },
      { grantId: "data", target: 250, take: 100, tokensShort: 150 },
    ]);
  });

  it("takes nothing from a grant earlier refunds already took its target from", () => {
    const plan = clawbackPlan({ total: 1000, cumulativeRefunded: 300, grants: [aClawbackGrant("g1", 100, { remaining: 50, clawedBack: 40 })] });
    expect(plan.grants[0]).toEqual({ grantId: "g1", target: 0, take: 0, tokensShort: 0 });
  });

  it("is exact with the largest totals and token counts: 1 of 99,999,999 of 1e12 tokens -> 10,001", () => {
    expect(clawbackPlan({ total: MAX_TOTAL, cumulativeRefunded: 1, grants: [aClawbackGrant("g1", MAX_TOKENS)] }).grants[0]!.take).toBe(10_001);
    expect(clawbackPlan({ total: MAX_TOTAL, cumulativeRefunded: MAX_TOTAL - 1, grants: [aClawbackGrant("g1", MAX_TOKENS)] }).grants[0]!.take).toBe(999_999_990_000);
  });

  it.each([
    ["a refund above the total", { total: 1000, cumulativeRefunded: 1001 }],
    ["a free order", { total: 0, cumulativeRefunded: 0 }],
    ["remaining above tokens", { total: 1000, cumulativeRefunded: 10, grants: [aClawbackGrant("g1", 10, { remaining: 11 })] }],
  ] as const)("throws a RangeError for %s", (_name, input) => {
    expect(() => clawbackPlan({ grants: [aClawbackGrant("g1", 10)], ...input })).toThrow(RangeError);
  });
});

// --- Properties ---------------------------------------------------------------------------

/** A grant of an order: tokens up to MAX_TOKENS (often small, often 0), some clawed back, some spent, maybe weighted. */
const aRandomGrant: fc.Arbitrary<RefundGrant> = fc
  .record({
    tokens: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: MAX_TOKENS })),
    clawedPart: fc.double({ min: 0, max: 1, noNaN: true }),
    remainingPart: fc.double({ min: 0, max: 1, noNaN: true }),
    weight: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: MAX_TOTAL })), { nil: undefined }),
  })
  .map(({ tokens, clawedPart, remainingPart, weight }) => {
    const clawedBack = Math.floor(tokens * clawedPart);
    return { tokens, clawedBack, remaining: Math.floor((tokens - clawedBack) * remainingPart), weight };
  });

const aTotal = fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: MAX_TOTAL }));

/** A refund request of an order: total, earlier refunds, grants, and a period (so subscriptions are covered). */
const aRefund: fc.Arbitrary<RefundAmountInput> = fc
  .record({
    total: aTotal,
    refundedPart: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
    grants: fc.array(aRandomGrant, { maxLength: 6 }),
    elapsedHours: fc.integer({ min: -100, max: 1000 }),
  })
  .map(({ total, refundedPart, grants, elapsedHours }) => ({
    mode: "unused",
    total,
    refunded: Math.floor(total * refundedPart),
    grants,
    period: { starts: "2026-06-01T00:00:00.000Z", expires: "2026-07-01T00:00:00.000Z" },
    now: new Date(Date.parse("2026-06-01T00:00:00.000Z") + elapsedHours * 3_600_000),
  }));

describe("refundAmount: properties", () => {
  it("never returns less than 0 nor more than what is left; full returns exactly what is left", () => {
    fc.assert(
      fc.property(aRefund, (input) => {
        const left = input.total - input.refunded;
        const amount = refundAmount(input);
        expect(Number.isSafeInteger(amount)).toBe(true);
        expect(amount).toBeGreaterThanOrEqual(0);
        expect(amount).toBeLessThanOrEqual(left);
        expect(refundAmount({ ...input, mode: "full" })).toBe(left);
      }),
      PROPERTY,
    );
  });

  it("is the floor of what is left times the unused share, exactly", () => {
    fc.assert(
      fc.property(aRefund, (input) => {
        const left = BigInt(input.total - input.refunded);
        const amount = BigInt(refundAmount(input));
        const { numerator, denominator } = unusedShare(input);
        expect(numerator >= 0n && numerator <= denominator).toBe(true);
        expect(amount * denominator <= left * numerator).toBe(true);
        expect(left * numerator < (amount + 1n) * denominator).toBe(true);
      }),
      PROPERTY,
    );
  });

  it("for a single grant is floor(left × remaining / (tokens − clawedBack))", () => {
    fc.assert(
      fc.property(aRefund, aRandomGrant, (input, grant) => {
        fc.pre(grant.tokens - grant.clawedBack > 0);
        const left = BigInt(input.total - input.refunded);
        const expected = (left * BigInt(grant.remaining)) / BigInt(grant.tokens - grant.clawedBack);
        expect(refundAmount({ ...input, grants: [grant] })).toBe(Number(expected));
      }),
      PROPERTY,
    );
  });

  it("returns all that is left of an order nothing was spent of (unless Stripe refunds emptied every grant)", () => {
    fc.assert(
      fc.property(aRefund, (input) => {
        const carrying = input.grants.filter((grant) => grant.tokens > 0);
        fc.pre(carrying.length > 0);
        const unspent = input.grants.map((grant) => ({ ...grant, remaining: grant.tokens - grant.clawedBack }));
        const anyLeft = carrying.some((grant) => grant.tokens > grant.clawedBack);
        expect(refundAmount({ ...input, grants: unspent })).toBe(anyLeft ? input.total - input.refunded : 0);
      }),
      PROPERTY,
    );
  });

  it("never returns less when a grant holds one more unused token", () => {
    fc.assert(
      fc.property(aRefund, fc.nat(), (input, pick) => {
        const index = input.grants.findIndex((grant, at) => at >= pick % Math.max(1, input.grants.length) && grant.remaining < grant.tokens - grant.clawedBack);
        fc.pre(index >= 0);
        const more = input.grants.map((grant, at) => (at === index ? { ...grant, remaining: grant.remaining + 1 } : grant));
        expect(refundAmount({ ...input, grants: more })).toBeGreaterThanOrEqual(refundAmount(input));
      }),
      PROPERTY,
    );
  });
});

/** An order's life: its grants, then spending and refunds made in Stripe, in any order, then one unused refund. */
const anOrderLife = fc.record({
  total: fc.integer({ min: 1, max: MAX_TOTAL }),
  grants: fc.array(
    fc.record({
      tokens: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: MAX_TOKENS })),
      weight: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 5 },
  ),
  steps: fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("spend" as const), grant: fc.nat(), part: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant("stripeRefund" as const), part: fc.double({ min: 0, max: 1, noNaN: true }) }),
    ),
    { maxLength: 8 },
  ),
});

describe("refunds over an order's life: properties", () => {
  it("never return more than the total in all, and a refund of the whole total in Stripe leaves no token", () => {
    fc.assert(
      fc.property(anOrderLife, ({ total, grants: shapes, steps }) => {
        const grants = shapes.map((shape, index) => ({ grantId: `g${index}`, ...shape, remaining: shape.tokens, clawedBack: 0 }));
        let refunded = 0;
        for (const step of steps) {
          if (step.kind === "spend") {
            const grant = grants[step.grant % grants.length]!;
            grant.remaining -= Math.floor(grant.remaining * step.part);
            continue;
          }
          refunded += Math.ceil((total - refunded) * step.part);
          const plan = clawbackPlan({ total, cumulativeRefunded: refunded, grants });
          plan.grants.forEach((clawed, index) => {
            grants[index]!.remaining -= clawed.take;
            grants[index]!.clawedBack += clawed.take;
          });
        }
        if (refunded === total) for (const grant of grants) expect(grant.remaining).toBe(0);
        const last = refundAmount({ mode: "unused", total, refunded, grants, now: NOW });
        expect(refunded + last).toBeLessThanOrEqual(total);
      }),
      PROPERTY,
    );
  });
});

describe("clawbackPlan: properties", () => {
  const aClawback = fc
    .record({
      total: fc.integer({ min: 1, max: MAX_TOTAL }),
      refundedPart: fc.double({ min: 0, max: 1, noNaN: true }),
      grants: fc.array(aRandomGrant, { maxLength: 6 }),
    })
    .map(({ total, refundedPart, grants }) => ({
      total,
      cumulativeRefunded: Math.floor(total * refundedPart),
      grants: grants.map((grant, index) => ({ grantId: `g${index}`, tokens: grant.tokens, remaining: grant.remaining, clawedBack: grant.clawedBack })),
    }));

  it("never takes more than remains, and take + tokensShort is the grant's running target minus what was taken", () => {
    fc.assert(
      fc.property(aClawback, ({ total, cumulativeRefunded, grants }) => {
        const plan = clawbackPlan({ total, cumulativeRefunded, grants });
        plan.grants.forEach((clawed, index) => {
          const grant = grants[index]!;
          expect(clawed.grantId).toBe(grant.grantId);
          expect(clawed.take).toBeGreaterThanOrEqual(0);
          expect(clawed.take).toBeLessThanOrEqual(grant.remaining);
          expect(clawed.take + clawed.tokensShort).toBe(clawed.target);
          // running = ceil(tokens × cumulativeRefunded / total), checked by cross-multiplication.
          const running = BigInt(clawed.target + grant.clawedBack);
          const owed = BigInt(grant.tokens) * BigInt(cumulativeRefunded);
          if (clawed.target > 0) {
            expect(running * BigInt(total) >= owed).toBe(true);
            expect((running - 1n) * BigInt(total) < owed).toBe(true);
          } else {
            expect(BigInt(grant.clawedBack) * BigInt(total) >= owed).toBe(true);
          }
          expect(clawed.tokensShort === 0 || clawed.take === grant.remaining).toBe(true);
        });
        expect(plan.tokens).toBe(plan.grants.reduce((sum, clawed) => sum + clawed.take, 0));
        expect(plan.tokensShort).toBe(plan.grants.reduce((sum, clawed) => sum + clawed.tokensShort, 0));
      }),
      PROPERTY,
    );
  });

  it("on an order nothing was spent of, successive refunds take exactly the running target, never short", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_TOTAL }),
        fc.array(fc.integer({ min: 0, max: MAX_TOKENS }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
        (total, tokens, parts) => {
          const grants = tokens.map((count, index) => aClawbackGrant(`g${index}`, count));
          let refunded = 0;
          for (const part of [...parts, 1]) {
            refunded += Math.ceil((total - refunded) * part);
            const plan = clawbackPlan({ total, cumulativeRefunded: refunded, grants });
            expect(plan.tokensShort).toBe(0);
            plan.grants.forEach((clawed, index) => {
              grants[index]!.remaining -= clawed.take;
              grants[index]!.clawedBack += clawed.take;
            });
            for (const grant of grants) {
              expect(BigInt(grant.clawedBack)).toBe((BigInt(grant.tokens) * BigInt(refunded) + BigInt(total) - 1n) / BigInt(total));
            }
          }
          for (const grant of grants) expect(grant).toMatchObject({ remaining: 0, clawedBack: grant.tokens });
        },
      ),
      PROPERTY,
    );
  });
});
