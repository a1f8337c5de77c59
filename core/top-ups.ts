/**
 * Running an automatic top-up (issue 13; API.md "Renewing subscriptions and automatic
 * top-ups"): the `top_up.requested` event, written by the consumption (or hold, or
 * commit) that took the group's balance to its top-up threshold (core/auto-top-up.ts),
 * is acted on outside that request's path, by whatever publishes the outbox (the stream
 * publisher in the cloud, the publisher loop under `npm start`, the daily job as a
 * backstop: core/events.ts `publishEvents` with {@link topUpHandler}). For one request:
 *
 * 1. Claim: a `topUp` item keyed by the event id is created with the setting's count for
 *    the calendar month (UTC), in one transaction, so a redelivered event, or two
 *    publishers running at once, count once. At `maxPerMonth`, the top-up fails at once
 *    (`max_per_month`). No setting, or a disabled one: nothing happens.
 * 2. The saved payment method: the one `setup_intent.succeeded` saved
 *    (core/billing.ts `savePaymentMethod`), else the customer's default at Stripe; none
 *    (or no Stripe customer of the user yet): fails (`no_payment_method`).
 * 3. The order of the setting's offer, made with the event id as its idempotency key
 *    (core/orders.ts `createOrder`: a retry finds the same order and PaymentIntent),
 *    its PaymentIntent belonging to the user's customer.
 * 4. Paid off-session (core/payments/provider.ts `payOffSession`, one idempotency key per
 *    PaymentIntent, so a retry never charges twice). The usual `payment_intent.succeeded`
 *    webhook credits the order, which re-arms the group's latches.
 * 5. Ended once, with its event: `top_up.succeeded` (the payment went through) or
 *    `top_up.failed` with a `code`: Stripe's decline code, or ours. A decline ends the
 *    top-up: nothing retries it, so a card that needs the customer's authentication
 *    (`authentication_required`) is never asked again off-session; the order stays
 *    pending with its PaymentIntent, which the customer can pay on-session with the
 *    order's client secret. The group's next crossing (after a purchase lifts the
 *    balance above the threshold) requests the next top-up.
 *
 * What is not an answer (Stripe unreachable, DynamoDB throttling, another runner in the
 * middle of the same order) is thrown: the event stays in the outbox and is retried.
 */
import { readSetting } from "./auto-top-up.js";
import { billingOf } from "./billing.js";
import type { Context } from "./context.js";
import type { Db, TopUpItem } from "./db/service.js";
import { commit, transactWrite } from "./db/transact.js";
import { DomainError, PaymentDeclinedError, PaymentProviderError, TransientError } from "./errors.js";
import { eventWrite, type ServiceEvent } from "./events.js";
import { hashRequest } from "./idempotency.js";
import { createOrder } from "./orders.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { monthOf, usedInMonth } from "./rules/top-up.js";

/** What running one top-up request did. */
export interface TopUpOutcome {
  /**
   * `succeeded` / `failed`: this run ended it (its event written); `ended`: it had ended
   * before (a redelivery); `skipped`: no enabled setting, nothing started.
   */
  outcome: "succeeded" | "failed" | "ended" | "skipped";
  orderId?: string | undefined;
  /** Why it failed: Stripe's decline code, or ours (`max_per_month`, `no_payment_method`, an order refusal's code). */
  code?: string | undefined;
}

/** The order's idempotency scope (the route's: `POST /users/{userId}/orders`). */
const ORDERS_SCOPE = "orders";

/**
 * The outbox hook that runs `top_up.requested` events (core/events.ts `publishEvents`'s
 * `handle`); other events pass through.
 */
export function topUpHandler(ctx: Context): (event: ServiceEvent) => Promise<void> {
  return async (event) => {
    if (event.type !== "top_up.requested" || event.offerGroup === undefined) return;
    const outcome = await runTopUp(ctx, { userId: event.userId, offerGroup: event.offerGroup, eventId: event.eventId });
    ctx.logger.info("automatic top-up", { userId: event.userId, offerGroup: event.offerGroup, eventId: event.eventId, ...outcome });
  };
}

