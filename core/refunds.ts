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
 * - A renewing order (issue 13) is paid invoice by invoice, and each of its refunds is of
 *   one paid period (a {@link RefundScope}): the API refunds its latest period (that
 *   invoice's amount, that period's grants, the Stripe Refund made on that invoice's
 *   PaymentIntent); a refund made in Stripe on a renewal invoice's charge (whose
 *   PaymentIntent carries no `metadata.orderId`) finds the order through the invoice's
 *   subscription (core/subscriptions.ts `renewalOfPayment`) and takes back from that
 *   period's grants only. The refund entry names the invoice (`invoiceId`); the order keeps
 *   its status (`paid`, or `expired` between periods): its subscription goes on until
 *   cancelled (`DELETE /users/{userId}/subscriptions/{offerId}`), each later invoice
 *   credited as usual, and only the refunded period's grants end.
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
import type { BalanceState } from "./rules/balance-state.js";
import { canTransition, noted, transition } from "./rules/order-lifecycle.js";
import { clawbackPlan, refundAmount, type RefundGrant, type RefundMode, type RefundPeriod } from "./rules/refund-plan.js";
import { billingOf } from "./billing.js";
import { paidPeriods, periodOfPayment, renewalOfPayment, type RenewalInvoiceItem } from "./subscriptions.js";

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

/** One refund entry of an order as stored (core/rules/order-lifecycle.ts `OrderRefund`, with a renewing order's `invoiceId`). */
type RefundEntry = NonNullable<OrderItem["refunds"]>[number];

/** One dispute entry of an order as stored (with a renewing order's `invoiceId`). */
type DisputeEntry = NonNullable<OrderItem["disputes"]>[number];

/**
 * What one refund applies to: a one-time order's payment (its paid PaymentIntent, total
 * and grants), or one paid period of a renewing order (that invoice's PaymentIntent,
 * amount and grants, core/db/renewal-invoice.ts).
 */
export interface RefundScope {
  /** The renewal invoice (`in_...`) whose period it is; undefined for a one-time order's payment. */
  invoiceId?: string | undefined;
  /** The PaymentIntent whose charge is refunded (undefined: not known yet). */
  paymentIntentId: string | undefined;
  /** What that payment paid, integer minor units of the order's currency. */
  total: number;
  /** The grants it bought. */
  grantIds: string[];
  /** Their period, for an `unused` refund of grants that carry no tokens. */
  period: RefundPeriod | undefined;
}

/** A one-time order's payment as a refund's scope. */
function orderScope(order: OrderItem): RefundScope {
  return {
    paymentIntentId: paidIntentOf(order),
    total: order.total.amount,
    grantIds: order.grantIds,
    period: order.starts ? { starts: order.starts, ...(order.expires ? { expires: order.expires } : {}) } : undefined,
  };
}

/** A renewing order's paid period as a refund's (or dispute's) scope. */
export function periodScope(period: RenewalInvoiceItem): RefundScope {
  return { invoiceId: period.invoiceId, paymentIntentId: period.paymentIntentId, total: period.amount, grantIds: period.grantIds, period: { starts: period.starts, expires: period.expires } };
}

/** True when `refund` is of `scope` (a one-time order's refunds name no invoice). */
const inScope = (refund: Pick<RefundEntry, "invoiceId">, scope: Pick<RefundScope, "invoiceId">) => refund.invoiceId === scope.invoiceId;

/** What the order's refunds of `scope` returned so far (failed ones returned nothing), minor units. */
const refundedSoFar = (order: Pick<OrderItem, "refunds">, scope: Pick<RefundScope, "invoiceId">) =>
  (order.refunds ?? []).filter((refund) => refund.status !== "failed" && inScope(refund, scope)).reduce((sum, refund) => sum + refund.amount, 0);

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
 * to the minor unit; `full`: what earlier refunds left), idempotently. A renewing order
 * refunds its latest paid period the same way: that period's grants, that invoice's
 * amount, on that invoice's PaymentIntent; the order keeps its status.
 * @returns the order as it is afterwards (`refunded`, or a renewing order as it was, with its `refunds`)
 * @throws NotFoundError; ConflictError (not `paid`, or `expired` for `unused`; already
 *   refunded; a pure subscription that never expires with `unused`; a renewing order
 *   with no paid period, whose latest period is refunded or disputed, or has ended with
 *   `unused`); PaymentProviderError (Stripe failed: the tokens are removed and the refund
 *   stays pending on the order, finished by a retry or `sync`); idempotency errors
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

