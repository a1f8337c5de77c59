/**
 * Orders: creating them (the rules are core/rules/order-plan.ts, free tiers here;
 * ORIGINAL-BEHAVIOUR.md §1 `createOrder`, §5), reading them, confirming manual ones and
 * retrying payments. Every status change goes through the lifecycle
 * (core/rules/order-lifecycle.ts) and its one guarded write (core/order-writes.ts).
 *
 * The order copies the offer's terms when it is created (price, tokenCount, cycle,
 * appendDate, bundle items with their offers' terms); fulfilment uses that copy, so
 * editing an offer never changes orders already placed (API.md "Offers").
 */
import type { Context } from "./context.js";
import { readBalances } from "./balances.js";
import type { OrderItem } from "./db/service.js";
import { checkCursor, partitionOf } from "./db/cursors.js";
import { transactWrite } from "./db/transact.js";
import { ConflictError, DomainError, isTransient, NotFoundError, PaymentProviderError } from "./errors.js";
import { fulfilOrder, purchaseWrites } from "./fulfilment.js";
import { newId } from "./ids.js";
import {
  beginRequest,
  finishWrite,
  outcomeWrite,
  readRecord,
  refusal,
  endLease,
  replay,
  replayIfKeyTaken,
  type IdempotentRequest,
} from "./idempotency.js";
import { findOffer, getOffers } from "./offers.js";
import { recordPayment, storeOrderChange } from "./order-writes.js";
import { applySucceededPayment, closeCurrentAttempt, paymentRequest, paymentRequestOf } from "./payment-attempts.js";
import type { Payment } from "./payments/provider.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { isDue, type BalanceState } from "./rules/balance-state.js";
import { canTransition, transition } from "./rules/order-lifecycle.js";
import { planOrder, type OrderRequest } from "./rules/order-plan.js";
import { groupsUnlockedBy } from "./rules/visibility.js";
import { rootRunning } from "./rules/periods.js";
import { pendingKeys } from "./rules/work-index.js";
import { claimSubscription, standingGroups } from "./subscriptions.js";

/** An order as the API shows it (API.md `Order`). */
export interface Order {
  orderId: string;
  userId: string;
  offerId: string;
  offerName: string;
  offerGroup: string;
  kind: string;
  status: OrderItem["status"];
  quantity: number;
  total: { amount: number; currency: string };
  /** Tokens per unit, copied from the offer. */
  tokenCount: number;
  /** tokenCount × quantity, for the order's own offerGroup. */
  tokens: number;
  cycle: OrderItem["cycle"];
  customCycleSeconds: number | null;
  appendDate: boolean;
  /** The requested start until paid, then the root grant's start. */
  starts: string | null;
  /** Set when paid (null for a `once` offer). */
  expires: string | null;
  combinedItems: OrderItem["combinedItems"];
  history: OrderItem["history"];
  provider: OrderItem["provider"];
  paymentIntentId: string | null;
  /** Every PaymentIntent made for the order, oldest first: its payment attempts (the console shows them). */
  paymentIntentIds: string[];
  /** The current payment attempt: 1, then +1 per `pay` retry. */
  attempt: number;
  checkoutSessionId: string | null;
  /** `auto`: paid period by period through a Stripe Subscription (issue 13). */
  renewal: "none" | "auto";
  /** A renewing order's Stripe Subscription, once made. */
  subscriptionId: string | null;
  /** True for an automatic top-up's order (paid off-session with the saved payment method). */
  autoTopUp: boolean;
  grantIds: string[];
  /** The PaymentIntent that paid the order, once paid through Stripe. */
  paidPaymentIntentId: string | null;
  /** Stripe's receipt page of that payment, once paid through Stripe. */
  receiptUrl: string | null;
  /** Refunds of the order's payment (API.md `refunds`; `refundId` null while pending or for a manual order). */
  refunds: Array<Omit<NonNullable<OrderItem["refunds"]>[number], "refundId"> & { refundId: string | null }>;
  /** Disputes (chargebacks) of the order's payment. */
  disputes: NonNullable<OrderItem["disputes"]>;
  /** Further payments for this already paid order, each refunded automatically. */
  duplicatePayments: NonNullable<OrderItem["duplicatePayments"]>;
  createdAt: string;
  updatedAt: string;
}

