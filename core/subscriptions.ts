/**
 * Renewing subscriptions (issue 13; API.md "Renewing subscriptions and automatic
 * top-ups"): one per (user, offer), held by the renewing order that started it, credited
 * once per paid invoice.
 *
 * - Claiming: a renewing order takes the (user, offer) subscription item before Stripe
 *   is asked for a Subscription. It is refused (`409 already_subscribed`) while another
 *   order holds it live: its Stripe Subscription `active`, `past_due`, `unpaid`,
 *   `trialing` or `paused`, or still `incomplete` with its order awaiting payment (or
 *   about to be written: a claim younger than {@link CLAIM_LEASE_MS} without its order). An
 *   order whose first payment failed at Stripe (`error`), was refused or expired, or a
 *   canceled subscription, frees it.
 * - Crediting: each `invoice.paid` is read back from Stripe (events can be stale or
 *   forged), must be `paid`, carry our order in its subscription's metadata and the
 *   order's amount and currency; then the period's grants are written with the invoice's
 *   line period as their dates (Stripe keeps the billing anchor: Jan 31 -> Feb 28 ->
 *   Mar 31), with the invoice's `renewalInvoice` item created only if absent, in one
 *   transaction: one grant set per invoice id, whatever the deliveries. The first invoice
 *   pays the order (`order.paid`); later ones are renewals (`subscription.renewed`).
 *   Renewing orders are credited only this way: their first invoice's PaymentIntent
 *   carries no metadata of ours, and a subscription-mode Checkout Session has no
 *   PaymentIntent, so neither `payment_intent.succeeded` nor `checkout.session.completed`
 *   credits them.
 * - State: `customer.subscription.updated` / `.deleted` (read back from Stripe) keep the
 *   item's status, period end and `cancelAtPeriodEnd`; the subscription ending raises
 *   `subscription.canceled` once (the grants of paid periods keep their tokens until they
 *   expire). `invoice.payment_failed` raises `subscription.payment_failed` (Stripe's
 *   Smart Retries go on; no grant until an invoice is paid).
 * - Cancelling (`DELETE /users/{userId}/subscriptions/{offerId}`): at period end by
 *   default, or at once; Stripe is asked first, then the item is written from its answer.
 * - Lookups for refunds and disputes of a period (core/refunds.ts, core/disputes.ts): an
 *   order's paid periods ({@link paidPeriods}), the one a payment paid
 *   ({@link periodOfPayment}), and the order and period of a renewal invoice's
 *   PaymentIntent, which carries no metadata ({@link renewalOfPayment}: PaymentIntent ->
 *   invoice -> its subscription's metadata).
 */
import { readBalances } from "./balances.js";
import { billingOf } from "./billing.js";
import type { Context, PaymentContext } from "./context.js";
import type { EntityItem } from "electrodb";
import type { Db, OrderItem, SubscriptionItem } from "./db/service.js";
import { commit, conditionFailed, isConditionFailure, transactWrite, type TransactionItem } from "./db/transact.js";
import { DomainError, ignoreUnknown, NotFoundError } from "./errors.js";
import { eventWrite } from "./events.js";
import { isRenewal, purchaseWrites } from "./fulfilment.js";
import type { InvoiceState, SubscriptionState } from "./payments/provider.js";
import { RetryableConflict, retryOnConflict } from "./retry.js";
import { isPayable } from "./rules/order-lifecycle.js";
import { ENDED_STATUSES, HOLDING_STATUSES, STANDING_STATUSES } from "./rules/renewal.js";
import { webhookEventWrite } from "./webhook-events.js";

/** A renewing order's paid invoice and the period it paid, as stored (core/db/renewal-invoice.ts). */
export type RenewalInvoiceItem = EntityItem<Db["entities"]["renewalInvoice"]>;

/** What crediting an invoice did (a webhook outcome). */
export interface InvoiceOutcome {
  outcome: "applied" | "ignored";
  /** Why, in a few words (logged). */
  reason: string;
  orderId?: string | undefined;
}

