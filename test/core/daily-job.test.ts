/**
 * The daily job at scale (core/daily-job.ts, core/expiring-warnings.ts,
 * core/abandoned-orders.ts) on DynamoDB Local, time from the injected clock: due grants
 * found through the index whoever else is in the table, each expired once whatever runs
 * twice or dies half-way; `credits.expiring` once per grant; abandoned orders cancelled
 * at Stripe and refused, a late success still paying them once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getCredits } from "../../core/credits.js";
import { listEvents } from "../../core/events.js";
import { runDailyJob } from "../../core/daily-job.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { putOfferGroup } from "../../core/offer-groups.js";
import { upsertOffer } from "../../core/offers.js";
import { createOrder, getOrder, retryPayment } from "../../core/orders.js";
import { createManualProvider } from "../../core/payments/manual.js";
import { createStripeProvider } from "../../core/payments/stripe.js";
import type { StripeEvent } from "../../core/payments/stripe-webhook.js";
import { handleStripeEvent } from "../../core/webhooks.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { injectFaults, type FaultInjector } from "../helpers/faults.js";
import { seedGrants } from "../helpers/seed.js";
import { StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

const t = useIntegrationContext({ label: "daily-job" });
const stripe = new StripeStandIn();
let faults: FaultInjector;
beforeAll(async () => {
  await stripe.start();
  faults = injectFaults(t.client);
});
afterEach(() => faults.clear());
afterAll(() => stripe.stop());

/** Runs `tasks` with at most `width` in flight. */
async function inParallel<T>(tasks: Array<() => Promise<T>>, width = 48): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < tasks.length; i += width) results.push(...(await Promise.all(tasks.slice(i, i + width).map((task) => task()))));
  return results;
}

describe("expiry at scale", () => {
  const USERS = 2000;
  const DUE = 100;

  it(`expires exactly the ${DUE} due grants among ${USERS} users, reading a few items per due grant, once`, async () => {
    t.clock.set("2027-01-10T00:00:00.000Z");
    await runDailyJob(t.ctx); // first run: sets the watermarks on an empty index
    // Every user holds a grant; one in 20 expires on Jan 11, the others in 2029.
    await seedGrants(
      t.ctx,
      Array.from({ length: USERS }, (_, i) => ({
        userId: `scale-${i}`,
        offerGroup: "calls",
        tokens: 10,
        expires: i % (USERS / DUE) === 0 ? "2027-01-11T12:00:00.000Z" : "2029-01-01T00:00:00.000Z",
      })),
    );
    t.clock.set("2027-01-12T00:00:00.000Z");
    t.requests.reset();
    const summary = await runDailyJob(t.ctx);
    const perDueGrant = { requests: t.requests.total / DUE, itemsRead: t.requests.itemsRead / DUE };
    console.log("daily job:", { grantsExpired: summary.grantsExpired, requests: t.requests.byCommand, itemsRead: t.requests.itemsRead, perDueGrant });
    expect(summary).toMatchObject({ grantsExpired: DUE, tokensRemoved: DUE * 10, complete: true });
    // Per due grant: its index entry, its balance (read again inside the retry loop), the
    // order check; plus the fixed cost of empty shards, spread over the 100.
    expect(perDueGrant.itemsRead).toBeLessThanOrEqual(4);
    expect(perDueGrant.requests).toBeLessThanOrEqual(4);
    expect((await getCredits(t.ctx, "scale-0")).groups[0]!.balance).toBe(0);
    expect((await getCredits(t.ctx, "scale-1")).groups[0]!.balance).toBe(10);

    const again = await runDailyJob(t.ctx);
    expect(again).toMatchObject({ grantsExpired: 0, tokensRemoved: 0 });
  });

  it("completes exactly once what a run killed half-way through a page left", async () => {
    t.clock.set("2027-02-01T00:00:00.000Z");
    await inParallel(
      Array.from({ length: 40 }, (_, i) => () =>
        createPromotionalGrant(t.ctx, { userId: `killed-${i}`, offerGroup: "calls", tokens: 5, expires: "2027-02-02T00:00:00.000Z" }),
      ),
    );
    t.clock.set("2027-02-03T00:00:00.000Z");
    faults.fail({ command: "TransactWriteItemsCommand", fault: "network", skip: 20 });
    await expect(runDailyJob(t.ctx)).rejects.toThrow();
    const resumed = await runDailyJob(t.ctx);
    expect(resumed.grantsExpired).toBe(20);
    for (let i = 0; i < 40; i++) {
      const entries = (await listLedger(t.ctx, `killed-${i}`, { limit: 10 })).entries.filter((e) => e.reason === "expire");
      expect(entries, `killed-${i}`).toHaveLength(1);
    }
  });

  it("expires a grant whose expiry is exactly the run's instant (expires <= now is due)", async () => {
    t.clock.set("2027-02-10T00:00:00.000Z");
    await createPromotionalGrant(t.ctx, { userId: "exact", offerGroup: "calls", tokens: 3, expires: "2027-02-11T06:00:00.000Z" });
    t.clock.set("2027-02-11T06:00:00.000Z");
    expect((await runDailyJob(t.ctx)).grantsExpired).toBe(1);
  });
});

