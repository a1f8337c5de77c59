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
 * Written with `zod/mini`, as the request schemas (functions/schemas.ts) are:
 * `.check(z.describe(text))` is classic zod's `.describe(text)`, `z.optional(s)` its
 * `s.optional()`.
 */
import * as z from "zod/mini";
import { CYCLES } from "../core/rules/cycles.js";
import { RENEWALS } from "../core/rules/renewal.js";
import { ORDER_STATUSES, PAYMENT_PROVIDERS } from "../core/rules/order-lifecycle.js";
import { EVENT_TYPES } from "../core/db/event.js";
import { GRANT_REASONS, GRANT_STATUSES } from "../core/db/grant.js";
import { LEDGER_REASONS } from "../core/db/ledger-entry.js";
import { RESERVATION_STATUSES } from "../core/rules/holds.js";
import type { ErrorCode } from "../core/errors.js";
import { STATUS_OF } from "./lambda-edge.js";
import { currency, generatedId, operatorId, userId } from "./schemas.js";

/** Every error code, in the order of functions/lambda-edge.ts's `STATUS_OF`. */
export const ERROR_CODES = Object.keys(STATUS_OF) as [ErrorCode, ...ErrorCode[]];

/** An ISO 8601 instant in UTC (`2026-11-23T10:00:00.000Z`), as every date the API writes. */
export const instantUtc = z.iso.datetime().check(z.describe("ISO 8601 instant, UTC (`2026-11-23T10:00:00.000Z`)."));

/** A safe integer (token counts, amounts in minor units). */
const int = () => z.number().check(z.int());

/** `{ amount, currency }`: integer minor units, lowercase ISO 4217 (API.md "Money"). */
export const money = z
  .object({ amount: int().check(z.describe("Integer, in the currency's minor unit.")), currency })
  .check(z.describe("An amount of money: integer minor units (Stripe's convention) and a lowercase ISO 4217 currency."));

/** A number of tokens taken from (or given back to) one grant. */
const grantTokens = z.object({ grantId: generatedId, tokens: int() });

/** The JSON error body (API.md "Errors"). */
export const errorResponse = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES).check(z.describe("Stable error code (API.md error table).")),
      message: z.string().check(z.describe("Human-readable explanation; not stable.")),
      details: z
        .optional(z.record(z.string(), z.unknown()))
        .check(z.describe("Structured details: the bad fields of a `validation_error` (dotted paths), `balance` of `insufficient_credits`, ...")),
    }),
  })
  .check(z.describe("An error: `{ error: { code, message, details? } }`."));

/** An offer (`PUT`/`GET /offers/{offerId}`). */
export const offer = z
  .object({
    offerId: operatorId,
    name: z.string(),
    kind: z.enum(["tokens", "subscription", "expertise"]),
    offerGroup: operatorId,
    cycle: z.enum(CYCLES),
    customCycleSeconds: z.nullable(int()).check(z.describe("Length of a `custom` cycle, in seconds; null otherwise.")),
    appendDate: z.boolean().check(z.describe("A new purchase starts when the user's current period in the group ends.")),
    renewal: z.enum(RENEWALS).check(z.describe("`auto`: a Stripe Subscription renews it every cycle; `none`: bought once per period.")),
    tokenCount: int().check(z.describe("Tokens per unit bought.")),
    prices: z.array(money),
    quantityLimit: z.nullable(int()).check(z.describe("Largest quantity per order, or null.")),
    tags: z.array(z.string()),
    unlockedBy: z.array(operatorId).check(z.describe("offerGroups; non-empty: visible and buyable only to users holding an active paid grant in one of them.")),
    overridingKey: z.nullable(z.string()).check(z.describe("Offers with the same key replace each other; the highest weight wins.")),
    weight: int(),
    popular: int(),
    combinedItems: z.array(z.object({ offerId: operatorId, quantity: int() })).check(z.describe("Bundle items.")),
    active: z.boolean(),
    createdAt: instantUtc,
    updatedAt: instantUtc,
  })
  .check(z.describe("An offer of the catalog (API.md \"Offers\")."));

/** `GET /offers`. */
export const offerList = z.object({ offers: z.array(offer) });