/** What an API refund refunds, or `pending`: an API refund of it is still pending (the retry finishes it). */
type RefundTarget = RefundScope | "pending";

/** A one-time order's payment, when it can be refunded in `mode` (see {@link refundOrder}). */
function oneTimeTarget(order: OrderItem, mode: RefundMode): RefundTarget {
  if (order.status === "refunded" && (order.refunds ?? []).some((refund) => refund.status === "pending" && refund.source === "api")) return "pending";
  if (order.status === "refunded") throw new ConflictError("The order is already refunded.", { status: order.status });
  if (!canTransition(order.status, "refunded") || (order.status === "expired" && mode === "unused")) {
    throw new ConflictError(`A ${order.status} order cannot be refunded${order.status === "expired" ? " for its unused tokens (use full)" : ""}.`, { status: order.status });
  }
  return orderScope(order);
}

/**
 * A renewing order's latest paid period (its newest invoice credited), when it can be
 * refunded in `mode`: the order `paid` or `expired`, the period neither refunded through
 * the API, nor refunded in full in Stripe, nor disputed, and not ended for `unused`.
 */
async function latestPeriodTarget(ctx: Pick<Context, "db">, order: OrderItem, mode: RefundMode, now: Date): Promise<RefundTarget> {
  const details = { status: order.status, subscriptionId: order.subscriptionId };
  if (order.status !== "paid" && order.status !== "expired") throw new ConflictError(`A ${order.status} renewing order cannot be refunded.`, details);
  const latest = (await paidPeriods(ctx, order.userId, order.orderId)).at(-1);
  if (!latest) throw new ConflictError("The renewing order has no paid period to refund.", details);
  const scope = periodScope(latest);
  const ofPeriod = (order.refunds ?? []).filter((refund) => inScope(refund, scope));
  const periodDetails = { ...details, invoiceId: latest.invoiceId, starts: latest.starts, expires: latest.expires };
  if (ofPeriod.some((refund) => refund.status === "pending" && refund.source === "api")) return "pending";
  if (ofPeriod.some((refund) => refund.source === "api") || refundedSoFar(order, scope) >= scope.total) {
    throw new ConflictError(`The renewing order's latest period (invoice ${latest.invoiceId}) is already refunded.`, periodDetails);
  }
  const dispute = (order.disputes ?? []).find((known: DisputeEntry) => known.invoiceId === latest.invoiceId && (known.status === "open" || known.status === "lost"));
  if (dispute) throw new ConflictError(`The renewing order's latest period (invoice ${latest.invoiceId}) is disputed (${dispute.disputeId}, ${dispute.status}).`, periodDetails);
  if (mode === "unused" && Date.parse(latest.expires) <= now.getTime()) {
    throw new ConflictError(`The renewing order's latest period (invoice ${latest.invoiceId}) has ended: it has no unused tokens (use full).`, periodDetails);
  }
  return scope;
}

/**
 * Step 1 of an API refund: one transaction that removes the tokens, ends the grants of
 * what is refunded, records the refund (`pending` when Stripe must still pay it) and
 * raises `order.refunded`; a one-time order becomes `refunded`, a renewing order keeps
 * its status. An order with an API refund still pending is returned as it is (the retry
 * finishes it).
 */