/** The stored order as the API shape. */
export function toOrder(item: OrderItem): Order {
  return {
    orderId: item.orderId,
    userId: item.userId,
    offerId: item.offerId,
    offerName: item.offerName,
    offerGroup: item.offerGroup,
    kind: item.kind,
    status: item.status,
    quantity: item.quantity,
    total: item.total,
    tokenCount: item.tokenCount,
    tokens: item.tokens,
    cycle: item.cycle,
    customCycleSeconds: item.customCycleSeconds ?? null,
    appendDate: item.appendDate,
    starts: item.starts ?? item.requestedStarts ?? null,
    expires: item.expires ?? null,
    combinedItems: item.combinedItems,
    history: item.history,
    provider: item.provider,
    paymentIntentId: item.paymentIntentId ?? null,
    paymentIntentIds: item.paymentIntentIds,
    attempt: item.attempt,
    renewal: item.renewal ?? "none",
    subscriptionId: item.subscriptionId ?? null,
    autoTopUp: item.topUpEventId !== undefined,
    checkoutSessionId: item.checkoutSessionId ?? null,
    grantIds: item.grantIds,
    paidPaymentIntentId: item.paidPaymentIntentId ?? null,
    receiptUrl: item.receiptUrl ?? null,
    refunds: (item.refunds ?? []).map((refund) => ({ ...refund, refundId: refund.refundId ?? null })),
    disputes: item.disputes ?? [],
    duplicatePayments: item.duplicatePayments ?? [],
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

/** An order creation request (API.md `POST /users/{userId}/orders`). */
export interface CreateOrderInput extends OrderRequest {
  offerId: string;
  /** Present when the request carried an `Idempotency-Key` (scope `orders`). */
  idempotency?: IdempotentRequest | undefined;
  /** An automatic top-up's order (core/top-ups.ts): the `top_up.requested` event it answers. */
  topUpEventId?: string | undefined;
}

/** What order creation returns (API.md: `201 { order, payment }`). */
export interface CreateOrderResult {
  order: Order;
  payment: Payment | null;
}

/**
 * Reads what the order rules need (the offer, its bundle items' offers, and the user's
 * balances when the offer is locked or the order chains after existing grants), then
 * plans the pending order (nothing written).
 * @throws the rules' errors (core/rules/order-plan.ts `planOrder`)
 */
async function draftOrder(ctx: Context, input: CreateOrderInput, orderId: string, now: Date): Promise<OrderItem> {
  const offer = await findOffer(ctx, input.offerId);
  // The user's balances, in one Query, when the rules need them: a locked offer (the
  // groups unlocked) or an order that chains after existing grants (its dates must end
  // by 9999-12-31: an appendDate root without a requested start, or a bundle, whose
  // appendDate items chain in their own groups).
  const locked = offer?.active === true && offer.unlockedBy.length > 0;
  const chains = offer?.active === true && ((offer.appendDate && !input.starts) || offer.combinedItems.length > 0);
  const [itemOffers, balances, standing] = await Promise.all([
    getOffers(ctx, (offer?.combinedItems ?? []).map((item) => item.offerId)),
    locked || chains ? readBalances(ctx, input.userId) : new Map<string, BalanceState>(),
    locked ? standingGroups(ctx, input.userId) : new Set<string>(),
  ]);
  return planOrder({
    request: input,
    offerId: input.offerId,
    offer,
    itemOffers,
    unlockedGroups: locked ? groupsUnlockedBy(balances.values(), now, standing) : new Set<string>(),
    balances,
    orderId,
    defaultCurrency: ctx.config.defaultCurrency,
    provider: ctx.payments,
    now,
  });
}

/**
 * Creates an order. A free order (total 0) is paid at once, in the same transaction that
 * creates it (`payment: null`); a paid one gets a PaymentIntent, a Checkout Session, or
 * (manual provider) nothing to collect online.
 * @throws the rules' DomainErrors (see draftOrder), DomainError `already_subscribed`
 *   (a free offer with an active grant), PaymentProviderError (502; the order stays,
 *   status `error`, with a history entry), idempotency errors
 */
export async function createOrder(ctx: Context, input: CreateOrderInput): Promise<CreateOrderResult> {
  const { userId, idempotency } = input;
  const now = ctx.clock.now();
  let orderId = newId(now);

  // A. The rules. A refusal is stored under the key (a repeat replays whatever the
  //    key already holds instead).
  let draft: OrderItem;
  try {
    draft = await draftOrder(ctx, input, orderId, now);
  } catch (error) {
    if (error instanceof DomainError && idempotency && error.code !== "validation_error") {
      return storeOrderRefusal(ctx, userId, idempotency, error, now);
    }
    throw error;
  }

  // B. Free: paid at creation, once per active period. Others wait for their payment,
  //    on the pending-order index (core/abandoned-orders.ts).
  if (draft.total.amount === 0) return createFreeOrder(ctx, draft, idempotency);
  draft = {
    ...draft,
    recordedAttempt: 0,
    ...(input.topUpEventId !== undefined ? { topUpEventId: input.topUpEventId } : {}),
    ...(draft.provider === "stripe_checkout" && input.checkout ? { checkout: { successUrl: input.checkout.successUrl, cancelUrl: input.checkout.cancelUrl } } : {}),
  };

  // C. Paid: take the key, write the order (so a payment always has its order), then
  //    call the provider; a lease abandoned by a crashed request is taken over with
  //    its order id, so the provider's idempotency key returns the same payment.
  let leased = false;
  let takenOver = false;
  if (idempotency) {
    const begin = await beginRequest(ctx, userId, idempotency, orderId);
    if (!begin.started) return replay<CreateOrderResult>(begin.record, idempotency);
    leased = true;
    takenOver = begin.takenOver;
    if (begin.reservedId !== orderId) {
      orderId = begin.reservedId;
      draft = { ...draft, orderId, ...pendingKeys(userId, orderId, now) };
    }
  }
  try {
    // The attempt is recorded on the order before Stripe is called (a new order with its
    // attempt 1; a taken-over request whose attempt failed starts the next one), so that
    // no PaymentIntent is ever unknown to its order: if this request dies after Stripe
    // answered, the attempt's idempotency key finds the same one again
    // (core/payment-attempts.ts).
    const existing = takenOver ? (await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true })).data : null;
    // A renewing order holds the user's subscription to its offer before Stripe makes one (409 already_subscribed).
    if (draft.renewal === "auto") await claimSubscription(ctx, draft);
    let order: OrderItem = existing ?? draft;
    if (!existing && !(await storeOrderChange(ctx.db, { from: null, to: draft }, now))) {
      throw new Error(`order id ${orderId} is taken`); // a fresh ULID, or a lease's own: cannot happen
    }
    if (existing?.status === "error") {
      const next = nextAttempt(existing, now);
      if (!(await storeOrderChange(ctx.db, { from: existing, to: next, trigger: "attemptStarted" }, now))) {
        throw new ConflictError("The order changed meanwhile; retry.");
      }
      order = next;
    }

    let payment: Payment;
    try {
      payment = await ctx.payments.createPayment(await paymentRequestOf(ctx, order, order.attempt));
    } catch (error) {
      if (error instanceof PaymentProviderError) await markPaymentError(ctx, order, error, now);
      throw error;
    }

    // D. The payment recorded on the order (even if a webhook paid it meanwhile), then
    //    the outcome under the key: the order as it is now.
    const recorded = await recordPayment(ctx.db, order, order.attempt, payment, now);
    const current = recorded ?? (await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true })).data ?? order;
    const result: CreateOrderResult = { order: toOrder(current), payment };
    if (idempotency) await transactWrite(ctx.db, { key: finishWrite(ctx.db, userId, idempotency, orderId, { ok: true, result }, now) });
    leased = false;
    return result;
  } finally {
    // If this fails too, the lease still ends by itself (IDEMPOTENCY_LEASE_MS).
    if (leased && idempotency) await endLease(ctx, userId, idempotency, orderId).catch((error) => ctx.logger.warn("could not end lease", { error }));
  }
}

