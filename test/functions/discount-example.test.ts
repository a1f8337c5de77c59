/**
 * The original's discount example (reference/original-intro-article.md), through the
 * HTTP API: "10 AI credits" cost 10.00 usd; "Starter" subscribers get them 30% off
 * (weight 1), "Early adopter" subscribers 50% off (weight 2); the three offers share the
 * overridingKey "10_AI_Credits". What an anonymous visitor, a Starter, an Early adopter
 * and a user holding both see and may buy, and what changes when a subscription expires.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../core/clock.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { createTestDb } from "../helpers/db.js";
import { invariantViolations } from "../helpers/invariants.js";
import { invoke, type ApiRequest } from "../helpers/gateway.js";

const KEY = "discount-example-key";
const clock = new ManualClock("2026-09-01T10:00:00.000Z");
let offers: typeof import("../../functions/offers.js");
let orders: typeof import("../../functions/orders.js");
let table: Awaited<ReturnType<typeof createTestDb>>;

beforeAll(async () => {
  table = await createTestDb("discount");
  const { tableName, endpoint } = table;
  setRuntime(buildRuntime({ apiKeys: [KEY], defaultCurrency: "usd", tableName, dynamoEndpoint: endpoint }, clock));
  offers = await import("../../functions/offers.js");
  orders = await import("../../functions/orders.js");

  const catalog: Record<string, object> = {
    starter: { name: "Starter", kind: "subscription", offerGroup: "starter", cycle: "monthly", tokenCount: 0, prices: [{ amount: 500, currency: "usd" }], tags: ["plan"] },
    "early-adopter": { name: "Early adopter", kind: "subscription", offerGroup: "early-adopter", cycle: "weekly", tokenCount: 0, prices: [{ amount: 900, currency: "usd" }], tags: ["plan"] },
    "ai-10": { name: "10 AI credits", offerGroup: "ai", cycle: "once", tokenCount: 10, prices: [{ amount: 1000, currency: "usd" }], overridingKey: "10_AI_Credits", tags: ["ai"] },
    "ai-10-starter": { name: "10 AI credits, 30% off", offerGroup: "ai", cycle: "once", tokenCount: 10, prices: [{ amount: 700, currency: "usd" }], overridingKey: "10_AI_Credits", weight: 1, unlockedBy: ["starter"], tags: ["ai"] },
    "ai-10-early": { name: "10 AI credits, 50% off", offerGroup: "ai", cycle: "once", tokenCount: 10, prices: [{ amount: 500, currency: "usd" }], overridingKey: "10_AI_Credits", weight: 2, unlockedBy: ["early-adopter"], tags: ["ai"] },
  };
  for (const [offerId, body] of Object.entries(catalog)) {
    expect((await api(offers, { method: "PUT", path: `/offers/${offerId}`, body })).status).toBe(200);
  }
  await subscribe("sam", "starter");
  await subscribe("eve", "early-adopter");
  await subscribe("bea", "starter");
  await subscribe("bea", "early-adopter");
});
afterAll(() => setRuntime(undefined));
afterEach(async () => expect(await invariantViolations(table.client, table.tableName)).toEqual([]));

function api(fn: { handler: any }, request: ApiRequest) {
  return invoke(fn.handler, { ...request, headers: { authorization: `Bearer ${KEY}`, ...request.headers } });
}

/** Buys a subscription (manual provider: create, then confirm). */
async function subscribe(userId: string, offerId: string) {
  const created = await api(orders, { method: "POST", path: `/users/${userId}/orders`, body: { offerId } });
  expect(created.status).toBe(201);
  const confirmed = await api(orders, { method: "POST", path: `/users/${userId}/orders/${created.body.order.orderId}/confirm` });
  expect(confirmed.body.status).toBe("paid");
}

/** The AI credit offers the user sees (`GET /offers?userId=&tags=ai`), as `offerId @ price`. */
async function aiOffersFor(userId?: string) {
  const query = userId ? `?userId=${userId}&tags=ai` : "?tags=ai";
  const response = await api(offers, { method: "GET", path: `/offers${query}` });
  expect(response.status).toBe(200);
  return response.body.offers.map((o: any) => `${o.offerId} @ ${o.prices[0].amount}`);
}

/** The status of buying `offerId` (201, or the error code). */
async function tryToBuy(userId: string, offerId: string) {
  const response = await api(orders, { method: "POST", path: `/users/${userId}/orders`, body: { offerId } });
  return response.status === 201 ? `201 total ${response.body.order.total.amount}` : `${response.status} ${response.body.error.code}`;
}

describe("the 10_AI_Credits discount", () => {
  it("shows an anonymous visitor, and a user with no history, the full price; the discounts are locked", async () => {
    expect(await aiOffersFor()).toEqual(["ai-10 @ 1000"]);
    expect(await aiOffersFor("anne")).toEqual(["ai-10 @ 1000"]);
    const all = await api(offers, { method: "GET", path: "/offers" });
    expect(all.body.offers.map((o: any) => o.offerId)).toEqual(["ai-10", "early-adopter", "starter"]);
    expect(await tryToBuy("anne", "ai-10")).toBe("201 total 1000");
    expect(await tryToBuy("anne", "ai-10-starter")).toBe("422 offer_locked");
    expect(await tryToBuy("anne", "ai-10-early")).toBe("422 offer_locked");
  });

  it("shows a Starter 30% off instead of the full price; the full price stays buyable, the 50% stays locked", async () => {
    expect(await aiOffersFor("sam")).toEqual(["ai-10-starter @ 700"]);
    expect(await tryToBuy("sam", "ai-10-starter")).toBe("201 total 700");
    expect(await tryToBuy("sam", "ai-10")).toBe("201 total 1000");
    expect(await tryToBuy("sam", "ai-10-early")).toBe("422 offer_locked");
  });

  it("shows an Early adopter 50% off", async () => {
    expect(await aiOffersFor("eve")).toEqual(["ai-10-early @ 500"]);
    expect(await tryToBuy("eve", "ai-10-early")).toBe("201 total 500");
    expect(await tryToBuy("eve", "ai-10-starter")).toBe("422 offer_locked");
  });

  it("gives a user holding both the heavier discount, while both remain buyable", async () => {
    expect(await aiOffersFor("bea")).toEqual(["ai-10-early @ 500"]);
    expect(await tryToBuy("bea", "ai-10-early")).toBe("201 total 500");
    expect(await tryToBuy("bea", "ai-10-starter")).toBe("201 total 700");
  });

  it("falls back when the Early adopter subscription (weekly) expires: to 30% for a Starter, to full price otherwise", async () => {
    clock.set("2026-09-08T10:00:00.000Z");
    expect(await aiOffersFor("bea")).toEqual(["ai-10-starter @ 700"]);
    expect(await aiOffersFor("eve")).toEqual(["ai-10 @ 1000"]);
    expect(await tryToBuy("eve", "ai-10-early")).toBe("422 offer_locked");
    clock.set("2026-10-01T10:00:01.000Z");
    expect(await aiOffersFor("bea")).toEqual(["ai-10 @ 1000"]);
    expect(await aiOffersFor("sam")).toEqual(["ai-10 @ 1000"]);
  });
});
