/**
 * Issue 9, defect 6: "A user with a long history can no longer be credited". Specifies, on
 * DynamoDB Local through the real code paths, that a user with 10,000 purchases and
 * promotional grants in one offerGroup is an ordinary user (DESIGN.md "The balance item
 * stays small, whatever the history"):
 * - the history is seeded fast (test/helpers/seed.ts `seedHistory`: the items the code
 *   writes, built with its own functions, written with BatchWriteItem);
 * - a new purchase (`confirmManualOrder`) is credited;
 * - a consumption with an Idempotency-Key is still one read and one transaction, and that
 *   transaction consumes at most 12 write capacity units (`ReturnConsumedCapacity`);
 * - every item stays under DynamoDB's 400 KB, and the balance item within a few KB;
 * - the ledger invariants hold after each test (test/helpers/invariants.ts), the layout's
 *   included (map, overflow items, summaries).
 * Before the change, this fails at the seeding: the balance item of this history (every
 * grant kept in its map) is refused by DynamoDB ("Item size has exceeded the maximum
 * allowed size"), as every whole-item write of such a user was.
 */
import { describe, expect, it } from "vitest";
import { GetItemCommand, QueryCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { consume } from "../../core/consumption.js";
import { getCredits } from "../../core/credits.js";
import { upsertOffer } from "../../core/offers.js";
import { confirmManualOrder, createOrder } from "../../core/orders.js";
import { MAIN_GRANTS } from "../../core/rules/balance-layout.js";
import { useIntegrationContext } from "../helpers/context.js";
import { anOffer } from "../helpers/factories.js";
import { seedHistory, type SeededGrant } from "../helpers/seed.js";

const t = useIntegrationContext({ label: "long-history" });
const NOW = "2026-03-10T09:00:00.000Z";
const IN_A_MONTH = "2026-04-10T09:00:00.000Z";

/**
 * The size of a stored item by DynamoDB's rules ("Item sizes and formats"): attribute
 * names and strings in UTF-8 bytes, numbers about one byte per two digits plus one,
 * booleans one byte, maps and lists 3 bytes plus one per element.
 */
function itemSize(item: Record<string, AttributeValue>): number {
  const value = (v: AttributeValue): number => {
    if (v.S !== undefined) return Buffer.byteLength(v.S);
    if (v.N !== undefined) return Math.ceil(v.N.replace(/^-|\./g, "").length / 2) + 1;
    if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
    if (v.L !== undefined) return 3 + v.L.reduce((total, element) => total + 1 + value(element), 0);
    if (v.M !== undefined) return 3 + Object.entries(v.M).reduce((total, [name, element]) => total + 1 + Buffer.byteLength(name) + value(element), 0);
    throw new Error(`unsized attribute ${JSON.stringify(v)}`);
  };
  return Object.entries(item).reduce((total, [name, v]) => total + Buffer.byteLength(name) + value(v), 0);
}

/** The balance item and the overflow items of (userId, offerGroup), raw, with their sizes in bytes. */
async function storedSizes(userId: string, offerGroup: string): Promise<{ balance: number; overflow: number[] }> {
  const key = t.db.entities.balance.get({ userId, offerGroup }).params().Key as Record<string, string>;
  const balance = await t.client.send(new GetItemCommand({ TableName: t.tableName, Key: { pk: { S: key.pk! }, sk: { S: key.sk! } }, ConsistentRead: true }));
  const query = t.db.entities.balanceOverflow.query.byGroup({ userId, offerGroup }).params() as { KeyConditionExpression: string; ExpressionAttributeNames: Record<string, string>; ExpressionAttributeValues: Record<string, string> };
  const overflow: number[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await t.client.send(
      new QueryCommand({
        TableName: t.tableName,
        KeyConditionExpression: query.KeyConditionExpression,
        ExpressionAttributeNames: query.ExpressionAttributeNames,
        ExpressionAttributeValues: Object.fromEntries(Object.entries(query.ExpressionAttributeValues).map(([name, v]) => [name, { S: v }])),
        ExclusiveStartKey: start,
        ConsistentRead: true,
      }),
    );
    overflow.push(...(page.Items ?? []).map(itemSize));
    start = page.LastEvaluatedKey;
  } while (start);
  return { balance: itemSize(balance.Item!), overflow };
}

/**
 * 10,000 grants in one group, interleaved: 7,000 purchases of a `once` pack and 2,000
 * promotional grants, all spent; 300 monthly purchases spent but not yet expired; 650
 * promotional grants and 48 monthly purchases still holding tokens; 2 periods (0 tokens)
 * of a subscription.
 */
function longHistory(): SeededGrant[] {
  const kinds: SeededGrant[] = [
    ...Array.from({ length: 7000 }, (): SeededGrant => ({ tokens: 10, expires: null, offerId: "pack-10", spent: 10 })),
    ...Array.from({ length: 2000 }, (): SeededGrant => ({ tokens: 5, expires: null, spent: 5 })),
    ...Array.from({ length: 300 }, (): SeededGrant => ({ tokens: 20, expires: IN_A_MONTH, offerId: "monthly-20", spent: 20 })),
    ...Array.from({ length: 650 }, (): SeededGrant => ({ tokens: 3, expires: null, spent: 0 })),
    ...Array.from({ length: 48 }, (): SeededGrant => ({ tokens: 20, expires: IN_A_MONTH, offerId: "monthly-20", spent: 10 })),
    { tokens: 0, expires: IN_A_MONTH, offerId: "plan", spent: 0 },
    { tokens: 0, expires: "2026-05-10T09:00:00.000Z", offerId: "plan", spent: 0 },
  ];
  // A fixed shuffle (so that spent and live grants alternate through the history).
  let seed = 7;
  const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  return kinds;
}

describe("a user with 10,000 purchases and promotional grants in one group", () => {
  const userId = "long-history";
  const live = 650 * 3 + 48 * 10;

  it("is still credited, spends in one read and one transaction of at most 12 WCU, and keeps every item small", async () => {
    t.clock.set(NOW);
    const seeded = await seedHistory(t.ctx, userId, "calls", longHistory());
    expect(seeded.grantIds).toHaveLength(10_000);

    // A. The stored balance: the map within a few KB, the overflow items far below 400 KB.
    const seededSizes = await storedSizes(userId, "calls");
    console.log("long history seeded:", { items: seeded.items, balanceItemBytes: seededSizes.balance, overflowItems: seededSizes.overflow.length, largestOverflowItemBytes: Math.max(...seededSizes.overflow) });
    expect(seededSizes.balance).toBeLessThan(4 * 1024);
    expect(Math.max(...seededSizes.overflow)).toBeLessThan(400 * 1024);
    const before = await getCredits(t.ctx, userId);
    expect(before.groups[0]).toMatchObject({ balance: live, debt: 0, expires: "2026-05-10T09:00:00.000Z" });
    expect(before.groups[0]!.grants).toHaveLength(650 + 48 + 2);

    // B. A new purchase is credited.
    t.clock.set("2026-03-10T10:00:00.000Z");
    await upsertOffer(t.ctx, "calls-100", anOffer({ cycle: "monthly", tokenCount: 100 }));
    const { order } = await createOrder(t.ctx, { userId, offerId: "calls-100" });
    expect(await confirmManualOrder(t.ctx, userId, order.orderId)).toMatchObject({ status: "paid" });
    expect((await getCredits(t.ctx, userId)).groups[0]!.balance).toBe(live + 100);

    // C. A consumption with an Idempotency-Key: one read, one transaction of at most 12 WCU.
    t.requests.reset();
    const spent = await consume(t.ctx, { userId, offerGroup: "calls", tokens: 7, metadata: { callId: "c-1" }, idempotency: { scope: "consumptions", key: "k-long-1", requestHash: "h1" } });
    expect(spent.balance).toBe(live + 93);
    expect(t.requests.byCommand).toEqual({ BatchGetItemCommand: 1, TransactWriteItemsCommand: 1 });
    const wcu = t.requests.unitsOf("TransactWriteItemsCommand");
    console.log("consumption with a key:", { requests: t.requests.total, readUnits: t.requests.unitsOf("BatchGetItemCommand"), writeUnits: wcu });
    expect(wcu).toBeGreaterThan(0);
    expect(wcu).toBeLessThanOrEqual(12);

    // D. A consumption wider than the map reads the spilled grants once, and refills the map.
    t.requests.reset();
    const wide = await consume(t.ctx, { userId, offerGroup: "calls", tokens: 700, idempotency: { scope: "consumptions", key: "k-long-2", requestHash: "h2" } });
    expect(wide.balance).toBe(live + 93 - 700);
    console.log("consumption past the map:", { requests: t.requests.byCommand, writeUnits: t.requests.unitsOf("TransactWriteItemsCommand"), readUnits: t.requests.unitsOf("QueryCommand") + t.requests.unitsOf("BatchGetItemCommand") });
    expect(t.requests.byCommand.BatchGetItemCommand).toBe(1);
    t.requests.reset();
    await consume(t.ctx, { userId, offerGroup: "calls", tokens: 3, idempotency: { scope: "consumptions", key: "k-long-3", requestHash: "h3" } });
    expect(t.requests.total).toBe(2);

    // E. Every item still small; the map still at most MAIN_GRANTS grants.
    const after = await storedSizes(userId, "calls");
    expect(after.balance).toBeLessThan(4 * 1024);
    expect(Math.max(...after.overflow)).toBeLessThan(400 * 1024);
    const { data } = await t.db.entities.balance.get({ userId, offerGroup: "calls" }).go({ consistent: true });
    expect(data!.grants.length).toBeLessThanOrEqual(MAIN_GRANTS);
    expect((await getCredits(t.ctx, userId)).groups[0]!.balance).toBe(live + 90 - 700);
  });
});
