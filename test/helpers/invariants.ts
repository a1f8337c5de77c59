/**
 * The ledger invariants (core/ledger.ts), checked over a whole test table:
 *   1. each stored balance = Σ tokens of its (user, offerGroup) ledger entries;
 *   2. balance = Σ remaining of its active grants (map and overflow items) − debt, debt >= 0,
 *      remaining in [0, tokens];
 *   3. each active grant's remaining = tokens − debt it repaid − its draws (consume,
 *      expire, refund entries);
 *   4. every grant in a balance item or its overflow items has an `active` grant item;
 *      every expired grant has left them, and its expire entry holds exactly its `expiredTokens`;
 *   5. balance >= 0 unless a consumption of the pair asked for an overdraft;
 *   6. the layout (core/rules/balance-layout.ts): at most MAIN_GRANTS grants in the map, in
 *      key order, below the overflow; the balance item's `spilled` summary is exactly its
 *      overflow items' count, tokens and smallest key; each item's key is a lower bound of its
 *      grants; no grant is held twice;
 *   7. every expiring grant whose item is `active` but which has left the balance
 *      (exhausted) is covered by the balance item's `exhausted` note (grant id >= `since`,
 *      expiry >= `due`), so that expiry finds it;
 *   8. holds (core/reservations.ts): the live holds on the balance item are consistent
 *      with its grants (core/rules/holds.ts `holdsProblem`), each has its `hold` ledger entry
 *      of −tokens and no `release` entry yet, and a reservation item `held`; every
 *      reservation item `held` is a live hold of its group; held = Σ live holds = −Σ ledger
 *      entries of the live reservations.
 * Tokens given back (`release`, `reverse`: positive entries with draws) credit their grants;
 * when such an entry repaid debt, the part of each grant that went to the debt is not
 * recorded per grant, so the per-grant check (3) skips those grants.
 * Returns the violations (empty when all hold).
 */
import { QueryCommand, ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { createDb } from "../../core/db/service.js";
import { TABLE } from "../../core/db/table.js";
import { balanceStateProblem, grantKey } from "../../core/rules/balance-state.js";
import { itemLowerBound, layoutProblem } from "../../core/rules/balance-layout.js";
import { heldTokens, holdsProblem, type HoldState } from "../../core/rules/holds.js";

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

/** The entities, only to build keys (their table and client are never used). */
const userKeys = createDb(undefined as never, "keys-only");

/** The items of one user (every entity keyed by user shares one partition, core/db/keys.ts), in one consistent Query. */
async function queryUser(client: DynamoDBClient, tableName: string, userId: string): Promise<Item[]> {
  const { partitionKey } = TABLE;
  const partition = (userKeys.entities.balance.get({ userId, offerGroup: "-" }).params().Key as Record<string, string>)[partitionKey];
  const items: Item[] = [];
  let start: Record<string, any> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        KeyConditionExpression: "#pk = :pk",
        ExpressionAttributeNames: { "#pk": partitionKey },
        ExpressionAttributeValues: marshall({ ":pk": partition }),
        ExclusiveStartKey: start,
      }),
    );
    for (const raw of page.Items ?? []) items.push(unmarshall(raw));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/**
 * Every invariant violation in the table; with `userId`, among that user's items only (one
 * Query instead of a Scan: for checks after every step of a long history).
 */
