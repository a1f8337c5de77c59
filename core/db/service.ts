/**
 * The ElectroDB Service: every entity of the single table, bound to one DynamoDB
 * client and one table name. Nothing outside `core/db/` builds keys.
 *
 * The pure rules (core/rules/) own the plain types they plan on; the checks at the end of
 * this file fail to compile when an entity's stored shape and its rule's type drift apart.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { Entity, Service, type EntityItem } from "electrodb";
import type { ExhaustedGrants, GrantState, OverflowSummary } from "../rules/balance-state.js";
import type { PaidPeriod } from "../rules/periods.js";
import type { OrderableOffer } from "../rules/order-plan.js";
import type { OrderRecord } from "../rules/order-lifecycle.js";
import type { VisibilityOffer } from "../rules/visibility.js";
import type { OfferGroupSettings } from "../rules/warnings.js";
import { balanceSchema } from "./balance.js";
import { balanceOverflowSchema } from "./balance-overflow.js";
import { eventSchema } from "./event.js";
import { grantSchema } from "./grant.js";
import { idempotencyRecordSchema } from "./idempotency-record.js";
import { jobStateSchema } from "./job-state.js";
import { ledgerEntrySchema } from "./ledger-entry.js";
import { offerSchema } from "./offer.js";
import { offerGroupSettingsSchema } from "./offer-group-settings.js";
import { orderSchema } from "./order.js";
import { reservationSchema } from "./reservation.js";
import { billingCustomerSchema } from "./billing-customer.js";
import { providerPriceSchema } from "./provider-price.js";
import { renewalInvoiceSchema } from "./renewal-invoice.js";
import { subscriptionSchema } from "./subscription.js";
import { webhookEventSchema } from "./webhook-event.js";
import { autoTopUpSchema, topUpSchema } from "./auto-top-up.js";

function entities() {
  return {
    offer: new Entity(offerSchema),
    order: new Entity(orderSchema),
    grant: new Entity(grantSchema),
    balance: new Entity(balanceSchema),
    balanceOverflow: new Entity(balanceOverflowSchema),
    ledgerEntry: new Entity(ledgerEntrySchema),
    idempotencyRecord: new Entity(idempotencyRecordSchema),
    webhookEvent: new Entity(webhookEventSchema),
    jobState: new Entity(jobStateSchema),
    event: new Entity(eventSchema),
    offerGroupSettings: new Entity(offerGroupSettingsSchema),
    reservation: new Entity(reservationSchema),
    billingCustomer: new Entity(billingCustomerSchema),
    providerPrice: new Entity(providerPriceSchema),
    subscription: new Entity(subscriptionSchema),
    renewalInvoice: new Entity(renewalInvoiceSchema),
    autoTopUp: new Entity(autoTopUpSchema),
    topUp: new Entity(topUpSchema),
  };
}

/**
 * Binds the entities to `client` and `table`.
 * @returns `{ service, entities, client, table }`: `service.transaction.write` spans entities.
 */
export function createDb(client: DynamoDBClient, table: string) {
  const service = new Service(entities(), { client, table });
  return { service, entities: service.entities, client, table };
}

/** The database handle core functions receive. */
export type Db = ReturnType<typeof createDb>;
type Entities = Db["entities"];

/** An offer as stored. */
export type OfferItem = EntityItem<Entities["offer"]>;
/** An order as stored. */
export type OrderItem = EntityItem<Entities["order"]>;
/** A grant as stored. */
export type GrantItem = EntityItem<Entities["grant"]>;
/** A balance item as stored. */
export type BalanceItem = EntityItem<Entities["balance"]>;
/** A balance overflow item as stored. */
export type BalanceOverflowItem = EntityItem<Entities["balanceOverflow"]>;
/** A ledger entry as stored. */
export type LedgerEntryItem = EntityItem<Entities["ledgerEntry"]>;
/** An event as stored. */
export type EventItem = EntityItem<Entities["event"]>;
/** An offer group's settings as stored. */
export type OfferGroupSettingsItem = EntityItem<Entities["offerGroupSettings"]>;
/** A reservation as stored. */
export type ReservationItem = EntityItem<Entities["reservation"]>;
/** A renewing subscription as stored. */
export type SubscriptionItem = EntityItem<Entities["subscription"]>;
/** A group's automatic top-up setting as stored. */
export type AutoTopUpItem = EntityItem<Entities["autoTopUp"]>;
/** One automatic top-up as stored. */
export type TopUpItem = EntityItem<Entities["topUp"]>;
/** An idempotency record as stored. */
export type IdempotencyRecordItem = EntityItem<Entities["idempotencyRecord"]>;

// Compile-time checks: each stored shape is the rule's type (both ways), or, for a rule
// that reads only some fields, fits it.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Fits<A, B> = [A] extends [B] ? true : false;
const storedShapes: {
  order: Same<OrderItem, OrderRecord>;
  balanceGrant: Same<BalanceItem["grants"][number], GrantState>;
  overflowGrant: Same<BalanceOverflowItem["grants"][number], GrantState>;
  balanceSpilled: Same<NonNullable<BalanceItem["spilled"]>, Omit<OverflowSummary, "inexact">>;
  balancePeriod: Same<NonNullable<BalanceItem["periods"]>[number], PaidPeriod>;
  balanceExhausted: Same<NonNullable<BalanceItem["exhausted"]>, ExhaustedGrants>;
  offerOrderable: Fits<OfferItem, OrderableOffer>;
  offerVisible: Fits<OfferItem, VisibilityOffer>;
  settings: Fits<Required<Pick<OfferGroupSettingsItem, "offerGroup" | "expiryWarningDays">>, Pick<OfferGroupSettings, "offerGroup" | "expiryWarningDays">>;
} = { order: true, balanceGrant: true, overflowGrant: true, balanceSpilled: true, balancePeriod: true, balanceExhausted: true, offerOrderable: true, offerVisible: true, settings: true };
void storedShapes;
