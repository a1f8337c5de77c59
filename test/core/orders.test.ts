/**
 * Orders (core/orders.ts) on DynamoDB Local, with the manual payment provider: the
 * rules of order creation, free orders, manual confirmation, idempotency keys, reads.
 */
import { describe, expect, it } from "vitest";
import { getCredits } from "../../core/credits.js";
import { hashRequest } from "../../core/idempotency.js";
import { listLedger } from "../../core/ledger.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder, getOrder, listOrders, retryPayment } from "../../core/orders.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "orders" });
const NOW = "2026-01-31T09:00:00.000Z";

describe("createOrder", () => {
  it("creates a pending order with the offer's terms copied and the total in minor units", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "pack", anOffer({ tokenCount: 60, prices: [{ amount: 1999, currency: "usd" }, { amount: 1799, currency: "eur" }] }));
    const { order, payment } = await createOrder(t.ctx, { userId: "buyer", offerId: "pack", quantity: 3, currency: "eur" });
    expect(payment).toEqual({ provider: "manual" });
    expect(order).toMatchObject({
      userId: "buyer",
      offerId: "pack",
      offerGroup: "calls",
      status: "pending",
      quantity: 3,
      total: { amount: 5397, currency: "eur" },
      tokenCount: 60,
      tokens: 180,
      cycle: "monthly",
      starts: null,
      expires: null,
      provider: "manual",
    });
    expect(order.history).toEqual([{ date: NOW, status: "pending", message: "created" }]);
  });

  it("uses the default currency when the order names none", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "usd-pack", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "default-currency", offerId: "usd-pack" });
    expect(order.total).toEqual({ amount: 1000, currency: "usd" });
  });

  it("keeps the copied terms when the offer changes before payment", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "changing", anOffer({ tokenCount: 100 }));
    const { order } = await createOrder(t.ctx, { userId: "copy", offerId: "changing" });
    await upsertOffer(t.ctx, "changing", anOffer({ tokenCount: 1, prices: [{ amount: 5, currency: "usd" }] }));
    const paid = await confirmManualOrder(t.ctx, "copy", order.orderId);
    expect(paid.tokens).toBe(100);
    expect((await getCredits(t.ctx, "copy")).groups[0]!.balance).toBe(100);
  });

  it("refuses an unknown or inactive offer with not_found", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "retired", anOffer({ active: false }));
    await expect(createOrder(t.ctx, { userId: "u", offerId: "missing" })).rejects.toMatchObject({ code: "not_found" });
    await expect(createOrder(t.ctx, { userId: "u", offerId: "retired" })).rejects.toMatchObject({ code: "not_found" });
  });

  it("refuses a quantity above the offer's limit, and quantities that are not integers >= 1", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "limited", anOffer({ quantityLimit: 2 }));
    await expect(createOrder(t.ctx, { userId: "u", offerId: "limited", quantity: 3 })).rejects.toMatchObject({
      code: "quantity_limit_exceeded",
      details: { quantity: 3, quantityLimit: 2 },
    });
    for (const quantity of [0, -1, 1.5]) {
      await expect(createOrder(t.ctx, { userId: "u", offerId: "limited", quantity })).rejects.toMatchObject({ code: "validation_error" });
    }
    const { order } = await createOrder(t.ctx, { userId: "u", offerId: "limited", quantity: 2 });
    expect(order.total.amount).toBe(2000);
  });

  it("refuses an order that would grant more than 10^12 tokens in one group", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "huge", anOffer({ tokenCount: 1_000_000_000_000, prices: [{ amount: 0, currency: "usd" }] }));
    await expect(createOrder(t.ctx, { userId: "u", offerId: "huge", quantity: 2 })).rejects.toMatchObject({
      code: "quantity_limit_exceeded",
      details: { tokens: 2_000_000_000_000, maximum: 1_000_000_000_000 },
    });
  });

  it("refuses a currency the offer has no price in", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "usd-only", anOffer());
    await expect(createOrder(t.ctx, { userId: "u", offerId: "usd-only", currency: "jpy" })).rejects.toMatchObject({
      code: "currency_not_offered",
      details: { currency: "jpy", offered: ["usd"] },
    });
  });

  it("refuses an explicit start in the past", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "dated", anOffer());
    await expect(createOrder(t.ctx, { userId: "u", offerId: "dated", starts: "2026-01-01T00:00:00.000Z" })).rejects.toMatchObject({
      code: "start_in_past",
    });
  });

  it("refuses a locked offer until the user holds a paid grant in an unlocking group", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "starter", anOffer({ offerGroup: "starter", tokenCount: 0, kind: "subscription" }));
    await upsertOffer(t.ctx, "vip-pack", anOffer({ unlockedBy: ["starter"] }));
    await expect(createOrder(t.ctx, { userId: "locked", offerId: "vip-pack" })).rejects.toMatchObject({ code: "offer_locked" });
    const { order } = await createOrder(t.ctx, { userId: "locked", offerId: "starter" });
    await confirmManualOrder(t.ctx, "locked", order.orderId);
    const vip = await createOrder(t.ctx, { userId: "locked", offerId: "vip-pack" });
    expect(vip.order.status).toBe("pending");
  });
});

