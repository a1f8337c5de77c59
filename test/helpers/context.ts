/**
 * A core `Context` for integration tests: the file's own table on DynamoDB Local, a
 * manual clock, and the manual payment provider unless another is given.
 */
import { afterEach, beforeAll, expect } from "vitest";
import { ManualClock } from "../../core/clock.js";
import { silentLogger, type Context } from "../../core/context.js";
import { createManualProvider } from "../../core/payments/manual.js";
import type { PaymentProvider } from "../../core/payments/provider.js";
import { createTestDb } from "./db.js";
import { invariantViolations } from "./invariants.js";

/** Creates a test context; `clock` starts at `start` (default 2026-01-15T10:00:00Z). */
export async function createTestContext(options: { start?: string; payments?: PaymentProvider; label?: string } = {}) {
  const { db, client, tableName, requests, endpoint } = await createTestDb(options.label);
  const clock = new ManualClock(options.start ?? "2026-01-15T10:00:00.000Z");
  const ctx: Context = {
    db,
    clock,
    payments: options.payments ?? createManualProvider(),
    config: { defaultCurrency: "usd" },
    logger: silentLogger,
  };
  return { ctx, db, client, tableName, requests, clock, endpoint };
}

/**
 * Registers the hooks of an integration test file: a fresh context before all tests,
 * and the ledger invariants checked over the table after each test. Tests of one file
 * share the table: each uses its own user ids.
 */
export function useIntegrationContext(options: Parameters<typeof createTestContext>[0] = {}) {
  const env = {} as Awaited<ReturnType<typeof createTestContext>>;
  beforeAll(async () => {
    Object.assign(env, await createTestContext(options));
  });
  afterEach(async () => {
    expect(await invariantViolations(env.client, env.tableName)).toEqual([]);
  });
  return env;
}
