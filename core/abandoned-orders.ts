/**
 * Abandoned orders: an order still unpaid (`pending`, or `error` after a failed payment
 * attempt) some days after it last became pending (default 7) is given up: its
 * PaymentIntent is cancelled at Stripe and the order becomes `refused` with an
 * "abandoned" history entry and an `order.refused` event. Refused is not final: a late
 * success of the payment still pays the order, once (core/fulfilment.ts).
 *
 * Unpaid orders carry sparse keys on the shared work index (day they became pending +
 * shard), removed when they stop being unpaid; the daily job reads the days up to the
 * cut-off from a watermark, so its cost grows with the orders to abandon.
 */
import type { Context } from "./context.js";
import type { Db, OrderItem } from "./db/service.js";
import { commit, transactWrite, type TransactionItem } from "./db/transact.js";
import { PaymentProviderError } from "./errors.js";
import { eventWrite } from "./events.js";
import { daysBetween, EXPIRY_SHARDS, expiryBucket, expiryShard, utcDay, utcDayPlus } from "./rules/work-index.js";

/** Default age after which an unpaid order is abandoned. */
export const DEFAULT_ABANDON_AFTER_MS = 7 * 24 * 60 * 60 * 1000;

/** Name of the sweep's state item. */
export const ABANDONED_ORDERS_JOB = "abandoned-orders";

/** Days a first sweep looks back before its cut-off. */
const FIRST_RUN_LOOKBACK_DAYS = 35;

/** The order as pending since `since`, with its pending-order index keys. */
export function withPendingKeys(order: OrderItem, since: Date): OrderItem {
  const at = since.toISOString();
  return {
    ...order,
    pendingSince: at,
    pendingBucket: expiryBucket(utcDay(since), expiryShard(order.orderId)),
    pendingSort: `${at}#${order.userId}#${order.orderId}`,
  };
}

/** The order without its pending-order index keys (it is paid, refused, ...). */
export function withoutPendingKeys(order: OrderItem): OrderItem {
  const { pendingSince: _since, pendingBucket: _bucket, pendingSort: _sort, ...rest } = order;
  return rest;
}

/** What a sweep did. */
export interface AbandonedSummary {
  abandoned: number;
  candidates: number;
  /** False when the deadline or a Stripe failure left work for the next run. */
  complete: boolean;
}

/**
 * Abandons every order unpaid since before `now − abandonAfterMs`.
 * @param options.deadline epoch ms after which no new page is started
 */
export async function abandonOrders(
  ctx: Pick<Context, "db" | "clock" | "payments" | "logger">,
  options: { abandonAfterMs?: number; deadline?: number; pageSize?: number } = {},
): Promise<AbandonedSummary> {
  const now = ctx.clock.now();
  const cutoff = new Date(now.getTime() - (options.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS));
  const lastDay = utcDay(cutoff);
  const summary: AbandonedSummary = { abandoned: 0, candidates: 0, complete: true };
  const state = await ctx.db.entities.jobState.get({ job: ABANDONED_ORDERS_JOB }).go({ consistent: true });
  const firstDay = state.data?.doneBefore ?? utcDayPlus(cutoff, -FIRST_RUN_LOOKBACK_DAYS);

  for (const day of daysBetween(firstDay, lastDay)) {
    for (let shard = 0; shard < EXPIRY_SHARDS; shard++) {
      let cursor: string | null = null;
      do {
        if (options.deadline !== undefined && Date.now() > options.deadline) return { ...summary, complete: false };
        const page: { data: Array<{ userId: string; orderId: string }>; cursor: string | null } = await ctx.db.entities.order.query
          .byPendingDay({ pendingBucket: expiryBucket(day, shard) })
          .lt({ pendingSort: `${cutoff.toISOString()}$` })
          .go({ limit: options.pageSize ?? 100, cursor, attributes: ["userId", "orderId"] });
        summary.candidates += page.data.length;
        for (const { userId, orderId } of page.data) {
          const outcome = await abandonOrder(ctx, userId, orderId, cutoff, now);
          if (outcome === "abandoned") summary.abandoned++;
          if (outcome === "retry") summary.complete = false;
        }
        cursor = page.cursor;
      } while (cursor);
    }
  }
  if (summary.complete) {
    await ctx.db.entities.jobState.put({ job: ABANDONED_ORDERS_JOB, doneBefore: lastDay, updatedAt: now.toISOString() }).go();
  }
  return summary;
}

/** Abandons one order if it is still unpaid since before `cutoff` (re-read consistently). */
async function abandonOrder(
  ctx: Pick<Context, "db" | "payments" | "logger">,
  userId: string,
  orderId: string,
  cutoff: Date,
  now: Date,
): Promise<"abandoned" | "skipped" | "retry"> {
  const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
  if (!order || !["pending", "error"].includes(order.status) || !order.pendingSince || Date.parse(order.pendingSince) > cutoff.getTime()) {
    return "skipped";
  }
  if (order.paymentIntentId) {
    try {
      await ctx.payments.cancelPaymentIntent(order.paymentIntentId);
    } catch (error) {
      if (!(error instanceof PaymentProviderError)) throw error;
      ctx.logger.warn("could not cancel an abandoned order's PaymentIntent; next run retries", { orderId, error });
      return "retry";
    }
  }
  const refusal = refusalWrites(ctx.db, order, { message: `abandoned: unpaid since ${order.pendingSince}` }, now);
  const written = await transactWrite(ctx.db, [refusal.order, refusal.event]);
  return written.committed ? "abandoned" : "skipped";
}

/**
 * The writes that refuse an unpaid order: the order `refused` with a history entry (off
 * the pending-order index), conditional on it being unchanged since it was read, and its
 * `order.refused` event. Refused is not final: a later success still pays it.
 */
export function refusalWrites(
  db: Db,
  order: OrderItem,
  entry: { message: string; payload?: string },
  now: Date,
): { order: TransactionItem; event: TransactionItem } {
  const refused: OrderItem = {
    ...withoutPendingKeys(order),
    status: "refused",
    history: [...order.history, { date: now.toISOString(), status: "refused", ...entry }],
    updatedAt: now.toISOString(),
  };
  return {
    order: commit(
      db.entities.order
        .put(refused)
        .where((attr, op) => `${op.eq(attr.status, order.status)} AND ${op.eq(attr.updatedAt, order.updatedAt)}`),
    ),
    event: eventWrite(db, { type: "order.refused", userId: order.userId, orderId: order.orderId, offerGroup: order.offerGroup }, now).item,
  };
}