describe("free orders", () => {
  it("are paid at creation, with no payment to collect", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "free-tier", anOffer({ prices: [{ amount: 0, currency: "usd" }], tokenCount: 50 }));
    const { order, payment } = await createOrder(t.ctx, { userId: "free", offerId: "free-tier" });
    expect(payment).toBeNull();
    expect(order).toMatchObject({ status: "paid", provider: "free", starts: NOW, expires: "2026-02-28T09:00:00.000Z" });
    expect((await getCredits(t.ctx, "free")).groups[0]!.balance).toBe(50);
  });

  it("cannot be taken again while a grant from them is active, and can once it has expired", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "free-monthly", anOffer({ prices: [{ amount: 0, currency: "usd" }], tokenCount: 5 }));
    await createOrder(t.ctx, { userId: "free-again", offerId: "free-monthly" });
    await expect(createOrder(t.ctx, { userId: "free-again", offerId: "free-monthly" })).rejects.toMatchObject({ code: "already_subscribed" });
    t.clock.set("2026-03-01T00:00:00.000Z");
    const again = await createOrder(t.ctx, { userId: "free-again", offerId: "free-monthly" });
    expect(again.order.status).toBe("paid");
  });
});

describe("orders within their limits (issue 9, defects 4 and 5)", () => {
  /** What the user has: orders (oldest first, as offerId × quantity) and ledger entries. */
  async function holdings(userId: string) {
    const { orders } = await listOrders(t.ctx, userId, { limit: 100 });
    const { entries } = await listLedger(t.ctx, userId, { limit: 100 });
    return { orders: orders.reverse().map((order) => `${order.offerId} × ${order.quantity}`), entries: entries.length };
  }

  it("refuses a free order for more than one unit with quantity_limit_exceeded (limit 1), writing nothing", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "free-100", anOffer({ prices: [{ amount: 0, currency: "usd" }], tokenCount: 100 }));
    for (const quantity of [2, 1_000_000]) {
      await expect(createOrder(t.ctx, { userId: "free-bulk", offerId: "free-100", quantity })).rejects.toMatchObject({
        code: "quantity_limit_exceeded",
        details: { quantity, quantityLimit: 1 },
      });
    }
    expect(await holdings("free-bulk")).toEqual({ orders: [], entries: 0 });
    expect((await createOrder(t.ctx, { userId: "free-bulk", offerId: "free-100", quantity: 1 })).order).toMatchObject({ status: "paid", tokens: 100 });
  });

  it("refuses at creation a quantity × cycle whose expiry would fall past 9999-12-31 with period_out_of_range, writing nothing", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "yearly", anOffer({ cycle: "yearly" }));
    for (const quantity of [1_000_000, 7974]) {
      await expect(createOrder(t.ctx, { userId: "far", offerId: "yearly", quantity })).rejects.toMatchObject({
        code: "period_out_of_range",
        details: { quantity, latest: "9999-12-31T23:59:59.999Z" },
      });
    }
    expect(await holdings("far")).toEqual({ orders: [], entries: 0 });
    const { order } = await createOrder(t.ctx, { userId: "far", offerId: "yearly", quantity: 7973 });
    expect((await confirmManualOrder(t.ctx, "far", order.orderId)).expires).toBe("9999-01-31T09:00:00.000Z");
  });

  it("counts an appendDate order from the user's chain head at creation, and clamps at payment a chain that grew meanwhile", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "chained", anOffer({ cycle: "yearly", appendDate: true }));
    const first = await createOrder(t.ctx, { userId: "chain", offerId: "chained", quantity: 7970 });
    expect((await confirmManualOrder(t.ctx, "chain", first.order.orderId)).expires).toBe("9996-01-31T09:00:00.000Z");

    // A. From the chain head (9996), 4 years fall past the calendar: refused, nothing written.
    await expect(createOrder(t.ctx, { userId: "chain", offerId: "chained", quantity: 4 })).rejects.toMatchObject({ code: "period_out_of_range" });
    expect(await holdings("chain")).toEqual({ orders: ["chained × 7970"], entries: 1 });

    // B. 3 years fit at creation; another order then grows the chain to 9998 before it is paid.
    const late = await createOrder(t.ctx, { userId: "chain", offerId: "chained", quantity: 3 });
    const grower = await createOrder(t.ctx, { userId: "chain", offerId: "chained", quantity: 2 });
    expect((await confirmManualOrder(t.ctx, "chain", grower.order.orderId)).expires).toBe("9998-01-31T09:00:00.000Z");

    // C. Paying it never fails: its expiry is clamped to the last instant, and the history says so.
    const paid = await confirmManualOrder(t.ctx, "chain", late.order.orderId);
    expect(paid).toMatchObject({ status: "paid", starts: "9998-01-31T09:00:00.000Z", expires: "9999-12-31T23:59:59.999Z" });
    expect(paid.history.map((entry) => entry.message)).toEqual(["created", expect.stringContaining("9999-12-31T23:59:59.999Z"), "confirmed manually"]);
    const credits = await getCredits(t.ctx, "chain");
    expect(credits.groups[0]!.balance).toBe(100 * (7970 + 2 + 3));
  });

  it("copies each bundle item's value in the order's currency, absent when the item's offer has no price in it", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "data-1gb", anOffer({ offerGroup: "data", prices: [{ amount: 500, currency: "usd" }, { amount: 450, currency: "eur" }] }));
    await upsertOffer(t.ctx, "sms-100", anOffer({ offerGroup: "sms", prices: [{ amount: 300, currency: "usd" }] }));
    await upsertOffer(
      t.ctx,
      "valued-bundle",
      anOffer({
        offerGroup: "bundle",
        tokenCount: 0,
        prices: [{ amount: 1000, currency: "usd" }, { amount: 900, currency: "eur" }],
        combinedItems: [{ offerId: "data-1gb", quantity: 2 }, { offerId: "sms-100", quantity: 1 }],
      }),
    );
    const { order } = await createOrder(t.ctx, { userId: "valued", offerId: "valued-bundle", quantity: 2, currency: "eur" });
    const stored = await getOrder(t.ctx, "valued", order.orderId);
    expect(stored.combinedItems).toEqual([
      expect.objectContaining({ offerId: "data-1gb", value: 1800 }),
      expect.not.objectContaining({ value: expect.anything() }),
    ]);
    expect(stored.combinedItems[1]).toMatchObject({ offerId: "sms-100" });
  });
});

