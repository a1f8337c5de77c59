/**
 * Refunds (API.md "Orders and payment": `POST .../refund`, "Refunds and disputes started
 * in Stripe"): the original promised to "refund customers for unused tokens" and never
 * did (ORIGINAL-BEHAVIOUR.md). Money rules are pure (core/rules/refund-plan.ts); this
 * module reads, writes and talks to Stripe.
 *
 * - A refund asked through the API removes every token left on the order's grants and
 *   ends them (one ledger `refund` entry per grant that held tokens), makes the order
 *   `refunded` and records the refund `pending` on it, in one transaction, before Stripe
 *   is called: the Stripe Refund carries `metadata.orderId` and `refundNumber` and an
 *   idempotency key derived from them (`refund-<orderId>-<n>`), so the `charge.refunded`
 *   it causes is recognised (no second clawback) and a refund that crashed after the
 *   transaction is finished by its retry or by `sync`.
 * - A refund made in Stripe (dashboard, Radar) takes tokens back by a running target per
 *   grant, applied once per Stripe refund id; the order is `refunded` once Stripe has
 *   refunded its whole total.
 * - `refund.failed`: noted on the order with an `order.refund_failed` event; the tokens
 *   stay removed.
 */
import type { Context, PaymentContext } from "./context.js";
import type { OrderItem } from "./db/service.js";
import { transactWrite } from "./db/transact.js";
import { ConflictError, NotFoundError, PaymentNotFoundError, PaymentProviderError } from "./errors.js";
import { eventWrite } from "./events.js";
import { beginRequest, endLease, finishWrite, replay, type IdempotentRequest } from "./idempotency.js";
import { orderActions, storeOrderChange } from "./order-writes.js";
import { endOrderGrants, readOrderGrants, takeFromGrant, TokenMovement, type OrderGrant } from "./order-tokens.js";
import type { RefundState } from "./payments/provider.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { canTransition, noted, transition, type OrderRefund } from "./rules/order-lifecycle.js";
import { clawbackPlan, refundAmount, type RefundGrant, type RefundMode } from "./rules/refund-plan.js";

/** A refund asked through the API. */
export interface RefundInput {
  userId: string;
  orderId: string;
  mode: RefundMode;
  /** Why (kept on the order's refund entry and sent to nobody). */
  reason?: string | undefined;
  /** Present when the request carried an `Idempotency-Key` (scope `refunds`). */
  idempotency?: IdempotentRequest | undefined;
}

const refundedSoFar = (order: Pick<OrderItem, "refunds">) =>
  (order.refunds ?? []).filter((refund) => refund.status !== "failed").reduce((sum, refund) => sum + refund.amount, 0);

/** Tokens earlier refunds took from each grant. */
function clawedBack(order: Pick<OrderItem, "refunds">): Map<string, number> {
  const taken = new Map<string, number>();
  for (const refund of order.refunds ?? []) for (const grant of refund.grants) taken.set(grant.grantId, (taken.get(grant.grantId) ?? 0) + grant.tokens);
  return taken;
}

/**
 * Each grant's weight in the order's value (API.md): the root by the order's total, a
 * bundle item by its price × quantity copied at creation (`value`); undefined when an
 * item has no price in the order's currency (then all weigh the same).
 */
function weightOf(order: OrderItem, grantId: string): number | undefined {
  const item = order.combinedItems.find((candidate) => candidate.grantId === grantId);
  return item ? item.value : order.total.amount;
}

/** The refund rule's view of the order's grants. */
function refundGrants(order: OrderItem, grants: readonly OrderGrant[]): RefundGrant[] {
  const taken = clawedBack(order);
  return grants.map(({ item, state }) => ({
    tokens: item.tokens,
    remaining: state?.remaining ?? 0,
    clawedBack: Math.min(item.tokens, taken.get(item.grantId) ?? 0),
    weight: weightOf(order, item.grantId),
  }));
}

/** True when the order's payment went through Stripe (money to refund there). */
const paidAtStripe = (order: OrderItem) => (order.provider === "stripe" || order.provider === "stripe_checkout") && order.total.amount > 0;

