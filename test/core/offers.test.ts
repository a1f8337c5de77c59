/**
 * The offer catalog (core/offers.ts) on DynamoDB Local: upsert, read, the whole
 * catalog, and what a user sees (visibility rules: core/rules/visibility.ts, tested
 * exhaustively in test/core/rules/visibility.test.ts).
 */
import { describe, expect, it } from "vitest";
import { getOffer, listOffers, upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "offers" });

describe("upsertOffer", () => {
  it("creates an offer, then replaces its terms and keeps its creation date", async () => {
    t.clock.set("2026-02-01T00:00:00.000Z");
    const created = await upsertOffer(t.ctx, "calls-60", anOffer({ tokenCount: 60, tags: ["calls"] }));
    expect(created).toMatchObject({ offerId: "calls-60", tokenCount: 60, customCycleSeconds: null, quantityLimit: null, overridingKey: null });
    t.clock.set("2026-02-02T00:00:00.000Z");
    await upsertOffer(t.ctx, "calls-60", anOffer({ tokenCount: 61 }));
    expect(await getOffer(t.ctx, "calls-60")).toMatchObject({
      tokenCount: 61,
      tags: [],
      createdAt: "2026-02-01T00:00:00.000Z",
      updatedAt: "2026-02-02T00:00:00.000Z",
    });
  });

  it("refuses bundle items that do not exist, are bundles, or are the offer itself, naming the field", async () => {
    await upsertOffer(t.ctx, "item", anOffer());
    await upsertOffer(t.ctx, "inner-bundle", anOffer({ combinedItems: [{ offerId: "item", quantity: 1 }] }));
    await expect(
      upsertOffer(
        t.ctx,
        "outer",
        anOffer({
          combinedItems: [
            { offerId: "missing", quantity: 1 },
            { offerId: "inner-bundle", quantity: 1 },
            { offerId: "outer", quantity: 1 },
          ],
        }),
      ),
    ).rejects.toMatchObject({
      code: "validation_error",
      details: {
        "combinedItems[0].offerId": "no such offer",
        "combinedItems[1].offerId": "bundles cannot be nested",
        "combinedItems[2].offerId": "a bundle cannot contain itself",
      },
    });
    await expect(getOffer(t.ctx, "outer")).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("listOffers", () => {
  it("shows regular offers to anyone, unlocked ones to subscribers, the whole catalog with all", async () => {
    t.clock.set("2026-02-01T00:00:00.000Z");
    await upsertOffer(t.ctx, "v-starter", anOffer({ offerGroup: "v-starter", tokenCount: 0, tags: ["sub"] }));
    await upsertOffer(t.ctx, "v-regular", anOffer({ overridingKey: "v-credits", tags: ["credits"] }));
    await upsertOffer(t.ctx, "v-discount", anOffer({ overridingKey: "v-credits", weight: 1, unlockedBy: ["v-starter"], tags: ["credits"] }));
    await upsertOffer(t.ctx, "v-retired", anOffer({ active: false, tags: ["credits"] }));

    const ids = async (query: Parameters<typeof listOffers>[1]) =>
      (await listOffers(t.ctx, query)).map((o) => o.offerId).filter((id) => id.startsWith("v-"));
    expect(await ids({})).toEqual(["v-regular", "v-starter"]);
    expect(await ids({ userId: "v-newcomer" })).toEqual(["v-regular", "v-starter"]);
    expect(await ids({ tags: ["credits"] })).toEqual(["v-regular"]);

    const { order } = await createOrder(t.ctx, { userId: "v-subscriber", offerId: "v-starter" });
    await confirmManualOrder(t.ctx, "v-subscriber", order.orderId);
    expect(await ids({ userId: "v-subscriber" })).toEqual(["v-discount", "v-starter"]);
    expect(await ids({ userId: "v-subscriber", tags: ["credits", "sub"], allTags: true })).toEqual([]);
    expect(await ids({ all: true })).toEqual(["v-discount", "v-regular", "v-retired", "v-starter"]);

    t.clock.set("2026-03-02T00:00:00.000Z");
    expect(await ids({ userId: "v-subscriber" })).toEqual(["v-regular", "v-starter"]);
  });
});