/** `PUT`/`GET /offer-groups/{offerGroup}`. */
export const offerGroupSettings = z
  .object({
    offerGroup: operatorId,
    lowBalanceThreshold: z.nullable(int()).check(z.describe("A balance at or below this is low; null: no low-balance warning.")),
    expiryWarningDays: int().check(z.describe("Days before a grant's expiry when it is warned about.")),
  })
  .check(z.describe("An offerGroup's warning settings in effect (defaults when never set)."));

/** What the buyer's app needs to collect an order's payment (API.md `Payment`). */
export const payment = z
  .discriminatedUnion("provider", [
    z.object({
      provider: z.literal("stripe"),
      paymentIntentId: z.string(),
      clientSecret: z.string(),
      subscriptionId: z.optional(z.string()).check(z.describe("A renewing order's Stripe Subscription, whose first invoice the client secret pays.")),
    }),
    z.object({ provider: z.literal("stripe_checkout"), checkoutSessionId: z.string(), url: z.string() }),
    z.object({ provider: z.literal("manual") }),
  ])
  .check(z.describe("How to pay: a Stripe PaymentIntent's client secret, a Stripe Checkout URL, or nothing to collect online (manual)."));

/** An order (API.md `Order`; core/orders.ts `toOrder`). */
export const order = z
  .object({
    orderId: generatedId,
    userId,
    offerId: operatorId,
    offerName: z.string(),
    offerGroup: operatorId,
    kind: z.string().check(z.describe("The offer's kind when ordered.")),
    status: z.enum(ORDER_STATUSES),
    quantity: int(),
    total: money,
    tokenCount: int().check(z.describe("Tokens per unit, copied from the offer.")),
    tokens: int().check(z.describe("tokenCount x quantity, for the order's own offerGroup.")),
    cycle: z.enum(CYCLES),
    customCycleSeconds: z.nullable(int()),
    appendDate: z.boolean(),
    starts: z.nullable(instantUtc).check(z.describe("The requested start until paid, then the start of its grant.")),
    expires: z.nullable(instantUtc).check(z.describe("Set when paid; null for a never-expiring (`once`) offer.")),
    combinedItems: z
      .array(
        z.object({
          offerId: operatorId,
          offerGroup: operatorId,
          quantity: int(),
          tokenCount: int(),
          tokens: int(),
          appendDate: z.boolean(),
          value: z.optional(int()).check(z.describe("Worth in minor units of the order's currency, when the item has a price in it.")),
          grantId: z.optional(generatedId),
          starts: z.optional(instantUtc),
          expires: z.optional(instantUtc),
        }),
      )
      .check(z.describe("Bundle items, with their offers' terms copied at creation and their grants once paid.")),
    history: z.array(z.object({ date: instantUtc, status: z.string(), message: z.string(), payload: z.optional(z.string()) })),
    provider: z.enum(PAYMENT_PROVIDERS),
    paymentIntentId: z.nullable(z.string()),
    paymentIntentIds: z.array(z.string()).check(z.describe("Every PaymentIntent made for the order, oldest first: its payment attempts.")),
    attempt: int().check(z.describe("The current payment attempt: 1, then +1 per pay retry.")),
    checkoutSessionId: z.nullable(z.string()),
    renewal: z.enum(["none", "auto"]).check(z.describe("`auto`: a renewing order, paid period by period through its Stripe Subscription.")),
    subscriptionId: z.nullable(z.string()).check(z.describe("A renewing order's Stripe Subscription, once made.")),
    autoTopUp: z.boolean().check(z.describe("True for an automatic top-up's order, paid off-session with the saved payment method.")),
    grantIds: z.array(generatedId),
    paidPaymentIntentId: z.nullable(z.string()),
    receiptUrl: z.nullable(z.string()).check(z.describe("Stripe's receipt page of the payment that paid it (the charge's receipt_url); null until paid through Stripe.")),
    refunds: z.array(
      z.object({
        number: int(),
        refundId: z.nullable(z.string()).check(z.describe("The Stripe Refund; null while pending and for the manual provider.")),
        amount: int(),
        tokens: int(),
        tokensShort: int().check(z.describe("Tokens the refund should have taken back but that were already spent.")),
        source: z.enum(["api", "stripe"]),
        status: z.enum(["pending", "succeeded", "failed"]),
        grants: z.array(grantTokens),
        reason: z.optional(z.string()),
        invoiceId: z.optional(z.string()).check(z.describe("A renewing order's refund is of one paid period: the Stripe invoice that paid it.")),
        createdAt: instantUtc,
      }),
    ),
    disputes: z.array(
      z.object({
        disputeId: z.string(),
        status: z.string(),
        frozen: z.array(grantTokens),
        invoiceId: z.optional(z.string()).check(z.describe("A renewing order's dispute is of one paid period's charge: the Stripe invoice that paid it.")),
        createdAt: instantUtc,
        closedAt: z.optional(instantUtc),
      }),
    ),
    duplicatePayments: z.array(z.object({ paymentIntentId: z.string(), refundId: z.string(), amount: int(), createdAt: instantUtc })),
    createdAt: instantUtc,
    updatedAt: instantUtc,
  })
  .check(z.describe("An order (API.md \"Orders and payment\")."));