/**
 * Runs the top-up that event `eventId` requested for the user's group, once however
 * often it is called (see the module's steps).
 * @throws what is not an answer: PaymentProviderError other than a decline (Stripe
 *   failing), DomainError `idempotency_in_progress` (another run is making the order),
 *   DynamoDB errors; the caller leaves the event in the outbox to retry
 */
export async function runTopUp(ctx: Context, request: { userId: string; offerGroup: string; eventId: string }): Promise<TopUpOutcome> {
  const { userId, eventId } = request;
  // A. Claimed before (a redelivery, a retry after a failure), or claimed now.
  let topUp = await readTopUp(ctx.db, userId, eventId);
  if (topUp && topUp.status !== "started") return { outcome: "ended", orderId: topUp.orderId, code: topUp.code };
  if (!topUp) {
    const claimed = await claimTopUp(ctx, request);
    if ("outcome" in claimed) return claimed;
    topUp = claimed;
  }

  // B. The saved payment method.
  const { data: customer } = await ctx.db.entities.billingCustomer.get({ userId }).go({ consistent: true });
  // No customer of ours yet: no card was ever saved for the user.
  const paymentMethodId = customer && (customer.paymentMethodId ?? (await billingOf(ctx).defaultPaymentMethod(customer.customerId)));
  if (!paymentMethodId) return endTopUp(ctx, topUp, { status: "failed", code: "no_payment_method" });

  // C. The order, once under the event's id.
  let created: Awaited<ReturnType<typeof createOrder>>;
  try {
    const body = { offerId: topUp.offerId, currency: topUp.currency, quantity: 1, topUp: eventId };
    created = await createOrder(ctx, {
      userId,
      offerId: topUp.offerId,
      currency: topUp.currency,
      quantity: 1,
      idempotency: { scope: ORDERS_SCOPE, key: eventId, requestHash: hashRequest(body) },
      topUpEventId: eventId,
    });
  } catch (error) {
    if (isRefusal(error)) return endTopUp(ctx, topUp, { status: "failed", code: error.code });
    throw error;
  }
  const { order, payment } = created;
  if (order.status === "paid") return endTopUp(ctx, topUp, { status: "succeeded", orderId: order.orderId, amount: order.total.amount, currency: order.total.currency });
  if (payment?.provider !== "stripe") return endTopUp(ctx, topUp, { status: "failed", code: "not_payable_off_session", orderId: order.orderId });

  // D. Paid off-session, once per PaymentIntent.
  try {
    const intent = await billingOf(ctx).payOffSession({
      paymentIntentId: payment.paymentIntentId,
      paymentMethodId,
      idempotencyKey: `top-up-${eventId}-${payment.paymentIntentId}`,
    });
    if (intent.status !== "succeeded" && intent.status !== "processing") return endTopUp(ctx, topUp, { status: "failed", code: intent.status, orderId: order.orderId });
    return endTopUp(ctx, topUp, { status: "succeeded", orderId: order.orderId, amount: order.total.amount, currency: order.total.currency });
  } catch (error) {
    if (error instanceof PaymentDeclinedError) return endTopUp(ctx, topUp, { status: "failed", code: error.declineCode, orderId: order.orderId });
    throw error;
  }
}

/**
 * The top-up item of event `eventId` (read consistently), or undefined.
 */
export async function readTopUp(db: Db, userId: string, eventId: string): Promise<TopUpItem | undefined> {
  const { data } = await db.entities.topUp.get({ userId, eventId }).go({ consistent: true });
  return data ?? undefined;
}

/**
 * Counts the top-up in the month and creates its item (`started`), in one transaction
 * conditioned on the count read; at `maxPerMonth`, creates it `failed` with its event.
 * @returns the item, or the outcome when nothing is to be paid
 */