/** The PaymentIntent that paid the order (orders paid before `paidPaymentIntentId` existed: the current attempt's). */
const paidIntentOf = (order: OrderItem) => order.paidPaymentIntentId ?? order.paymentIntentId;

/**
 * `POST /users/{userId}/orders/{orderId}/refund`: removes the order's tokens, ends its
 * grants and refunds the money (`unused`: the value-weighted unused share, rounded down
 * to the minor unit; `full`: what earlier refunds left), idempotently.
 * @returns the order as it is afterwards (`refunded`, with its `refunds`)
 * @throws NotFoundError; ConflictError (not `paid`, or `expired` for `unused`; already
 *   refunded; a pure subscription that never expires with `unused`); PaymentProviderError
 *   (Stripe failed: the tokens are removed and the refund stays pending on the order,
 *   finished by a retry or `sync`); idempotency errors
 */
export async function refundOrder(ctx: Context, input: RefundInput): Promise<OrderItem> {
  const { userId, orderId, idempotency } = input;
  let leased = false;
  if (idempotency) {
    const begin = await beginRequest(ctx, userId, idempotency, orderId);
    if (!begin.started) return replay<OrderItem>(begin.record, idempotency);
    leased = true;
  }
  try {
    let order = await removeTokensForRefund(ctx, input);
    order = await finishPendingRefunds(ctx, order);
    if (idempotency) {
      await transactWrite(ctx.db, { key: finishWrite(ctx.db, userId, idempotency, orderId, { ok: true, result: order }, ctx.clock.now()) });
      leased = false;
    }
    return order;
  } finally {
    if (leased && idempotency) await endLease(ctx, userId, idempotency, orderId).catch((error) => ctx.logger.warn("could not end lease", { error }));
  }
}

/**
 * Step 1 of an API refund: one transaction that removes the tokens, ends the grants,
 * makes the order `refunded` with the refund recorded (`pending` when Stripe must still
 * pay it) and raises `order.refunded`. An order already `refunded` by this route with a
 * refund still pending is returned as it is (the retry finishes it).
 */
async function removeTokensForRefund(ctx: Context, input: RefundInput): Promise<OrderItem> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get({ userId: input.userId, orderId: input.orderId }).go({ consistent: true });
    if (!order) throw new NotFoundError("order", input.orderId);
    if (order.status === "refunded" && (order.refunds ?? []).some((refund) => refund.status === "pending" && refund.source === "api")) return order;
    if (order.status === "refunded") throw new ConflictError("The order is already refunded.", { status: order.status });
    // A renewing order is paid period by period: refunding it as one payment would refund
    // its first invoice and end every period's grants while Stripe keeps billing it (each
    // later invoice then paid without tokens). Refunds of its periods are issue 13's next step.
    if (order.renewal === "auto") {
      throw new ConflictError("A renewing order is not refunded as one payment yet: cancel its subscription (DELETE /users/{userId}/subscriptions/{offerId}) and refund its invoices in Stripe.", {
        status: order.status,
        subscriptionId: order.subscriptionId,
      });
    }
    if (!canTransition(order.status, "refunded") || (order.status === "expired" && input.mode === "unused")) {
      throw new ConflictError(`A ${order.status} order cannot be refunded${order.status === "expired" ? " for its unused tokens (use full)" : ""}.`, { status: order.status });
    }
    if (paidAtStripe(order) && ctx.payments.name !== "stripe") {
      throw new PaymentProviderError("The order was paid through Stripe and no Stripe key is configured to refund it.");
    }
    const { grants, balances } = await readOrderGrants(ctx, order);
    const amount = refundAmount({
      mode: input.mode,
      total: order.total.amount,
      refunded: refundedSoFar(order),
      grants: refundGrants(order, grants),
      period: order.starts ? { starts: order.starts, ...(order.expires ? { expires: order.expires } : {}) } : undefined,
      now,
    });
    const movement = new TokenMovement(balances, now);
    const number = (order.refunds ?? []).length + 1;
    const taken = endOrderGrants(movement, order, grants, "refund", { refundNumber: number });
    const tokens = taken.reduce((sum, grant) => sum + grant.tokens, 0);
    const atStripe = paidAtStripe(order) && amount > 0;
    const refund: OrderRefund = {
      number,
      amount,
      tokens,
      tokensShort: 0,
      source: "api",
      status: atStripe ? "pending" : "succeeded",
      grants: taken.filter((grant) => grant.tokens > 0),
      createdAt: now.toISOString(),
      ...(input.reason ? { reason: input.reason } : {}),
    };
    const moneyNote = atStripe
      ? `refund ${number} of ${amount} ${order.total.currency} (${input.mode}) asked at Stripe`
      : paidAtStripe(order)
        ? `refund ${number} (${input.mode}): nothing left to pay back`
        : `refund ${number} (${input.mode}): no money moved (${order.provider} order)`;
    const next: OrderItem = {
      ...transition(order, "refunded", { message: `${tokens} tokens removed; ${moneyNote}`, now }),
      refunds: [...(order.refunds ?? []), refund],
    };
    const change = orderActions(ctx.db, { from: order, to: next, trigger: "refunded" }, now, { amount, currency: order.total.currency, tokens });
    const written = await transactWrite(ctx.db, { ...change, ...movement.actions(ctx, 3) });
    if (!written.committed) throw new RetryableConflict("order or balance changed while refunding");
    return next;
  });
}