async function removeTokensForRefund(ctx: Context, input: RefundInput): Promise<OrderItem> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get({ userId: input.userId, orderId: input.orderId }).go({ consistent: true });
    if (!order) throw new NotFoundError("order", input.orderId);
    const target = order.renewal === "auto" ? await latestPeriodTarget(ctx, order, input.mode, now) : oneTimeTarget(order, input.mode);
    if (target === "pending") return order;
    if (paidAtStripe(order) && ctx.payments.name !== "stripe") {
      throw new PaymentProviderError("The order was paid through Stripe and no Stripe key is configured to refund it.");
    }
    const { grants, balances } = await readOrderGrants(ctx, { userId: order.userId, orderId: order.orderId, grantIds: target.grantIds });
    const amount = refundAmount({
      mode: input.mode,
      total: target.total,
      refunded: refundedSoFar(order, target),
      grants: refundGrants(order, grants),
      period: target.period,
      now,
    });
    const movement = new TokenMovement(balances, now);
    const number = (order.refunds ?? []).length + 1;
    const taken = endScopeGrants(movement, order, grants, target, "refund", { refundNumber: number });
    const tokens = taken.reduce((sum, grant) => sum + grant.tokens, 0);
    const atStripe = paidAtStripe(order) && amount > 0;
    const refund: RefundEntry = {
      number,
      amount,
      tokens,
      tokensShort: 0,
      source: "api",
      status: atStripe ? "pending" : "succeeded",
      grants: taken.filter((grant) => grant.tokens > 0),
      createdAt: now.toISOString(),
      ...(input.reason ? { reason: input.reason } : {}),
      ...(target.invoiceId ? { invoiceId: target.invoiceId } : {}),
    };
    const what = target.invoiceId ? `refund ${number} of the period paid by invoice ${target.invoiceId}` : `refund ${number}`;
    const moneyNote = atStripe
      ? `${what} of ${amount} ${order.total.currency} (${input.mode}) asked at Stripe`
      : paidAtStripe(order)
        ? `${what} (${input.mode}): nothing left to pay back`
        : `${what} (${input.mode}): no money moved (${order.provider} order)`;
    const message = `${tokens} tokens removed; ${moneyNote}`;
    const fields = { amount, currency: order.total.currency, tokens };
    const next: OrderItem = { ...(target.invoiceId ? noted(order, { message, now }) : transition(order, "refunded", { message, now })), refunds: [...(order.refunds ?? []), refund] };
    const written = await transactWrite(ctx.db, { ...refundWrites(ctx, order, next, target, now, fields), ...movement.actions(ctx, 3) });
    if (!written.committed) throw new RetryableConflict("order or balance changed while refunding");
    return next;
  });
}

/**
 * The order's write and its `order.refunded` event: the `refunded` transition for a
 * one-time order (`transition` true), a change of fields with the event written beside it
 * for a renewing order's period or a partial refund.
 */
function refundWrites(ctx: Pick<Context, "db">, from: OrderItem, to: OrderItem, scope: RefundScope, now: Date, fields: { amount: number; currency: string; tokens: number }, transition = !scope.invoiceId) {
  const change = orderActions(ctx.db, { from, to, trigger: transition ? "refunded" : undefined }, now, fields);
  const event = transition ? undefined : eventWrite(ctx.db, { type: "order.refunded", userId: to.userId, orderId: to.orderId, offerGroup: to.offerGroup, ...fields }, now).item;
  return { ...change, event };
}

/**
 * Ends the grants of `scope` ({@link endOrderGrants}: their remaining removed, one ledger
 * entry each). For a renewing order's period, the order's other periods stay on the
 * balance items (endOrderGrants drops every period of the order that left the map): only
 * that period's end with its grants, so that the order's earlier and later periods still
 * count (subscribed, unlocking offers).
 * @returns the tokens removed per grant
 */
export function endScopeGrants(movement: TokenMovement, order: OrderItem, grants: readonly OrderGrant[], scope: Pick<RefundScope, "invoiceId">, reason: "refund" | "adjust", metadata?: Record<string, unknown>): Array<{ grantId: string; tokens: number }> {
  if (!scope.invoiceId) return endOrderGrants(movement, order, grants, reason, metadata);
  const ending = new Set(grants.map(({ item }) => `${item.starts}|${item.expires ?? ""}`));
  const before = new Map([...new Set(grants.map(({ item }) => item.offerGroup))].map((group) => [group, movement.state(order.userId, group).periods ?? []]));
  const taken = endOrderGrants(movement, order, grants, reason, metadata);
  for (const [group, periods] of before) {
    const kept = periods.filter((period) => period.orderId !== order.orderId || !ending.has(`${period.starts}|${period.expires ?? ""}`));
    const state = movement.state(order.userId, group);
    if (kept.length === (state.periods ?? []).length) continue;
    const next: BalanceState = { ...state, periods: kept };
    if (kept.length === 0) delete next.periods;
    movement.update(next);
  }
  return taken;
}

/**
 * Step 2: asks Stripe for every refund still `pending` on the order (API refunds), on the
 * PaymentIntent that paid what it refunds (a renewing order's: its invoice's), with
 * `metadata.orderId`/`refundNumber` (and `invoiceId`) and the idempotency key
 * `refund-<orderId>-<n>` (a retry returns the same Stripe Refund), and records each Stripe
 * Refund id on the order.
 * @throws PaymentProviderError when Stripe fails (the refund stays pending)
 */
