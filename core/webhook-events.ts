/**
 * Processed webhook events: the record of a Stripe event id that changed an order,
 * written in the same transaction as the change, so the same event never applies twice
 * (API.md: "Its effect on an order happens exactly once, whatever the deliveries").
 */
import type { Db } from "./db/service.js";
import { commit, type TransactionItem } from "./db/transact.js";

/** How long processed event ids are kept: Stripe retries a delivery for up to 3 days. */
export const WEBHOOK_EVENT_TTL_SECONDS = 30 * 24 * 60 * 60;

/** What is kept of an event. */
export interface WebhookEventRecord {
  eventId: string;
  type: string;
  userId?: string | undefined;
  orderId?: string | undefined;
  /** What it did: `paid`, `refused`, ... */
  outcome: string;
}

/** The transaction action that records the event (fails if its id is already recorded). */
export function webhookEventWrite(db: Db, record: WebhookEventRecord, now: Date): TransactionItem {
  return commit(
    db.entities.webhookEvent.create({
      eventId: record.eventId,
      type: record.type,
      outcome: record.outcome,
      receivedAt: now.toISOString(),
      ttl: Math.floor(now.getTime() / 1000) + WEBHOOK_EVENT_TTL_SECONDS,
      ...(record.userId ? { userId: record.userId } : {}),
      ...(record.orderId ? { orderId: record.orderId } : {}),
    }),
  );
}