describe("manual orders", () => {
  it("are paid by confirm, once", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "manual-pack", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "manual", offerId: "manual-pack" });
    t.clock.set("2026-02-01T10:00:00.000Z");
    const paid = await confirmManualOrder(t.ctx, "manual", order.orderId);
    expect(paid).toMatchObject({ status: "paid", starts: "2026-02-01T10:00:00.000Z", expires: "2026-03-01T10:00:00.000Z" });
    expect(paid.history.at(-1)).toMatchObject({ status: "paid", message: "confirmed manually" });
    await expect(confirmManualOrder(t.ctx, "manual", order.orderId)).rejects.toMatchObject({ code: "conflict" });
    await expect(retryPayment(t.ctx, "manual", order.orderId)).rejects.toMatchObject({ code: "conflict" });
    expect((await getCredits(t.ctx, "manual")).groups[0]!.balance).toBe(100);
  });

  it("refuses to confirm an unknown order", async () => {
    await expect(confirmManualOrder(t.ctx, "manual", "01KF0HJ080FP66SJD5SJKZ765Q")).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("createOrder with an Idempotency-Key", () => {
  const key = (k: string, body: unknown) => ({ scope: "orders", key: k, requestHash: hashRequest(body) });

  it("creates one order for repeated requests and returns the same response", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "idem-pack", anOffer());
    const body = { offerId: "idem-pack" };
    const first = await createOrder(t.ctx, { userId: "idem-order", ...body, idempotency: key("k1", body) });
    const again = await createOrder(t.ctx, { userId: "idem-order", ...body, idempotency: key("k1", body) });
    expect(again).toEqual(first);
    expect((await listOrders(t.ctx, "idem-order", { limit: 10 })).orders).toHaveLength(1);
  });

  it("replays a stored refusal, and refuses the key with another body", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "idem-limited", anOffer({ quantityLimit: 1 }));
    const body = { offerId: "idem-limited", quantity: 2 };
    await expect(createOrder(t.ctx, { userId: "idem-refusal", ...body, idempotency: key("k2", body) })).rejects.toMatchObject({
      code: "quantity_limit_exceeded",
    });
    await upsertOffer(t.ctx, "idem-limited", anOffer({ quantityLimit: 5 }));
    await expect(createOrder(t.ctx, { userId: "idem-refusal", ...body, idempotency: key("k2", body) })).rejects.toMatchObject({
      code: "quantity_limit_exceeded",
    });
    await expect(
      createOrder(t.ctx, { userId: "idem-refusal", offerId: "idem-limited", idempotency: key("k2", { offerId: "idem-limited" }) }),
    ).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect((await listOrders(t.ctx, "idem-refusal", { limit: 10 })).orders).toHaveLength(0);
  });

  it("does not store validation failures: the key stays free", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "idem-free-key", anOffer());
    await expect(
      createOrder(t.ctx, { userId: "idem-validation", offerId: "idem-free-key", quantity: 0, idempotency: key("k3", { q: 0 }) }),
    ).rejects.toMatchObject({ code: "validation_error" });
    const { order } = await createOrder(t.ctx, { userId: "idem-validation", offerId: "idem-free-key", idempotency: key("k3", { q: 1 }) });
    expect(order.status).toBe("pending");
  });
});