/**
 * Step 2: asks Stripe for every refund still `pending` on the order (API refunds), with
 * `metadata.orderId`/`refundNumber` and the idempotency key `refund-<orderId>-<n>` (a
 * retry returns the same Stripe Refund), and records each Stripe Refund id on the order.
 * @throws PaymentProviderError when Stripe fails (the refund stays pending)
 */
export async function finishPendingRefunds(ctx: PaymentContext, read: OrderItem): Promise<OrderItem> {
  let order = read;
  for (const pending of (read.refunds ?? []).filter((refund) => refund.status === "pending" && refund.source === "api")) {
    const paymentIntentId = paidIntentOf(order);
    if (!paymentIntentId) throw new PaymentProviderError(`Order ${order.orderId} has no PaymentIntent to refund.`);
    const stripeRefund = await ctx.payments.refund({
      paymentIntentId,
      amount: pending.amount,
      idempotencyKey: `refund-${order.orderId}-${pending.number}`,
      metadata: { orderId: order.orderId, userId: order.userId, refundNumber: String(pending.number) },
      reason: "requested_by_customer",
    });
    order = await updateRefund(ctx, order, (refund) => refund.number === pending.number && refund.status === "pending", stripeRefund, `refund ${pending.number} made at Stripe (${stripeRefund.id})`);
  }
  return order;
}

/**
 * Marks the refund `match` finds on the order with the Stripe Refund (its id, and
 * `failed` if Stripe says so), with a history note; a change of fields guarded like any
 * order write, retried on a race.
 */
async function updateRefund(
  ctx: PaymentContext,
  read: OrderItem,
  match: (refund: OrderRefund) => boolean,
  stripeRefund: RefundState,
  message: string,
): Promise<OrderItem> {
  let order = read;
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    if (!(order.refunds ?? []).some(match)) return order;
    const next: OrderItem = {
      ...noted(order, { message, payload: JSON.stringify({ refundId: stripeRefund.id, status: stripeRefund.status, amount: stripeRefund.amount }), now }),
      refunds: (order.refunds ?? []).map((refund) =>
        match(refund) ? { ...refund, refundId: stripeRefund.id, status: stripeRefund.status === "failed" ? ("failed" as const) : ("succeeded" as const) } : refund,
      ),
    };
    if (await storeOrderChange(ctx.db, { from: order, to: next }, now)) return next;
    const { data } = await ctx.db.entities.order.get({ userId: order.userId, orderId: order.orderId }).go({ consistent: true });
    if (!data) throw new NotFoundError("order", order.orderId);
    order = data;
    throw new RetryableConflict("order changed while recording a refund");
  });
}

/** What applying a Stripe refund event did. */
export interface RefundOutcome {
  outcome: "applied" | "ignored";
  reason: string;
  orderId?: string | undefined;
}

