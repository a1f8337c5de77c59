/**
 * Token movements on one order's grants (refunds, clawbacks, disputes): reading the
 * order's grants with their live state in the balance items, and collecting the writes of
 * a movement (each touched balance under its version, one ledger entry per grant moved,
 * the grant items ended) into one transaction with the order's own change.
 *
 * Size: an order has at most 31 grants (a root and 30 bundle items, functions/schemas.ts),
 * so a movement writes at most 31 balances, 31 ledger entries (net-zero pairs are skipped)
 * and 31 grant items, plus the order, its event and an idempotency record: 96 actions,
 * inside DynamoDB's 100 ({@link MAX_TRANSACTION_ACTIONS}; checked before writing).
 */
import type { Context } from "./context.js";
import { balanceWrites, mapView, readBalances, readMoreOverflow, type BalanceView } from "./balances.js";
import type { GrantItem, OrderItem } from "./db/service.js";
import { commit, type TransactionItem } from "./db/transact.js";
import { InvariantViolation } from "./errors.js";
import { ledgerEntryWrite, newLedgerEntry, type LedgerEntryDraft } from "./ledger.js";
import { emptyBalance, endOrderPeriods, type BalanceState, type GrantState } from "./rules/balance-state.js";
import type { GrantFacts } from "./rules/give-back.js";

/** DynamoDB's limit on the actions of one `TransactWriteItems`. */
export const MAX_TRANSACTION_ACTIONS = 100;

/** One grant of an order: its facts (the grant item) and its live state in the balance item, if still there. */
export interface OrderGrant {
  item: GrantItem;
  /** Absent when the grant has left the balance item (exhausted, expired or ended). */
  state: GrantState | undefined;
}

/** An order's grants and the balances of their groups (every grant in hand, overflow items included), read consistently. */
export interface OrderGrants {
  grants: OrderGrant[];
  balances: Map<string, BalanceView>;
}

/** The grant's facts as the give-back rule needs them (core/rules/give-back.ts `GrantFacts`). */
export function grantFacts(item: GrantItem): GrantFacts {
  return {
    grantId: item.grantId,
    tokens: item.tokens,
    starts: item.starts,
    ...(item.expires !== undefined ? { expires: item.expires } : {}),
    ...(item.orderId !== undefined ? { orderId: item.orderId } : {}),
    ...(item.offerId !== undefined ? { offerId: item.offerId } : {}),
    ...(item.orderOfferId !== undefined ? { orderOfferId: item.orderOfferId } : {}),
  };
}

/**
 * Reads the order's grants (one consistent `BatchGetItem`) and the user's balances (one
 * consistent Query), with every overflow item of the order's groups that have some (one
 * Query each: a grant of the order may sit there, core/balances.ts).
 * @throws InvariantViolation when a grant of a paid order has no item
 */
export async function readOrderGrants(ctx: Pick<Context, "db">, order: Pick<OrderItem, "userId" | "orderId" | "grantIds">): Promise<OrderGrants> {
  const [maps, found] = await Promise.all([
    readBalances(ctx, order.userId),
    order.grantIds.length === 0
      ? Promise.resolve({ data: [] as GrantItem[] })
      : ctx.db.entities.grant.get(order.grantIds.map((grantId) => ({ userId: order.userId, grantId }))).go({ consistent: true }),
  ]);
  const byId = new Map(found.data.map((item) => [item.grantId, item]));
  const items = order.grantIds.map((grantId) => {
    const item = byId.get(grantId);
    if (!item) throw new InvariantViolation(`grant ${grantId} of order ${order.orderId} has no item`, { orderId: order.orderId, grantId });
    return item;
  });
  const balances = new Map<string, BalanceView>();
  for (const group of new Set(items.map((item) => item.offerGroup))) {
    const state = maps.get(group);
    if (state) balances.set(group, state.spilled ? await readMoreOverflow(ctx, mapView(state), "all") : mapView(state));
  }
  const grants = items.map((item) => ({ item, state: balances.get(item.offerGroup)?.state.grants.find((grant) => grant.grantId === item.grantId) }));
  return { grants, balances };
}

/**
 * The writes of one token movement, collected group by group: the next state of each
 * touched balance, the ledger entries, the grant items to end. {@link actions} turns them
 * into named transaction actions.
 */
export class TokenMovement {
  private readonly next = new Map<string, BalanceState>();
  private readonly entries: LedgerEntryDraft[] = [];
  private readonly ended = new Map<string, GrantItem>();
  private readonly expired = new Map<string, { item: GrantItem; tokens: number }>();

  constructor(
    private readonly read: ReadonlyMap<string, BalanceView>,
    private readonly now: Date,
  ) {}

  /** The group's state as the movement has made it so far (the read state, every grant in hand, at first). */
  state(userId: string, offerGroup: string): BalanceState {
    return this.next.get(offerGroup) ?? this.read.get(offerGroup)?.state ?? emptyBalance(userId, offerGroup);
  }

  /** Sets the group's next state. */
  update(state: BalanceState): void {
    this.next.set(state.offerGroup, state);
  }

  /** Adds a ledger entry (id and date are given when the actions are built). */
  entry(draft: LedgerEntryDraft): void {
    this.entries.push(draft);
  }

  /** Ends the grant: its item leaves `active` (`refunded`) and the expiry index. */
  end(item: GrantItem): void {
    if (item.status === "active") this.ended.set(item.grantId, item);
  }

