/**
 * The ElectroDB Service: every entity of the single table, bound to one DynamoDB
 * client and one table name. Nothing outside `core/db/` builds keys.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { Entity, Service, type EntityItem } from "electrodb";
import { balanceSchema } from "./balance.js";
import { eventSchema } from "./event.js";
import { grantSchema } from "./grant.js";
import { idempotencyRecordSchema } from "./idempotency-record.js";
import { jobStateSchema } from "./job-state.js";
import { ledgerEntrySchema } from "./ledger-entry.js";
import { offerSchema } from "./offer.js";
import { offerGroupSchema } from "./offer-group-settings.js";
import { orderSchema } from "./order.js";
import { webhookEventSchema } from "./webhook-event.js";

function entities() {
  return {
    offer: new Entity(offerSchema),
    order: new Entity(orderSchema),
    grant: new Entity(grantSchema),
    balance: new Entity(balanceSchema),
    ledgerEntry: new Entity(ledgerEntrySchema),
    idempotencyRecord: new Entity(idempotencyRecordSchema),
    webhookEvent: new Entity(webhookEventSchema),
    jobState: new Entity(jobStateSchema),
    event: new Entity(eventSchema),
    offerGroup: new Entity(offerGroupSchema),
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
/** One active grant's entry in a balance item. */
export type GrantBalance = BalanceItem["grants"][number];
/** A ledger entry as stored. */
export type LedgerEntryItem = EntityItem<Entities["ledgerEntry"]>;
/** An event as stored. */
export type EventItem = EntityItem<Entities["event"]>;
/** An offer group's settings as stored. */
export type OfferGroupItem = EntityItem<Entities["offerGroup"]>;
/** An idempotency record as stored. */
export type IdempotencyRecordItem = EntityItem<Entities["idempotencyRecord"]>;
