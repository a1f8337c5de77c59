/**
 * Reservations through the Lambda handlers (functions/consumption.ts, functions/credits.ts)
 * with real-shaped API Gateway events, on DynamoDB Local: the list, each as the
 * API answers it (API.md "Reservations"): hold, commit less, commit more, commit more than
 * available (402, still held), release (twice; after a commit 409), expiry by the next
 * request, commit after expiry (409 `reservation_expired`), double commit, duplicate
 * Idempotency-Keys, tokens released into a grant that expired meanwhile; reversals in
 * full and in part, past the consumed amount, of debt, into an expired grant. The ledger
 * invariants (sum of entries = balance, held = live holds) are checked after each test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../core/clock.js";
import type { HttpFunctionName } from "../../functions/routes.js";
import { buildRuntime, setRuntime } from "../../functions/runtime.js";
import { createTestDb } from "../helpers/db.js";
import { invoke, type ApiRequest } from "../helpers/gateway.js";
import { invariantViolations } from "../helpers/invariants.js";

const KEY = "key-reservations-0123456789";
const clock = new ManualClock("2026-11-02T10:00:00.000Z");
const handlers = {} as Record<HttpFunctionName, (event: never, context: never) => Promise<unknown>>;
let table: Awaited<ReturnType<typeof createTestDb>>;

beforeAll(async () => {
  table = await createTestDb("reservations-http");
  setRuntime(buildRuntime({ apiKeys: [KEY], stripeWebhookSecret: "whsec_unused", defaultCurrency: "usd", tableName: table.tableName, dynamoEndpoint: table.endpoint }, clock));
  handlers.consumption = (await import("../../functions/consumption.js")).handler as never;
  handlers.credits = (await import("../../functions/credits.js")).handler as never;
});
afterAll(() => setRuntime(undefined));
afterEach(async () => expect(await invariantViolations(table.client, table.tableName)).toEqual([]));

const HOUR = 3_600_000;
const at = (ms: number) => new Date(clock.now().getTime() + ms).toISOString();

/** One request to a function, with the API key. */
function call(fn: "consumption" | "credits", method: string, path: string, body?: object, headers: Record<string, string> = {}) {
  const request: ApiRequest = { method, path, headers: { authorization: `Bearer ${KEY}`, ...headers }, ...(body ? { body } : {}) };
  return invoke(handlers[fn] as never, request);
}

const grant = (user: string, tokens: number, expires: string | null) => call("credits", "POST", `/users/${user}/grants`, { offerGroup: "calls", tokens, expires });
const hold = (user: string, body: object, headers?: Record<string, string>) => call("consumption", "POST", `/users/${user}/reservations`, { offerGroup: "calls", ...body }, headers);
const commit = (user: string, id: string, body: object, headers?: Record<string, string>) => call("consumption", "POST", `/users/${user}/reservations/${id}/commit`, body, headers);
const release = (user: string, id: string, headers?: Record<string, string>) => call("consumption", "POST", `/users/${user}/reservations/${id}/release`, undefined, headers);
const consume = (user: string, tokens: number) => call("consumption", "POST", `/users/${user}/consumptions`, { offerGroup: "calls", tokens });
const calls = async (user: string) => ((await call("credits", "GET", `/users/${user}/credits`)).body.groups as Array<{ offerGroup: string }>).find((g) => g.offerGroup === "calls");
const ledger = async (user: string) => (await call("credits", "GET", `/users/${user}/ledger?limit=1000`)).body.entries as Array<Record<string, unknown>>;
const reservations = async (user: string, query = "") => (await call("credits", "GET", `/users/${user}/reservations?limit=100${query}`)).body.reservations as Array<Record<string, unknown>>;

describe("a hold", () => {
  it("draws in drain order at once: 201 held, balance down, held up, a hold entry", async () => {
    const soon = (await grant("r-hold", 60, at(10 * 24 * HOUR))).body.grantId;
    const never = (await grant("r-hold", 100, null)).body.grantId;
    const held = await hold("r-hold", { tokens: 80, ttlSeconds: 120, metadata: { callId: "c-1" } });
    expect(held).toMatchObject({
      status: 201,
      body: { status: "held", tokens: 80, expires: at(120_000), draws: [{ grantId: soon, tokens: 60 }, { grantId: never, tokens: 20 }], metadata: { callId: "c-1" } },
    });
    expect(await calls("r-hold")).toMatchObject({ balance: 80, held: 80, debt: 0 });
    expect((await ledger("r-hold")).at(-1)).toMatchObject({ reason: "hold", tokens: -80, reservationId: held.body.reservationId });
    expect(await reservations("r-hold", "&status=held")).toMatchObject([{ reservationId: held.body.reservationId, metadata: { callId: "c-1" } }]);
  });

  it("is refused with 402 when the balance cannot cover it, nothing held", async () => {
    await grant("r-poor", 10, null);
    expect(await hold("r-poor", { tokens: 11 })).toMatchObject({ status: 402, body: { error: { code: "insufficient_credits" } } });
    expect(await calls("r-poor")).toMatchObject({ balance: 10, held: 0 });
    expect(await reservations("r-poor")).toEqual([]);
  });

  it("refuses a ttlSeconds out of 1..86400 and a missing offerGroup with 400 naming them", async () => {
    const refused = await call("consumption", "POST", "/users/r-bad/reservations", { tokens: 1, ttlSeconds: 86_401 });
    expect(refused).toMatchObject({ status: 400, body: { error: { code: "validation_error" } } });
    expect(Object.keys(refused.body.error.details).sort()).toEqual(["offerGroup", "ttlSeconds"]);
  });
});

