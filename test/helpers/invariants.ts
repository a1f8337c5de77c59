/**
 * The ledger invariants (core/ledger.ts), checked over a whole test table:
 *   1. each stored balance = Σ tokens of its (user, offerGroup) ledger entries;
 *   2. balance = Σ remaining of its active grants − debt, debt >= 0, remaining in [0, tokens];
 *   3. each active grant's remaining = tokens − debt it repaid − its draws (consume,
 *      expire, refund entries);
 *   4. every grant in a balance item has an `active` grant item; every expired grant has
 *      left its balance item, and its expire entry holds exactly its `expiredTokens`;
 *   5. balance >= 0 unless a consumption of the pair asked for an overdraft.
 * Returns the violations (empty when all hold).
 */
import { ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { balanceStateProblem } from "../../core/rules/balance-state.js";

type Item = Record<string, any>;

async function scanAll(client: DynamoDBClient, tableName: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, any> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start }));
    for (const raw of page.Items ?? []) items.push(unmarshall(raw));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Every invariant violation in the table. */
export async function invariantViolations(client: DynamoDBClient, tableName: string): Promise<string[]> {
  const items = await scanAll(client, tableName);
  const of = (entity: string) => items.filter((item) => item.__edb_e__ === entity);
  const balances = of("balance");
  const ledger = of("ledgerEntry");
  const grants = new Map(of("grant").map((g) => [`${g.userId}\u0000${g.grantId}`, g]));
  const problems: string[] = [];

  for (const b of balances) {
    const pair = `${b.userId}/${b.offerGroup}`;
    const entries = ledger.filter((e) => e.userId === b.userId && e.offerGroup === b.offerGroup);
    const sum = entries.reduce((total, e) => total + e.tokens, 0);
    if (sum !== b.balance) problems.push(`${pair}: balance ${b.balance} != ledger sum ${sum}`);
    const stateProblem = balanceStateProblem({ userId: b.userId, offerGroup: b.offerGroup, balance: b.balance, debt: b.debt, version: b.version, grants: b.grants });
    if (stateProblem) problems.push(`${pair}: ${stateProblem}`);
    const overdrawn = entries.some((e) => e.reason === "consume" && (e.debt ?? 0) > 0);
    if (b.balance < 0 && !overdrawn) problems.push(`${pair}: negative balance ${b.balance} without an overdraft`);

    for (const g of b.grants as Item[]) {
      const item = grants.get(`${b.userId}\u0000${g.grantId}`);
      if (!item) problems.push(`${pair}: grant ${g.grantId} has no grant item`);
      else if (item.status !== "active") problems.push(`${pair}: grant ${g.grantId} is ${item.status} but still in the balance`);
      // Credits to the grant (its purchase or grant, and tokens given back to it: entries
      // with its id and tokens > 0, less the debt they repaid) minus what left it (the
      // draws of entries with tokens < 0: consume, expire, refund, a dispute's freeze).
      const credited = entries
        .filter((e) => e.grantId === g.grantId && e.tokens > 0)
        .reduce((total, e) => total + e.tokens - (e.debtRepaid ?? 0), 0);
      const drawn = entries
        .filter((e) => e.tokens < 0)
        .flatMap((e) => (e.draws ?? []) as Item[])
        .filter((d) => d.grantId === g.grantId)
        .reduce((total, d) => total + d.tokens, 0);
      if (g.remaining !== credited - drawn) {
        problems.push(`${pair}: grant ${g.grantId} remaining ${g.remaining} != credited ${credited} − drawn ${drawn}`);
      }
    }
  }

  for (const g of grants.values()) {
    if (g.status === "refunded") {
      const balance = balances.find((b) => b.userId === g.userId && b.offerGroup === g.offerGroup);
      if (balance?.grants.some((x: Item) => x.grantId === g.grantId)) problems.push(`grant ${g.grantId} refunded but still in the balance`);
      if (g.expiryBucket !== undefined) problems.push(`grant ${g.grantId} refunded but still in the work index`);
    }
    if (g.status !== "expired") continue;
    const balance = balances.find((b) => b.userId === g.userId && b.offerGroup === g.offerGroup);
    if (balance?.grants.some((x: Item) => x.grantId === g.grantId)) problems.push(`grant ${g.grantId} expired but still in the balance`);
    const removed = ledger.filter((e) => e.reason === "expire" && e.grantId === g.grantId).reduce((t, e) => t - e.tokens, 0);
    if (removed !== (g.expiredTokens ?? 0)) problems.push(`grant ${g.grantId}: expire entries remove ${removed}, expiredTokens ${g.expiredTokens}`);
    if (g.expiryBucket !== undefined) problems.push(`grant ${g.grantId} expired but still in the work index`);
  }
  return problems;
}