/**
 * `charge.refunded`: reads the charge's PaymentIntent and its refunds back from Stripe
 * (the event may be stale or forged), and applies each refund not seen before: one the
 * service made (`metadata.orderId`/`refundNumber`) is only recorded; one made in Stripe
 * takes tokens back by the running target per grant (core/rules/refund-plan.ts
 * `clawbackPlan`), never below zero (`tokensShort`), and makes the order `refunded` once
 * the whole total is refunded (all its grants ended). Refunds of a duplicate payment
 * (refunded by the service itself) are not the order's.
 * @throws PaymentProviderError when Stripe fails (5xx: Stripe delivers again)
 */
export async function applyStripeRefunds(ctx: PaymentContext, paymentIntentId: string): Promise<RefundOutcome> {
  let intentMetadata: Record<string, string>;
  try {
    intentMetadata = (await ctx.payments.retrievePaymentIntent(paymentIntentId)).metadata;
  } catch (error) {
    if (error instanceof PaymentNotFoundError) return { outcome: "ignored", reason: `Stripe does not know PaymentIntent ${paymentIntentId}` };
    throw error;
  }
  const { orderId, userId } = intentMetadata;
  if (!orderId || !userId) return { outcome: "ignored", reason: "no order metadata on the PaymentIntent" };
  const refunds = (await ctx.payments.listRefunds(paymentIntentId)).filter((refund) => refund.status !== "failed" && refund.status !== "canceled").reverse();
  let applied = 0;
  for (const stripeRefund of refunds) {
    const outcome = await applyStripeRefund(ctx, { userId, orderId }, paymentIntentId, stripeRefund);
    if (outcome) applied++;
  }
  return { outcome: applied > 0 ? "applied" : "ignored", reason: applied > 0 ? `${applied} refund(s) applied` : "every refund already applied", orderId };
}

/** Applies one Stripe refund to the order, once (by refund id); true when it changed the order. */
async function applyStripeRefund(ctx: PaymentContext, ref: { userId: string; orderId: string }, paymentIntentId: string, stripeRefund: RefundState): Promise<boolean> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get(ref).go({ consistent: true });
    if (!order) return false;
    if (order.status === "pending" || order.status === "error" || order.status === "refused") return false; // not paid yet: read again when it is
    if (paidIntentOf(order) !== paymentIntentId) return false; // a duplicate payment's refund, or not this order's payment
    const known = order.refunds ?? [];
    if (known.some((refund) => refund.refundId === stripeRefund.id)) return false;
    // One of ours whose answer was not recorded yet: record it, take nothing more.
    const ours = known.find((refund) => refund.source === "api" && String(refund.number) === stripeRefund.metadata.refundNumber && stripeRefund.metadata.orderId === order.orderId);
    if (ours) {
      await updateRefund(ctx, order, (refund) => refund.number === ours.number && refund.refundId === undefined, stripeRefund, `refund ${ours.number} confirmed by Stripe (${stripeRefund.id})`);
      return true;
    }

    // Made in Stripe: take tokens back by the running target per grant.
    const { grants, balances } = await readOrderGrants(ctx, order);
    const cumulative = Math.min(order.total.amount, refundedSoFar(order) + stripeRefund.amount);
    const taken = clawedBack(order);
    const plan = clawbackPlan({
      total: order.total.amount,
      cumulativeRefunded: cumulative,
      grants: grants.map(({ item, state }) => ({ grantId: item.grantId, tokens: item.tokens, remaining: state?.remaining ?? 0, clawedBack: Math.min(item.tokens, taken.get(item.grantId) ?? 0) })),
    });
    const movement = new TokenMovement(balances, now);
    const number = known.length + 1;
    const metadata = { refundId: stripeRefund.id };
    const takes = plan.grants.map((planned) => {
      const item = grants.find((grant) => grant.item.grantId === planned.grantId)!.item;
      return { grantId: planned.grantId, tokens: takeFromGrant(movement, order, item, planned.take, "refund", metadata) };
    });
    const fully = cumulative >= order.total.amount && canTransition(order.status, "refunded");
    // Refunded in full: what is left ends with the grants.
    const rest = fully ? endOrderGrants(movement, order, grants, "refund", metadata) : [];
    const perGrant = new Map<string, number>();
    for (const grant of [...takes, ...rest]) perGrant.set(grant.grantId, (perGrant.get(grant.grantId) ?? 0) + grant.tokens);
    const tokens = [...perGrant.values()].reduce((sum, value) => sum + value, 0);
    const refund: OrderRefund = {
      number,
      refundId: stripeRefund.id,
      amount: stripeRefund.amount,
      tokens,
      tokensShort: plan.tokensShort,
      source: "stripe",
      status: "succeeded",
      grants: [...perGrant].filter(([, value]) => value > 0).map(([grantId, value]) => ({ grantId, tokens: value })),
      createdAt: now.toISOString(),
    };
    const message = `refund ${number} of ${stripeRefund.amount} ${order.total.currency} made in Stripe (${stripeRefund.id}): ${tokens} tokens taken back${plan.tokensShort > 0 ? `, ${plan.tokensShort} already spent` : ""}`;
    const moved = fully ? transition(order, "refunded", { message, now }) : noted(order, { message, now });
    const next: OrderItem = { ...moved, refunds: [...known, refund] };
    const fields = { amount: stripeRefund.amount, currency: order.total.currency, tokens };
    const change = orderActions(ctx.db, { from: order, to: next, trigger: fully ? "refunded" : undefined }, now, fields);
    const event = fully ? undefined : eventWrite(ctx.db, { type: "order.refunded", userId: order.userId, orderId: order.orderId, offerGroup: order.offerGroup, ...fields }, now).item;
    const written = await transactWrite(ctx.db, { ...change, event, ...movement.actions(ctx, 2) });
    if (!written.committed) throw new RetryableConflict("order or balance changed while applying a Stripe refund");
    return true;
  });
}