/** How long a claim whose order is not written yet holds the subscription item (a request that died after claiming frees it then). */
export const CLAIM_LEASE_MS = 60_000;

/**
 * Takes the user's subscription item of the order's offer for `order` (a renewing order
 * about to ask Stripe for its Subscription). Taking it again for the same order is a no-op.
 * @throws DomainError `already_subscribed` (409) when another order holds it live, with
 *   that order's id and subscription; database errors (a lost race is read again,
 *   core/retry.ts `retryOnConflict`)
 */
export async function claimSubscription(ctx: Pick<Context, "db" | "clock">, order: Pick<OrderItem, "userId" | "offerId" | "orderId" | "offerGroup">): Promise<void> {
  const { userId, offerId, orderId, offerGroup } = order;
  const at = ctx.clock.now().toISOString();
  return retryOnConflict(async () => {
    const { data: held } = await ctx.db.entities.subscription.get({ userId, offerId }).go({ consistent: true });
    if (!held) {
      try {
        await ctx.db.entities.subscription.create({ userId, offerId, orderId, offerGroup, status: "incomplete", createdAt: at, updatedAt: at }).go();
        return;
      } catch (error) {
        if (isConditionFailure(error)) throw new RetryableConflict("subscription taken meanwhile");
        throw error;
      }
    }
    if (held.orderId === orderId) return;
    const { data: holder } = await ctx.db.entities.order.get({ userId, orderId: held.orderId }).go({ consistent: true });
    // The holder's order is written just after its claim: none yet is a claim in flight
    // (refused), unless older than CLAIM_LEASE_MS (its request died before writing it).
    const inFlight = !holder && Date.parse(held.updatedAt) > Date.parse(at) - CLAIM_LEASE_MS;
    const awaitingPayment = held.status === "incomplete" && (holder?.status === "pending" || inFlight);
    if (HOLDING_STATUSES.has(held.status) || awaitingPayment) {
      throw new DomainError("already_subscribed", `The user already has a renewing subscription to offer ${offerId}.`, {
        offerId,
        orderId: held.orderId,
        ...(held.subscriptionId ? { subscriptionId: held.subscriptionId } : {}),
        status: held.status,
      });
    }
    try {
      await ctx.db.entities.subscription
        .put({ userId, offerId, orderId, offerGroup, status: "incomplete", createdAt: at, updatedAt: at })
        .where((attr, op) => `${op.eq(attr.orderId, held.orderId)} AND ${op.eq(attr.updatedAt, held.updatedAt)}`)
        .go();
    } catch (error) {
      if (isConditionFailure(error)) throw new RetryableConflict("subscription changed meanwhile");
      throw error;
    }
  });
}

/**
 * The subscription item after a paid period: `active`, its subscription and period end,
 * while it is still this order's (an order that lost its item, its first payment having
 * failed at Stripe, is credited all the same; the item stays the new holder's).
 */
async function markActive(ctx: Pick<Context, "db" | "logger">, order: OrderItem, subscriptionId: string, periodEnd: Date, now: Date): Promise<void> {
  try {
    await ctx.db.entities.subscription
      .patch({ userId: order.userId, offerId: order.offerId })
      .set({ status: "active", subscriptionId, currentPeriodEnd: periodEnd.toISOString(), updatedAt: now.toISOString() })
      .where((attr, op) => op.eq(attr.orderId, order.orderId))
      .go();
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    ctx.logger.warn("a renewing order was credited while another order holds its subscription item", { orderId: order.orderId, subscriptionId });
  }
}

/** The period of a paid invoice as dates; undefined when it has none that ends after it starts. */
function periodOf(invoice: InvoiceState): { starts: Date; expires: Date } | undefined {
  if (!invoice.period || !(invoice.period.end > invoice.period.start)) return undefined;
  return { starts: new Date(invoice.period.start * 1000), expires: new Date(invoice.period.end * 1000) };
}

/**
 * Credits a paid invoice of a renewing order, once (see the module's rules).
 * @param event the webhook event that reported it, recorded in the same transaction
 * @returns applied, or ignored with why (not paid, not ours, unknown order, already
 *   credited, amount or currency not the order's, no period)
 * @throws PaymentProviderError when Stripe fails (the caller answers 5xx, Stripe retries);
 *   database errors
 */
