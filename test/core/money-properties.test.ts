/**
 * Money and tokens end right whatever happens, in whatever order (issue 9; API.md
 * "Orders and payment"): random histories of purchases, consumptions (some overdrawn),
 * refunds through the API, refunds made in the Stripe dashboard, disputes opened and
 * closed (won or lost), duplicate and repeated webhook deliveries, promotional grants
 * that push purchases into overflow items, and time passing, on
 * DynamoDB Local with the real `stripe` SDK against the stand-in (fast-check).
 *
 * After every history:
 * - the ledger invariants hold over the table (test/helpers/invariants.ts, afterEach):
 *   every balance is the sum of its ledger entries and of its grants' remaining;
 * - no order was refunded more money than its total, and Stripe holds exactly the refunds
 *   the orders list (plus one per duplicate payment);
 * - each order was credited at most once (one `purchase` entry per grant);
 * - a refunded order's grants have all ended (none left in any balance).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBalanceCache } from "../../core/balance-cache.js";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { createOrder, getOrder, listOrders } from "../../core/orders.js";
import { createStripeClient, createStripeProvider } from "../../core/payments/stripe.js";
import type { StripeEvent } from "../../core/payments/stripe-webhook.js";
import { refundOrder } from "../../core/refunds.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { handleStripeEvent } from "../../core/webhooks.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";
import { invariantViolations } from "../helpers/invariants.js";

const stripe = new StripeStandIn();
const t = useIntegrationContext({ label: "money-properties" });

/**
 * Consumptions run as another instance would: with its own cache of balance items
 * (core/balance-cache.ts), kept across steps while every other step writes without it, so
 * plans on stale copies are exercised (their guards must keep every invariant).
 */
const cache = createBalanceCache({ now: () => Date.now() });
const spender = () => ({ ...t.ctx, balanceCache: cache });
let outside: ReturnType<typeof createStripeClient>;
beforeAll(async () => {
  await stripe.start();
  t.ctx.payments = createStripeProvider({ secretKey: "sk_test_standin", apiUrl: stripe.url, maxNetworkRetries: 0 });
  outside = createStripeClient({ secretKey: "sk_test_standin", apiUrl: stripe.url, maxNetworkRetries: 0 });
  await upsertOffer(t.ctx, "pack", anOffer({ tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }] }));
  await upsertOffer(t.ctx, "forever", anOffer({ cycle: "once", tokenCount: 30, prices: [{ amount: 700, currency: "usd" }] }));
  await upsertOffer(t.ctx, "extra", anOffer({ offerGroup: "extra", tokenCount: 20, prices: [{ amount: 300, currency: "usd" }] }));
  await upsertOffer(t.ctx, "combo", anOffer({ tokenCount: 10, prices: [{ amount: 1500, currency: "usd" }], combinedItems: [{ offerId: "extra", quantity: 2 }] }));
});
afterAll(() => stripe.stop());

const deliver = (type: string, object: Record<string, unknown>) => handleStripeEvent(t.ctx, stripeEvent(type, object) as unknown as StripeEvent);

