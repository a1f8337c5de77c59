/**
 * The stored low-balance latch on DynamoDB Local (core/rules/low-balance.ts; API.md
 * "Events": a warning fires once per crossing; only purchases and grants re-arm it, so
 * holds flapping around the threshold raise one event): holds and commits that cross
 * raise `credits.low_balance` in their own transaction and set the latch; releases,
 * commits of less than held and expired holds lift the balance without re-arming; a
 * purchase or a promotional grant re-arms; concurrent crossings raise one event; a
 * purchase landing between a crossing consumption's read and its write is never lost.
 * The ledger invariants are checked after each test (test/helpers/context.ts).
 *
 * Not here: a reversal lifting the balance above the threshold (core/reversals.ts is not
 * in this checkout); the pure rule is in test/core/rules/holds.test.ts.
 */
import { describe, expect, it } from "vitest";
import { readBalance } from "../../core/balances.js";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { listEvents, type ServiceEvent } from "../../core/events.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { putOfferGroup } from "../../core/offer-groups.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { commitHold, createHold, releaseHold } from "../../core/reservations.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "low-balance" });
const NOW = "2026-05-01T00:00:00.000Z";
const GROUP = "lbl";
const THRESHOLD = 50;

async function setUp(userId: string, tokens: number, expires: string | null = null): Promise<void> {
  t.clock.set(NOW);
  await putOfferGroup(t.ctx, GROUP, { lowBalanceThreshold: THRESHOLD, expiryWarningDays: 7 });
  await createPromotionalGrant(t.ctx, { userId, offerGroup: GROUP, tokens, expires });
}

async function lowBalanceEvents(userId: string): Promise<ServiceEvent[]> {
  return (await listEvents(t.ctx, userId, { limit: 100 })).events.filter((event) => event.type === "credits.low_balance");
}

async function latched(userId: string): Promise<boolean> {
  return (await readBalance(t.ctx, userId, GROUP)).lowBalanceLatched === true;
}

const hold = (userId: string, tokens: number, ttlSeconds?: number) => createHold(t.ctx, { userId, offerGroup: GROUP, tokens, ttlSeconds });
const spend = (userId: string, tokens: number) => consume(t.ctx, { userId, offerGroup: GROUP, tokens });
const release = (userId: string, reservationId: string) => releaseHold(t.ctx, { userId, reservationId });

/** Pays a manual order of `tokens` tokens of the group (a purchase). */
async function purchase(userId: string, tokens: number): Promise<void> {
  await upsertOffer(t.ctx, `pack-${tokens}`, anOffer({ offerGroup: GROUP, tokenCount: tokens, cycle: "monthly" }));
  const { order } = await createOrder(t.ctx, { userId, offerId: `pack-${tokens}` });
  await confirmManualOrder(t.ctx, userId, order.orderId);
}

