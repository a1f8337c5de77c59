/**
 * Response schemas (zod) of the HTTP API: the JSON bodies the handlers answer with,
 * written from API.md and from what core returns (`toOffer`, `toOrder`, `toLedgerEntry`,
 * `toEvent`, `toGrant`, `getCredits`, ...). They validate nothing at run time: the OpenAPI
 * document (functions/openapi-document.ts) is generated from them, and
 * test/functions/openapi.test.ts checks real responses of the handlers against that
 * document, with every object closed, so a field the handlers add or drop without a line
 * here fails the test.
 *
 * Objects are `z.object` (open): the document promises the fields listed and lets the API
 * add more (API.md: "add to it freely"). Enumerations come from the modules that own them
 * (core/rules, core/db), so a new status or event type reaches the document by itself.
 */
import * as z from "zod";
import { CYCLES } from "../core/rules/cycles.js";
import { ORDER_STATUSES, PAYMENT_PROVIDERS } from "../core/rules/order-lifecycle.js";
import { EVENT_TYPES } from "../core/db/event.js";
import { GRANT_REASONS, GRANT_STATUSES } from "../core/db/grant.js";
import { LEDGER_REASONS } from "../core/db/ledger-entry.js";
import type { ErrorCode } from "../core/errors.js";
import { currency, generatedId, operatorId, userId } from "./schemas.js";

/**
 * HTTP status of each error code (API.md error table). The same table as functions/http.ts
 * `STATUS_OF` (a test checks they are equal), restated here so that the document and its
 * Lambda function load neither the runtime nor the AWS SDK; typed over `ErrorCode`, so a
 * new code must be added here to compile.
 */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  validation_error: 400,
  invalid_signature: 400,
  unauthorized: 401,
  insufficient_credits: 402,
  not_found: 404,
  conflict: 409,
  idempotency_conflict: 409,
  idempotency_in_progress: 409,
  already_subscribed: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  offer_locked: 422,
  quantity_limit_exceeded: 422,
  currency_not_offered: 422,
  start_in_past: 422,
  amount_out_of_range: 422,
  period_out_of_range: 422,
  internal_error: 500,
  payment_provider_error: 502,
  service_unavailable: 503,
};

/** Every error code, in the order of {@link ERROR_STATUS}. */
export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** An ISO 8601 instant in UTC (`2026-11-23T10:00:00.000Z`), as every date the API writes. */
export const instantUtc = z.iso.datetime().describe("ISO 8601 instant, UTC (`2026-11-23T10:00:00.000Z`).");

/** A safe integer (token counts, amounts in minor units). */
const int = () => z.number().int();

/** `{ amount, currency }`: integer minor units, lowercase ISO 4217 (API.md "Money"). */
export const money = z
  .object({ amount: int().describe("Integer, in the currency's minor unit."), currency })
  .describe("An amount of money: integer minor units (Stripe's convention) and a lowercase ISO 4217 currency.");

/** A number of tokens taken from (or given back to) one grant. */
const grantTokens = z.object({ grantId: generatedId, tokens: int() });

/** The JSON error body (API.md "Errors"). */
export const errorResponse = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES).describe("Stable error code (API.md error table)."),
      message: z.string().describe("Human-readable explanation; not stable."),
      details: z
        .record(z.string(), z.unknown())
        .optional()
        .describe("Structured details: the bad fields of a `validation_error` (dotted paths), `balance` of `insufficient_credits`, ..."),
    }),
  })
  .describe("An error: `{ error: { code, message, details? } }`.");

/** An offer (`PUT`/`GET /offers/{offerId}`). */
export const offer = z
  .object({
    offerId: operatorId,
    name: z.string(),
    kind: z.enum(["tokens", "subscription", "expertise"]),
    offerGroup: operatorId,
    cycle: z.enum(CYCLES),
    customCycleSeconds: int().nullable().describe("Length of a `custom` cycle, in seconds; null otherwise."),
    appendDate: z.boolean().describe("A new purchase starts when the user's current period in the group ends."),
    tokenCount: int().describe("Tokens per unit bought."),
    prices: z.array(money),
    quantityLimit: int().nullable().describe("Largest quantity per order, or null."),
    tags: z.array(z.string()),
    unlockedBy: z.array(operatorId).describe("offerGroups; non-empty: visible and buyable only to users holding an active paid grant in one of them."),
    overridingKey: z.string().nullable().describe("Offers with the same key replace each other; the highest weight wins."),
    weight: int(),
    popular: int(),
    combinedItems: z.array(z.object({ offerId: operatorId, quantity: int() })).describe("Bundle items."),
    active: z.boolean(),
    createdAt: instantUtc,
    updatedAt: instantUtc,
  })
  .describe("An offer of the catalog (API.md \"Offers\").");