describe("a commit", () => {
  it("of less than held: release of the whole hold and a consume entry, the rest back to its grant", async () => {
    const g = (await grant("r-less", 100, null)).body.grantId;
    const held = await hold("r-less", { tokens: 50 });
    const done = await commit("r-less", held.body.reservationId, { tokens: 20, metadata: { callId: "c-2" } });
    expect(done).toMatchObject({
      status: 200,
      body: { reservation: { status: "committed", committedTokens: 20 }, entry: { reason: "consume", tokens: -20, reservationId: held.body.reservationId, draws: [{ grantId: g, tokens: 20 }], metadata: { callId: "c-2" } }, balance: 80 },
    });
    expect((await ledger("r-less")).map((e) => [e.reason, e.tokens])).toEqual([["adjust", 100], ["hold", -50], ["release", 50], ["consume", -20]]);
    expect(await calls("r-less")).toMatchObject({ balance: 80, held: 0 });
  });

  it("of more than held: the extra is drawn like a consumption", async () => {
    await grant("r-more", 100, null);
    const held = await hold("r-more", { tokens: 30 });
    expect(await commit("r-more", held.body.reservationId, { tokens: 45 })).toMatchObject({ status: 200, body: { entry: { tokens: -45 }, balance: 55 } });
    expect(await calls("r-more")).toMatchObject({ balance: 55, held: 0 });
  });

  it("of more than available: 402 and the reservation stays held; with allowOverdraft the rest is debt", async () => {
    await grant("r-over", 20, null);
    const held = await hold("r-over", { tokens: 15 });
    expect(await commit("r-over", held.body.reservationId, { tokens: 30 })).toMatchObject({ status: 402, body: { error: { code: "insufficient_credits" } } });
    expect(await calls("r-over")).toMatchObject({ balance: 5, held: 15 });
    expect(await reservations("r-over", "&status=held")).toHaveLength(1);
    expect(await commit("r-over", held.body.reservationId, { tokens: 30, allowOverdraft: true })).toMatchObject({ status: 200, body: { entry: { tokens: -30, debt: 10 }, balance: -10 } });
    expect(await calls("r-over")).toMatchObject({ balance: -10, held: 0, debt: 10 });
  });

  it("happens once: a second commit is 409, the same key gets the stored answer, the key on another reservation is refused", async () => {
    await grant("r-twice", 100, null);
    const held = await hold("r-twice", { tokens: 10 });
    const key = { "idempotency-key": "commit-once" };
    const first = await commit("r-twice", held.body.reservationId, { tokens: 4 }, key);
    expect(first.status).toBe(200);
    expect(await commit("r-twice", held.body.reservationId, { tokens: 4 }, key)).toEqual(first);
    expect(await commit("r-twice", held.body.reservationId, { tokens: 4 })).toMatchObject({ status: 409, body: { error: { code: "conflict" } } });
    const other = await hold("r-twice", { tokens: 10 });
    expect(await commit("r-twice", other.body.reservationId, { tokens: 4 }, key)).toMatchObject({ status: 409, body: { error: { code: "idempotency_conflict" } } });
    expect(await calls("r-twice")).toMatchObject({ balance: 86, held: 10 });
  });

  it("answers 404 for a reservation that does not exist, or is another user's", async () => {
    await grant("r-mine", 10, null);
    const held = await hold("r-mine", { tokens: 5 });
    expect(await commit("r-theirs", held.body.reservationId, { tokens: 1 })).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(await release("r-mine", "01JAAAAAAAAAAAAAAAAAAAAAAA")).toMatchObject({ status: 404 });
  });
});