async function claimTopUp(ctx: Context, request: { userId: string; offerGroup: string; eventId: string }): Promise<TopUpItem | TopUpOutcome> {
  const { userId, offerGroup, eventId } = request;
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const setting = await readSetting(ctx.db, userId, offerGroup);
    if (!setting || !setting.enabled) return { outcome: "skipped" as const };
    const month = monthOf(now);
    const used = usedInMonth(setting, now);
    const item: TopUpItem = {
      userId,
      eventId,
      offerGroup,
      offerId: setting.offerId,
      currency: setting.currency,
      status: "started",
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    if (used >= setting.maxPerMonth) {
      const failed: TopUpItem = { ...item, status: "failed", code: "max_per_month" };
      const written = await transactWrite(ctx.db, {
        topUp: commit(ctx.db.entities.topUp.create(failed)),
        event: eventWrite(ctx.db, { type: "top_up.failed", userId, offerGroup, code: "max_per_month" }, now).item,
      });
      if (written.committed) return { outcome: "failed" as const, code: "max_per_month" };
      return claimedMeanwhile(ctx.db, userId, eventId);
    }
    const written = await transactWrite(ctx.db, {
      topUp: commit(ctx.db.entities.topUp.create(item)),
      setting: commit(
        ctx.db.entities.autoTopUp
          .patch({ userId, offerGroup })
          .set({ month, count: used + 1 })
          .where((attr, op) =>
            [
              op.eq(attr.updatedAt, setting.updatedAt),
              setting.month === undefined ? op.notExists(attr.month) : op.eq(attr.month, setting.month),
              setting.count === undefined ? op.notExists(attr.count) : op.eq(attr.count, setting.count),
            ].join(" AND "),
          ),
      ),
    });
    if (written.committed) return item;
    if (written.rejections.topUp) return claimedMeanwhile(ctx.db, userId, eventId);
    throw new RetryableConflict("the top-up setting changed while counting the month's top-ups");
  });
}

/** After a claim found the item written by another run: it, or its end. */
async function claimedMeanwhile(db: Db, userId: string, eventId: string): Promise<TopUpItem | TopUpOutcome> {
  const again = await readTopUp(db, userId, eventId);
  if (!again) throw new RetryableConflict("the top-up's claim was refused, yet it is not there");
  return again.status === "started" ? again : { outcome: "ended", orderId: again.orderId, code: again.code };
}

/**
 * Ends the top-up once: its item `succeeded`/`failed` (from `started`) with its event
 * (`top_up.succeeded` with the order and amount, or `top_up.failed` with the code), in
 * one transaction. Ended meanwhile by another run: that end is reported.
 */
async function endTopUp(
  ctx: Pick<Context, "db" | "clock">,
  topUp: TopUpItem,
  end: { status: "succeeded" | "failed"; code?: string; orderId?: string; amount?: number; currency?: string },
): Promise<TopUpOutcome> {
  const now = ctx.clock.now();
  const { userId, offerGroup, eventId } = topUp;
  const written = await transactWrite(ctx.db, {
    topUp: commit(
      ctx.db.entities.topUp
        .patch({ userId, eventId })
        .set({
          status: end.status,
          updatedAt: now.toISOString(),
          ...(end.code !== undefined ? { code: end.code } : {}),
          ...(end.orderId !== undefined ? { orderId: end.orderId } : {}),
        })
        .where((attr, op) => op.eq(attr.status, "started")),
    ),
    event: eventWrite(
      ctx.db,
      {
        type: end.status === "succeeded" ? "top_up.succeeded" : "top_up.failed",
        userId,
        offerGroup,
        ...(end.orderId !== undefined ? { orderId: end.orderId } : {}),
        ...(end.code !== undefined ? { code: end.code } : {}),
        ...(end.amount !== undefined ? { amount: end.amount } : {}),
        ...(end.currency !== undefined ? { currency: end.currency } : {}),
      },
      now,
    ).item,
  });
  if (written.committed) return { outcome: end.status, orderId: end.orderId, code: end.code };
  const ended = await readTopUp(ctx.db, userId, eventId);
  return { outcome: "ended", orderId: ended?.orderId, code: ended?.code };
}

/**
 * True for an order refusal that ends the top-up (the offer gone or locked, its currency
 * dropped, ...): a DomainError that is neither the provider failing nor another request
 * in progress nor a transient one.
 */
function isRefusal(error: unknown): error is DomainError {
  return (
    error instanceof DomainError &&
    !(error instanceof PaymentProviderError) &&
    !(error instanceof TransientError) &&
    error.code !== "idempotency_in_progress" &&
    error.code !== "service_unavailable"
  );
}