/** `GET /offers`. */
export const offerList = z.object({ offers: z.array(offer) });

/** `PUT`/`GET /offer-groups/{offerGroup}`. */
export const offerGroupSettings = z
  .object({
    offerGroup: operatorId,
    lowBalanceThreshold: int().nullable().describe("A balance at or below this is low; null: no low-balance warning."),
    expiryWarningDays: int().describe("Days before a grant's expiry when it is warned about."),
  })
  .describe("An offerGroup's warning settings in effect (defaults when never set).");

/** What the buyer's app needs to collect an order's payment (API.md `Payment`). */
export const payment = z
  .discriminatedUnion("provider", [
    z.object({ provider: z.literal("stripe"), paymentIntentId: z.string(), clientSecret: z.string() }),
    z.object({ provider: z.literal("stripe_checkout"), checkoutSessionId: z.string(), url: z.string() }),
    z.object({ provider: z.literal("manual") }),
  ])
  .describe("How to pay: a Stripe PaymentIntent's client secret, a Stripe Checkout URL, or nothing to collect online (manual).");

/** An order (API.md `Order`; core/orders.ts `toOrder`). */
export const order = z
  .object({
    orderId: generatedId,
    userId,
    offerId: operatorId,
    offerName: z.string(),
    offerGroup: operatorId,
    kind: z.string().describe("The offer's kind when ordered."),
    status: z.enum(ORDER_STATUSES),
    quantity: int(),
    total: money,
    tokenCount: int().describe("Tokens per unit, copied from the offer."),
    tokens: int().describe("tokenCount x quantity, for the order's own offerGroup."),
    cycle: z.enum(CYCLES),
    customCycleSeconds: int().nullable(),
    appendDate: z.boolean(),
    starts: instantUtc.nullable().describe("The requested start until paid, then the start of its grant."),
    expires: instantUtc.nullable().describe("Set when paid; null for a never-expiring (`once`) offer."),
    combinedItems: z
      .array(
        z.object({
          offerId: operatorId,
          offerGroup: operatorId,
          quantity: int(),
          tokenCount: int(),
          tokens: int(),
          appendDate: z.boolean(),
          value: int().optional().describe("Worth in minor units of the order's currency, when the item has a price in it."),
          grantId: generatedId.optional(),
          starts: instantUtc.optional(),
          expires: instantUtc.optional(),
        }),
      )
      .describe("Bundle items, with their offers' terms copied at creation and their grants once paid."),
    history: z.array(z.object({ date: instantUtc, status: z.string(), message: z.string(), payload: z.string().optional() })),
    provider: z.enum(PAYMENT_PROVIDERS),
    paymentIntentId: z.string().nullable(),
    checkoutSessionId: z.string().nullable(),
    grantIds: z.array(generatedId),
    paidPaymentIntentId: z.string().nullable(),
    refunds: z.array(
      z.object({
        number: int(),
        refundId: z.string().nullable().describe("The Stripe Refund; null while pending and for the manual provider."),
        amount: int(),
        tokens: int(),
        tokensShort: int().describe("Tokens the refund should have taken back but that were already spent."),
        source: z.enum(["api", "stripe"]),
        status: z.enum(["pending", "succeeded", "failed"]),
        grants: z.array(grantTokens),
        reason: z.string().optional(),
        createdAt: instantUtc,
      }),
    ),
    disputes: z.array(
      z.object({ disputeId: z.string(), status: z.string(), frozen: z.array(grantTokens), createdAt: instantUtc, closedAt: instantUtc.optional() }),
    ),
    duplicatePayments: z.array(z.object({ paymentIntentId: z.string(), refundId: z.string(), amount: int(), createdAt: instantUtc })),
    createdAt: instantUtc,
    updatedAt: instantUtc,
  })
  .describe("An order (API.md \"Orders and payment\").");

/** `POST /users/{userId}/orders` (201) and `.../pay` (200). */
export const orderWithPayment = z.object({ order, payment: payment.nullable().describe("null for a free order, paid at once.") });

/** `GET /users/{userId}/orders`, newest first. */
export const orderPage = z.object({ orders: z.array(order), cursor: z.string().nullable().describe("Next page; null on the last.") });