/** The order as a new payment attempt (lifecycle `attemptStarted`): pending again since now, attempt + 1. */
function nextAttempt(order: OrderItem, now: Date): OrderItem {
  const attempt = order.attempt + 1;
  return { ...transition(order, "attemptStarted", { message: `payment attempt ${attempt}`, now }), attempt };
}

/**
 * Records a provider failure on `stored`, the order as it is in the table (lifecycle
 * `attemptFailed`: status `error`, history entry with what the provider said). The
 * provider's error is what the caller answers, so a failure to record it is logged, not
 * thrown, unless it is transient (throttling: the caller answers 503 and the client
 * retries, which records it then).
 */
async function markPaymentError(ctx: Context, stored: OrderItem, error: PaymentProviderError, now: Date): Promise<void> {
  if (!canTransition(stored.status, "attemptFailed")) return;
  const next = transition(stored, "attemptFailed", { message: error.message, payload: JSON.stringify(error.details ?? {}), now });
  try {
    const written = await storeOrderChange(ctx.db, { from: stored, to: next, trigger: "attemptFailed" }, now);
    if (!written) ctx.logger.warn("the order changed before its payment error was recorded", { orderId: stored.orderId });
  } catch (failure) {
    if (isTransient(failure)) throw failure;
    ctx.logger.error("could not record a payment error on its order", { orderId: stored.orderId, error: failure });
  }
}