export async function creditInvoice(ctx: PaymentContext, invoiceId: string, event?: { eventId: string; type: string }): Promise<InvoiceOutcome> {
  const invoice = await billingOf(ctx).retrieveInvoice(invoiceId).catch(ignoreUnknown);
  if (!invoice) return { outcome: "ignored", reason: `Stripe does not know invoice ${invoiceId}` };
  const userId = invoice.metadata.userId;
  const orderId = invoice.metadata.orderId;
  if (invoice.status !== "paid") return { outcome: "ignored", reason: `invoice ${invoiceId} is ${invoice.status}, not paid` };
  if (!userId || !orderId || !invoice.subscriptionId) return { outcome: "ignored", reason: "an invoice of no subscription of ours" };
  const period = periodOf(invoice);
  if (!period) return { outcome: "ignored", reason: `invoice ${invoiceId} has no service period`, orderId };
  const subscriptionId = invoice.subscriptionId;

  return retryOnConflict(async () => {
    const now = ctx.clock.now();
    const [{ data: order }, { data: credited }] = await Promise.all([
      ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true }),
      ctx.db.entities.renewalInvoice.get({ userId, orderId, invoiceId }).go({ consistent: true }),
    ]);
    if (!order || order.renewal !== "auto") return { outcome: "ignored", reason: "unknown renewing order", orderId };
    if (credited) return { outcome: "ignored", reason: `invoice ${invoiceId} already credited`, orderId };
    const first = isPayable(order.status);
    if (!first && !isRenewal(order)) return { outcome: "ignored", reason: `order is ${order.status}`, orderId };
    if (invoice.amountPaid !== order.total.amount || invoice.currency !== order.total.currency) {
      ctx.logger.error("a paid invoice does not match its renewing order; not credited", { invoiceId, orderId, amountPaid: invoice.amountPaid, currency: invoice.currency });
      return { outcome: "ignored", reason: `invoice ${invoiceId} paid ${invoice.amountPaid} ${invoice.currency}, the order is ${order.total.amount} ${order.total.currency}`, orderId };
    }

    const balances = await readBalances(ctx, userId);
    const { actions, paid, grants } = purchaseWrites({
      db: ctx.db,
      order: first ? { ...order, subscriptionId } : order,
      balances,
      period,
      now,
      confirmation: {
        source: "stripe",
        message: first
          ? `paid: first period ${period.starts.toISOString()} -> ${period.expires.toISOString()} (invoice ${invoiceId})`
          : `renewed: period ${period.starts.toISOString()} -> ${period.expires.toISOString()} (invoice ${invoiceId})`,
        payload: JSON.stringify({ ...(event ? { eventId: event.eventId } : { via: "sync" }), invoiceId, subscriptionId }),
        paymentIntentId: invoice.paymentIntentId,
        event: event && { eventId: event.eventId, type: event.type, userId, orderId, outcome: first ? "paid" : "renewed" },
      },
    });
    const all: Record<string, TransactionItem | undefined> = {
      ...actions,
      invoice: commit(
        ctx.db.entities.renewalInvoice.create({
          userId,
          orderId,
          invoiceId,
          subscriptionId,
          billingReason: invoice.billingReason,
          starts: period.starts.toISOString(),
          expires: period.expires.toISOString(),
          amount: invoice.amountPaid,
          currency: invoice.currency,
          grantIds: grants.map((grant) => grant.grantId),
          createdAt: now.toISOString(),
          ...(invoice.paymentIntentId ? { paymentIntentId: invoice.paymentIntentId } : {}),
        }),
      ),
    };
    const written = await transactWrite(ctx.db, all);
    if (written.committed) {
      await markActive(ctx, order, subscriptionId, period.expires, now);
      return { outcome: "applied", reason: first ? "first period paid" : "renewed", orderId: paid.orderId };
    }
    if (conditionFailed(written, "invoice")) return { outcome: "ignored", reason: `invoice ${invoiceId} already credited`, orderId };
    if (conditionFailed(written, "webhookEvent")) return { outcome: "ignored", reason: "duplicate event", orderId };
    throw new RetryableConflict("order, balance or subscription changed while crediting an invoice");
  });
}