export async function finishPendingRefunds(ctx: PaymentContext, read: OrderItem): Promise<OrderItem> {
  let order = read;
  for (const pending of (read.refunds ?? []).filter((refund) => refund.status === "pending" && refund.source === "api")) {
    const paymentIntentId = pending.invoiceId ? await periodIntent(ctx, order, pending.invoiceId) : paidIntentOf(order);
    if (!paymentIntentId) throw new PaymentProviderError(`Order ${order.orderId} has no PaymentIntent to refund${pending.invoiceId ? ` for invoice ${pending.invoiceId}` : ""}.`);
    const stripeRefund = await ctx.payments.refund({
      paymentIntentId,
      amount: pending.amount,
      idempotencyKey: `refund-${order.orderId}-${pending.number}`,
      metadata: { orderId: order.orderId, userId: order.userId, refundNumber: String(pending.number), ...(pending.invoiceId ? { invoiceId: pending.invoiceId } : {}) },
      reason: "requested_by_customer",
    });
    order = await updateRefund(ctx, order, (refund) => refund.number === pending.number && refund.status === "pending", stripeRefund, `refund ${pending.number} made at Stripe (${stripeRefund.id})`);
  }
  return order;
}

/** The PaymentIntent that paid a renewing order's invoice: as credited, else as Stripe says now. */
async function periodIntent(ctx: PaymentContext, order: OrderItem, invoiceId: string): Promise<string | undefined> {
  const { data } = await ctx.db.entities.renewalInvoice.get({ userId: order.userId, orderId: order.orderId, invoiceId }).go({ consistent: true });
  return data?.paymentIntentId ?? (await billingOf(ctx).retrieveInvoice(invoiceId)).paymentIntentId;
}

/**
 * Marks the refund `match` finds on the order with the Stripe Refund (its id, and
 * `failed` if Stripe says so), with a history note; a change of fields guarded like any
 * order write, retried on a race.
 */
async function updateRefund(
  ctx: PaymentContext,
  read: OrderItem,
  match: (refund: RefundEntry) => boolean,
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
 * (refunded by the service itself) are not the order's. A renewal invoice's PaymentIntent
 * carries no metadata: its invoice's subscription names the order (core/subscriptions.ts
 * `renewalOfPayment`), and the refund is of that invoice's period: measured against that
 * invoice's amount, taken from that period's grants, those ended once the invoice is
 * refunded in full (the order keeps its status).
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
  let { orderId, userId } = intentMetadata;
  let invoiceId: string | undefined;
  if (!orderId || !userId) {
    const renewal = await renewalOfPayment(ctx, paymentIntentId);
    if (!renewal) return { outcome: "ignored", reason: "no order metadata on the PaymentIntent, and no invoice of a renewing order of ours" };
    if (!renewal.period) return { outcome: "ignored", reason: `invoice ${renewal.invoiceId} credited no period of the renewing order`, orderId: renewal.orderId };
    ({ orderId, userId, invoiceId } = renewal);
  }
  const refunds = (await ctx.payments.listRefunds(paymentIntentId)).filter((refund) => refund.status !== "failed" && refund.status !== "canceled").reverse();
  let applied = 0;
  for (const stripeRefund of refunds) {
    const outcome = await applyStripeRefund(ctx, { userId, orderId }, { paymentIntentId, invoiceId }, stripeRefund);
    if (outcome) applied++;
  }
  return { outcome: applied > 0 ? "applied" : "ignored", reason: applied > 0 ? `${applied} refund(s) applied` : "every refund already applied", orderId };
}

/**
 * What a payment of the order paid, as a refund's scope: a one-time order's paid
 * PaymentIntent, or the period of a renewing order that PaymentIntent (or invoice) paid;
 * undefined when it paid neither (a duplicate payment's, or not this order's).
 */
async function scopeOfPayment(ctx: Pick<Context, "db">, order: OrderItem, payment: { paymentIntentId: string; invoiceId?: string | undefined }): Promise<RefundScope | undefined> {
  if (order.renewal !== "auto") return paidIntentOf(order) === payment.paymentIntentId ? orderScope(order) : undefined;
  const period = await periodOfPayment(ctx, order, payment.paymentIntentId, payment.invoiceId);
  return period && periodScope(period);
}