/**
 * Stores a business refusal under the key and throws it; if the key already holds an
 * outcome, that outcome is replayed instead.
 */
async function storeOrderRefusal(
  ctx: Context,
  userId: string,
  idempotency: IdempotentRequest,
  error: DomainError,
  now: Date,
): Promise<CreateOrderResult> {
  const written = await transactWrite(ctx.db, { key: outcomeWrite(ctx.db, userId, idempotency, refusal(error), now) });
  if (!written.committed) {
    const record = await readRecord(ctx, userId, idempotency);
    if (record) return replay<CreateOrderResult>(record, idempotency);
  }
  throw error;
}

/**
 * Creates and pays a free order in one transaction, unless a grant from the same offer
 * is still active (no stacking of free tiers: the original let them repeat forever,
 * ORIGINAL-BEHAVIOUR.md §5.8).
 */
async function createFreeOrder(ctx: Context, draft: OrderItem, idempotency: IdempotentRequest | undefined): Promise<CreateOrderResult> {
  const { userId } = draft;
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const balances = await readBalances(ctx, userId);
    // A root grant of the offer still running: in a map, or (exhausted, or spilled) in a group's periods.
    const active = [...balances.values()].some(
      (state) =>
        rootRunning(state.periods ?? [], draft.offerId, now) ||
        state.grants.some((grant) => grant.orderOfferId === draft.offerId && grant.offerId === draft.offerId && !isDue(grant, now)),
    );
    if (active) {
      const error = new DomainError("already_subscribed", "A grant from this free offer is still active.", { offerId: draft.offerId });
      if (idempotency) return storeOrderRefusal(ctx, userId, idempotency, error, now);
      throw error;
    }
    const { actions, paid } = purchaseWrites({
      db: ctx.db,
      order: draft,
      balances,
      confirmation: { source: "free", message: "free order paid at creation" },
      now,
      newOrder: true,
    });
    const result: CreateOrderResult = { order: toOrder(paid), payment: null };
    const written = await transactWrite(ctx.db, {
      ...actions,
      key: idempotency && outcomeWrite(ctx.db, userId, idempotency, { ok: true, result }, now),
    });
    if (written.committed) return result;
    const stored = await replayIfKeyTaken<CreateOrderResult>(ctx, written, userId, idempotency);
    if (stored) return stored.replayed;
    throw new RetryableConflict("balance changed while creating a free order");
  });
}

/**
 * The order.
 * @throws NotFoundError when the user has no such order
 */
export async function getOrder(ctx: Pick<Context, "db">, userId: string, orderId: string): Promise<Order> {
  const { data } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
  if (!data) throw new NotFoundError("order", orderId);
  return toOrder(data);
}

/** A page of the user's orders, newest first; `cursor` is null on the last page. */
export async function listOrders(
  ctx: Pick<Context, "db">,
  userId: string,
  page: { limit: number; cursor?: string | null | undefined },
): Promise<{ orders: Order[]; cursor: string | null }> {
  const entity = ctx.db.entities.order;
  checkCursor(entity, page.cursor, partitionOf(entity, { userId, orderId: "-" }));
  const result = await entity.query
    .byUser({ userId })
    .go({ order: "desc", count: page.limit, cursor: page.cursor ?? null });
  return { orders: result.data.map(toOrder), cursor: result.cursor ?? null };
}