/** A renewing subscription as the API shows it (`GET`/`DELETE /users/{userId}/subscriptions/{offerId}`). */
export interface RenewalView {
  offerId: string;
  /** The order that holds it. */
  orderId: string;
  subscriptionId: string | null;
  /** Stripe's status (`incomplete`, `active`, `past_due`, `canceled`, ...). */
  status: string;
  /** True while it will renew: live and not set to end with its period. */
  renews: boolean;
  /** End of the current paid period (ISO), once paid. */
  currentPeriodEnd: string | null;
  cancelAtPeriodEnd: boolean;
}

/** The API view of a subscription item. */
export function toRenewalView(item: SubscriptionItem): RenewalView {
  const cancelAtPeriodEnd = item.cancelAtPeriodEnd ?? false;
  return {
    offerId: item.offerId,
    orderId: item.orderId,
    subscriptionId: item.subscriptionId ?? null,
    status: item.status,
    renews: HOLDING_STATUSES.has(item.status) && !cancelAtPeriodEnd,
    currentPeriodEnd: item.currentPeriodEnd ?? null,
    cancelAtPeriodEnd,
  };
}

/**
 * The offerGroups of the user's renewing subscriptions that stand (Stripe says `active`
 * or `past_due`: core/rules/renewal.ts `STANDING_STATUSES`), from one Query of their items.
 */
export async function standingGroups(ctx: Pick<Context, "db">, userId: string): Promise<Set<string>> {
  const { data } = await ctx.db.entities.subscription.query.byUser({ userId }).go({ pages: "all" });
  return new Set(data.filter((item) => STANDING_STATUSES.has(item.status) && item.offerGroup).map((item) => item.offerGroup!));
}

/** The user's subscription item of `offerId` (read consistently), or undefined. */
export async function findRenewal(ctx: Pick<Context, "db">, userId: string, offerId: string): Promise<SubscriptionItem | undefined> {
  return (await ctx.db.entities.subscription.get({ userId, offerId }).go({ consistent: true })).data ?? undefined;
}

/**
 * Writes what Stripe says of the subscription onto its item (status, period end,
 * `cancelAtPeriodEnd`), guarded by the item as read; the subscription ending (`canceled`)
 * raises `subscription.canceled` in the same transaction, with the webhook event's record
 * when one reported it.
 * @returns the item as written, or undefined when the webhook event was already applied
 * @throws RetryableConflict when the item changed meanwhile (the caller re-reads)
 */
async function applyState(
  ctx: Pick<Context, "db" | "clock">,
  item: SubscriptionItem,
  state: SubscriptionState,
  event?: { eventId: string; type: string },
): Promise<SubscriptionItem | undefined> {
  const now = ctx.clock.now();
  const periodEnd = state.currentPeriodEnd !== undefined ? new Date(state.currentPeriodEnd * 1000).toISOString() : item.currentPeriodEnd;
  const next: SubscriptionItem = {
    ...item,
    status: state.status,
    subscriptionId: state.id,
    cancelAtPeriodEnd: state.cancelAtPeriodEnd,
    updatedAt: now.toISOString(),
    ...(periodEnd ? { currentPeriodEnd: periodEnd } : {}),
  };
  const canceled = state.status === "canceled" && item.status !== "canceled";
  const written = await transactWrite(ctx.db, {
    subscription: commit(ctx.db.entities.subscription.put(next).where((attr, op) => `${op.eq(attr.orderId, item.orderId)} AND ${op.eq(attr.updatedAt, item.updatedAt)}`)),
    event: canceled ? eventWrite(ctx.db, { type: "subscription.canceled", userId: item.userId, orderId: item.orderId, status: state.status, ...(periodEnd ? { expires: periodEnd } : {}) }, now).item : undefined,
    webhookEvent: event && webhookEventWrite(ctx.db, { eventId: event.eventId, type: event.type, userId: item.userId, orderId: item.orderId, outcome: state.status }, now),
  });
  if (written.committed) return next;
  if (conditionFailed(written, "webhookEvent")) return undefined;
  throw new RetryableConflict("subscription changed meanwhile");
}

