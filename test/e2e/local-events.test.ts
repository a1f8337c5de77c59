/**
 * Events through `npm start` (a child process, on the test run's DynamoDB Local and a
 * table of its own): paying an order makes its `order.paid` event appear in the runner's
 * output as an `event {json}` line, printed by the local publisher loop from the outbox.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalRunner, type LocalRunner } from "../helpers/local-runner.js";

let runner: LocalRunner;

beforeAll(async () => {
  runner = await startLocalRunner({ DYNAMODB_ENDPOINT: inject("dynamoEndpoint"), TABLE_NAME: `e2e-events-${process.pid}-${Date.now().toString(36)}` });
}, 120_000);

afterAll(async () => {
  await runner?.stop();
});

/** The events printed so far, parsed. */
function printedEvents(): Array<Record<string, unknown>> {
  return runner
    .output()
    .split("\n")
    .filter((line) => line.startsWith("event {"))
    .map((line) => JSON.parse(line.slice("event ".length)) as Record<string, unknown>);
}

describe("npm start's events", () => {
  it("says in its banner that events are printed, and prints an order's order.paid event once it is paid", async () => {
    expect(runner.output()).toMatch(/^ {2}events {5}printed below as "event \{json\}" lines/m);
    await runner.request("PUT", "/offers/tokens-100", {
      body: { name: "100 tokens", offerGroup: "ai-tokens", cycle: "monthly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }] },
    });
    const created = await runner.request("POST", "/users/grace/orders", { body: { offerId: "tokens-100" } });
    const orderId = created.body.order.orderId as string;
    expect(printedEvents()).toEqual([]);
    expect((await runner.request("POST", `/users/grace/orders/${orderId}/confirm`)).status).toBe(200);

    const deadline = Date.now() + 10_000;
    while (printedEvents().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const listed = (await runner.request("GET", "/users/grace/events")).body.events;
    expect(listed).toMatchObject([{ type: "order.paid", userId: "grace", orderId, offerGroup: "ai-tokens" }]);
    expect(printedEvents()).toEqual(listed);

    // Printed once: later passes find nothing left to publish.
    await new Promise((r) => setTimeout(r, 2500));
    expect(printedEvents()).toHaveLength(1);
  });
});