/** `POST /users/{userId}/orders` (201) and `.../pay` (200). */
export const orderWithPayment = z.object({ order, payment: z.nullable(payment).check(z.describe("null for a free order, paid at once.")) });

/** `GET /users/{userId}/orders`, newest first. */
export const orderPage = z.object({ orders: z.array(order), cursor: z.nullable(z.string()).check(z.describe("Next page; null on the last.")) });

/** A ledger entry (API.md `LedgerEntry`; core/ledger.ts). */
export const ledgerEntry = z
  .object({
    entryId: generatedId,
    userId,
    offerGroup: operatorId,
    tokens: int().check(z.describe("Signed: + purchase/adjust/release/reverse, - consume/expire/refund/hold.")),
    reason: z.enum(LEDGER_REASONS),
    orderId: z.optional(generatedId),
    grantId: z.optional(generatedId),
    draws: z.optional(z.array(grantTokens)).check(z.describe("The grants a consumption drew from.")),
    debt: z.optional(int()).check(z.describe("Overdraft a consumption added to the group's debt.")),
    debtRepaid: z.optional(int()).check(z.describe("Debt a purchase, or tokens given back (release, reverse), repaid.")),
    reservationId: z.optional(generatedId).check(z.describe("The reservation of a `hold`, `release`, a commit's `consume`, or an `expire` of tokens it gave back.")),
    reversed: z.optional(int()).check(z.describe("A `consume` entry: tokens of it reversed so far (never more than it consumed).")),
    reversesEntryId: z.optional(generatedId).check(z.describe("A `reverse` entry (and the `expire` of tokens it gave back to a grant past its expiry): the consumption it reverses.")),
    createdAt: instantUtc,
    metadata: z.optional(z.record(z.string(), z.unknown())),
  })
  .check(z.describe("One signed token movement."));

/** `POST /users/{userId}/consumptions`. */
export const consumptionResult = z.object({
  entry: ledgerEntry,
  balance: int().check(z.describe("The group's balance after the consumption (negative with debt).")),
});

/** A reservation (API.md `Reservation`; core/reservations.ts). */
export const reservation = z
  .object({
    reservationId: generatedId,
    userId,
    offerGroup: operatorId,
    tokens: int().check(z.describe("Tokens held.")),
    status: z.enum(RESERVATION_STATUSES),
    expires: instantUtc,
    draws: z.array(grantTokens).check(z.describe("The grants the hold drew from, in drain order.")),
    createdAt: instantUtc,
    metadata: z.optional(z.record(z.string(), z.unknown())),
    committedTokens: z.optional(int()).check(z.describe("Committed: the tokens used.")),
    endedAt: z.optional(instantUtc).check(z.describe("When it was committed, released or expired.")),
  })
  .check(z.describe("Tokens held for work whose cost is known at its end: held, then committed, released or expired."));

