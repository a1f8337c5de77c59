/**
 * core/billing.ts: the user's customer and a renewing offer's recurring price at the
 * provider, made on first need and once, through the real `stripe` SDK against the
 * stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { customerOf, renewingPrice, type RenewingTerms } from "../../core/billing.js";
import { createManualProvider } from "../../core/payments/manual.js";
import { createStripeClient, createStripeProvider, productIdOf } from "../../core/payments/stripe.js";
import { useIntegrationContext } from "../helpers/context.js";
import { StripeStandIn } from "../helpers/stripe-stand-in.js";

const stripe = new StripeStandIn();
const t = useIntegrationContext({ label: "billing" });

beforeAll(async () => {
  await stripe.start();
  t.ctx.payments = createStripeProvider({ secretKey: "sk_test_billing", apiUrl: stripe.url, maxNetworkRetries: 0 });
});
afterAll(() => stripe.stop());

/** A renewing monthly offer's terms in `currency` (usd 10.00, eur 9.00). */
function renewing(offerId: string, currency: string, overrides: Partial<RenewingTerms> = {}): RenewingTerms {
  return { offerId, offerName: "Pro", cycle: "monthly", appendDate: false, amount: currency === "eur" ? 900 : 1000, currency, ...overrides };
}

describe("the user's customer at Stripe", () => {
  it("is created on first need with metadata.userId, then read from the table", async () => {
    const before = stripe.requestsTo("POST", "/v1/customers").length;
    const id = await customerOf(t.ctx, "cust-1");
    expect(id).toMatch(/^cus_/);
    const created = stripe.requestsTo("POST", "/v1/customers").slice(before);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ params: { metadata: { userId: "cust-1" } }, idempotencyKey: "customer-cust-1" });
    expect(await customerOf(t.ctx, "cust-1")).toBe(id);
    expect(stripe.requestsTo("POST", "/v1/customers").length - before).toBe(1);
  });

  it("is one customer when two first orders need it at once", async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => customerOf(t.ctx, "cust-race")));
    expect(new Set(ids).size).toBe(1);
    const stored = await t.db.entities.billingCustomer.get({ userId: "cust-race" }).go({ consistent: true });
    expect(stored.data?.customerId).toBe(ids[0]);
    // Every request Stripe got carried the one idempotency key, so it made one customer.
    const keys = new Set(stripe.requestsTo("POST", "/v1/customers").filter((r) => r.params.metadata && (r.params.metadata as Record<string, string>).userId === "cust-race").map((r) => r.idempotencyKey));
    expect([...keys]).toEqual(["customer-cust-race"]);
  });

  it("is refused with not_renewable by the manual provider", async () => {
    await expect(customerOf({ ...t.ctx, payments: createManualProvider() }, "cust-manual")).rejects.toMatchObject({ code: "not_renewable", details: { provider: "manual" } });
  });
});

describe("a renewing offer's price at Stripe", () => {
  it("is a recurring Price of the offer's Product, per currency, named by its lookup key", async () => {
    const usd = await renewingPrice(t.ctx, renewing("pro-monthly", "usd"));
    const eur = await renewingPrice(t.ctx, renewing("pro-monthly", "eur"));
    expect(usd).toMatchObject({ productId: productIdOf("pro-monthly"), lookupKey: "uc:pro-monthly:usd:1000:1month", amount: 1000, currency: "usd" });
    expect(eur).toMatchObject({ productId: productIdOf("pro-monthly"), lookupKey: "uc:pro-monthly:eur:900:1month", amount: 900 });
    expect(usd.priceId).not.toBe(eur.priceId);
    const made = stripe.requestsTo("POST", "/v1/prices").filter((r) => String(r.params.lookup_key).startsWith("uc:pro-monthly:"));
    expect(made.map((r) => r.params)).toEqual([
      expect.objectContaining({ product: "uc-pro-monthly", currency: "usd", unit_amount: "1000", recurring: { interval: "month", interval_count: "1" } }),
      expect.objectContaining({ product: "uc-pro-monthly", currency: "eur", unit_amount: "900", recurring: { interval: "month", interval_count: "1" } }),
    ]);
    expect(stripe.requestsTo("POST", "/v1/products").filter((r) => r.params.id === "uc-pro-monthly")).toHaveLength(1);
  });

  it("is read from the table the next time: no Stripe request", async () => {
    const first = await renewingPrice(t.ctx, renewing("pro-again", "usd"));
    const before = stripe.requests.length;
    expect(await renewingPrice(t.ctx, renewing("pro-again", "usd"))).toEqual(first);
    expect(stripe.requests.length).toBe(before);
  });

  it("is a new Price when the offer's price or cycle changes; the old one stays", async () => {
    const old = await renewingPrice(t.ctx, renewing("pro-change", "usd"));
    const dearer = await renewingPrice(t.ctx, renewing("pro-change", "usd", { amount: 1200 }));
    const yearly = await renewingPrice(t.ctx, renewing("pro-change", "usd", { cycle: "yearly", amount: 1200 }));
    expect(new Set([old.priceId, dearer.priceId, yearly.priceId]).size).toBe(3);
    expect(yearly.lookupKey).toBe("uc:pro-change:usd:1200:1year");
    const stored = await t.db.entities.providerPrice.get({ lookupKey: old.lookupKey }).go();
    expect(stored.data?.priceId).toBe(old.priceId);
  });

  it("is found at Stripe by lookup key when the table lost it (no second Price)", async () => {
    const first = await renewingPrice(t.ctx, renewing("pro-lost", "usd"));
    await t.db.entities.providerPrice.delete({ lookupKey: first.lookupKey }).go();
    const pricesBefore = stripe.requestsTo("POST", "/v1/prices").length;
    expect((await renewingPrice(t.ctx, renewing("pro-lost", "usd"))).priceId).toBe(first.priceId);
    expect(stripe.requestsTo("POST", "/v1/prices").length).toBe(pricesBefore);
  });

  it("makes one Product and one Price when orders need them at once", async () => {
    const prices = await Promise.all(Array.from({ length: 5 }, () => renewingPrice(t.ctx, renewing("pro-race", "usd"))));
    expect(new Set(prices.map((p) => p.priceId)).size).toBe(1);
    const listed = await activePricesAtStripe(prices[0]!.lookupKey);
    expect(listed).toHaveLength(1);
  });

  it("refuses offers that cannot renew, and currencies the offer has no price in", async () => {
    await expect(renewingPrice(t.ctx, renewing("pro-once", "usd", { cycle: "once" }))).rejects.toMatchObject({ code: "not_renewable", details: { reason: "cycle" } });
    await expect(renewingPrice(t.ctx, renewing("pro-append", "usd", { appendDate: true }))).rejects.toMatchObject({ code: "not_renewable", details: { reason: "appendDate" } });
  });
});

/** The active Prices Stripe holds under `lookupKey`, read back through the SDK. */
async function activePricesAtStripe(lookupKey: string) {
  const client = createStripeClient({ secretKey: "sk_test_billing", apiUrl: stripe.url });
  return (await client.prices.list({ lookup_keys: [lookupKey], active: true })).data;
}