describe("a release", () => {
  it("gives every held token back; a second release answers 200 again; a commit after it is 409", async () => {
    await grant("r-release", 40, null);
    const held = await hold("r-release", { tokens: 25 });
    const released = await release("r-release", held.body.reservationId);
    expect(released).toMatchObject({ status: 200, body: { status: "released", tokens: 25 } });
    expect(await release("r-release", held.body.reservationId)).toEqual(released);
    expect(await commit("r-release", held.body.reservationId, { tokens: 1 })).toMatchObject({ status: 409, body: { error: { code: "conflict" } } });
    expect(await calls("r-release")).toMatchObject({ balance: 40, held: 0 });
  });

  it("after a commit is 409", async () => {
    await grant("r-rel-commit", 40, null);
    const held = await hold("r-rel-commit", { tokens: 10 });
    await commit("r-rel-commit", held.body.reservationId, { tokens: 10 });
    expect(await release("r-rel-commit", held.body.reservationId)).toMatchObject({ status: 409, body: { error: { code: "conflict" } } });
  });

  it("of tokens whose grant expired meanwhile: they leave at once through an expire entry", async () => {
    const g = (await grant("r-late", 30, at(HOUR))).body.grantId;
    const held = await hold("r-late", { tokens: 30, ttlSeconds: 7200 });
    clock.advance(1.5 * HOUR);
    expect(await release("r-late", held.body.reservationId)).toMatchObject({ status: 200, body: { status: "released" } });
    expect((await ledger("r-late")).slice(-2)).toMatchObject([
      { reason: "release", tokens: 30, draws: [{ grantId: g, tokens: 30 }] },
      { reason: "expire", tokens: -30 },
    ]);
    expect(await calls("r-late")).toMatchObject({ balance: 0, held: 0, grants: [] });
  });

  it("a commit of a hold whose grant expired meanwhile still spends from it (the work started in time), the rest expires", async () => {
    const g = (await grant("r-late-commit", 30, at(HOUR))).body.grantId;
    await grant("r-late-commit", 5, null);
    const held = await hold("r-late-commit", { tokens: 20, ttlSeconds: 7200 });
    clock.advance(1.5 * HOUR);
    expect(await commit("r-late-commit", held.body.reservationId, { tokens: 12 })).toMatchObject({ status: 200, body: { entry: { tokens: -12, draws: [{ grantId: g, tokens: 12 }] }, balance: 5 } });
    expect(await calls("r-late-commit")).toMatchObject({ balance: 5, held: 0 });
  });
});

describe("expiry", () => {
  it("a hold past its expiry is released by the next consumption of its group, listed expired, its commit 409 reservation_expired", async () => {
    await grant("r-exp", 10, null);
    const held = await hold("r-exp", { tokens: 10, ttlSeconds: 60 });
    expect(await consume("r-exp", 1)).toMatchObject({ status: 402 });
    clock.advance(61_000);
    expect(await consume("r-exp", 1)).toMatchObject({ status: 201, body: { balance: 9 } });
    expect(await reservations("r-exp")).toMatchObject([{ reservationId: held.body.reservationId, status: "expired" }]);
    expect(await commit("r-exp", held.body.reservationId, { tokens: 1 })).toMatchObject({ status: 409, body: { error: { code: "reservation_expired" } } });
    expect((await ledger("r-exp")).map((e) => e.reason)).toEqual(["adjust", "hold", "release", "consume"]);
  });

  it("is released by another hold and by a credits read", async () => {
    await grant("r-exp2", 10, null);
    const first = await hold("r-exp2", { tokens: 10, ttlSeconds: 1 });
    clock.advance(2_000);
    expect(await hold("r-exp2", { tokens: 10, ttlSeconds: 1 })).toMatchObject({ status: 201 });
    expect((await reservations("r-exp2")).find((r) => r.reservationId === first.body.reservationId)).toMatchObject({ status: "expired" });
    clock.advance(2_000);
    expect(await calls("r-exp2")).toMatchObject({ balance: 10, held: 0 });
    expect(await reservations("r-exp2", "&status=held")).toEqual([]);
  });

  it("a commit past expiry releases the hold as expired in the same request", async () => {
    await grant("r-exp3", 10, null);
    const held = await hold("r-exp3", { tokens: 4, ttlSeconds: 5 });
    clock.advance(6_000);
    expect(await commit("r-exp3", held.body.reservationId, { tokens: 4 })).toMatchObject({ status: 409, body: { error: { code: "reservation_expired" } } });
    expect(await calls("r-exp3")).toMatchObject({ balance: 10, held: 0 });
    expect(await release("r-exp3", held.body.reservationId)).toMatchObject({ status: 200, body: { status: "expired" } });
  });
});