/**
 * `refund.failed`: Stripe could not pay a refund out. The order's refund entry becomes
 * `failed`, with a history entry and an `order.refund_failed` event for the operator; the
 * tokens stay removed. Applied once.
 */
export async function recordRefundFailure(ctx: PaymentContext, stripeRefund: { id: string; metadata: Record<string, string>; paymentIntentId?: string | undefined; amount: number; failureReason?: string | undefined }): Promise<RefundOutcome> {
  let { orderId, userId } = stripeRefund.metadata;
  if ((!orderId || !userId) && stripeRefund.paymentIntentId) {
    try {
      ({ orderId, userId } = (await ctx.payments.retrievePaymentIntent(stripeRefund.paymentIntentId)).metadata);
    } catch (error) {
      if (!(error instanceof PaymentNotFoundError)) throw error;
    }
  }
  if (!orderId || !userId) return { outcome: "ignored", reason: "the refund leads to no order" };
  const ref = { userId, orderId };
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get(ref).go({ consistent: true });
    if (!order) return { outcome: "ignored", reason: "unknown order", orderId };
    const refunds = order.refunds ?? [];
    const entry =
      refunds.find((refund) => refund.refundId === stripeRefund.id) ??
      refunds.find((refund) => refund.source === "api" && String(refund.number) === stripeRefund.metadata.refundNumber);
    if (!entry) return { outcome: "ignored", reason: `refund ${stripeRefund.id} is not one of the order's`, orderId };
    if (entry.status === "failed") return { outcome: "ignored", reason: "refund failure already recorded", orderId };
    const next: OrderItem = {
      ...noted(order, {
        message: `refund ${entry.number} (${stripeRefund.id}) failed at Stripe${stripeRefund.failureReason ? `: ${stripeRefund.failureReason}` : ""}; the tokens stay removed`,
        now,
      }),
      refunds: refunds.map((refund) => (refund === entry ? { ...refund, refundId: stripeRefund.id, status: "failed" as const } : refund)),
    };
    const written = await transactWrite(ctx.db, {
      ...orderActions(ctx.db, { from: order, to: next }, now),
      event: eventWrite(ctx.db, { type: "order.refund_failed", userId, orderId, offerGroup: order.offerGroup, amount: entry.amount, currency: order.total.currency }, now).item,
    });
    if (!written.committed) throw new RetryableConflict("order changed while recording a failed refund");
    return { outcome: "applied", reason: "refund failure recorded", orderId };
  });
}