/** A ledger entry (API.md `LedgerEntry`; core/ledger.ts). */
export const ledgerEntry = z
  .object({
    entryId: generatedId,
    userId,
    offerGroup: operatorId,
    tokens: int().describe("Signed: + purchase/adjust, - consume/expire/refund."),
    reason: z.enum(LEDGER_REASONS),
    orderId: generatedId.optional(),
    grantId: generatedId.optional(),
    draws: z.array(grantTokens).optional().describe("The grants a consumption drew from."),
    debt: int().optional().describe("Overdraft a consumption added to the group's debt."),
    debtRepaid: int().optional().describe("Debt a purchase repaid."),
    createdAt: instantUtc,
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .describe("One signed token movement.");

/** `POST /users/{userId}/consumptions`. */
export const consumptionResult = z.object({
  entry: ledgerEntry,
  balance: int().describe("The group's balance after the consumption (negative with debt)."),
});

/** `GET /users/{userId}/ledger`, oldest first. */
export const ledgerPage = z.object({ entries: z.array(ledgerEntry), cursor: z.string().nullable().describe("Next page; null on the last.") });

/** `GET /users/{userId}/credits` (core/credits.ts `Credits`). */
export const credits = z
  .object({
    userId,
    groups: z.array(
      z.object({
        offerGroup: operatorId,
        balance: int().describe("Spendable now: sum of the grants' remaining tokens minus debt."),
        debt: int(),
        starts: instantUtc.nullable().describe("Earliest start of its active grants."),
        expires: instantUtc.nullable().describe("Latest expiry of its active grants; null if none expires."),
        grants: z.array(
          z.object({
            grantId: generatedId,
            orderId: generatedId.nullable(),
            offerId: operatorId.nullable(),
            tokens: int(),
            remaining: int(),
            starts: instantUtc,
            expires: instantUtc.nullable(),
          }),
        ),
      }),
    ),
    subscriptions: z.array(
      z.object({
        orderId: generatedId,
        offerId: operatorId,
        offerGroup: operatorId,
        status: z.literal("paid"),
        starts: instantUtc,
        expires: instantUtc.nullable(),
      }),
    ),
  })
  .describe("What a user holds now, per offerGroup, and the running paid periods.");

/** `GET /users/{userId}/subscriptions/{offerId}`. */
export const subscriptionCheck = z.object({
  subscribed: z.boolean(),
  order: order.nullable().describe("The current period's paid order."),
});

/** A grant (API.md `Grant`; core/grants.ts `toGrant`). */
export const grant = z
  .object({
    grantId: generatedId,
    userId,
    offerGroup: operatorId,
    reason: z.enum(GRANT_REASONS),
    orderId: generatedId.optional(),
    offerId: operatorId.optional(),
    tokens: int(),
    starts: instantUtc,
    expires: instantUtc.nullable(),
    status: z.enum(GRANT_STATUSES),
    note: z.string().optional(),
    createdAt: instantUtc,
  })
  .describe("Tokens given to a user in one offerGroup, for a period.");

/** `POST /users/{userId}/expiry-check` (core/expiry.ts `checkUserExpiry`). */
export const expiryCheck = z.object({
  expired: z.array(
    z.object({
      grantId: generatedId,
      userId,
      offerGroup: operatorId,
      orderId: generatedId.optional(),
      offerId: operatorId.optional(),
      tokens: int(),
      expiredTokens: int().describe("Tokens removed: the grant's remaining at its expiry."),
      starts: instantUtc,
      expires: instantUtc,
      status: z.literal("expired"),
    }),
  ),
  warnings: z.array(
    z.object({
      offerGroup: operatorId,
      kind: z.enum(["expiring", "low_balance"]),
      balance: int(),
      expires: instantUtc.nullable().describe("The expiring grant's instant, or the group's next expiry."),
    }),
  ),
});

/** An event (API.md `Event`; core/events.ts `ServiceEvent`). */
export const serviceEvent = z
  .object({
    eventId: generatedId,
    type: z.enum(EVENT_TYPES),
    userId,
    offerGroup: operatorId.optional(),
    orderId: generatedId.optional(),
    grantId: generatedId.optional(),
    balance: int().optional(),
    expires: instantUtc.optional(),
    amount: int().optional().describe("Money moved (refunds), minor units of `currency`."),
    currency: currency.optional(),
    tokens: int().optional(),
    status: z.string().optional().describe("A dispute's status when it closed."),
    duplicate: z.boolean().optional().describe("True for the automatic refund of a second payment."),
    createdAt: instantUtc,
  })
  .describe("Something the service tells the app about a user; also put on the EventBridge bus (de-duplicate by eventId).");

/** `GET /users/{userId}/events`, oldest first. */
export const eventPage = z.object({ events: z.array(serviceEvent), cursor: z.string().nullable().describe("Next page; null on the last.") });

/** `POST /webhooks/stripe` (200). */
export const webhookReceived = z.object({
  received: z.literal(true),
  outcome: z.enum(["applied", "ignored"]),
  reason: z.string().describe("Why, in a few words."),
});
