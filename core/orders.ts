/**
 * Orders: creating them (with every rule the original skipped: quantity, currency,
 * locked offers, start dates, free tiers; ORIGINAL-BEHAVIOUR.md §1 `createOrder`, §5),
 * reading them, confirming manual ones and retrying payments.
 *
 * The order copies the offer's terms when it is created (price, tokenCount, cycle,
 * appendDate, bundle items with their offers' terms); fulfilment uses that copy, so
 * editing an offer never changes orders already placed (API.md "Offers").
 */
import type { Context } from "./context.js";
import { isDue, MAX_TOKENS } from "./rules/balance-state.js";
import { readBalances } from "./balances.js";
import type { OfferItem, OrderItem } from "./db/service.js";
import { checkCursor, partitionOf } from "./db/cursors.js";
import { commit, transactWrite } from "./db/transact.js";
import { ConflictError, DomainError, NotFoundError, PaymentProviderError, ValidationError } from "./errors.js";
import { withPendingKeys } from "./abandoned-orders.js";
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
  type IdempotentRequest,
} from "./idempotency.js";
import { findOffer, getOffers, unlockedGroups } from "./offers.js";
import type { Payment, PaymentRequest } from "./payments/provider.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { isUnlockedFor } from "./rules/visibility.js";

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
  checkoutSessionId: string | null;
  grantIds: string[];
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
    checkoutSessionId: item.checkoutSessionId ?? null,
    grantIds: item.grantIds,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

/** An order creation request (API.md `POST /users/{userId}/orders`). */
export interface CreateOrderInput {
  userId: string;
  offerId: string;
  /** Integer >= 1 (default 1). */
  quantity?: number | undefined;
  /** Lowercase ISO 4217; default the service's default currency. */
  currency?: string | undefined;
  /** A future ISO instant for the grant to start, or null/absent. */
  starts?: string | null | undefined;
  /** Ask for a Stripe Checkout Session instead of a PaymentIntent. */
  checkout?: { successUrl: string; cancelUrl: string } | undefined;
  /** Present when the request carried an `Idempotency-Key` (scope `orders`). */
  idempotency?: IdempotentRequest | undefined;
}

/** What order creation returns (API.md: `201 { order, payment }`). */
export interface CreateOrderResult {
  order: Order;
  payment: Payment | null;
}

/**
 * Checks the order rules and builds the pending order (nothing written).
 * @throws NotFoundError (unknown or inactive offer), DomainError `quantity_limit_exceeded`,
 *   `currency_not_offered`, `start_in_past`, `offer_locked`, `amount_out_of_range`
 */