/** `POST /users/{userId}/reservations/{reservationId}/commit`. */
export const commitResult = z.object({
  reservation,
  entry: ledgerEntry.check(z.describe("The `consume` entry of the tokens used, with `reservationId`.")),
  balance: int().check(z.describe("The group's balance after the commit (negative with debt).")),
});

/** `GET /users/{userId}/reservations`, oldest first. */
export const reservationPage = z.object({
  reservations: z.array(reservation),
  cursor: z.nullable(z.string()).check(z.describe("Next page; null on the last.")),
});

/** `POST /users/{userId}/consumptions/{entryId}/reverse`. */
export const reversalResult = z.object({
  entry: ledgerEntry.check(z.describe("The `reverse` entry (+tokens given back), with `reversesEntryId`.")),
  balance: int().check(z.describe("The group's balance after the reversal (negative with debt).")),
});

/** `GET /users/{userId}/ledger`, oldest first. */
export const ledgerPage = z.object({ entries: z.array(ledgerEntry), cursor: z.nullable(z.string()).check(z.describe("Next page; null on the last.")) });

/** `GET /users/{userId}/credits` (core/credits.ts `Credits`). */
export const credits = z
  .object({
    userId,
    groups: z.array(
      z.object({
        offerGroup: operatorId,
        balance: int().check(z.describe("Spendable now: sum of the grants' remaining tokens minus debt.")),
        held: int().check(z.describe("Tokens in the group's live reservations.")),
        debt: int(),
        starts: z.nullable(instantUtc).check(z.describe("Earliest start of its active grants.")),
        expires: z.nullable(instantUtc).check(z.describe("Latest expiry of its active grants; null if none expires.")),
        grants: z.array(
          z.object({
            grantId: generatedId,
            orderId: z.nullable(generatedId),
            offerId: z.nullable(operatorId),
            tokens: int(),
            remaining: int(),
            starts: instantUtc,
            expires: z.nullable(instantUtc),
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
        expires: z.nullable(instantUtc),
      }),
    ),
  })
  .check(z.describe("What a user holds now, per offerGroup, and the running paid periods."));

/** How the buyer saves a card for off-session payments (`POST /users/{userId}/payment-methods/setup`). */
export const paymentMethodSetup = z
  .discriminatedUnion("provider", [
    z.object({ provider: z.literal("stripe"), setupIntentId: z.string(), clientSecret: z.string() }),
    z.object({ provider: z.literal("stripe_checkout"), checkoutSessionId: z.string(), url: z.string() }),
  ])
  .check(z.describe("A SetupIntent's client secret (usage off_session) to confirm with Stripe.js, or a setup-mode Checkout URL."));

/** A group's automatic top-up setting (`PUT/GET/DELETE /users/{userId}/auto-top-up/{offerGroup}`; core/auto-top-up.ts `AutoTopUp`). */
export const autoTopUp = z
  .object({
    userId: z.string(),
    offerGroup: operatorId,
    offerId: operatorId,
    currency: z.string(),
    threshold: int().check(z.describe("Tokens: a consumption, hold or commit taking the balance from above it to at or below it requests a top-up.")),
    maxPerMonth: int().check(z.describe("Top-ups started per calendar month (UTC), at most.")),
    enabled: z.boolean(),
    usedThisMonth: int().check(z.describe("Top-ups started in the current calendar month (UTC).")),
    createdAt: instantUtc,
    updatedAt: instantUtc,
  })
  .check(z.describe("A group's automatic top-up: the offer ordered and paid off-session with the saved card when the balance falls to the threshold."));

/** A renewing subscription (`DELETE /users/{userId}/subscriptions/{offerId}`; core/subscriptions.ts `RenewalView`). */
export const renewal = z
  .object({
    offerId: operatorId,
    orderId: generatedId,
    subscriptionId: z.nullable(z.string()),
    status: z.string().check(z.describe("Stripe's status: `incomplete`, `active`, `past_due`, `unpaid`, `canceled`, ...")),
    renews: z.boolean().check(z.describe("It will renew: live and not set to end with its period.")),
    currentPeriodEnd: z.nullable(instantUtc),
    cancelAtPeriodEnd: z.boolean(),
  })
  .check(z.describe("A user's renewing Stripe subscription to an offer."));

/** `GET /users/{userId}/subscriptions/{offerId}`. */
export const subscriptionCheck = z.object({
  subscribed: z.boolean().check(z.describe("A paid period is running, or a renewing subscription is active or past due (its renewal not yet paid).")),
  order: z.nullable(order).check(z.describe("The current period's paid order.")),
  renews: z.optional(z.boolean()).check(z.describe("Renewing offers: it will renew.")),
  currentPeriodEnd: z.optional(z.nullable(instantUtc)).check(z.describe("Renewing offers: end of the current paid period.")),
  cancelAtPeriodEnd: z.optional(z.boolean()).check(z.describe("Renewing offers: it ends with the current period.")),
});

/** A grant (API.md `Grant`; core/grants.ts `toGrant`). */
export const grant = z
  .object({
    grantId: generatedId,
    userId,
    offerGroup: operatorId,
    reason: z.enum(GRANT_REASONS),
    orderId: z.optional(generatedId),
    offerId: z.optional(operatorId),
    tokens: int(),
    starts: instantUtc,
    expires: z.nullable(instantUtc),
    status: z.enum(GRANT_STATUSES),
    note: z.optional(z.string()),
    createdAt: instantUtc,
  })
  .check(z.describe("Tokens given to a user in one offerGroup, for a period."));

/** `POST /users/{userId}/expiry-check` (core/expiry.ts `checkUserExpiry`). */
export const expiryCheck = z.object({
  expired: z.array(
    z.object({
      grantId: generatedId,
      userId,
      offerGroup: operatorId,
      orderId: z.optional(generatedId),
      offerId: z.optional(operatorId),
      tokens: int(),
      expiredTokens: int().check(z.describe("Tokens removed: the grant's remaining at its expiry.")),
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
      expires: z.nullable(instantUtc).check(z.describe("The expiring grant's instant, or the group's next expiry.")),
    }),
  ),
});

/** An event (API.md `Event`; core/events.ts `ServiceEvent`). */
export const serviceEvent = z
  .object({
    eventId: generatedId,
    type: z.enum(EVENT_TYPES),
    userId,
    offerGroup: z.optional(operatorId),
    orderId: z.optional(generatedId),
    grantId: z.optional(generatedId),
    balance: z.optional(int()),
    expires: z.optional(instantUtc),
    amount: z.optional(int()).check(z.describe("Money moved (refunds), minor units of `currency`.")),
    currency: z.optional(currency),
    tokens: z.optional(int()),
    status: z.optional(z.string()).check(z.describe("A dispute's status when it closed.")),
    duplicate: z.optional(z.boolean()).check(z.describe("True for the automatic refund of a second payment.")),
    code: z.optional(z.string()).check(z.describe("Why a top-up failed (top_up.failed): Stripe's decline code, or max_per_month, no_payment_method, ...")),
    createdAt: instantUtc,
  })
  .check(z.describe("Something the service tells the app about a user; also put on the EventBridge bus (de-duplicate by eventId)."));

/** `GET /users/{userId}/events`, oldest first. */
export const eventPage = z.object({ events: z.array(serviceEvent), cursor: z.nullable(z.string()).check(z.describe("Next page; null on the last.")) });

/** `POST /webhooks/stripe` (200). */
export const webhookReceived = z.object({
  received: z.literal(true),
  outcome: z.enum(["applied", "ignored"]),
  reason: z.string().check(z.describe("Why, in a few words.")),
});

/** `POST /users/{userId}/portal-sessions`: the link the app gives its user (core/portal-sessions.ts). */
export const portalSessionLink = z
  .object({
    url: z.string().check(z.describe("`<API>/portal#token=<portal token>`: the token rides in the fragment, which browsers never send to a server.")),
    expires: instantUtc,
  })
  .check(z.describe("A customer portal session for one user."));

/** `GET /portal/api/session`: whom the portal token acts for (core/portal-sessions.ts `PortalSession`). */
export const portalSession = z
  .object({
    userId: z.string(),
    expires: instantUtc,
    returnUrl: z.optional(z.string()),
    tags: z.optional(z.array(z.string())),
  })
  .check(z.describe("A verified portal session."));