export async function invariantViolations(client: DynamoDBClient, tableName: string, userId?: string): Promise<string[]> {
  const items = userId === undefined ? await scanAll(client, tableName) : await queryUser(client, tableName, userId);
  const of = (entity: string) => items.filter((item) => item.__edb_e__ === entity);
  const balances = of("balance");
  const ledger = of("ledgerEntry");
  const grants = new Map(of("grant").map((g) => [`${g.userId}\u0000${g.grantId}`, g]));
  const problems: string[] = [];

  const overflowItems = of("balanceOverflow");
  const reservations = of("reservation");
  for (const b of balances) {
    const pair = `${b.userId}/${b.offerGroup}`;
    const entries = ledger.filter((e) => e.userId === b.userId && e.offerGroup === b.offerGroup);
    const sum = entries.reduce((total, e) => total + e.tokens, 0);
    if (sum !== b.balance) problems.push(`${pair}: balance ${b.balance} != ledger sum ${sum}`);
    const stateProblem = balanceStateProblem({ userId: b.userId, offerGroup: b.offerGroup, balance: b.balance, debt: b.debt, version: b.version, grants: b.grants, spilled: b.spilled });
    if (stateProblem) problems.push(`${pair}: ${stateProblem}`);
    const overdrawn = entries.some((e) => e.reason === "consume" && (e.debt ?? 0) > 0);
    if (b.balance < 0 && !overdrawn) problems.push(`${pair}: negative balance ${b.balance} without an overdraft`);

    // 6. The layout: map, overflow items, summary.
    const items = overflowItems.filter((o) => o.userId === b.userId && o.offerGroup === b.offerGroup);
    const spilledGrants = items.flatMap((o) => o.grants as Item[]);
    if (b.layout !== undefined) {
      const layout = layoutProblem(b.grants, b.spilled);
      if (layout) problems.push(`${pair}: ${layout}`);
    }
    for (const o of items) {
      if (o.grants.length === 0) problems.push(`${pair}: empty overflow item ${o.itemKey}`);
      for (const g of o.grants as Item[]) if (grantKey(g as never) < itemLowerBound(o.itemKey)) problems.push(`${pair}: grant ${g.grantId} below its overflow item's key ${o.itemKey}`);
    }
    const spilledTokens = spilledGrants.reduce((total, g) => total + g.remaining, 0);
    const spilledFrom = spilledGrants.map((g) => grantKey(g as never)).sort()[0];
    if ((b.spilled?.grants ?? 0) !== spilledGrants.length || (b.spilled?.tokens ?? 0) !== spilledTokens || b.spilled?.from !== spilledFrom) {
      problems.push(`${pair}: spilled ${JSON.stringify(b.spilled ?? null)} != overflow items (${spilledGrants.length} grants, ${spilledTokens} tokens, from ${spilledFrom})`);
    }
    const all = [...(b.grants as Item[]), ...spilledGrants];
    const ids = new Set(all.map((g) => g.grantId));
    if (ids.size !== all.length) problems.push(`${pair}: a grant is held twice`);

    // 7. Exhausted grants that left, still active, are covered by the note.
    for (const g of grants.values()) {
      if (g.userId !== b.userId || g.offerGroup !== b.offerGroup || g.status !== "active" || g.expires === undefined || ids.has(g.grantId)) continue;
      const note = b.exhausted;
      if (!note || g.grantId < note.since || Date.parse(g.expires) < Date.parse(note.due)) {
        problems.push(`${pair}: grant ${g.grantId} left the balance but its expiry is not noted (${JSON.stringify(note ?? null)})`);
      }
    }

    // 8. Holds.
    const facts = new Map(((b.heldGrants ?? []) as Item[]).map((g) => [g.grantId, g]));
    const holds: HoldState[] = ((b.liveHolds ?? []) as Item[]).map((h) => ({ ...(h as HoldState), draws: (h.draws as Item[]).map((d) => ({ grant: facts.get(d.grantId) as never, tokens: d.tokens })) }));
    if (holds.some((h) => h.draws.some((d) => d.grant === undefined))) problems.push(`${pair}: a hold draws a grant whose facts are not stored`);
    else {
      const holdProblem = holdsProblem({ userId: b.userId, offerGroup: b.offerGroup, balance: b.balance, debt: b.debt, version: b.version, grants: b.grants }, holds);
      if (holdProblem) problems.push(`${pair}: ${holdProblem}`);
    }
    let heldInLedger = 0;
    for (const h of holds) {
      const own = entries.filter((e) => e.reservationId === h.reservationId);
      const hold = own.filter((e) => e.reason === "hold");
      if (hold.length !== 1 || hold[0]!.tokens !== -h.tokens) problems.push(`${pair}: live hold ${h.reservationId} of ${h.tokens} has hold entries ${JSON.stringify(hold.map((e) => e.tokens))}`);
      if (own.some((e) => e.reason !== "hold")) problems.push(`${pair}: live hold ${h.reservationId} has ${own.map((e) => e.reason).join(", ")} entries`);
      heldInLedger -= own.reduce((total, e) => total + e.tokens, 0);
      const item = reservations.find((r) => r.userId === b.userId && r.reservationId === h.reservationId);
      if (item?.status !== "held") problems.push(`${pair}: live hold ${h.reservationId} has reservation item ${item?.status ?? "none"}`);
    }
    if (heldInLedger !== heldTokens(holds)) problems.push(`${pair}: held ${heldTokens(holds)} != −Σ entries of live reservations ${heldInLedger}`);
    for (const r of reservations) {
      if (r.userId !== b.userId || r.offerGroup !== b.offerGroup || r.status !== "held") continue;
      if (!holds.some((h) => h.reservationId === r.reservationId)) problems.push(`${pair}: reservation ${r.reservationId} is held but not on the balance item`);
    }

    // Per grant, computed once (a long history holds thousands of entries).
    const creditedTo = new Map<string, number>();
    const drawnFrom = new Map<string, number>();
    const unattributed = new Set<string>();
    for (const e of entries) {
      if (e.grantId !== undefined && e.tokens > 0) creditedTo.set(e.grantId, (creditedTo.get(e.grantId) ?? 0) + e.tokens - (e.debtRepaid ?? 0));
      if (e.grantId === undefined && e.tokens > 0) {
        for (const d of (e.draws ?? []) as Item[]) {
          creditedTo.set(d.grantId, (creditedTo.get(d.grantId) ?? 0) + d.tokens);
          if ((e.debtRepaid ?? 0) > 0) unattributed.add(d.grantId);
        }
      }
      if (e.tokens < 0) for (const d of (e.draws ?? []) as Item[]) drawnFrom.set(d.grantId, (drawnFrom.get(d.grantId) ?? 0) + d.tokens);
    }
    for (const g of all) {
      const item = grants.get(`${b.userId}\u0000${g.grantId}`);
      if (!item) problems.push(`${pair}: grant ${g.grantId} has no grant item`);
      else if (item.status !== "active") problems.push(`${pair}: grant ${g.grantId} is ${item.status} but still in the balance`);
      // Credits to the grant (its purchase or grant, and tokens given back to it: entries
      // with its id and tokens > 0, less the debt they repaid) minus what left it (the
      // draws of entries with tokens < 0: consume, expire, refund, a dispute's freeze).
      const credited = creditedTo.get(g.grantId) ?? 0;
      const drawn = drawnFrom.get(g.grantId) ?? 0;
      if (!unattributed.has(g.grantId) && g.remaining !== credited - drawn) {
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
    const held = [...(balance?.grants ?? []), ...overflowItems.filter((o) => o.userId === g.userId && o.offerGroup === g.offerGroup).flatMap((o) => o.grants)];
    if (held.some((x: Item) => x.grantId === g.grantId)) problems.push(`grant ${g.grantId} expired but still in the balance`);
    const removed = ledger.filter((e) => e.reason === "expire" && e.grantId === g.grantId).reduce((t, e) => t - e.tokens, 0);
    if (removed !== (g.expiredTokens ?? 0)) problems.push(`grant ${g.grantId}: expire entries remove ${removed}, expiredTokens ${g.expiredTokens}`);
    if (g.expiryBucket !== undefined) problems.push(`grant ${g.grantId} expired but still in the work index`);
  }
  return problems;
}