/** One thing that happens to a user's orders and tokens. `pick` chooses among the orders so far. */
type Step =
  | { kind: "buy"; offerId: string }
  | { kind: "consume"; tokens: number; overdraft: boolean; group: string }
  | { kind: "refund"; pick: number; mode: "unused" | "full" }
  | { kind: "dashboardRefund"; pick: number; amount: number }
  | { kind: "dispute"; pick: number; outcome: "won" | "lost" | "warning_closed" | "open" }
  | { kind: "duplicatePayment"; pick: number }
  | { kind: "redeliver"; pick: number }
  | { kind: "time"; days: number }
  | { kind: "promos"; count: number; days: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("buy" as const), offerId: fc.constantFrom("pack", "forever", "combo") }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("consume" as const), tokens: fc.integer({ min: 1, max: 80 }), overdraft: fc.boolean(), group: fc.constantFrom("calls", "extra") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("refund" as const), pick: fc.nat(), mode: fc.constantFrom("unused" as const, "full" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("dashboardRefund" as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 1500 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("dispute" as const), pick: fc.nat(), outcome: fc.constantFrom("won" as const, "lost" as const, "warning_closed" as const, "open" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("duplicatePayment" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("redeliver" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("time" as const), days: fc.integer({ min: 1, max: 40 }) }) },
  // Promotional grants that drain before the purchases: they push them into overflow items.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("promos" as const), count: fc.integer({ min: 1, max: 12 }), days: fc.integer({ min: 1, max: 20 }) }) },
);

let run = 0;
/** Steps played and refused (as documented) per kind, over the whole property (logged: the histories do reach every path). */
const played: Record<string, number> = {};
const refused: Record<string, number> = {};

/** Plays `steps` for a fresh user; refusals the API documents (402, 409, 4xx from Stripe) are part of the history. */
async function play(steps: Step[]): Promise<string> {
  const userId = `prop-${run++}`;
  t.clock.set("2026-04-10T08:00:00.000Z");
  const paid: Array<{ orderId: string; paymentIntentId: string }> = [];
  const expected = (error: unknown) => {
    const code = (error as { code?: string }).code;
    if (code === "insufficient_credits" || code === "conflict" || code === "payment_provider_error") return;
    if (error instanceof Error && /refund refused/.test(error.message)) return; // the dashboard refuses more than is left
    throw error;
  };
  for (const s of steps) {
    const order = paid.length > 0 && "pick" in s ? paid[s.pick % paid.length]! : undefined;
    try {
      switch (s.kind) {
        case "buy": {
          const { order: created, payment } = await createOrder(t.ctx, { userId, offerId: s.offerId });
          if (payment?.provider !== "stripe") throw new Error("expected a PaymentIntent");
          await deliver("payment_intent.succeeded", stripe.succeed(payment.paymentIntentId));
          paid.push({ orderId: created.orderId, paymentIntentId: payment.paymentIntentId });
          break;
        }
        case "consume":
          await consume(spender(), { userId, offerGroup: s.group, tokens: s.tokens, allowOverdraft: s.overdraft });
          break;
        case "refund":
          if (order) await refundOrder(t.ctx, { userId, orderId: order.orderId, mode: s.mode });
          break;
        case "dashboardRefund":
          if (order) await deliver("charge.refunded", stripe.dashboardRefund(order.paymentIntentId, s.amount));
          break;
        case "dispute": {
          if (!order || stripe.chargeOf(order.paymentIntentId).disputed) break;
          const dispute = stripe.openDispute(order.paymentIntentId);
          await deliver("charge.dispute.created", dispute);
          if (s.outcome !== "open") await deliver("charge.dispute.closed", stripe.closeDispute(dispute.id as string, s.outcome));
          break;
        }
        case "duplicatePayment": {
          if (!order) break;
          const { total } = await getOrder(t.ctx, userId, order.orderId);
          const intent = await outside.paymentIntents.create({ amount: total.amount, currency: total.currency, metadata: { orderId: order.orderId, userId } });
          await deliver("payment_intent.succeeded", stripe.succeed(intent.id));
          break;
        }
        case "redeliver":
          if (order) await deliver("payment_intent.succeeded", stripe.intent(order.paymentIntentId));
          break;
        case "time":
          t.clock.advance(s.days * 86_400_000);
          break;
        case "promos": {
          const expires = new Date(t.clock.now().getTime() + s.days * 86_400_000).toISOString();
          for (let i = 0; i < s.count; i++) await createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens: 5, expires });
          break;
        }
      }
    } catch (error) {
      expected(error);
      refused[s.kind] = (refused[s.kind] ?? 0) + 1;
      continue;
    }
    played[s.kind] = (played[s.kind] ?? 0) + 1;
  }
  return userId;
}

/** The money and credit properties of one user's history (the ledger invariants are checked over the table). */
async function checkMoney(userId: string): Promise<void> {
  const { orders } = await listOrders(t.ctx, userId, { limit: 100 });
  const { entries } = await listLedger(t.ctx, userId, { limit: 1000 });
  const credits = await getCredits(t.ctx, userId);
  const inBalances = new Set(credits.groups.flatMap((group) => group.grants.map((grant) => grant.grantId)));
  for (const order of orders) {
    const refunds = order.refunds.filter((refund) => refund.status !== "failed");
    expect(refunds.reduce((sum, refund) => sum + refund.amount, 0), `order ${order.orderId} refunded`).toBeLessThanOrEqual(order.total.amount);
    // Stripe holds exactly the refunds the order lists for its payment, and one per duplicate payment.
    const atStripe = [...stripe.refunds.values()].filter((refund) => (refund.metadata as Record<string, string>).orderId === order.orderId || refund.payment_intent === order.paidPaymentIntentId);
    const ofPayment = atStripe.filter((refund) => refund.payment_intent === order.paidPaymentIntentId);
    expect(ofPayment.map((refund) => refund.id).sort(), `order ${order.orderId} refunds at Stripe`).toEqual(refunds.filter((refund) => refund.refundId).map((refund) => refund.refundId).sort());
    expect(atStripe.length - ofPayment.length).toBe(order.duplicatePayments.length);
    // Credited once: one purchase entry per grant of the order.
    const purchases = entries.filter((entry) => entry.orderId === order.orderId && entry.reason === "purchase");
    expect(purchases.length).toBe(order.status === "pending" ? 0 : order.grantIds.length);
    // A refunded order's grants have all ended.
    if (order.status === "refunded") for (const grantId of order.grantIds) expect(inBalances.has(grantId), `grant ${grantId} of a refunded order`).toBe(false);
  }
}

describe("money and tokens over random histories", () => {
  it("hold the ledger invariants, refund no order more than its total, credit each order once, and end a refunded order's grants", { timeout: 900_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 14 }), async (steps) => {
        const userId = await play(steps);
        await checkMoney(userId);
        expect(await invariantViolations(t.client, t.tableName)).toEqual([]);
      }),
      { numRuns: Number(process.env.PROP_RUNS ?? 25), seed: Number(process.env.PROP_SEED ?? 902_026) },
    );
    console.log("money properties: steps played", played, "refused as documented", refused);
    for (const kind of ["buy", "consume", "refund", "dashboardRefund", "dispute", "duplicatePayment", "promos"]) expect(played[kind], kind).toBeGreaterThan(0);
  });
});
