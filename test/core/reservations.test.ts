/**
 * Reservations (core/reservations.ts) on DynamoDB Local: hold, commit (less, exact,
 * more, more than available), release (twice, after a commit), expiry (commit after it,
 * released by the next consumption or credits read), idempotency keys, held grants kept
 * on the balance item, tokens released into an expired grant, and the DynamoDB requests
 * of each operation. The ledger invariants (test/helpers/invariants.ts, holds included)
 * are checked after each test.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { describe, expect, it } from "vitest";
import { readBalance } from "../../core/balances.js";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { hashRequest, type IdempotentRequest } from "../../core/idempotency.js";
import { listLedger } from "../../core/ledger.js";
import { MAX_HOLDS } from "../../core/balances.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { refundOrder } from "../../core/refunds.js";
import { commitHold, createHold, listHolds, releaseHold } from "../../core/reservations.js";
import { retryStats } from "../../core/retry.js";
import { anOffer } from "../helpers/factories.js";
import { useIntegrationContext } from "../helpers/context.js";

const t = useIntegrationContext({ label: "reservations" });
const NOW = "2026-03-10T12:00:00.000Z";
const LATER = "2026-06-01T00:00:00.000Z";

async function grant(userId: string, tokens: number, expires: string | null = LATER) {
  return createPromotionalGrant(t.ctx, { userId, offerGroup: "calls", tokens, expires });
}

async function group(userId: string) {
  return (await getCredits(t.ctx, userId)).groups.find((g) => g.offerGroup === "calls")!;
}

async function ledger(userId: string) {
  return (await listLedger(t.ctx, userId, { limit: 1000 })).entries;
}

function key(scope: string, value: string, body: unknown): IdempotentRequest {
  return { scope, key: value, requestHash: hashRequest(body) };
}

const hold = (userId: string, tokens: number, ttlSeconds?: number) => createHold(t.ctx, { userId, offerGroup: "calls", tokens, ttlSeconds });

describe("holds", () => {
  it("draws the tokens at once: balance down, held up, a hold entry with its draws", async () => {
    t.clock.set(NOW);
    const g = await grant("h1", 100);
    const reservation = await createHold(t.ctx, { userId: "h1", offerGroup: "calls", tokens: 30, metadata: { call: "c1" } });
    expect(reservation).toMatchObject({ status: "held", tokens: 30, offerGroup: "calls", draws: [{ grantId: g.grantId, tokens: 30 }], metadata: { call: "c1" } });
    expect(reservation.expires).toBe("2026-03-10T12:05:00.000Z");
    expect(await group("h1")).toMatchObject({ balance: 70, held: 30, debt: 0 });
    const entries = await ledger("h1");
    expect(entries.at(-1)).toMatchObject({ reason: "hold", tokens: -30, reservationId: reservation.reservationId, draws: [{ grantId: g.grantId, tokens: 30 }] });
    expect((await listHolds(t.ctx, "h1", { limit: 10, status: "held" })).reservations.map((r) => r.reservationId)).toEqual([reservation.reservationId]);
  });

  it("refuses a hold the balance cannot cover with 402 and holds nothing", async () => {
    t.clock.set(NOW);
    await grant("h2", 10);
    await expect(hold("h2", 11)).rejects.toMatchObject({ code: "insufficient_credits" });
    expect(await group("h2")).toMatchObject({ balance: 10, held: 0 });
    expect((await listHolds(t.ctx, "h2", { limit: 10 })).reservations).toEqual([]);
  });

  it("refuses a ttl outside 1..86400", async () => {
    t.clock.set(NOW);
    await grant("h3", 10);
    await expect(hold("h3", 1, 86_401)).rejects.toMatchObject({ code: "validation_error" });
    await expect(hold("h3", 1, 0)).rejects.toMatchObject({ code: "validation_error" });
  });
});

describe("commit", () => {
  it("commits less than held: release of the whole hold, consume of what was used", async () => {
    t.clock.set(NOW);
    const g = await grant("c1", 100);
    const r = await hold("c1", 30);
    const result = await commitHold(t.ctx, { userId: "c1", reservationId: r.reservationId, tokens: 20, metadata: { model: "m" } });
    expect(result.reservation).toMatchObject({ status: "committed", committedTokens: 20 });
    expect(result.entry).toMatchObject({ reason: "consume", tokens: -20, reservationId: r.reservationId, draws: [{ grantId: g.grantId, tokens: 20 }], metadata: { model: "m" } });
    expect(result.balance).toBe(80);
    expect(await group("c1")).toMatchObject({ balance: 80, held: 0 });
    const own = (await ledger("c1")).filter((e) => e.reservationId === r.reservationId).map((e) => [e.reason, e.tokens]);
    expect(own).toEqual([["hold", -30], ["release", 30], ["consume", -20]]);
    expect((await listHolds(t.ctx, "c1", { limit: 10 })).reservations[0]).toMatchObject({ status: "committed", committedTokens: 20 });
  });

  it("commits exactly what was held", async () => {
    t.clock.set(NOW);
    await grant("c2", 100);
    const r = await hold("c2", 30);
    expect((await commitHold(t.ctx, { userId: "c2", reservationId: r.reservationId, tokens: 30 })).balance).toBe(70);
    expect(await group("c2")).toMatchObject({ balance: 70, held: 0 });
  });

  it("commits more than held: the extra is drawn like a consumption", async () => {
    t.clock.set(NOW);
    const soon = await grant("c3", 30, "2026-04-01T00:00:00.000Z");
    const late = await grant("c3", 100);
    const r = await hold("c3", 20);
    const result = await commitHold(t.ctx, { userId: "c3", reservationId: r.reservationId, tokens: 50 });
    expect(result.entry.draws).toEqual([
      { grantId: soon.grantId, tokens: 30 },
      { grantId: late.grantId, tokens: 20 },
    ]);
    expect(await group("c3")).toMatchObject({ balance: 80, held: 0 });
  });

  it("refuses a commit of more than available with 402, and the hold stays", async () => {
    t.clock.set(NOW);
    await grant("c4", 100);
    const r = await hold("c4", 30);
    await expect(commitHold(t.ctx, { userId: "c4", reservationId: r.reservationId, tokens: 131 })).rejects.toMatchObject({ code: "insufficient_credits" });
    expect(await group("c4")).toMatchObject({ balance: 70, held: 30 });
    // With overdraft, the rest becomes debt.
    const result = await commitHold(t.ctx, { userId: "c4", reservationId: r.reservationId, tokens: 131, allowOverdraft: true });
    expect(result.entry).toMatchObject({ tokens: -131, debt: 31 });
    expect(await group("c4")).toMatchObject({ balance: -31, held: 0, debt: 31 });
  });

  it("refuses a second commit with 409 conflict, and answers the same under the same key", async () => {
    t.clock.set(NOW);
    await grant("c5", 100);
    const r = await hold("c5", 30);
    const body = { reservationId: r.reservationId, tokens: 10 };
    const idempotency = key("reservations.commit", "k-commit", body);
    const first = await commitHold(t.ctx, { userId: "c5", ...body, idempotency });
    expect(await commitHold(t.ctx, { userId: "c5", ...body, idempotency })).toEqual(first);
    await expect(commitHold(t.ctx, { userId: "c5", ...body })).rejects.toMatchObject({ code: "conflict" });
    await expect(commitHold(t.ctx, { userId: "c5", ...body, idempotency: key("reservations.commit", "k-commit", { ...body, tokens: 11 }) })).rejects.toMatchObject({
      code: "idempotency_conflict",
    });
    expect(await group("c5")).toMatchObject({ balance: 90, held: 0 });
  });

  it("refuses a commit after expiry with 409 reservation_expired, and releases the hold", async () => {
    t.clock.set(NOW);
    await grant("c6", 100);
    const r = await hold("c6", 30, 60);
    t.clock.set("2026-03-10T12:01:00.000Z");
    await expect(commitHold(t.ctx, { userId: "c6", reservationId: r.reservationId, tokens: 10 })).rejects.toMatchObject({ code: "reservation_expired" });
    expect(await group("c6")).toMatchObject({ balance: 100, held: 0 });
    await expect(commitHold(t.ctx, { userId: "c6", reservationId: r.reservationId, tokens: 10 })).rejects.toMatchObject({ code: "reservation_expired" });
    expect((await listHolds(t.ctx, "c6", { limit: 10 })).reservations[0]).toMatchObject({ status: "expired" });
    expect((await ledger("c6")).filter((e) => e.reservationId === r.reservationId).map((e) => e.reason)).toEqual(["hold", "release"]);
  });

  it("answers 404 for an unknown reservation", async () => {
    t.clock.set(NOW);
    await grant("c7", 10);
    await expect(commitHold(t.ctx, { userId: "c7", reservationId: "01NOPE", tokens: 1 })).rejects.toMatchObject({ code: "not_found" });
    await expect(releaseHold(t.ctx, { userId: "c7", reservationId: "01NOPE" })).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("release", () => {
  it("gives every held token back; a second release answers the same and changes nothing", async () => {
    t.clock.set(NOW);
    await grant("r1", 100);
    const r = await hold("r1", 30);
    const released = await releaseHold(t.ctx, { userId: "r1", reservationId: r.reservationId });
    expect(released).toMatchObject({ status: "released", tokens: 30 });
    expect(await group("r1")).toMatchObject({ balance: 100, held: 0 });
    const before = await ledger("r1");
    expect(await releaseHold(t.ctx, { userId: "r1", reservationId: r.reservationId })).toMatchObject({ status: "released", reservationId: r.reservationId });
    expect(await ledger("r1")).toEqual(before);
    expect(before.filter((e) => e.reservationId === r.reservationId).map((e) => [e.reason, e.tokens])).toEqual([["hold", -30], ["release", 30]]);
  });

  it("refuses a release after a commit with 409 conflict", async () => {
    t.clock.set(NOW);
    await grant("r2", 100);
    const r = await hold("r2", 30);
    await commitHold(t.ctx, { userId: "r2", reservationId: r.reservationId, tokens: 5 });
    await expect(releaseHold(t.ctx, { userId: "r2", reservationId: r.reservationId })).rejects.toMatchObject({ code: "conflict" });
    expect(await group("r2")).toMatchObject({ balance: 95, held: 0 });
  });

  it("repays the group's debt first with the tokens it gives back", async () => {
    t.clock.set(NOW);
    await grant("r3", 10);
    const r = await hold("r3", 10);
    await consume(t.ctx, { userId: "r3", offerGroup: "calls", tokens: 4, allowOverdraft: true });
    expect(await group("r3")).toMatchObject({ balance: -4, held: 10, debt: 4 });
    await releaseHold(t.ctx, { userId: "r3", reservationId: r.reservationId });
    expect(await group("r3")).toMatchObject({ balance: 6, held: 0, debt: 0 });
  });
});

describe("expiry", () => {
  it("releases an expired hold in the next consumption's transaction", async () => {
    t.clock.set(NOW);
    await grant("e1", 100);
    const r = await hold("e1", 95, 60);
    await expect(consume(t.ctx, { userId: "e1", offerGroup: "calls", tokens: 10 })).rejects.toMatchObject({ code: "insufficient_credits" });
    t.clock.set("2026-03-10T12:01:00.000Z");
    t.requests.reset();
    const result = await consume(t.ctx, { userId: "e1", offerGroup: "calls", tokens: 10 });
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    expect(result.balance).toBe(90);
    const entries = await ledger("e1");
    expect(entries.slice(-2).map((e) => [e.reason, e.tokens, e.reservationId])).toEqual([
      ["release", 95, r.reservationId],
      ["consume", -10, undefined],
    ]);
    expect((await listHolds(t.ctx, "e1", { limit: 10 })).reservations[0]).toMatchObject({ status: "expired" });
    expect(await releaseHold(t.ctx, { userId: "e1", reservationId: r.reservationId })).toMatchObject({ status: "expired" });
  });

  it("releases expired holds when the credits are read", async () => {
    t.clock.set(NOW);
    await grant("e2", 100);
    await hold("e2", 40, 1);
    await hold("e2", 10, 600);
    t.clock.set("2026-03-10T12:00:01.000Z");
    expect(await group("e2")).toMatchObject({ balance: 90, held: 10 });
    expect((await listHolds(t.ctx, "e2", { limit: 10, status: "expired" })).reservations).toHaveLength(1);
  });

  it("expires at once the tokens released into a grant that expired meanwhile", async () => {
    t.clock.set(NOW);
    const soon = await grant("e3", 10, "2026-03-10T13:00:00.000Z");
    await grant("e3", 100);
    const r = await hold("e3", 15, 86_400);
    expect(r.draws).toEqual([
      { grantId: soon.grantId, tokens: 10 },
      expect.objectContaining({ tokens: 5 }),
    ]);
    t.clock.set("2026-03-10T14:00:00.000Z");
    await releaseHold(t.ctx, { userId: "e3", reservationId: r.reservationId });
    expect(await group("e3")).toMatchObject({ balance: 100, held: 0 });
    const own = (await ledger("e3")).filter((e) => e.reservationId === r.reservationId).map((e) => [e.reason, e.tokens]);
    expect(own).toEqual([["hold", -15], ["release", 15], ["expire", -10]]);
  });

  it("commits from a grant that expired since the hold (the work started in time)", async () => {
    t.clock.set(NOW);
    const soon = await grant("e4", 10, "2026-03-10T13:00:00.000Z");
    await grant("e4", 100);
    const r = await hold("e4", 10, 86_400);
    t.clock.set("2026-03-10T14:00:00.000Z");
    const result = await commitHold(t.ctx, { userId: "e4", reservationId: r.reservationId, tokens: 4 });
    expect(result.entry.draws).toEqual([{ grantId: soon.grantId, tokens: 4 }]);
    expect(await group("e4")).toMatchObject({ balance: 100, held: 0 });
    const own = (await ledger("e4")).filter((e) => e.reservationId === r.reservationId).map((e) => [e.reason, e.tokens]);
    expect(own).toEqual([["hold", -10], ["release", 10], ["consume", -4], ["expire", -6]]);
  });
});

describe("held grants", () => {
  it("keep a grant a hold emptied on the balance item, through a consumption, until the release", async () => {
    t.clock.set(NOW);
    const soon = await grant("g1", 10, "2026-04-01T00:00:00.000Z");
    await grant("g1", 100);
    const r = await hold("g1", 10);
    await consume(t.ctx, { userId: "g1", offerGroup: "calls", tokens: 5 });
    expect((await readBalance(t.ctx, "g1", "calls")).grants.find((g) => g.grantId === soon.grantId)).toMatchObject({ remaining: 0 });
    await releaseHold(t.ctx, { userId: "g1", reservationId: r.reservationId });
    expect((await group("g1")).grants.find((g) => g.grantId === soon.grantId)).toMatchObject({ remaining: 10 });
    expect(await group("g1")).toMatchObject({ balance: 105, held: 0 });
  });

  it("keep a partly held grant that a consumption empties (guarded draw)", async () => {
    t.clock.set(NOW);
    const only = await grant("g2", 10);
    const r = await hold("g2", 4);
    await consume(t.ctx, { userId: "g2", offerGroup: "calls", tokens: 6 });
    expect((await readBalance(t.ctx, "g2", "calls")).grants).toEqual([expect.objectContaining({ grantId: only.grantId, remaining: 0 })]);
    await commitHold(t.ctx, { userId: "g2", reservationId: r.reservationId, tokens: 1 });
    expect(await group("g2")).toMatchObject({ balance: 3, held: 0 });
  });
});

describe("refunded orders and the size bound", () => {
  it("gives nothing back to the grant of an order refunded while its tokens were held", async () => {
    t.clock.set(NOW);
    await upsertOffer(t.ctx, "pack-100", anOffer());
    const { order } = await createOrder(t.ctx, { userId: "o1", offerId: "pack-100" });
    await confirmManualOrder(t.ctx, "o1", order.orderId);
    const r = await hold("o1", 30);
    await refundOrder(t.ctx, { userId: "o1", orderId: order.orderId, mode: "unused" });
    expect(await group("o1")).toMatchObject({ balance: 0, held: 30 });
    t.requests.reset();
    expect(await releaseHold(t.ctx, { userId: "o1", reservationId: r.reservationId })).toMatchObject({ status: "released" });
    // The order's status is read (its grant has left the balance item): one BatchGetItem more.
    expect(t.requests.byCommand).toEqual({ QueryCommand: 1, BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    expect(await group("o1")).toMatchObject({ balance: 0, held: 0 });
  });

  it(`refuses a hold beyond ${MAX_HOLDS} live ones in a group with 409 conflict`, async () => {
    t.clock.set(NOW);
    await grant("cap", 1000);
    for (let i = 0; i < MAX_HOLDS; i++) await hold("cap", 1);
    await expect(hold("cap", 1)).rejects.toMatchObject({ code: "conflict" });
    expect(await group("cap")).toMatchObject({ balance: 1000 - MAX_HOLDS, held: MAX_HOLDS });
    const item = await t.client.send(new GetItemCommand({ TableName: t.tableName, Key: marshall(t.db.entities.balance.get({ userId: "cap", offerGroup: "calls" }).params().Key) }));
    console.log(`balance item with ${MAX_HOLDS} holds of one grant: ${JSON.stringify(item.Item).length} bytes of JSON`);
  });
});

describe("idempotency keys", () => {
  it("replays a hold and a release under the same key", async () => {
    t.clock.set(NOW);
    await grant("k1", 100);
    const body = { offerGroup: "calls", tokens: 30 };
    const holdKey = key("reservations", "k-hold", body);
    const first = await createHold(t.ctx, { userId: "k1", ...body, idempotency: holdKey });
    expect(await createHold(t.ctx, { userId: "k1", ...body, idempotency: holdKey })).toEqual(first);
    expect(await group("k1")).toMatchObject({ balance: 70, held: 30 });
    const releaseKey = key("reservations.release", "k-release", { reservationId: first.reservationId });
    const released = await releaseHold(t.ctx, { userId: "k1", reservationId: first.reservationId, idempotency: releaseKey });
    expect(await releaseHold(t.ctx, { userId: "k1", reservationId: first.reservationId, idempotency: releaseKey })).toEqual(released);
    expect(await group("k1")).toMatchObject({ balance: 100, held: 0 });
  });

  it("stores a 402 hold refusal under its key", async () => {
    t.clock.set(NOW);
    await grant("k2", 10);
    const body = { offerGroup: "calls", tokens: 20 };
    const idempotency = key("reservations", "k-402", body);
    await expect(createHold(t.ctx, { userId: "k2", ...body, idempotency })).rejects.toMatchObject({ code: "insufficient_credits" });
    await grant("k2", 100);
    await expect(createHold(t.ctx, { userId: "k2", ...body, idempotency })).rejects.toMatchObject({ code: "insufficient_credits" });
  });
});

describe("requests", () => {
  it("hold, commit and release each cost one read and one transaction", async () => {
    t.clock.set(NOW);
    await grant("q1", 100);
    await grant("q1", 100, null);
    t.requests.reset();
    const a = await hold("q1", 30);
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    const holdUnits = t.requests.unitsOf("TransactWriteItemsCommand");
    const b = await hold("q1", 30);
    t.requests.reset();
    await commitHold(t.ctx, { userId: "q1", reservationId: a.reservationId, tokens: 10, idempotency: key("reservations.commit", "q-commit", { tokens: 10 }) });
    expect(t.requests.byCommand).toEqual({ QueryCommand: 1, TransactWriteItemsCommand: 1 });
    const commitUnits = t.requests.unitsOf("TransactWriteItemsCommand");
    t.requests.reset();
    await releaseHold(t.ctx, { userId: "q1", reservationId: b.reservationId });
    expect(t.requests.byCommand).toEqual({ QueryCommand: 1, TransactWriteItemsCommand: 1 });
    console.log("reservation write units:", { hold: holdUnits, commitWithKey: commitUnits, release: t.requests.unitsOf("TransactWriteItemsCommand") });
  });
});

describe("racing writes of one group", () => {
  /**
   * Runs `first`, letting `second` run to its end just before `first`'s first transaction
   * is sent (after `first` read the balance and planned on it), and counts the
   * transactions `first` sent and the conflicts retried.
   */
  async function interleaved<T>(first: () => Promise<T>, second: () => Promise<unknown>): Promise<{ result: T; firstSends: number; conflicts: number }> {
    let armed = true;
    let inSecond = false;
    let firstSends = 0;
    t.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "TransactWriteItemsCommand" && !inSecond) {
          firstSends++;
          if (armed) {
            armed = false;
            inSecond = true;
            await second();
            inSecond = false;
          }
        }
        return next(args);
      },
      { step: "initialize", name: "secondBeforeWrite" },
    );
    const before = retryStats.conflicts;
    try {
      const result = await first();
      return { result, firstSends, conflicts: retryStats.conflicts - before };
    } finally {
      t.client.middlewareStack.remove("secondBeforeWrite");
    }
  }

  it("a hold planned before another hold was written is written without a retry (relative, guarded writes)", async () => {
    t.clock.set(NOW);
    await grant("race1", 100);
    const race = await interleaved(() => hold("race1", 10), () => hold("race1", 20));
    expect(race).toMatchObject({ firstSends: 1, conflicts: 0, result: { status: "held" } });
    expect(await group("race1")).toMatchObject({ balance: 70, held: 30 });
  });

  it("a release and a commit of two holds, and a consumption, pass each other without a retry", async () => {
    t.clock.set(NOW);
    await grant("race2", 100);
    const a = await hold("race2", 10);
    const b = await hold("race2", 20);
    const release = await interleaved(
      () => releaseHold(t.ctx, { userId: "race2", reservationId: a.reservationId }),
      () => commitHold(t.ctx, { userId: "race2", reservationId: b.reservationId, tokens: 5 }),
    );
    expect(release).toMatchObject({ firstSends: 1, conflicts: 0, result: { status: "released" } });
    const c = await hold("race2", 7);
    const spend = await interleaved(() => consume(t.ctx, { userId: "race2", offerGroup: "calls", tokens: 3 }), () => commitHold(t.ctx, { userId: "race2", reservationId: c.reservationId, tokens: 7 }));
    expect(spend).toMatchObject({ firstSends: 1, conflicts: 0 });
    expect(await group("race2")).toMatchObject({ balance: 85, held: 0 });
  });

  it("a release whose hold moved in the list (an earlier one was released first) fails its guard, re-reads and is written once", async () => {
    t.clock.set(NOW);
    await grant("race3", 100);
    const a = await hold("race3", 10);
    const b = await hold("race3", 20);
    const race = await interleaved(
      () => releaseHold(t.ctx, { userId: "race3", reservationId: b.reservationId }),
      () => releaseHold(t.ctx, { userId: "race3", reservationId: a.reservationId }),
    );
    expect(race).toMatchObject({ firstSends: 2, conflicts: 1, result: { status: "released" } });
    expect(await group("race3")).toMatchObject({ balance: 100, held: 0 });
    expect((await ledger("race3")).filter((e) => e.reason === "release")).toHaveLength(2);
  });
});
