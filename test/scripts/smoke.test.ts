/**
 * `npm run smoke` (scripts/smoke.ts) run as a user runs it, as a child process
 * (`npx tsx scripts/smoke.ts --url ... --key ...`), against `npm start` on the test run's
 * DynamoDB Local (test/helpers/local-runner.ts): every check passes against a healthy
 * runner, a wrong key or a runner without a webhook secret fails the named check, a port
 * nobody listens on fails readably (no stack trace), and no run writes anything (the
 * table's items are the same before and after).
 */
import { spawn } from "node:child_process";
import { ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDynamoClient } from "../../core/db/client.js";
import { freePort } from "../../scripts/dynamodb-local.js";
import { startLocalRunner, type LocalRunner } from "../helpers/local-runner.js";

const tableName = `smoke-${process.pid}-${Date.now().toString(36)}`;
const bareTable = `${tableName}-bare`;
let api: LocalRunner;
/** A runner without STRIPE_WEBHOOK_SECRET: webhooks refused for want of a secret. */
let bare: LocalRunner;
let dynamo: DynamoDBClient;

const CHECKS = [
  "401 without the API key (GET /offers)",
  "GET /offers with the API key",
  "404 JSON for an unknown route",
  "webhook refuses a bad Stripe-Signature (POST /webhooks/stripe)",
  "GET /openapi.json serves an OpenAPI 3.1 document",
];

beforeAll(async () => {
  const endpoint = inject("dynamoEndpoint");
  dynamo = createDynamoClient({ endpoint });
  [api, bare] = await Promise.all([
    startLocalRunner({ DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: tableName, STRIPE_WEBHOOK_SECRET: "whsec_smoke_test_secret" }),
    startLocalRunner({ DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: bareTable }),
  ]);
  // Something to list, so that "GET /offers" has data to read and the table is not empty.
  const put = await api.request("PUT", "/offers/smoke-pack", {
    body: { name: "10 tokens", offerGroup: "smoke", cycle: "monthly", tokenCount: 10, prices: [{ amount: 500, currency: "usd" }] },
  });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
}, 120_000);

afterAll(async () => {
  await Promise.all([api?.stop(), bare?.stop()]);
  dynamo?.destroy();
});

/** Runs the smoke script with `args`; resolves with its exit code and everything it printed. */
function smoke(...args: string[]): Promise<{ code: number; output: string }> {
  const child = spawn("npx", ["tsx", "scripts/smoke.ts", ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code: code ?? -1, output })));
}

/** Every item of `table`, as DynamoDB returns them, in key order. */
async function items(table: string): Promise<unknown[]> {
  const found: Array<Record<string, unknown>> = [];
  let start: Record<string, any> | undefined;
  do {
    const page = await dynamo.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    found.push(...((page.Items ?? []) as Array<Record<string, unknown>>));
    start = page.LastEvaluatedKey;
  } while (start);
  const key = (item: Record<string, any>) => `${item.pk?.S}\u0000${item.sk?.S}`;
  return found.sort((a, b) => key(a).localeCompare(key(b)));
}

/** The line the script printed for `check`. */
const lineOf = (output: string, check: string) => output.split("\n").find((line) => line.includes(check)) ?? `(no line for ${check})`;

describe("npm run smoke", () => {
  it("passes every check against a healthy npm start, fails the named ones otherwise, and writes nothing", async () => {
    const before = { api: await items(tableName), bare: await items(bareTable) };
    expect(before.api.length).toBeGreaterThan(0);
    const deadPort = await freePort();

    const [healthy, wrongKey, noSecret, manualStage, nobody] = await Promise.all([
      smoke("--url", api.url, "--key", api.apiKey),
      smoke("--url", api.url, "--key", "not-the-key"),
      smoke("--url", bare.url, "--key", bare.apiKey),
      smoke("--url", bare.url, "--key", bare.apiKey, "--no-webhook-secret"),
      smoke("--url", `http://127.0.0.1:${deadPort}`, "--key", api.apiKey, "--timeout", "3000"),
    ]);

    // A. Healthy: exit 0, one "ok" line per check.
    expect(healthy.code, healthy.output).toBe(0);
    for (const check of CHECKS) expect(lineOf(healthy.output, check)).toMatch(/^ok\s/);
    expect(healthy.output).not.toContain("FAILED");
    expect(healthy.output).toContain("all 5 checks passed");

    // B. A wrong key: only the authenticated check fails, saying what came back.
    expect(wrongKey.code).toBe(1);
    expect(lineOf(wrongKey.output, "GET /offers with the API key")).toMatch(/^FAILED\s.*expected 200 .*got 401 .*unauthorized/);
    expect(lineOf(wrongKey.output, "401 without the API key")).toMatch(/^ok\s/);
    expect(lineOf(wrongKey.output, "404 JSON for an unknown route")).toMatch(/^ok\s/);
    expect(wrongKey.output).toMatch(/1 of 5 checks FAILED: GET \/offers with the API key/);

    // C. No webhook secret: the webhook check fails and says why, unless the stage is declared without Stripe.
    expect(noSecret.code).toBe(1);
    expect(lineOf(noSecret.output, "webhook refuses a bad Stripe-Signature")).toMatch(/^FAILED\s.*no webhook signing secret/);
    expect(lineOf(manualStage.output, "webhook refuses a bad Stripe-Signature")).toMatch(/^ok\s/);
    expect(lineOf(healthy.output, "webhook refuses a bad Stripe-Signature")).toMatch(/^ok\s/);

    // D. Nothing listening: every check fails with the network's reason, no stack trace.
    expect(nobody.code).toBe(1);
    for (const check of CHECKS) expect(lineOf(nobody.output, check)).toMatch(/^FAILED\s.*could not connect: .*ECONNREFUSED/);
    expect(nobody.output).not.toMatch(/^\s+at /m);
    expect(nobody.output).toContain("5 of 5 checks FAILED");

    // E. Read-only: both tables hold exactly what they held before.
    expect(await items(tableName)).toEqual(before.api);
    expect(await items(bareTable)).toEqual(before.bare);
  }, 90_000);

  it("refuses missing or malformed arguments with its usage and exit code 2", async () => {
    const [noUrl, badUrl] = await Promise.all([smoke("--key", "k"), smoke("--url", "not a url", "--key", "k")]);
    expect(noUrl.code).toBe(2);
    expect(noUrl.output).toContain("--url is required");
    expect(noUrl.output).toContain("usage: npm run smoke");
    expect(badUrl.code).toBe(2);
    expect(badUrl.output).toContain("--url is not a URL");
  }, 30_000);
});
