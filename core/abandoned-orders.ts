/**
 * Abandoned orders: an order still unpaid (`pending`, or `error` after a failed payment
 * attempt) some days after it last became pending (default 7) is given up (lifecycle
 * `abandoned`, core/rules/order-lifecycle.ts): its current attempt is read at Stripe (a
 * succeeded one pays the order instead), cancelled or expired, and the order becomes `refused` with an "abandoned" history entry and an
 * `order.refused` event. Refused is not final: a late success of the payment still pays
 * the order, once (core/fulfilment.ts).
 *
 * Unpaid orders carry the pending-order keys of the work index (day they became pending
 * + shard), removed when they stop waiting; the daily job walks the days up to the
 * cut-off from a watermark (core/day-walk.ts), so its cost grows with the orders to
 * abandon.
 */
import { walkDaysSince } from "./day-walk.js";
import { transactWrite } from "./db/transact.js";
import { PaymentProviderError } from "./errors.js";
import { orderActions } from "./order-writes.js";
import type { PaymentContext } from "./context.js";
import { applySucceededPayment, closeCurrentAttempt } from "./payment-attempts.js";
import { canTransition, transition } from "./rules/order-lifecycle.js";
import { DAY_MS, utcDay } from "./rules/time.js";
import { sortBoundAfter } from "./rules/work-index.js";

/** Default age after which an unpaid order is abandoned. */
export const DEFAULT_ABANDON_AFTER_MS = 7 * DAY_MS;

/** Name of the abandoned-order pass's watermark (a job-state item). */
export const ABANDONED_ORDERS_PASS = "abandoned-orders";

/** What a sweep did. */
export interface AbandonedSummary {
  abandoned: number;
  /** Orders whose attempt had succeeded without its webhook: paid instead of abandoned. */
  paid: number;
  candidates: number;
  /** False when the deadline or a Stripe failure left work for the next run. */
  complete: boolean;
}

/**
 * Abandons every order unpaid since before `now − abandonAfterMs`.
 * @param options.deadline epoch ms after which no new page is started
 */
export async function abandonOrders(
  ctx: PaymentContext,
  options: { abandonAfterMs?: number; deadline?: number; pageSize?: number } = {},
): Promise<AbandonedSummary> {
  const now = ctx.clock.now();
  const cutoff = new Date(now.getTime() - (options.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS));
  let abandoned = 0;
  let paid = 0;
  const walk = await walkDaysSince(ctx, {
    job: ABANDONED_ORDERS_PASS,
    last: utcDay(cutoff),
    deadline: options.deadline,
    query: (pendingBucket, cursor) =>
      ctx.db.entities.order.query
        .byPendingDay({ pendingBucket })
        .lt({ pendingSort: sortBoundAfter(cutoff) })
        .go({ limit: options.pageSize ?? 100, cursor, attributes: ["userId", "orderId"] }),
    visit: async (orders) => {
      let leftWork = false;
      for (const { userId, orderId } of orders) {
        const outcome = await abandonOrder(ctx, userId, orderId, cutoff, now);
        if (outcome === "abandoned") abandoned++;
        if (outcome === "paid") paid++;
        if (outcome === "retry") leftWork = true;
      }
      return leftWork ? "left work" : undefined;
    },
  });
  return { abandoned, paid, candidates: walk.candidates, complete: walk.complete };
}

/**
 * Abandons one order if it is still unpaid since before `cutoff` (re-read consistently).
 * Its current attempt is read at Stripe first (core/payment-attempts.ts
 * `closeCurrentAttempt`): one that succeeded (its webhook never applied: the endpoint
 * was down past Stripe's retries) pays the order instead; one still processing is left
 * for the next run; an open one is cancelled or expired, then the order is refused.
 */
async function abandonOrder(ctx: PaymentContext, userId: string, orderId: string, cutoff: Date, now: Date): Promise<"abandoned" | "paid" | "skipped" | "retry"> {
  const { data: read } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
  if (!read || !canTransition(read.status, "abandoned") || !read.pendingSince || Date.parse(read.pendingSince) > cutoff.getTime()) {
    return "skipped";
  }
  let order = read;
  if (read.provider === "stripe" || read.provider === "stripe_checkout") {
    try {
      const closed = await closeCurrentAttempt(ctx, read);
      if (closed.state === "succeeded") {
        const outcome = await applySucceededPayment(ctx, { userId, orderId }, closed.intent, { via: "abandon" });
        return outcome.outcome === "applied" ? "paid" : "skipped";
      }
      if (closed.state === "processing") return "retry";
      order = closed.order;
    } catch (error) {
      if (!(error instanceof PaymentProviderError)) throw error;
      ctx.logger.warn("could not read or close an abandoned order's payment attempt; next run retries", { orderId, error });
      return "retry";
    }
  }
  const refused = transition(order, "abandoned", { message: `abandoned: unpaid since ${order.pendingSince}`, now });
  const written = await transactWrite(ctx.db, orderActions(ctx.db, { from: order, to: refused, trigger: "abandoned" }, now));
  return written.committed ? "abandoned" : "skipped";
}