describe("holds and the low-balance latch", () => {
  it("a hold that crosses raises one event in its own transaction (one read, one transaction) and sets the latch", async () => {
    await setUp("lb-h1", 100);
    await hold("lb-h1", 40); // 60: above
    expect(await lowBalanceEvents("lb-h1")).toEqual([]);
    expect(await latched("lb-h1")).toBe(false);
    t.requests.reset();
    await hold("lb-h1", 10); // 50: crossed
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    expect(await lowBalanceEvents("lb-h1")).toEqual([
      { eventId: expect.any(String), type: "credits.low_balance", userId: "lb-h1", offerGroup: GROUP, balance: 50, createdAt: NOW },
    ]);
    expect(await latched("lb-h1")).toBe(true);
  });

  it("hold/release flapping around the threshold raises exactly one event; releases, commits of less and expiry do not re-arm", async () => {
    await setUp("lb-h2", 60);
    for (let round = 0; round < 5; round++) {
      const reservation = await hold("lb-h2", 20); // 40
      await release("lb-h2", reservation.reservationId); // 60
    }
    expect(await lowBalanceEvents("lb-h2")).toMatchObject([{ balance: 40 }]);
    // A consumption after a release back above the threshold does not raise again.
    await spend("lb-h2", 15); // 60 -> 45
    await createPromotionalGrant(t.ctx, { userId: "lb-h2", offerGroup: GROUP, tokens: 15, expires: null }); // 60, re-armed
    const second = await hold("lb-h2", 20); // 40: crossed again
    expect(await lowBalanceEvents("lb-h2")).toMatchObject([{ balance: 40 }, { balance: 40 }]);
    await release("lb-h2", second.reservationId); // 60, latched
    // An expired hold released by the next request does not re-arm: that request crosses silently.
    await hold("lb-h2", 30, 1); // 30
    t.clock.set("2026-05-01T00:00:02.000Z");
    const third = await hold("lb-h2", 25); // the expired one released (60), then 35
    expect((await getCredits(t.ctx, "lb-h2")).groups[0]).toMatchObject({ balance: 35, held: 25 });
    // Nor does a commit of less than held.
    await commitHold(t.ctx, { userId: "lb-h2", reservationId: third.reservationId, tokens: 5 }); // 55
    await spend("lb-h2", 10); // 45
    expect((await getCredits(t.ctx, "lb-h2")).groups[0]).toMatchObject({ balance: 45, held: 0 });
    expect(await lowBalanceEvents("lb-h2")).toHaveLength(2);
    expect(await latched("lb-h2")).toBe(true);
  });

  it("a purchase or a promotional grant re-arms it, whatever the balance it leaves; a commit using more than held can cross", async () => {
    await setUp("lb-h3", 60, "2026-05-20T00:00:00.000Z");
    const first = await hold("lb-h3", 20); // 40: event 1
    await release("lb-h3", first.reservationId); // 60, still latched
    await purchase("lb-h3", 2); // 62
    expect(await latched("lb-h3")).toBe(false);
    const second = await hold("lb-h3", 20); // 42: event 2
    expect(await lowBalanceEvents("lb-h3")).toMatchObject([{ balance: 40 }, { balance: 42 }]);
    await release("lb-h3", second.reservationId); // 62
    await spend("lb-h3", 20); // 42: latched, nothing
    await createPromotionalGrant(t.ctx, { userId: "lb-h3", offerGroup: GROUP, tokens: 3, expires: null }); // 45: re-armed, still low
    expect(await latched("lb-h3")).toBe(false);
    await spend("lb-h3", 1); // 44: was not above, nothing
    expect(await lowBalanceEvents("lb-h3")).toHaveLength(2);
    await createPromotionalGrant(t.ctx, { userId: "lb-h3", offerGroup: GROUP, tokens: 20, expires: null }); // 64
    const third = await hold("lb-h3", 10); // 54: above
    // The commit uses 20, 10 more than held: 54 -> 44 crosses; the threshold is read only now (one GetItem).
    t.requests.reset();
    const committed = await commitHold(t.ctx, { userId: "lb-h3", reservationId: third.reservationId, tokens: 20 });
    expect(t.requests.byCommand).toEqual({ QueryCommand: 1, GetItemCommand: 1, TransactWriteItemsCommand: 1 });
    expect(committed.balance).toBe(44);
    expect(await lowBalanceEvents("lb-h3")).toMatchObject([{ balance: 40 }, { balance: 42 }, { balance: 44 }]);
    expect(await latched("lb-h3")).toBe(true);
  });
});

describe("concurrency", () => {
  it("holds and consumptions crossing at the same moment raise exactly one event", async () => {
    await setUp("lb-c1", 100);
    await Promise.all(
      Array.from({ length: 12 }, (_, index) => (index % 2 === 0 ? hold("lb-c1", 5) : spend("lb-c1", 5))),
    );
    expect((await getCredits(t.ctx, "lb-c1")).groups[0]).toMatchObject({ balance: 40, held: 30 });
    const events = await lowBalanceEvents("lb-c1");
    expect(events).toHaveLength(1);
    expect(events[0]!.balance).toBe(THRESHOLD); // every step is 5 tokens: the crossing one lands on 50
    expect(await latched("lb-c1")).toBe(true);
  });

  it("a purchase landing between a crossing consumption's read and its write re-arms it: the consumption re-plans and raises", async () => {
    // The drawn grant expires first, so the purchase's grant sorts after it in the map: the
    // consumption's guarded draw still finds its grant in place, and the balance (62) is
    // still in its crossing range (50, 65]; only the latch condition makes it re-plan.
    await setUp("lb-c2", 60, "2026-05-20T00:00:00.000Z");
    await release("lb-c2", (await hold("lb-c2", 20)).reservationId); // event 1; 60, latched
    await upsertOffer(t.ctx, "pack-2", anOffer({ offerGroup: GROUP, tokenCount: 2, cycle: "monthly" }));
    const { order } = await createOrder(t.ctx, { userId: "lb-c2", offerId: "pack-2" });

    let armed = true;
    const transactions: string[] = [];
    t.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "TransactWriteItemsCommand") {
          transactions.push(armed ? "consumption" : "other");
          if (armed) {
            armed = false;
            await confirmManualOrder(t.ctx, "lb-c2", order.orderId); // the purchase goes first
          }
        }
        return next(args);
      },
      { step: "initialize", name: "purchaseBeforeWrite" },
    );
    try {
      const result = await spend("lb-c2", 15); // planned on 60, latched: no event; written on 62, re-armed
      expect(result.balance).toBe(47);
    } finally {
      t.client.middlewareStack.remove("purchaseBeforeWrite");
    }
    expect(transactions).toEqual(["consumption", "other", "other"]); // its first write, the purchase, its second write
    expect(await lowBalanceEvents("lb-c2")).toMatchObject([{ balance: 40 }, { balance: 47 }]);
    expect(await latched("lb-c2")).toBe(true);
  });
});
