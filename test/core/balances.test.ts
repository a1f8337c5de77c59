/**
 * Balance writes (core/balances.ts) on DynamoDB Local: a whole-item write checks the
 * balance invariant first (core/rules/balance-state.ts `balanceStateProblem`), as
 * TigerBeetle asserts its invariants in code: a state that breaks it is refused (500,
 * logged with the state), and nothing of the operation is written.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { balanceWrite } from "../../core/balances.js";
import { InvariantViolation } from "../../core/errors.js";
import { createPromotionalGrant } from "../../core/grants.js";
import { listLedger } from "../../core/ledger.js";
import type { BalanceState } from "../../core/rules/balance-state.js";
import { useIntegrationContext } from "../helpers/context.js";
import { invoke } from "../helpers/gateway.js";

const t = useIntegrationContext({ label: "balances" });
const NOW = new Date("2026-06-01T00:00:00.000Z");

/** A stored balance that breaks the invariant: debt while a grant still holds spendable tokens. */
function brokenState(userId: string): BalanceState {
  return {
    userId,
    offerGroup: "calls",
    balance: 40,
    debt: 10,
    version: 3,
    grants: [{ grantId: "01KGRANT000000000000000000", tokens: 50, remaining: 50, starts: "2026-05-01T00:00:00.000Z", expires: "2026-07-01T00:00:00.000Z" }],
  };
}

/** Stores `state` as it is, bypassing every check (a corruption the code must not build on). */
async function storeRaw(state: BalanceState): Promise<void> {
  await t.db.entities.balance.put({ ...state, updatedAt: NOW.toISOString() }).go();
}

/** Removes the corrupted item again, so that the file's invariant check after each test holds. */
async function remove(userId: string): Promise<void> {
  await t.db.entities.balance.delete({ userId, offerGroup: "calls" }).go();
}

/** Every item of the table, as stored. */
async function tableItems(): Promise<unknown[]> {
  return (await t.client.send(new ScanCommand({ TableName: t.tableName, ConsistentRead: true }))).Items ?? [];
}

describe("balanceWrite", () => {
  it("refuses a state whose balance is not Σ remaining − debt", () => {
    const state = { ...brokenState("u-sum"), debt: 0, balance: 49 };
    expect(() => balanceWrite(t.db, state, 3, NOW)).toThrow(InvariantViolation);
  });

  it("refuses debt while a grant can still be spent, naming the problem and carrying the state", () => {
    const state = brokenState("u-debt");
    const error = (() => {
      try {
        balanceWrite(t.db, state, 3, NOW);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvariantViolation);
    expect((error as InvariantViolation).message).toMatch(/debt 10 while grants still hold 50 spendable tokens/);
    expect((error as InvariantViolation).context).toMatchObject({ state, expectedVersion: 3 });
  });

  it("accepts debt beside grants that are past their expiry (their tokens are dead, waiting for their expire entry)", () => {
    const state = { ...brokenState("u-due"), grants: [{ ...brokenState("u-due").grants[0]!, expires: "2026-05-15T00:00:00.000Z" }] };
    expect(() => balanceWrite(t.db, state, 3, NOW)).not.toThrow();
  });
});

describe("an operation on a corrupted balance", () => {
  it("is refused with nothing written, instead of storing a state that breaks the invariant", async () => {
    t.clock.set(NOW);
    await storeRaw(brokenState("u-corrupt"));
    const before = await tableItems();
    // A promotional grant repays 5 of the debt: the state it would store keeps debt beside 50 spendable tokens.
    await expect(createPromotionalGrant(t.ctx, { userId: "u-corrupt", offerGroup: "calls", tokens: 5, expires: null })).rejects.toBeInstanceOf(InvariantViolation);
    expect(await tableItems()).toEqual(before);
    expect((await listLedger(t.ctx, "u-corrupt", { limit: 10 })).entries).toEqual([]);
    await remove("u-corrupt");
  });

  it("answers 500 internal_error through the HTTP edge, and logs the state", async () => {
    const { buildRuntime, logger, setRuntime } = await import("../../functions/runtime.js");
    const credits = await import("../../functions/credits.js");
    setRuntime(buildRuntime({ apiKeys: ["k"], defaultCurrency: "usd", tableName: t.tableName }, t.clock, t.client));
    const logged = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    try {
      t.clock.set(NOW);
      await storeRaw(brokenState("u-edge"));
      const before = await tableItems();
      const response = await invoke(credits.handler, {
        method: "POST",
        path: "/users/u-edge/grants",
        headers: { authorization: "Bearer k" },
        body: { offerGroup: "calls", tokens: 5, expires: null },
      });
      expect(response).toMatchObject({ status: 500, body: { error: { code: "internal_error", message: "Something went wrong." } } });
      expect(JSON.stringify(response.body)).not.toContain("debt");
      expect(logged).toHaveBeenCalledWith("invariant violated; nothing was written", expect.objectContaining({ context: expect.objectContaining({ state: expect.objectContaining({ userId: "u-edge", debt: 5 }) }) }));
      expect(await tableItems()).toEqual(before);
      await remove("u-edge");
    } finally {
      logged.mockRestore();
      setRuntime(undefined);
    }
  });
});

afterAll(() => vi.restoreAllMocks());