async function draftOrder(ctx: Context, input: CreateOrderInput, orderId: string, now: Date): Promise<{ order: OrderItem; offer: OfferItem }> {
  const { userId } = input;
  const quantity = input.quantity ?? 1;
  if (!Number.isInteger(quantity) || quantity < 1) throw new ValidationError({ quantity: "must be an integer >= 1" });

  // A. The offer, active.
  const offer = await findOffer(ctx, input.offerId);
  if (!offer || !offer.active) throw new NotFoundError("offer", input.offerId);

  // B. Quantity, currency, start.
  if (offer.quantityLimit !== undefined && quantity > offer.quantityLimit) {
    throw new DomainError("quantity_limit_exceeded", `At most ${offer.quantityLimit} per order.`, {
      quantity,
      quantityLimit: offer.quantityLimit,
    });
  }
  const currency = input.currency ?? ctx.config.defaultCurrency;
  const price = offer.prices.find((p) => p.currency === currency);
  if (!price) {
    throw new DomainError("currency_not_offered", `The offer has no price in ${currency}.`, {
      currency,
      offered: offer.prices.map((p) => p.currency),
    });
  }
  if (input.starts && Date.parse(input.starts) <= now.getTime()) {
    throw new DomainError("start_in_past", "starts must be in the future.", { starts: input.starts });
  }

  // C. Locked offers need an unlocking grant.
  if (offer.unlockedBy.length > 0) {
    const groups = await unlockedGroups(ctx, userId, now);
    if (!isUnlockedFor(offer, groups)) {
      throw new DomainError("offer_locked", "This offer is unlocked by a subscription the user does not hold.", {
        offerId: offer.offerId,
        unlockedBy: offer.unlockedBy,
      });
    }
  }

  // D. Bundle items, with their offers' terms copied.
  const itemOffers = await getOffers(ctx, offer.combinedItems.map((item) => item.offerId));
  const combinedItems = offer.combinedItems.map((item) => {
    const itemOffer = itemOffers.get(item.offerId);
    if (!itemOffer) throw new DomainError("conflict", `Bundle item ${item.offerId} no longer exists.`, { offerId: item.offerId });
    return {
      offerId: item.offerId,
      offerGroup: itemOffer.offerGroup,
      quantity: item.quantity,
      tokenCount: itemOffer.tokenCount,
      tokens: item.quantity * quantity * itemOffer.tokenCount,
      appendDate: itemOffer.appendDate,
    };
  });

  // E. Tokens stay within what one grant may hold.
  const largest = Math.max(offer.tokenCount * quantity, ...combinedItems.map((item) => item.tokens));
  if (largest > MAX_TOKENS) {
    throw new DomainError("quantity_limit_exceeded", `One order may grant at most ${MAX_TOKENS} tokens per offerGroup.`, {
      quantity,
      tokens: largest,
      maximum: MAX_TOKENS,
    });
  }

  // F. Total, in minor units.
  const amount = price.amount * quantity;
  if (!Number.isSafeInteger(amount)) throw new DomainError("amount_out_of_range", "The total is too large.", { amount });
  if (amount > 0) ctx.payments.checkAmount(amount, currency);

  const order: OrderItem = {
    userId,
    orderId,
    offerId: offer.offerId,
    offerName: offer.name,
    offerGroup: offer.offerGroup,
    kind: offer.kind,
    status: "pending",
    quantity,
    total: { amount, currency },
    tokenCount: offer.tokenCount,
    tokens: offer.tokenCount * quantity,
    cycle: offer.cycle,
    appendDate: offer.appendDate,
    combinedItems,
    history: [{ date: now.toISOString(), status: "pending", message: "created" }],
    provider: amount === 0 ? "free" : input.checkout && ctx.payments.name === "stripe" ? "stripe_checkout" : ctx.payments.name,
    paymentIntentIds: [],
    attempt: amount === 0 ? 0 : 1,
    grantIds: [],
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    ...(offer.customCycleSeconds !== undefined ? { customCycleSeconds: offer.customCycleSeconds } : {}),
    ...(input.starts ? { requestedStarts: new Date(input.starts).toISOString() } : {}),
  };
  return { order, offer };
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
  let draft: { order: OrderItem; offer: OfferItem };
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
  if (draft.order.total.amount === 0) return createFreeOrder(ctx, draft.order, idempotency);
  draft.order = withPendingKeys(draft.order, now);

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
      draft.order = withPendingKeys({ ...draft.order, orderId }, now);
    }
  }
  try {
    // A taken-over request may have written its order already; if its payment attempt
    // failed, the retry is a new attempt (a new provider idempotency key).
    const existing = takenOver ? (await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true })).data : null;
    let order = existing ?? draft.order;
    if (!existing) await ctx.db.entities.order.create(order).go();
    else if (existing.status === "error") order = nextAttempt(existing, now);

    let payment: Payment;
    try {
      payment = await ctx.payments.createPayment(paymentRequest(order, order.attempt, input.checkout));
    } catch (error) {
      if (error instanceof PaymentProviderError) await markPaymentError(ctx, order, error, now);
      throw error;
    }

    order = withPayment(order, payment, now);
    const result: CreateOrderResult = { order: toOrder(order), payment };
    const items = [
      commit(
        ctx.db.entities.order
          .put(order)
          .where((attr, op) => `${op.eq(attr.status, "pending")} OR ${op.eq(attr.status, "error")}`),
      ),
    ];
    if (idempotency) items.push(finishWrite(ctx.db, userId, idempotency, orderId, { ok: true, result }, now));
    const written = await transactWrite(ctx.db, items);
    if (!written.committed) {
      // The order moved on meanwhile (a webhook paid it): report it as it is now.
      const { data } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
      const current: CreateOrderResult = { order: toOrder(data ?? order), payment };
      if (idempotency) await transactWrite(ctx.db, [finishWrite(ctx.db, userId, idempotency, orderId, { ok: true, result: current }, now)]);
      leased = false;
      return current;
    }
    leased = false;
    return result;
  } finally {
    // If this fails too, the lease still ends by itself (IDEMPOTENCY_LEASE_MS).
    if (leased && idempotency) await endLease(ctx, userId, idempotency, orderId).catch((error) => ctx.logger.warn("could not end lease", { error }));
  }
}

/** What the provider needs to collect `order`'s total for payment attempt `attempt`. */
function paymentRequest(order: OrderItem, attempt: number, checkout: CreateOrderInput["checkout"]): PaymentRequest {
  return {
    orderId: order.orderId,
    userId: order.userId,
    offerId: order.offerId,
    offerName: order.offerName,
    amount: order.total.amount,
    currency: order.total.currency,
    attempt,
    checkout,
  };
}