  /**
   * Records that `tokens` given back to a grant past its expiry left it at once (their
   * `expire` entry is the caller's): the grant item becomes `expired` (its
   * `expiredTokens` grows, it leaves the expiry index) and an empty grant leaves the
   * balance item, as the expiry job does it (core/expiry.ts).
   */
  expire(item: GrantItem, tokens: number): void {
    const state = this.state(item.userId, item.offerGroup);
    const live = state.grants.find((grant) => grant.grantId === item.grantId);
    if (live && live.remaining === 0) this.update({ ...state, grants: state.grants.filter((grant) => grant !== live) });
    const seen = this.expired.get(item.grantId);
    this.expired.set(item.grantId, { item, tokens: (seen?.tokens ?? 0) + tokens });
  }

  /** Tokens the movement moved in all (signed sum of its entries). */
  get tokens(): number {
    return this.entries.reduce((sum, entry) => sum + entry.tokens, 0);
  }

  /**
   * The named actions: `balance:<group>` and `overflow:<group>:<itemKey>` (core/balances.ts
   * `balanceWrites`), `entry:<n>`, `grant:<grantId>`.
   * @param reserved actions the caller adds (order, event, idempotency record), counted
   *   against {@link MAX_TRANSACTION_ACTIONS}
   * @throws InvariantViolation when the transaction would exceed DynamoDB's limit, or a
   *   state breaks the balance invariant (core/balances.ts `balanceWrite`)
   */
  actions(ctx: Pick<Context, "db">, reserved: number): Record<string, TransactionItem> {
    const actions: Record<string, TransactionItem> = {};
    for (const [group, state] of this.next) {
      const view = this.read.get(group) ?? mapView(emptyBalance(state.userId, group));
      for (const [name, action] of Object.entries(balanceWrites(ctx.db, view, state, this.now))) actions[`${name}:${group}`] = action;
    }
    this.entries.forEach((draft, index) => (actions[`entry:${index}`] = ledgerEntryWrite(ctx.db, newLedgerEntry(draft, this.now))));
    for (const item of this.ended.values()) {
      actions[`grant:${item.grantId}`] = commit(
        ctx.db.entities.grant
          .patch({ userId: item.userId, grantId: item.grantId })
          .set({ status: "refunded" })
          .remove(["expiryBucket", "expirySort"])
          .where((attr, op) => op.eq(attr.status, "active")),
      );
    }
    for (const { item, tokens } of this.expired.values()) {
      actions[`grant:${item.grantId}`] = commit(
        ctx.db.entities.grant
          .patch({ userId: item.userId, grantId: item.grantId })
          .set({ status: "expired", ...(item.expiredAt ? {} : { expiredAt: this.now.toISOString() }) })
          .add({ expiredTokens: tokens })
          .remove(["expiryBucket", "expirySort"]),
      );
    }
    const count = Object.keys(actions).length + reserved;
    if (count > MAX_TRANSACTION_ACTIONS) {
      throw new InvariantViolation(`a token movement needs ${count} actions, more than DynamoDB's ${MAX_TRANSACTION_ACTIONS}`, { count });
    }
    return actions;
  }
}

/**
 * Removes what remains of each of the order's grants and ends them all, 0-token period
 * grants included, and the periods its grants left on the balance items (a refunded order
 * neither counts as subscribed nor unlocks offers):
 * one ledger entry of `reason` per grant that still held tokens (`-remaining`, with its
 * draw, as an expiry writes it).
 * @returns the tokens removed per grant
 */
export function endOrderGrants(movement: TokenMovement, order: Pick<OrderItem, "userId" | "orderId">, grants: readonly OrderGrant[], reason: "refund" | "adjust", metadata?: Record<string, unknown>): Array<{ grantId: string; tokens: number }> {
  const taken: Array<{ grantId: string; tokens: number }> = [];
  // The periods of its grants that left the map (emptied, spilled) end with the order.
  for (const group of new Set(grants.map(({ item }) => item.offerGroup))) {
    const state = movement.state(order.userId, group);
    const ended = endOrderPeriods(state, order.orderId);
    if (ended !== state) movement.update(ended);
  }
  for (const { item } of grants) {
    const state = movement.state(order.userId, item.offerGroup);
    const live = state.grants.find((grant) => grant.grantId === item.grantId);
    const remaining = live?.remaining ?? 0;
    if (live) {
      movement.update({ ...state, balance: state.balance - remaining, grants: state.grants.filter((grant) => grant !== live) });
    }
    if (remaining > 0) {
      movement.entry({ userId: order.userId, offerGroup: item.offerGroup, tokens: -remaining, reason, orderId: order.orderId, grantId: item.grantId, draws: [{ grantId: item.grantId, tokens: remaining }], ...(metadata ? { metadata } : {}) });
    }
    movement.end(item);
    taken.push({ grantId: item.grantId, tokens: remaining });
  }
  return taken;
}

/**
 * Takes `tokens` from one grant (at most what it holds; it stays in the balance item):
 * a ledger entry of `reason`.
 * @returns the tokens taken
 */
export function takeFromGrant(movement: TokenMovement, order: Pick<OrderItem, "userId" | "orderId">, item: GrantItem, tokens: number, reason: "refund" | "adjust", metadata?: Record<string, unknown>): number {
  const state = movement.state(order.userId, item.offerGroup);
  const live = state.grants.find((grant) => grant.grantId === item.grantId);
  const take = Math.min(tokens, live?.remaining ?? 0);
  if (take <= 0 || !live) return 0;
  movement.update({
    ...state,
    balance: state.balance - take,
    grants: state.grants.map((grant) => (grant === live ? { ...grant, remaining: grant.remaining - take } : grant)),
  });
  movement.entry({ userId: order.userId, offerGroup: item.offerGroup, tokens: -take, reason, orderId: order.orderId, grantId: item.grantId, draws: [{ grantId: item.grantId, tokens: take }], ...(metadata ? { metadata } : {}) });
  return take;
}
