/**
 * core/db/consumption-transaction.ts builds, without ElectroDB's builders, exactly the
 * `TransactWriteItems` input ElectroDB builds for a plain consumption (core/balances.ts
 * `balanceDrawWrite`, core/ledger.ts `ledgerEntryWrite`, core/idempotency.ts
 * `outcomeWrite`): checked on random balances, draws, low-balance and top-up ranges, entries and keys.
 * Ours is in DynamoDB's attribute-value form (sent with the low-level command), ElectroDB's
 * in the document client's: ours is read back with util-dynamodb's `unmarshall` to compare.
 * Sending and cancellation are covered by the consumption tests on DynamoDB Local.
 */
import type { AttributeValue, TransactWriteItemsCommandInput } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balanceDrawWrite } from "../../../core/balances.js";
import { createDynamoClient } from "../../../core/db/client.js";
import { consumptionTransaction, isPlainDraw } from "../../../core/db/consumption-transaction.js";
import { createDb } from "../../../core/db/service.js";
import { IDEMPOTENCY_TTL_SECONDS, outcomeWrite } from "../../../core/idempotency.js";
import { ledgerEntryWrite, newLedgerEntry } from "../../../core/ledger.js";
import type { BalanceState, GrantState } from "../../../core/rules/balance-state.js";
import { planConsumption } from "../../../core/rules/drain.js";

const db = createDb(createDynamoClient({ endpoint: "http://127.0.0.1:9" }), "equivalence");
const NOW = new Date("2026-03-10T12:00:00.000Z");
const day = (n: number) => new Date(NOW.getTime() + n * 86_400_000).toISOString();

const grantArb = fc.record({
  id: fc.integer({ min: 0, max: 99_999 }),
  tokens: fc.integer({ min: 1, max: 50 }),
  used: fc.integer({ min: 0, max: 50 }),
  expiresIn: fc.option(fc.integer({ min: 1, max: 90 }), { nil: undefined }),
});

const caseArb = fc.record({
  grants: fc.uniqueArray(grantArb, { minLength: 1, maxLength: 6, selector: (g) => g.id }),
  tokens: fc.integer({ min: 1, max: 60 }),
  grantSet: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
  above: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  atMost: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  latched: fc.option(fc.boolean(), { nil: undefined }),
  topUpLatched: fc.option(fc.boolean(), { nil: undefined }),
  user: fc.constantFrom("u1", "Bob@example.com", "auth0|123", "ünï"),
  key: fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: undefined }),
  metadata: fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.oneof(fc.integer(), fc.string())), { nil: undefined }),
});

type Values = Record<string, AttributeValue> | undefined;
const plain = (values: Values) => values && unmarshall(values);

/** `input` in the document client's form: every attribute value read back as plain data. */
function documentForm(input: TransactWriteItemsCommandInput) {
  return {
    TransactItems: (input.TransactItems ?? []).map((action) => {
      if (action.Update) {
        const { Key, ExpressionAttributeValues, ...rest } = action.Update;
        return { Update: { ...rest, Key: plain(Key), ExpressionAttributeValues: plain(ExpressionAttributeValues) } };
      }
      if (action.Put) {
        const { Item, ExpressionAttributeValues, ...rest } = action.Put;
        return { Put: { ...rest, Item: plain(Item), ...(ExpressionAttributeValues ? { ExpressionAttributeValues: plain(ExpressionAttributeValues) } : {}) } };
      }
      throw new Error(`unexpected action ${Object.keys(action).join()}`);
    }),
  };
}

describe("the plain consumption's transaction", () => {
  it("is ElectroDB's, field for field (property)", () => {
    let compared = 0;
    fc.assert(
      fc.property(caseArb, (c) => {
        const grants: GrantState[] = c.grants
          .map((g) => ({ grantId: `01KGRANT${String(g.id).padStart(18, "0")}`, tokens: g.tokens, remaining: Math.max(0, g.tokens - g.used), starts: day(-5), ...(g.expiresIn ? { expires: day(g.expiresIn) } : {}) }))
          .sort((a, b) => `${a.expires ?? "~"}#${a.grantId}`.localeCompare(`${b.expires ?? "~"}#${b.grantId}`));
        const state: BalanceState = {
          userId: c.user,
          offerGroup: "calls",
          balance: grants.reduce((sum, g) => sum + g.remaining, 0),
          debt: 0,
          version: 7,
          grants,
          ...(c.grantSet !== undefined ? { grantSet: c.grantSet } : {}),
        };
        const plan = planConsumption({ state, tokens: c.tokens, allowOverdraft: false, now: NOW });
        const range = { above: c.above, atMost: c.atMost, latched: c.latched, topUpLatched: c.topUpLatched };
        if (!plan.ok || !isPlainDraw(state, plan.draws, range)) return;
        const entry = newLedgerEntry({ userId: c.user, offerGroup: "calls", tokens: -c.tokens, reason: "consume", draws: plan.draws, ...(c.metadata ? { metadata: c.metadata } : {}) }, NOW);
        const request = c.key === undefined ? undefined : { scope: "consumptions", key: c.key, requestHash: "hash" };
        const outcome = { ok: true as const, result: { entry, balance: plan.next.balance } };
        const electro = db.service.transaction
          .write(() => [balanceDrawWrite(db, state, plan.draws, c.tokens, NOW, range), ledgerEntryWrite(db, entry), ...(request ? [outcomeWrite(db, c.user, request, outcome, NOW)] : [])] as never[])
          .params();
        const seconds = Math.floor(NOW.getTime() / 1000);
        const built = consumptionTransaction(db, {
          state,
          draws: plan.draws,
          tokens: c.tokens,
          now: NOW,
          range,
          entry,
          record: request && { userId: c.user, ...request, outcome, createdAt: NOW.toISOString(), ttl: seconds + IDEMPOTENCY_TTL_SECONDS, nowSeconds: seconds },
        });
        // ElectroDB tags its items with a symbol-keyed callback; the data is what DynamoDB gets.
        expect(documentForm(built)).toEqual(JSON.parse(JSON.stringify(electro)));
        compared++;
      }),
      { numRuns: 600, seed: 12 },
    );
    expect(compared).toBeGreaterThan(100);
  });

  it("refuses draws that empty a grant or raise an event (ElectroDB builds those)", () => {
    const state: BalanceState = { userId: "u1", offerGroup: "calls", balance: 5, debt: 0, version: 1, grants: [{ grantId: "g1", tokens: 5, remaining: 5, starts: day(-1) }] };
    expect(isPlainDraw(state, [{ grantId: "g1", tokens: 5 }], {})).toBe(false);
    expect(isPlainDraw(state, [{ grantId: "g1", tokens: 4 }], { raises: true })).toBe(false);
    expect(isPlainDraw(state, [{ grantId: "g1", tokens: 4 }], {})).toBe(true);
  });
});