describe("credits.expiring", () => {
  it("is raised once per grant expiring within its group's window, and not again", async () => {
    t.clock.set("2027-04-01T00:00:00.000Z");
    await runDailyJob(t.ctx);
    await putOfferGroup(t.ctx, "long-notice", { lowBalanceThreshold: null, expiryWarningDays: 14 });
    const soon = await createPromotionalGrant(t.ctx, { userId: "exp-warn", offerGroup: "calls", tokens: 4, expires: "2027-04-05T00:00:00.000Z" });
    await createPromotionalGrant(t.ctx, { userId: "exp-warn", offerGroup: "calls", tokens: 4, expires: "2027-04-20T00:00:00.000Z" });
    const notice = await createPromotionalGrant(t.ctx, { userId: "exp-warn", offerGroup: "long-notice", tokens: 1, expires: "2027-04-12T00:00:00.000Z" });
    await createPromotionalGrant(t.ctx, { userId: "exp-warn", offerGroup: "calls", tokens: 1, expires: null });

    const first = await runDailyJob(t.ctx);
    expect(first.expiringWarned).toBe(2);
    const expiring = (await listEvents(t.ctx, "exp-warn", { limit: 50 })).events.filter((e) => e.type === "credits.expiring");
    expect(expiring).toEqual([
      { eventId: expect.any(String), type: "credits.expiring", userId: "exp-warn", offerGroup: "calls", grantId: soon.grantId, balance: 9, expires: "2027-04-05T00:00:00.000Z", createdAt: "2027-04-01T00:00:00.000Z" },
      { eventId: expect.any(String), type: "credits.expiring", userId: "exp-warn", offerGroup: "long-notice", grantId: notice.grantId, balance: 1, expires: "2027-04-12T00:00:00.000Z", createdAt: "2027-04-01T00:00:00.000Z" },
    ].sort((a, b) => (a.grantId < b.grantId ? -1 : 1)) as never);
    expect((await runDailyJob(t.ctx)).expiringWarned).toBe(0);
    t.clock.set("2027-04-14T00:00:00.000Z");
    expect((await runDailyJob(t.ctx)).expiringWarned).toBe(1); // the Apr 20 grant enters its 7-day window
  });
});

describe("abandoned orders", () => {
  it("are cancelled at Stripe and refused after 7 days unpaid; younger, paid and retried ones are left; a late success still pays once", async () => {
    t.ctx.payments = createStripeProvider({ secretKey: "sk_test_daily", apiUrl: stripe.url, maxNetworkRetries: 0 });
    try {
      t.clock.set("2027-06-01T00:00:00.000Z");
      await runDailyJob(t.ctx);
      await upsertOffer(t.ctx, "ab-pack", anOffer());
      const old = await createOrder(t.ctx, { userId: "ab", offerId: "ab-pack" });
      const retried = await createOrder(t.ctx, { userId: "ab", offerId: "ab-pack" });
      const paid = await createOrder(t.ctx, { userId: "ab", offerId: "ab-pack" });
      const pi = (r: typeof old) => (r.payment?.provider === "stripe" ? r.payment.paymentIntentId : "");
      await handleStripeEvent(t.ctx, stripeEvent("payment_intent.succeeded", stripe.succeed(pi(paid))) as unknown as StripeEvent);
      t.clock.set("2027-06-05T00:00:00.000Z");
      const young = await createOrder(t.ctx, { userId: "ab", offerId: "ab-pack" });
      await retryPayment(t.ctx, "ab", retried.order.orderId);

      t.clock.set("2027-06-09T00:00:00.000Z");
      const summary = await runDailyJob(t.ctx);
      expect(summary.ordersAbandoned).toBe(1);
      const abandoned = await getOrder(t.ctx, "ab", old.order.orderId);
      expect(abandoned.status).toBe("refused");
      expect(abandoned.history.at(-1)!.message).toBe("abandoned: unpaid since 2027-06-01T00:00:00.000Z");
      expect(stripe.intent(pi(old)).status).toBe("canceled");
      for (const kept of [retried, young]) expect((await getOrder(t.ctx, "ab", kept.order.orderId)).status).toBe("pending");
      expect((await getOrder(t.ctx, "ab", paid.order.orderId)).status).toBe("paid");
      const refusedEvents = (await listEvents(t.ctx, "ab", { limit: 50 })).events.filter((e) => e.type === "order.refused");
      expect(refusedEvents).toMatchObject([{ orderId: old.order.orderId, offerGroup: "calls" }]);
      expect((await runDailyJob(t.ctx)).ordersAbandoned).toBe(0);

      // The buyer paid just before the cancellation reached Stripe: the success still pays, once.
      const late = stripeEvent("payment_intent.succeeded", { ...stripe.intent(pi(old)), status: "succeeded" });
      stripe.intent(pi(old)).status = "succeeded";
      stripe.intent(pi(old)).amount_received = 1000;
      expect(await handleStripeEvent(t.ctx, late as unknown as StripeEvent)).toMatchObject({ outcome: "applied" });
      expect(await handleStripeEvent(t.ctx, late as unknown as StripeEvent)).toMatchObject({ outcome: "ignored" });
      expect((await getOrder(t.ctx, "ab", old.order.orderId)).status).toBe("paid");
    } finally {
      t.ctx.payments = createManualProvider();
    }
  });
});
