/**
 * The offer catalog and order rules (issue 3), one `describe` per rule, on DynamoDB
 * Local through core (manual payment provider): visibility, locked offers, quantities,
 * currencies, dates and expiry chains, bundles, the subscription check, free offers.
 * The pure rules behind them are tested exhaustively in test/core/rules/.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { silentLogger, type Context } from "../../core/context.js";
import { ManualClock } from "../../core/clock.js";
import { getCredits, checkSubscription } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import { listOffers, upsertOffer, type OfferInput } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { createManualProvider } from "../../core/payments/manual.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";
import { createTestDb } from "../helpers/db.js";

const t = useIntegrationContext({ label: "rules" });
const NOW = "2026-03-10T09:00:00.000Z";

async function buy(userId: string, offerId: string, options: { quantity?: number; starts?: string; currency?: string } = {}) {
  const { order } = await createOrder(t.ctx, { userId, offerId, ...options });
  return confirmManualOrder(t.ctx, userId, order.orderId);
}

const visible = async (query: Parameters<typeof listOffers>[1], prefix: string) =>
  (await listOffers(t.ctx, query)).map((o) => o.offerId).filter((id) => id.startsWith(prefix));

describe("rule 1: visibility", () => {
  it("on equal weight, an unlocked offer beats a regular one, then the smaller offerId wins", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r1a-club", anOffer({ offerGroup: "r1a-club", tokenCount: 0 }));
    await upsertOffer(t.ctx, "r1a-z-regular", anOffer({ overridingKey: "r1a", weight: 1 }));
    await upsertOffer(t.ctx, "r1a-y-regular", anOffer({ overridingKey: "r1a", weight: 1 }));
    await upsertOffer(t.ctx, "r1a-x-unlocked", anOffer({ overridingKey: "r1a", weight: 1, unlockedBy: ["r1a-club"] }));
    await upsertOffer(t.ctx, "r1a-w-unlocked", anOffer({ overridingKey: "r1a", weight: 0, unlockedBy: ["r1a-club"] }));
    expect(await visible({ userId: "r1a-visitor" }, "r1a-")).toEqual(["r1a-club", "r1a-y-regular"]);
    await buy("r1a-member", "r1a-club");
    expect(await visible({ userId: "r1a-member" }, "r1a-")).toEqual(["r1a-club", "r1a-x-unlocked"]);
  });

  it("never makes offers without an overridingKey collide", async () => {
    await upsertOffer(t.ctx, "r1b-one", anOffer());
    await upsertOffer(t.ctx, "r1b-two", anOffer());
    expect(await visible({}, "r1b-")).toEqual(["r1b-one", "r1b-two"]);
  });

  it("filters by any tag, or all tags with allTags; an empty tag list filters nothing; locked offers never leak through tags", async () => {
    await upsertOffer(t.ctx, "r1c-a", anOffer({ tags: ["x"] }));
    await upsertOffer(t.ctx, "r1c-ab", anOffer({ tags: ["x", "y"] }));
    await upsertOffer(t.ctx, "r1c-none", anOffer({ tags: [] }));
    await upsertOffer(t.ctx, "r1c-locked", anOffer({ tags: ["x", "y"], unlockedBy: ["r1c-nobody"] }));
    expect(await visible({ tags: ["x", "y"] }, "r1c-")).toEqual(["r1c-a", "r1c-ab"]);
    expect(await visible({ tags: ["x", "y"], allTags: true }, "r1c-")).toEqual(["r1c-ab"]);
    expect(await visible({ tags: [] }, "r1c-")).toEqual(["r1c-a", "r1c-ab", "r1c-none"]);
    expect(await visible({ tags: [], allTags: true }, "r1c-")).toEqual(["r1c-a", "r1c-ab", "r1c-none"]);
  });

  it("counts future-starting and bundle item grants as unlocking, promotional grants and expired ones not", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r1d-plan", anOffer({ offerGroup: "r1d-plan", cycle: "weekly", tokenCount: 0 }));
    await upsertOffer(t.ctx, "r1d-item", anOffer({ offerGroup: "r1d-item", cycle: "weekly", tokenCount: 1 }));
    await upsertOffer(t.ctx, "r1d-bundle", anOffer({ offerGroup: "r1d-root", cycle: "weekly", tokenCount: 0, combinedItems: [{ offerId: "r1d-item", quantity: 1 }] }));
    await upsertOffer(t.ctx, "r1d-for-plan", anOffer({ unlockedBy: ["r1d-plan"] }));
    await upsertOffer(t.ctx, "r1d-for-item", anOffer({ unlockedBy: ["r1d-item"] }));
    await createPromotionalGrant(t.ctx, { userId: "r1d-gift", offerGroup: "r1d-plan", tokens: 5, expires: null });
    expect(await visible({ userId: "r1d-gift" }, "r1d-for")).toEqual([]);
    await buy("r1d-future", "r1d-plan", { starts: "2026-04-01T00:00:00.000Z" });
    expect(await visible({ userId: "r1d-future" }, "r1d-for")).toEqual(["r1d-for-plan"]);
    await buy("r1d-bundler", "r1d-bundle");
    expect(await visible({ userId: "r1d-bundler" }, "r1d-for")).toEqual(["r1d-for-item"]);
    t.clock.set("2026-03-17T09:00:00.000Z");
    expect(await visible({ userId: "r1d-bundler" }, "r1d-for")).toEqual([]);
  });

  it("lists the whole catalog, inactive and locked offers included, with all=true; a user with no history gets the regular offers", async () => {
    await upsertOffer(t.ctx, "r1e-off", anOffer({ active: false }));
    await upsertOffer(t.ctx, "r1e-locked", anOffer({ unlockedBy: ["r1e-x"] }));
    await upsertOffer(t.ctx, "r1e-on", anOffer());
    expect(await visible({ all: true }, "r1e-")).toEqual(["r1e-locked", "r1e-off", "r1e-on"]);
    expect(await visible({ userId: "r1e-newcomer" }, "r1e-")).toEqual(["r1e-on"]);
  });

  it("holds its properties over random catalogs and purchase histories, whatever the order offers were stored in", async () => {
    const groups = ["g1", "g2", "g3"];
    const anOfferSpec = fc.record({
      offerGroup: fc.constantFrom(...groups),
      unlockedBy: fc.subarray(groups, { maxLength: 2 }),
      // Biased toward collisions: most offers share a key and are active.
      overridingKey: fc.constantFrom<string | null>("k1", "k1", "k2", null),
      weight: fc.integer({ min: 0, max: 2 }),
      active: fc.constantFrom(true, true, true, false),
      tags: fc.subarray(["a", "b"]),
    });
    const aPurchase = fc.record({
      group: fc.constantFrom(...groups),
      daysAgo: fc.integer({ min: 0, max: 10 }),
      cycle: fc.constantFrom<OfferInput["cycle"]>("daily", "weekly"),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(anOfferSpec, { minLength: 2, maxLength: 6 }),
        fc.array(aPurchase, { minLength: 1, maxLength: 3 }),
        fc.array(fc.constantFrom("a", "b"), { maxLength: 2 }),
        fc.boolean(),
        fc.array(fc.integer(), { minLength: 6, maxLength: 6 }),
        async (specs, purchases, tags, allTags, sortKeys) => {
          const now = new Date("2026-06-20T00:00:00.000Z");
          const catalog = specs.map((spec, i) => ({ offerId: `o${i}`, spec, key: sortKeys[i]! }));
          const shuffled = [...catalog].sort((a, b) => a.key - b.key);
          const results: string[][] = [];
          for (const storageOrder of [catalog, shuffled]) {
            const { db } = await createTestDb("rules-prop");
            const clock = new ManualClock(now);
            const ctx: Context = { db, clock, payments: createManualProvider(), config: { defaultCurrency: "usd" }, logger: silentLogger };
            for (const { offerId, spec } of storageOrder) await upsertOffer(ctx, offerId, anOffer(spec));

            // The purchase history: each bought at its time from an offer of its group,
            // which is then withdrawn (inactive) so the generated catalog stays as it is.
            const unlocking = new Set<string>();
            for (const [i, purchase] of purchases.entries()) {
              const terms = anOffer({ offerGroup: purchase.group, cycle: purchase.cycle, tokenCount: 1 });
              clock.set(new Date(now.getTime() - purchase.daysAgo * 86_400_000));
              await upsertOffer(ctx, `buy-${i}`, terms);
              const { order } = await createOrder(ctx, { userId: "u", offerId: `buy-${i}` });
              const paid = await confirmManualOrder(ctx, "u", order.orderId);
              await upsertOffer(ctx, `buy-${i}`, { ...terms, active: false });
              if (Date.parse(paid.expires!) > now.getTime()) unlocking.add(purchase.group);
            }
            clock.set(now);

            const shown = await listOffers(ctx, { userId: "u", tags, allTags });
            results.push(shown.map((o) => o.offerId));
            // Never two offers of one overriding key; never a locked offer the history does not unlock.
            const keys = shown.map((o) => o.overridingKey).filter((k) => k !== null);
            expect(new Set(keys).size).toBe(keys.length);
            for (const offer of shown) if (offer.unlockedBy.length > 0) expect(offer.unlockedBy.some((g) => unlocking.has(g))).toBe(true);
            // The highest-weight candidate of each key is the one shown (before tags filter).
            const untagged = await listOffers(ctx, { userId: "u" });
            for (const key of ["k1", "k2"]) {
              const candidates = specs.filter(
                (s) => s.active && s.overridingKey === key && (s.unlockedBy.length === 0 || s.unlockedBy.some((g) => unlocking.has(g))),
              );
              if (candidates.length === 0) continue;
              expect(untagged.find((o) => o.overridingKey === key)?.weight).toBe(Math.max(...candidates.map((c) => c.weight)));
            }
          }
          expect(results[1]).toEqual(results[0]);
        },
      ),
      { numRuns: 20, seed: 20261123 },
    );
  });
});

describe("rule 2: buying a locked, inactive, unknown or replaced offer", () => {
  it("refuses a locked offer with 422 offer_locked, an inactive or unknown one with 404, and sells a replaced one", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r2-base", anOffer({ overridingKey: "r2", weight: 0 }));
    await upsertOffer(t.ctx, "r2-better", anOffer({ overridingKey: "r2", weight: 5, unlockedBy: ["r2-club"] }));
    await upsertOffer(t.ctx, "r2-club", anOffer({ offerGroup: "r2-club", tokenCount: 0 }));
    await upsertOffer(t.ctx, "r2-off", anOffer({ active: false }));
    await expect(createOrder(t.ctx, { userId: "r2-u", offerId: "r2-better" })).rejects.toMatchObject({ code: "offer_locked" });
    await expect(createOrder(t.ctx, { userId: "r2-u", offerId: "r2-off" })).rejects.toMatchObject({ code: "not_found" });
    await expect(createOrder(t.ctx, { userId: "r2-u", offerId: "r2-nope" })).rejects.toMatchObject({ code: "not_found" });
    await buy("r2-u", "r2-club");
    expect(await visible({ userId: "r2-u" }, "r2-b")).toEqual(["r2-better"]);
    expect((await createOrder(t.ctx, { userId: "r2-u", offerId: "r2-base" })).order.status).toBe("pending");
  });
});

describe("rule 3: quantity", () => {
  it("multiplies total and tokens; refuses above quantityLimit (422) and 0, negative, fractional (400)", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r3", anOffer({ tokenCount: 7, prices: [{ amount: 333, currency: "usd" }], quantityLimit: 3 }));
    const { order } = await createOrder(t.ctx, { userId: "r3", offerId: "r3", quantity: 3 });
    expect(order).toMatchObject({ total: { amount: 999, currency: "usd" }, tokens: 21, tokenCount: 7 });
    await expect(createOrder(t.ctx, { userId: "r3", offerId: "r3", quantity: 4 })).rejects.toMatchObject({ code: "quantity_limit_exceeded" });
    for (const quantity of [0, -2, 2.5]) {
      await expect(createOrder(t.ctx, { userId: "r3", offerId: "r3", quantity })).rejects.toMatchObject({ code: "validation_error" });
    }
  });
});

describe("rule 4: currency", () => {
  it("charges the price in the order's currency and refuses a currency the offer has no price in", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r4", anOffer({ prices: [{ amount: 1000, currency: "usd" }, { amount: 150, currency: "jpy" }] }));
    expect((await createOrder(t.ctx, { userId: "r4", offerId: "r4", currency: "jpy", quantity: 2 })).order.total).toEqual({ amount: 300, currency: "jpy" });
    await expect(createOrder(t.ctx, { userId: "r4", offerId: "r4", currency: "eur" })).rejects.toMatchObject({ code: "currency_not_offered" });
  });
});

describe("rule 5: dates", () => {
  it("clamps month ends, honours leap years, and counts a semester as 6 months", async () => {
    await upsertOffer(t.ctx, "r5-monthly", anOffer({ cycle: "monthly" }));
    await upsertOffer(t.ctx, "r5-semester", anOffer({ cycle: "semester" }));
    await upsertOffer(t.ctx, "r5-yearly", anOffer({ cycle: "yearly" }));
    t.clock.set("2027-01-31T12:00:00.000Z");
    expect((await buy("r5-dates", "r5-monthly")).expires).toBe("2027-02-28T12:00:00.000Z");
    t.clock.set("2028-01-31T12:00:00.000Z");
    expect((await buy("r5-dates", "r5-monthly")).expires).toBe("2028-02-29T12:00:00.000Z");
    t.clock.set("2027-08-31T00:00:00.000Z");
    expect((await buy("r5-dates", "r5-semester")).expires).toBe("2028-02-29T00:00:00.000Z");
    t.clock.set("2028-02-29T00:00:00.000Z");
    expect((await buy("r5-dates", "r5-yearly")).expires).toBe("2029-02-28T00:00:00.000Z");
    t.clock.set("2027-01-31T12:00:00.000Z");
    expect((await buy("r5-dates-q", "r5-monthly", { quantity: 2 })).expires).toBe("2027-03-31T12:00:00.000Z");
  });

  it("chains appended purchases after the latest expiry in the group, with appendDate false starting now", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r5-append", anOffer({ offerGroup: "r5-chain", cycle: "monthly", appendDate: true }));
    await upsertOffer(t.ctx, "r5-now", anOffer({ offerGroup: "r5-chain", cycle: "weekly", appendDate: false }));
    const first = await buy("r5-chain", "r5-append");
    const second = await buy("r5-chain", "r5-append", { quantity: 2 });
    const third = await buy("r5-chain", "r5-now");
    const fourth = await buy("r5-chain", "r5-append");
    expect([first, second, third, fourth].map((o) => [o.starts, o.expires])).toEqual([
      [NOW, "2026-04-10T09:00:00.000Z"],
      ["2026-04-10T09:00:00.000Z", "2026-06-10T09:00:00.000Z"],
      [NOW, "2026-03-17T09:00:00.000Z"],
      ["2026-06-10T09:00:00.000Z", "2026-07-10T09:00:00.000Z"],
    ]);
  });

  it("never chains after a `once` grant, and starts now when the latest expiry has passed", async () => {
    await upsertOffer(t.ctx, "r5-forever", anOffer({ offerGroup: "r5-once", cycle: "once" }));
    await upsertOffer(t.ctx, "r5-after", anOffer({ offerGroup: "r5-once", cycle: "daily", appendDate: true }));
    t.clock.set(NOW);
    await buy("r5-once", "r5-forever");
    expect((await buy("r5-once", "r5-after")).starts).toBe(NOW);
    t.clock.set("2026-03-20T00:00:00.000Z");
    expect((await buy("r5-once", "r5-after")).starts).toBe("2026-03-20T00:00:00.000Z");
  });

  it("refuses an explicit start in the past, keeps a future one, and starts at confirmation when it has passed by then", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r5-start", anOffer({ cycle: "daily" }));
    await expect(createOrder(t.ctx, { userId: "r5-start", offerId: "r5-start", starts: "2026-03-10T08:59:59.999Z" })).rejects.toMatchObject({ code: "start_in_past" });
    expect((await buy("r5-start", "r5-start", { starts: "2026-03-12T00:00:00.000Z" })).starts).toBe("2026-03-12T00:00:00.000Z");
    const { order } = await createOrder(t.ctx, { userId: "r5-start", offerId: "r5-start", starts: "2026-03-11T00:00:00.000Z" });
    t.clock.set("2026-03-11T06:00:00.000Z");
    const paid = await confirmManualOrder(t.ctx, "r5-start", order.orderId);
    expect(paid.starts).toBe("2026-03-11T06:00:00.000Z");
    expect(paid.history.some((h) => h.message.startsWith("requested start 2026-03-11T00:00:00.000Z had passed"))).toBe(true);
  });

  it("never shortens an existing grant and adds its tokens whatever the balance, debt included", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r5-long", anOffer({ offerGroup: "r5-keep", cycle: "yearly", tokenCount: 10 }));
    await upsertOffer(t.ctx, "r5-short", anOffer({ offerGroup: "r5-keep", cycle: "daily", tokenCount: 10 }));
    const { consume } = await import("../../core/consumption.js");
    await buy("r5-keep", "r5-long");
    await consume(t.ctx, { userId: "r5-keep", offerGroup: "r5-keep", tokens: 15, allowOverdraft: true });
    await buy("r5-keep", "r5-short");
    const group = (await getCredits(t.ctx, "r5-keep")).groups[0]!;
    expect(group).toMatchObject({ balance: 5, debt: 0, expires: "2027-03-10T09:00:00.000Z" });
  });
});

describe("rule 6: bundles", () => {
  it("pays the original's worked example (ORIGINAL-BEHAVIOUR.md §3.3), recomputed under these rules", async () => {
    t.clock.set(NOW);
    // The bundled offers: calls (monthly, 60 tokens, appendDate) and data (500 tokens, no appendDate).
    await upsertOffer(t.ctx, "r6-calls", anOffer({ offerGroup: "r6-calls", cycle: "monthly", tokenCount: 60, appendDate: true }));
    await upsertOffer(t.ctx, "r6-data", anOffer({ offerGroup: "r6-data", cycle: "monthly", tokenCount: 500, appendDate: false }));
    // The root: weekly, no appendDate, 1 token; 20 calls units and 2 data units per unit.
    await upsertOffer(
      t.ctx,
      "r6-root",
      anOffer({
        offerGroup: "r6-root",
        cycle: "weekly",
        tokenCount: 1,
        appendDate: false,
        combinedItems: [
          { offerId: "r6-calls", quantity: 20 },
          { offerId: "r6-data", quantity: 2 },
        ],
      }),
    );
    // The calls group already holds 1000 tokens of a paid grant expiring now + 7 months.
    await upsertOffer(t.ctx, "r6-calls-1000", anOffer({ offerGroup: "r6-calls", cycle: "monthly", tokenCount: 1000 }));
    const earlier = await buy("r6", "r6-calls-1000", { starts: "2026-09-10T09:00:00.000Z" });
    expect(earlier.expires).toBe("2026-10-10T09:00:00.000Z");

    const order = await buy("r6", "r6-root", { quantity: 2 });
    // Root: 1 × 2 = 2 tokens, now -> now + 2 weeks.
    expect(order).toMatchObject({ tokens: 2, starts: "2026-03-10T09:00:00.000Z", expires: "2026-03-24T09:00:00.000Z" });
    expect(order.combinedItems).toEqual([
      // calls: 20 × 2 × 60 = 2400 tokens, chained after the group's latest expiry (now + 7 months),
      // lasting the root's cycle × order quantity (2 weeks).
      expect.objectContaining({ offerId: "r6-calls", tokens: 2400, starts: "2026-10-10T09:00:00.000Z", expires: "2026-10-24T09:00:00.000Z" }),
      // data: 2 × 2 × 500 = 2000 tokens, the root's dates.
      expect.objectContaining({ offerId: "r6-data", tokens: 2000, starts: "2026-03-10T09:00:00.000Z", expires: "2026-03-24T09:00:00.000Z" }),
    ]);
    const balances = Object.fromEntries((await getCredits(t.ctx, "r6")).groups.map((g) => [g.offerGroup, g.balance]));
    expect(balances).toEqual({ "r6-calls": 3400, "r6-data": 2000, "r6-root": 2 });
    const purchases = (await listLedger(t.ctx, "r6", { limit: 10 })).entries.filter((e) => e.orderId === order.orderId);
    expect(purchases.map((e) => [e.reason, e.offerGroup, e.tokens])).toEqual([
      ["purchase", "r6-root", 2],
      ["purchase", "r6-calls", 2400],
      ["purchase", "r6-data", 2000],
    ]);
  });

  it("gives a 0-token bundle root its own grant, which unlocks and counts as the subscription", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r6b-item", anOffer({ offerGroup: "r6b-item", tokenCount: 3 }));
    await upsertOffer(t.ctx, "r6b-root", anOffer({ offerGroup: "r6b-root", tokenCount: 0, combinedItems: [{ offerId: "r6b-item", quantity: 1 }] }));
    const order = await buy("r6b", "r6b-root");
    expect((await getCredits(t.ctx, "r6b")).groups.map((g) => [g.offerGroup, g.balance, g.grants.length])).toEqual([
      ["r6b-item", 3, 1],
      ["r6b-root", 0, 1],
    ]);
    expect(await checkSubscription(t.ctx, "r6b", "r6b-root")).toMatchObject({ subscribed: true, order: { orderId: order.orderId } });
  });
});

describe("rule 7: subscription check", () => {
  it("is true while a paid order of the offer has an active grant, false before payment and after expiry", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r7", anOffer({ offerGroup: "r7", cycle: "daily", tokenCount: 0 }));
    const { order } = await createOrder(t.ctx, { userId: "r7", offerId: "r7" });
    expect((await checkSubscription(t.ctx, "r7", "r7")).subscribed).toBe(false);
    await confirmManualOrder(t.ctx, "r7", order.orderId);
    expect((await checkSubscription(t.ctx, "r7", "r7")).subscribed).toBe(true);
    t.clock.set("2026-03-11T09:00:00.000Z");
    expect(await checkSubscription(t.ctx, "r7", "r7")).toEqual({ subscribed: false, order: null });
  });
});

describe("rule 8: free offers", () => {
  it("are paid at creation and cannot be stacked while active; a monthly free tier can be taken again once expired", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "r8", anOffer({ prices: [{ amount: 0, currency: "usd" }], tokenCount: 10 }));
    expect((await createOrder(t.ctx, { userId: "r8", offerId: "r8" })).order.status).toBe("paid");
    await expect(createOrder(t.ctx, { userId: "r8", offerId: "r8" })).rejects.toMatchObject({ code: "already_subscribed" });
    t.clock.set("2026-04-10T09:00:00.000Z");
    expect((await createOrder(t.ctx, { userId: "r8", offerId: "r8" })).order.status).toBe("paid");
    expect((await getCredits(t.ctx, "r8")).groups[0]!.balance).toBe(10);
  });
});