describe("reading orders", () => {
  it("lists a user's orders newest first, by pages", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "list-pack", anOffer());
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      t.clock.advance(1000);
      ids.push((await createOrder(t.ctx, { userId: "lister", offerId: "list-pack" })).order.orderId);
    }
    const page1 = await listOrders(t.ctx, "lister", { limit: 3 });
    expect(page1.orders.map((o) => o.orderId)).toEqual(ids.slice(2).reverse());
    expect(page1.cursor).not.toBeNull();
    const page2 = await listOrders(t.ctx, "lister", { limit: 3, cursor: page1.cursor });
    expect(page2.orders.map((o) => o.orderId)).toEqual(ids.slice(0, 2).reverse());
    expect(page2.cursor).toBeNull();
    expect((await getOrder(t.ctx, "lister", ids[0]!)).orderId).toBe(ids[0]);
    await expect(getOrder(t.ctx, "someone-else", ids[0]!)).rejects.toMatchObject({ code: "not_found" });
  });

  it("costs a few requests to create and to confirm (counted at the client)", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "counted", anOffer());
    t.requests.reset();
    const { order } = await createOrder(t.ctx, { userId: "counted", offerId: "counted" });
    const creation = { ...t.requests.byCommand };
    t.requests.reset();
    await confirmManualOrder(t.ctx, "counted", order.orderId);
    const confirmation = { ...t.requests.byCommand };
    console.log("requests: order creation", creation, "manual confirmation", confirmation);
    // Read the offer, write the order with its attempt, record the attempt's payment on it.
    expect(creation).toEqual({ GetItemCommand: 1, PutItemCommand: 1, UpdateItemCommand: 1 });
    expect(confirmation).toEqual({ GetItemCommand: 1, QueryCommand: 1, TransactWriteItemsCommand: 1 });
  });
});