/** The order as a new payment attempt: pending again, attempt + 1, noted in its history. */
function nextAttempt(order: OrderItem, now: Date): OrderItem {
  const attempt = order.attempt + 1;
  return {
    ...withPendingKeys(order, now),
    status: "pending",
    attempt,
    history: [...order.history, { date: now.toISOString(), status: "pending", message: `payment attempt ${attempt}` }],
    updatedAt: now.toISOString(),
  };
}

/** The order with the payment attempt recorded. */
function withPayment(order: OrderItem, payment: Payment, now: Date): OrderItem {
  if (payment.provider === "stripe") {
    return {
      ...order,
      paymentIntentId: payment.paymentIntentId,
      paymentIntentIds: order.paymentIntentIds.includes(payment.paymentIntentId)
        ? order.paymentIntentIds
        : [...order.paymentIntentIds, payment.paymentIntentId],
      updatedAt: now.toISOString(),
    };
  }
  if (payment.provider === "stripe_checkout") {
    return { ...order, checkoutSessionId: payment.checkoutSessionId, updatedAt: now.toISOString() };
  }
  return order;
}

/** Records a provider failure on the order (status `error`, history entry). */
async function markPaymentError(ctx: Context, order: OrderItem, error: PaymentProviderError, now: Date): Promise<void> {
  await ctx.db.entities.order
    .patch({ userId: order.userId, orderId: order.orderId })
    .set({ status: "error", updatedAt: now.toISOString() })
    .append({
      history: [{ date: now.toISOString(), status: "error", message: error.message, payload: JSON.stringify(error.details ?? {}) }],
    })
    .where((attr, op) => op.ne(attr.status, "paid"))
    .go()
    .catch(() => undefined);
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
  const written = await transactWrite(ctx.db, [outcomeWrite(ctx.db, userId, idempotency, refusal(error), now)]);
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
    const active = [...balances.values()].some((state) =>
      state.grants.some((grant) => grant.orderOfferId === draft.offerId && grant.offerId === draft.offerId && !isDue(grant, now)),
    );
    if (active) {
      const error = new DomainError("already_subscribed", "A grant from this free offer is still active.", { offerId: draft.offerId });
      if (idempotency) return storeOrderRefusal(ctx, userId, idempotency, error, now);
      throw error;
    }
    const { items, paid } = purchaseWrites({
      db: ctx.db,
      order: draft,
      balances,
      confirmation: { source: "free", message: "free order paid at creation" },
      now,
      orderWrite: "create",
    });
    const result: CreateOrderResult = { order: toOrder(paid), payment: null };
    if (idempotency) items.push(outcomeWrite(ctx.db, userId, idempotency, { ok: true, result }, now));
    const written = await transactWrite(ctx.db, items);
    if (written.committed) return result;
    if (idempotency && written.rejections.some((r) => r.index === items.length - 1 && r.code === "ConditionalCheckFailed")) {
      const record = await readRecord(ctx, userId, idempotency);
      if (record) return replay<CreateOrderResult>(record, idempotency);
    }
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
 * A new payment attempt for an order that is not paid (API.md `POST .../pay`): the
 * previous PaymentIntent is cancelled, a new one is created under the next attempt's
 * idempotency key.
 * @throws NotFoundError; ConflictError when paid (or not payable); PaymentProviderError
 */
export async function retryPayment(ctx: Context, userId: string, orderId: string): Promise<CreateOrderResult> {
  const now = ctx.clock.now();
  const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
  if (!order) throw new NotFoundError("order", orderId);
  if (order.status === "paid") throw new ConflictError("The order is already paid.");
  if (!["pending", "refused", "error"].includes(order.status)) throw new ConflictError(`The order is ${order.status}.`);
  if (order.provider === "manual" || order.provider === "free") throw new ConflictError(`A ${order.provider} order has no online payment to retry.`);
  if (order.paymentIntentId) await ctx.payments.cancelPaymentIntent(order.paymentIntentId);
  const retried = { ...nextAttempt(order, now), provider: "stripe" as const };
  let payment: Payment;
  try {
    payment = await ctx.payments.createPayment(paymentRequest(retried, retried.attempt, undefined));
  } catch (error) {
    if (error instanceof PaymentProviderError) await markPaymentError(ctx, order, error, now);
    throw error;
  }
  const next = withPayment(retried, payment, now);
  try {
    await ctx.db.entities.order
      .put(next)
      .where((attr, op) => `${op.eq(attr.status, order.status)} AND ${op.eq(attr.updatedAt, order.updatedAt)}`)
      .go();
  } catch {
    throw new ConflictError("The order changed meanwhile; read it and retry.");
  }
  return { order: toOrder(next), payment };
}