/**
 * Cancels the user's renewing subscription to `offerId` at Stripe, at the end of its
 * current period (default: the period paid keeps its tokens and it renews no more) or at
 * once, and stores Stripe's answer.
 * @throws NotFoundError when the user has no live subscription to the offer;
 *   PaymentProviderError when Stripe fails
 */
export async function cancelRenewal(ctx: Context, userId: string, offerId: string, atPeriodEnd: boolean): Promise<RenewalView> {
  const held = await findRenewal(ctx, userId, offerId);
  if (!held || ENDED_STATUSES.has(held.status)) throw new NotFoundError("subscription", offerId);
  // Until its first invoice is paid, the subscription's id is on the order only.
  const subscriptionId = held.subscriptionId ?? (await ctx.db.entities.order.get({ userId, orderId: held.orderId }).go({ consistent: true })).data?.subscriptionId;
  if (!subscriptionId) throw new NotFoundError("subscription", offerId);
  const state = await billingOf(ctx).cancelSubscription(subscriptionId, atPeriodEnd);
  // Stripe's answer stored on the item as it is now (Stripe took time; a webhook may have written it).
  return retryOnConflict(async () => {
    const item = await findRenewal(ctx, userId, offerId);
    if (!item || item.orderId !== held.orderId) throw new NotFoundError("subscription", offerId);
    return toRenewalView((await applyState(ctx, item, state)) ?? item);
  });
}

/**
 * Applies `customer.subscription.updated` / `.deleted`: the subscription is read back from
 * Stripe and its state stored on its item (see {@link applyState}), when the item is still
 * its order's.
 * @throws PaymentProviderError when Stripe fails; database errors
 */
export async function syncRenewal(ctx: Context, subscriptionId: string, event: { eventId: string; type: string }): Promise<InvoiceOutcome> {
  const state = await billingOf(ctx).retrieveSubscription(subscriptionId).catch(ignoreUnknown);
  if (!state) return { outcome: "ignored", reason: `Stripe does not know subscription ${subscriptionId}` };
  const { userId, orderId } = state.metadata;
  if (!userId || !orderId) return { outcome: "ignored", reason: "a subscription of no order of ours" };
  return retryOnConflict(async () => {
    const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
    if (!order || order.renewal !== "auto") return { outcome: "ignored", reason: "unknown renewing order", orderId };
    const item = await findRenewal(ctx, userId, order.offerId);
    if (!item || item.orderId !== orderId) return { outcome: "ignored", reason: "the subscription item is another order's", orderId };
    const written = await applyState(ctx, item, state, event);
    return written ? { outcome: "applied", reason: `subscription ${state.status}`, orderId } : { outcome: "ignored", reason: "duplicate event", orderId };
  });
}

/**
 * Applies `invoice.payment_failed` of a renewing order: `subscription.payment_failed`
 * (the invoice's amount and currency), once per webhook event. Nothing is credited.
 * @throws PaymentProviderError when Stripe fails; database errors
 */
export async function invoiceFailed(ctx: Context, invoiceId: string, event: { eventId: string; type: string }): Promise<InvoiceOutcome> {
  const invoice = await billingOf(ctx).retrieveInvoice(invoiceId).catch(ignoreUnknown);
  if (!invoice) return { outcome: "ignored", reason: `Stripe does not know invoice ${invoiceId}` };
  const { userId, orderId } = invoice.metadata;
  if (!userId || !orderId || !invoice.subscriptionId) return { outcome: "ignored", reason: "an invoice of no subscription of ours" };
  const { data: order } = await ctx.db.entities.order.get({ userId, orderId }).go({ consistent: true });
  if (!order || order.renewal !== "auto") return { outcome: "ignored", reason: "unknown renewing order", orderId };
  const now = ctx.clock.now();
  const written = await transactWrite(ctx.db, {
    event: eventWrite(ctx.db, { type: "subscription.payment_failed", userId, orderId, offerGroup: order.offerGroup, amount: order.total.amount, currency: order.total.currency }, now).item,
    webhookEvent: webhookEventWrite(ctx.db, { eventId: event.eventId, type: event.type, userId, orderId, outcome: "payment_failed" }, now),
  });
  if (written.committed) return { outcome: "applied", reason: "renewal payment failed", orderId };
  return { outcome: "ignored", reason: "duplicate event", orderId };
}

