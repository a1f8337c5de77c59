/**
 * Fast seeding for tests at scale: promotional grants written with `BatchWriteItem`,
 * 25 items a request, as exactly the items `createPromotionalGrant` writes (grant,
 * balance, ledger `adjust` entry), built with core's own functions. Only for fresh
 * (user, offerGroup) pairs: it does not read existing balances.
 */
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import type { Context } from "../../core/context.js";
import { addGrant, emptyBalance } from "../../core/rules/balance-state.js";
import { grantItem } from "../../core/grants.js";
import { newId } from "../../core/ids.js";
import { newLedgerEntry } from "../../core/ledger.js";

/** Seeds one grant of `tokens` for each `{ userId, offerGroup, expires }` (pairs must be new). */
export async function seedGrants(
  ctx: Pick<Context, "db" | "clock">,
  grants: Array<{ userId: string; offerGroup: string; tokens: number; expires: string | null }>,
): Promise<void> {
  const now = ctx.clock.now();
  const { entities, client, table } = ctx.db;
  const items: Record<string, unknown>[] = [];
  for (const g of grants) {
    const grantId = newId(now);
    const starts = now.toISOString();
    const { next } = addGrant(emptyBalance(g.userId, g.offerGroup), { grantId, tokens: g.tokens, starts, ...(g.expires ? { expires: g.expires } : {}) });
    const grant = grantItem({ grantId, userId: g.userId, offerGroup: g.offerGroup, reason: "adjust", tokens: g.tokens, starts, expires: g.expires ?? undefined }, now);
    const entry = newLedgerEntry({ userId: g.userId, offerGroup: g.offerGroup, tokens: g.tokens, reason: "adjust", grantId }, now);
    items.push(
      entities.grant.put(grant).params().Item,
      entities.balance.put({ ...next, version: 1, updatedAt: starts }).params().Item,
      entities.ledgerEntry.put({ ...entry }).params().Item,
    );
  }
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches.slice(i, i + 8).map(async (batch) => {
        let requests = batch.map((Item) => ({ PutRequest: { Item } }));
        while (requests.length > 0) {
          const result = await client.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
          requests = (result.UnprocessedItems?.[table] ?? []) as typeof requests;
        }
      }),
    );
  }
}