describe("Idempotency-Key", () => {
  it("a hold repeated under its key is held once and answered the same; the key with another body is refused", async () => {
    await grant("r-key", 50, null);
    const key = { "idempotency-key": "hold-1" };
    const first = await hold("r-key", { tokens: 20 }, key);
    expect(await hold("r-key", { tokens: 20 }, key)).toEqual(first);
    expect(await hold("r-key", { tokens: 21 }, key)).toMatchObject({ status: 409, body: { error: { code: "idempotency_conflict" } } });
    expect(await calls("r-key")).toMatchObject({ balance: 30, held: 20 });
    expect((await ledger("r-key")).filter((e) => e.reason === "hold")).toHaveLength(1);
  });

  it("a refused hold is answered the same under its key, even once the balance could cover it", async () => {
    await grant("r-key402", 5, null);
    const key = { "idempotency-key": "hold-402" };
    const refused = await hold("r-key402", { tokens: 8 }, key);
    expect(refused.status).toBe(402);
    await grant("r-key402", 5, null);
    expect(await hold("r-key402", { tokens: 8 }, key)).toEqual(refused);
    expect(await calls("r-key402")).toMatchObject({ balance: 10, held: 0 });
  });
});

describe("a reversal", () => {
  const reverse = (user: string, entryId: string, body?: object, headers?: Record<string, string>) =>
    call("consumption", "POST", `/users/${user}/consumptions/${entryId}/reverse`, body, headers);
  const spend = async (user: string, tokens: number, allowOverdraft = false) =>
    (await call("consumption", "POST", `/users/${user}/consumptions`, { offerGroup: "calls", tokens, allowOverdraft })).body.entry.entryId as string;

  it("in part, then the rest: back to the grants latest drawn first; past what is left is 409 with nothing written", async () => {
    const soon = (await grant("v-part", 10, at(24 * HOUR))).body.grantId;
    const later = (await grant("v-part", 100, null)).body.grantId;
    const entryId = await spend("v-part", 30);
    const part = await reverse("v-part", entryId, { tokens: 15, reason: "the call failed" });
    expect(part).toMatchObject({ status: 201, body: { entry: { reason: "reverse", tokens: 15, reversesEntryId: entryId, draws: [{ grantId: later, tokens: 15 }] }, balance: 95 } });
    expect(await reverse("v-part", entryId, { tokens: 16 })).toMatchObject({ status: 409, body: { error: { code: "conflict", details: { left: 15 } } } });
    const rest = await reverse("v-part", entryId);
    expect(rest).toMatchObject({ status: 201, body: { entry: { tokens: 15, draws: [{ grantId: later, tokens: 5 }, { grantId: soon, tokens: 10 }] }, balance: 110 } });
    expect(await reverse("v-part", entryId, { tokens: 1 })).toMatchObject({ status: 409, body: { error: { code: "conflict", details: { left: 0 } } } });
    expect((await ledger("v-part")).map((e) => [e.reason, e.tokens])).toEqual([["adjust", 10], ["adjust", 100], ["consume", -30], ["reverse", 15], ["reverse", 15]]);
  });

  it("in full at once; repeated under its key it is answered the same, reversed once", async () => {
    await grant("v-full", 50, null);
    const entryId = await spend("v-full", 20);
    const key = { "idempotency-key": "reverse-once" };
    const first = await reverse("v-full", entryId, {}, key);
    expect(first).toMatchObject({ status: 201, body: { entry: { tokens: 20 }, balance: 50 } });
    expect(await reverse("v-full", entryId, {}, key)).toEqual(first);
    expect((await ledger("v-full")).filter((e) => e.reason === "reverse")).toHaveLength(1);
  });

  it("the part that went into debt is reversed first, as debt", async () => {
    await grant("v-debt", 10, null);
    const entryId = await spend("v-debt", 25, true);
    expect(await calls("v-debt")).toMatchObject({ balance: -15, debt: 15 });
    expect(await reverse("v-debt", entryId, { tokens: 20 })).toMatchObject({ status: 201, body: { entry: { tokens: 20 }, balance: 5 } });
    expect(await calls("v-debt")).toMatchObject({ balance: 5, debt: 0 });
  });

  it("tokens going back to a grant that expired meanwhile leave at once through an expire entry", async () => {
    await grant("v-late", 10, at(HOUR));
    const entryId = await spend("v-late", 6);
    clock.advance(2 * HOUR);
    expect(await reverse("v-late", entryId)).toMatchObject({ status: 201, body: { entry: { reason: "reverse", tokens: 6 }, balance: 0 } });
    expect((await ledger("v-late")).slice(-2)).toMatchObject([{ reason: "reverse", tokens: 6 }, { reason: "expire", tokens: -6, reversesEntryId: entryId }]);
  });

  it("answers 404 for an entry that is not a consumption, or not the user's", async () => {
    await grant("v-404", 10, null);
    const adjustEntry = (await ledger("v-404"))[0]!.entryId as string;
    expect(await reverse("v-404", adjustEntry)).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    const entryId = await spend("v-404", 3);
    expect(await reverse("v-other", entryId)).toMatchObject({ status: 404 });
  });
});