/**
 * Every paid period of a renewing order (its `renewalInvoice` items, read consistently),
 * oldest first by period start (ties: by invoice id); empty for an order never credited
 * by an invoice (a one-time order, or a renewing one not paid yet).
 * @throws database errors
 */
export async function paidPeriods(ctx: Pick<Context, "db">, userId: string, orderId: string): Promise<RenewalInvoiceItem[]> {
  const { data } = await ctx.db.entities.renewalInvoice.query.byOrder({ userId, orderId }).go({ pages: "all", consistent: true });
  return [...data].sort((a, b) => a.starts.localeCompare(b.starts) || a.invoiceId.localeCompare(b.invoiceId));
}

/** The renewing order a PaymentIntent paid an invoice of, and that invoice's credited period. */
export interface RenewalPayment {
  userId: string;
  orderId: string;
  invoiceId: string;
  /** The period the invoice credited; undefined when it credits none (not paid, not the order's amount, ...). */
  period: RenewalInvoiceItem | undefined;
}

/**
 * The renewing order and period that `paymentIntentId` paid, for a refund or dispute made
 * in Stripe on a renewal invoice's charge: Stripe puts no metadata on an invoice's
 * PaymentIntent, so the PaymentIntent leads to its invoice (Stripe's InvoicePayments),
 * whose subscription's metadata names the order (`orderId`, `userId`), whose
 * `renewalInvoice` item is the period. An invoice paid but not credited yet (its
 * `invoice.paid` not applied: Stripe's events come in any order) is credited first, by
 * {@link creditInvoice} as `invoice.paid` would, so that what the refund or dispute takes
 * is there to take.
 * @returns undefined when the provider has no billing (manual), or the PaymentIntent paid
 *   no invoice of a subscription of ours
 * @throws PaymentProviderError when Stripe fails; database errors
 */
export async function renewalOfPayment(ctx: PaymentContext, paymentIntentId: string): Promise<RenewalPayment | undefined> {
  const billing = ctx.payments.billing;
  if (!billing) return undefined;
  const invoiceId = await billing.invoiceOfPayment(paymentIntentId);
  if (!invoiceId) return undefined;
  const invoice = await billing.retrieveInvoice(invoiceId).catch(ignoreUnknown);
  const { userId, orderId } = invoice?.metadata ?? {};
  if (!invoice?.subscriptionId || !userId || !orderId) return undefined;
  const read = async () => (await ctx.db.entities.renewalInvoice.get({ userId, orderId, invoiceId }).go({ consistent: true })).data ?? undefined;
  let period = await read();
  if (!period && (await creditInvoice(ctx, invoiceId)).outcome === "applied") period = await read();
  return { userId, orderId, invoiceId, period };
}

/**
 * The paid period of renewing order `order` that `paymentIntentId` (or, when given,
 * invoice `invoiceId`) paid, among {@link paidPeriods}; undefined when none.
 * @throws database errors
 */
export async function periodOfPayment(ctx: Pick<Context, "db">, order: Pick<OrderItem, "userId" | "orderId">, paymentIntentId: string | undefined, invoiceId?: string): Promise<RenewalInvoiceItem | undefined> {
  const periods = await paidPeriods(ctx, order.userId, order.orderId);
  return periods.find((period) => (invoiceId !== undefined && period.invoiceId === invoiceId) || (paymentIntentId !== undefined && period.paymentIntentId === paymentIntentId));
}