/**
 * Marks a `manual` order paid (bank transfer, invoice, local runs) and credits it.
 * @throws NotFoundError; ConflictError when the order is not a manual one or already paid
 */
export async function confirmManualOrder(ctx: Context, userId: string, orderId: string): Promise<Order> {
  const result = await fulfilOrder(ctx, userId, orderId, {
    source: "manual",
    message: "confirmed manually",
    check: (order) => (order.provider === "manual" ? undefined : `only manual orders can be confirmed; this one is paid through ${order.provider}`),
  });
  if (result.applied) return toOrder(result.order);
  if (result.reason === "unknown_order") throw new NotFoundError("order", orderId);
  if (result.reason === "mismatch") throw new ConflictError(`The order cannot be confirmed: ${result.detail}.`);
  throw new ConflictError(`The order cannot be confirmed (${result.reason.replace(/_/g, " ")}).`, { status: result.order?.status });
}

/**
 * A new payment attempt for an order that is not paid (API.md `POST .../pay`; lifecycle
 * `attemptStarted`). The current attempt is read at Stripe first
 * (core/payment-attempts.ts `closeCurrentAttempt`): one that succeeded (the webhook is
 * late) pays the order and the answer is 409, never a second charge; an open one is
 * cancelled (PaymentIntent) or expired (Checkout Session). Then the next attempt is
 * recorded on the order and its PaymentIntent created under that attempt's idempotency key.
 * @throws NotFoundError; ConflictError when paid (or not payable), when the current
 *   attempt succeeded or is processing, or when the order changed meanwhile;
 *   PaymentProviderError; transient database errors (503)
 */
export async function retryPayment(ctx: Context, userId: string, orderId: string): Promise<CreateOrderResult> {
  const now = ctx.clock.now();
  const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
  if (!order) throw new NotFoundError("order", orderId);
  if (order.status === "paid") throw new ConflictError("The order is already paid.", { status: order.status });
  if (!canTransition(order.status, "attemptStarted")) throw new ConflictError(`The order is ${order.status}.`, { status: order.status });
  if (order.provider === "manual" || order.provider === "free") throw new ConflictError(`A ${order.provider} order has no online payment to retry.`);
  // A renewing order's first payment is retried on its invoice (the same client secret:
  // Stripe keeps the invoice open), never by a second subscription.
  if (order.renewal === "auto") throw new ConflictError("A renewing order's payment is retried on its first invoice, with the client secret it was created with.", { subscriptionId: order.subscriptionId });

  const closed = await closeCurrentAttempt(ctx, order);
  if (closed.state === "succeeded") {
    const applied = await applySucceededPayment(ctx, { userId, orderId }, closed.intent, { via: "pay" });
    const { data: after } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
    throw new ConflictError(`The order's payment ${closed.intent.id} has succeeded (${applied.reason}); no new attempt was made.`, {
      status: after?.status,
      paymentIntentId: closed.intent.id,
    });
  }
  if (closed.state === "processing") {
    throw new ConflictError("The order's current payment is being processed; wait for its outcome.", { status: closed.order.status });
  }

  const retried: OrderItem = { ...nextAttempt(closed.order, now), provider: "stripe" };
  // A lost race is a 409; any other failure (throttling: 503) passes through.
  if (!(await storeOrderChange(ctx.db, { from: closed.order, to: retried, trigger: "attemptStarted" }, now))) {
    throw new ConflictError("The order changed meanwhile; read it and retry.");
  }
  let payment: Payment;
  try {
    payment = await ctx.payments.createPayment(paymentRequest(retried, retried.attempt));
  } catch (error) {
    if (error instanceof PaymentProviderError) await markPaymentError(ctx, retried, error, now);
    throw error;
  }
  const recorded = await recordPayment(ctx.db, retried, retried.attempt, payment, now);
  const current = recorded ?? (await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true })).data ?? retried;
  return { order: toOrder(current), payment };
}