/** Applies one Stripe refund to the order, once (by refund id); true when it changed the order. */
async function applyStripeRefund(
  ctx: PaymentContext,
  ref: { userId: string; orderId: string },
  payment: { paymentIntentId: string; invoiceId?: string | undefined },
  stripeRefund: RefundState,
): Promise<boolean> {
  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const { data: order } = await ctx.db.entities.order.get(ref).go({ consistent: true });
    if (!order) return false;
    if (order.status === "pending" || order.status === "error" || order.status === "refused") return false; // not paid yet: read again when it is
    const known = order.refunds ?? [];
    if (known.some((refund) => refund.refundId === stripeRefund.id)) return false;
    const scope = await scopeOfPayment(ctx, order, payment);
    if (!scope) return false; // a duplicate payment's refund, or not this order's payment
    // One of ours whose answer was not recorded yet: record it, take nothing more.
    const ours = known.find((refund) => refund.source === "api" && String(refund.number) === stripeRefund.metadata.refundNumber && stripeRefund.metadata.orderId === order.orderId);
    if (ours) {
      await updateRefund(ctx, order, (refund) => refund.number === ours.number && refund.refundId === undefined, stripeRefund, `refund ${ours.number} confirmed by Stripe (${stripeRefund.id})`);
      return true;
    }

    // Made in Stripe: take tokens back by the running target per grant.
    const { grants, balances } = await readOrderGrants(ctx, { userId: order.userId, orderId: order.orderId, grantIds: scope.grantIds });
    const cumulative = Math.min(scope.total, refundedSoFar(order, scope) + stripeRefund.amount);
    const taken = clawedBack(order);
    const plan = clawbackPlan({
      total: scope.total,
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
    // Refunded in full: what is left ends with the grants (the order's, or the period's).
    const fully = cumulative >= scope.total && (scope.invoiceId !== undefined || canTransition(order.status, "refunded"));
    const rest = fully ? endScopeGrants(movement, order, grants, scope, "refund", metadata) : [];
    const perGrant = new Map<string, number>();
    for (const grant of [...takes, ...rest]) perGrant.set(grant.grantId, (perGrant.get(grant.grantId) ?? 0) + grant.tokens);
    const tokens = [...perGrant.values()].reduce((sum, value) => sum + value, 0);
    const refund: RefundEntry = {
      number,
      refundId: stripeRefund.id,
      amount: stripeRefund.amount,
      tokens,
      tokensShort: plan.tokensShort,
      source: "stripe",
      status: "succeeded",
      grants: [...perGrant].filter(([, value]) => value > 0).map(([grantId, value]) => ({ grantId, tokens: value })),
      createdAt: now.toISOString(),
      ...(scope.invoiceId ? { invoiceId: scope.invoiceId } : {}),
    };
    const what = scope.invoiceId ? `of the period paid by invoice ${scope.invoiceId} ` : "";
    const message = `refund ${number} of ${stripeRefund.amount} ${order.total.currency} ${what}made in Stripe (${stripeRefund.id}): ${tokens} tokens taken back${plan.tokensShort > 0 ? `, ${plan.tokensShort} already spent` : ""}`;
    const transitions = fully && !scope.invoiceId;
    const next: OrderItem = { ...(transitions ? transition(order, "refunded", { message, now }) : noted(order, { message, now })), refunds: [...known, refund] };
    const fields = { amount: stripeRefund.amount, currency: order.total.currency, tokens };
    const written = await transactWrite(ctx.db, { ...refundWrites(ctx, order, next, scope, now, fields, transitions), ...movement.actions(ctx, 2) });
    if (!written.committed) throw new RetryableConflict("order or balance changed while applying a Stripe refund");
    return true;
  });
}

/**
 * `refund.failed`: Stripe could not pay a refund out. The order's refund entry becomes
 * `failed`, with a history entry and an `order.refund_failed` event for the operator; the
 * tokens stay removed. Applied once. The order is named by the refund's metadata, its
 * PaymentIntent's, or (a renewal invoice's charge) its invoice's subscription's.
 */
export async function recordRefundFailure(ctx: PaymentContext, stripeRefund: { id: string; metadata: Record<string, string>; paymentIntentId?: string | undefined; amount: number; failureReason?: string | undefined }): Promise<RefundOutcome> {
  let { orderId, userId } = stripeRefund.metadata;
  if ((!orderId || !userId) && stripeRefund.paymentIntentId) {
    try {
      ({ orderId, userId } = (await ctx.payments.retrievePaymentIntent(stripeRefund.paymentIntentId)).metadata);
    } catch (error) {
      if (!(error instanceof PaymentNotFoundError)) throw error;
    }
    // A refund made in Stripe of a renewal invoice's charge: its invoice's subscription names the order.
    if (!orderId || !userId) ({ orderId, userId } = (await renewalOfPayment(ctx, stripeRefund.paymentIntentId)) ?? {});
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
