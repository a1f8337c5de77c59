/**
 * Events for the app (API.md `GET /users/{userId}/events`, "Events out"): warnings and
 * state changes, each with a stable `eventId` (ULID), written in the same transaction as
 * the change it reports (the outbox), then published to an event bus at least once.
 * Consumers de-duplicate by `eventId`.
 *
 * Publishing (`publishPending`) reads the unpublished events through the sparse outbox
 * index, hands them to the bus, and marks those the bus accepted as published (which
 * removes them from the index). An event the bus refused, or whose marking failed, stays
 * in the index and goes out on the next pass.
 */
import type { Context } from "./context.js";
import { checkCursor, partitionOf } from "./db/cursors.js";
import type { Db, EventItem } from "./db/service.js";
import { commit, isConditionFailure, type TransactionItem } from "./db/transact.js";
import { newId } from "./ids.js";
import { OUTBOX_SHARDS, outboxKeys } from "./rules/work-index.js";

/** An event as the API shows it and the bus carries it (API.md `Event`). */
export interface ServiceEvent {
  eventId: string;
  type: EventItem["type"];
  userId: string;
  offerGroup?: string;
  orderId?: string;
  grantId?: string;
  balance?: number;
  expires?: string;
  /** Money moved (refunds), integer minor units of `currency`. */
  amount?: number;
  currency?: string;
  /** Tokens moved (refunds, disputes). */
  tokens?: number;
  /** A dispute's status when it closed. */
  status?: string;
  /** True for the automatic refund of a second payment for an already paid order. */
  duplicate?: boolean;
  /** Why a top-up failed (`top_up.failed`): Stripe's decline code (`authentication_required`, `insufficient_funds`, ...) or ours (`max_per_month`, `no_payment_method`, ...). */
  code?: string;
  createdAt: string;
}

/** What a writer supplies; id and date are added. */
export type EventDraft = Omit<ServiceEvent, "eventId" | "createdAt">;

/** The stored item as the API shape. */
export function toEvent(item: EventItem): ServiceEvent {
  const event: ServiceEvent = { eventId: item.eventId, type: item.type, userId: item.userId, createdAt: item.createdAt };
  if (item.offerGroup !== undefined) event.offerGroup = item.offerGroup;
  if (item.orderId !== undefined) event.orderId = item.orderId;
  if (item.grantId !== undefined) event.grantId = item.grantId;
  if (item.balance !== undefined) event.balance = item.balance;
  if (item.expires !== undefined) event.expires = item.expires;
  if (item.amount !== undefined) event.amount = item.amount;
  if (item.currency !== undefined) event.currency = item.currency;
  if (item.tokens !== undefined) event.tokens = item.tokens;
  if (item.status !== undefined) event.status = item.status;
  if (item.duplicate !== undefined) event.duplicate = item.duplicate;
  if (item.code !== undefined) event.code = item.code;
  return event;
}

/**
 * A new event at `now` (a fresh ULID id) and the transaction action that writes it into
 * the outbox (core/rules/work-index.ts `outboxKeys`).
 */
export function eventWrite(db: Db, draft: EventDraft, now: Date): { event: ServiceEvent; item: TransactionItem } {
  const eventId = newId(now);
  const event: ServiceEvent = { eventId, createdAt: now.toISOString(), ...draft };
  const item: EventItem = { ...event, ...outboxKeys(draft.userId, eventId) };
  return { event, item: commit(db.entities.event.create(item)) };
}

/** A page of the user's events, oldest first; `cursor` is null on the last page. */
export async function listEvents(
  ctx: Pick<Context, "db">,
  userId: string,
  page: { limit: number; cursor?: string | null | undefined },
): Promise<{ events: ServiceEvent[]; cursor: string | null }> {
  const entity = ctx.db.entities.event;
  checkCursor(entity, page.cursor, partitionOf(entity, { userId, eventId: "-" }));
  const result = await entity.query.byUser({ userId }).go({ count: page.limit, cursor: page.cursor ?? null, consistent: true });
  return { events: result.data.map(toEvent), cursor: result.cursor ?? null };
}

/** Where events go: EventBridge in the cloud, the console locally, a stand-in in tests. */
export interface EventBus {
  /**
   * Publishes `events` (at most 10, EventBridge's PutEvents limit).
   * @returns the ids of the events the bus accepted; the others are retried later
   */
  publish(events: ServiceEvent[]): Promise<string[]>;
}

/** What a publishing pass did. */
export interface PublishSummary {
  published: number;
  failed: number;
}

/**
 * Work some events ask for before they go out (core/top-ups.ts `topUpHandler` runs
 * `top_up.requested`): called for each unpublished event of a pass, before the bus; an
 * event whose handler throws is not published, so the next pass calls it again (it must
 * be idempotent).
 */
export type EventHandler = (event: ServiceEvent) => Promise<void>;

/**
 * Publishes unpublished events, oldest first per shard, at most `limit` of them.
 * Candidates come from the (eventually consistent) outbox index and are re-read from the
 * table (consistent batch read) so that one just marked published is not sent again; each
 * is marked published only after the bus accepted it, conditionally on it still being
 * unpublished.
 */
export async function publishPending(ctx: Pick<Context, "db" | "clock" | "logger">, bus: EventBus, options: { limit?: number; handle?: EventHandler | undefined } = {}): Promise<PublishSummary> {
  const limit = options.limit ?? 500;
  const summary: PublishSummary = { published: 0, failed: 0 };
  for (let shard = 0; shard < OUTBOX_SHARDS && summary.published + summary.failed < limit; shard++) {
    const { data: candidates } = await ctx.db.entities.event.query
      .outbox({ outboxBucket: String(shard) })
      .go({ limit: limit - summary.published - summary.failed });
    const pass = await publishEvents(ctx, bus, candidates, options.handle);
    summary.published += pass.published;
    summary.failed += pass.failed;
  }
  return summary;
}

/** Events published per pass of {@link publishOutbox}. */
export const EVENTS_PER_PASS = 500;

/**
 * Publishes the outbox in passes of {@link EVENTS_PER_PASS} events, while a pass was full
 * and nothing failed, until `deadline` (epoch ms; no new pass starts after it). Used by
 * the stream-triggered publisher and, as a backstop, by the daily job.
 * @returns the events published and those the bus refused (still in the outbox)
 * @throws what reading or marking the outbox throws (DynamoDB errors)
 */
export async function publishOutbox(ctx: Pick<Context, "db" | "clock" | "logger">, bus: EventBus, deadline?: number, handle?: EventHandler): Promise<PublishSummary> {
  const total: PublishSummary = { published: 0, failed: 0 };
  for (;;) {
    const pass = await publishPending(ctx, bus, { limit: EVENTS_PER_PASS, handle });
    total.published += pass.published;
    total.failed += pass.failed;
    if (pass.failed > 0 || pass.published < EVENTS_PER_PASS || (deadline !== undefined && Date.now() >= deadline)) return total;
  }
}

/**
 * Publishes the given events if they are still unpublished (re-read consistently from
 * the table), in batches of 10, marking those the bus accepted. For callers that know
 * which events to publish without the index (a stream batch's own inserts). With
 * `handle`, each event is handed to it first; one it throws for stays unpublished.
 */
export async function publishEvents(
  ctx: Pick<Context, "db" | "clock" | "logger">,
  bus: EventBus,
  keys: ReadonlyArray<{ userId: string; eventId: string }>,
  handle?: EventHandler,
): Promise<PublishSummary> {
  const summary: PublishSummary = { published: 0, failed: 0 };
  const data = await stillUnpublished(ctx, keys);
  for (let i = 0; i < data.length; i += 10) {
    let batch = data.slice(i, i + 10).map(toEvent);
    if (handle) {
      const handled = await Promise.all(
        batch.map((event) =>
          handle(event).then(
            () => true,
            (error: unknown) => {
              ctx.logger.warn("an event's work failed; it stays in the outbox", { error, eventId: event.eventId, type: event.type });
              return false;
            },
          ),
        ),
      );
      summary.failed += handled.filter((ok) => !ok).length;
      batch = batch.filter((_, k) => handled[k]);
    }
    let accepted: string[] = [];
    try {
      accepted = await bus.publish(batch);
    } catch (error) {
      ctx.logger.warn("publishing events failed; they stay in the outbox", { error, events: batch.length });
    }
    const ok = new Set(accepted);
    summary.failed += batch.filter((event) => !ok.has(event.eventId)).length;
    for (const event of batch.filter((e) => ok.has(e.eventId))) {
      await markPublished(ctx, event);
      summary.published++;
    }
  }
  return summary;
}

/**
 * The candidates the base table (read consistently) still holds unpublished, in the
 * candidates' order. The outbox index is eventually consistent: just after a pass marked
 * an event published, the index may still list it for a moment, and publishing it again
 * would deliver it twice (DESIGN.md: GSIs only find candidates, which are then re-read).
 */
async function stillUnpublished(ctx: Pick<Context, "db">, candidates: ReadonlyArray<{ userId: string; eventId: string }>): Promise<EventItem[]> {
  if (candidates.length === 0) return [];
  const { data } = await ctx.db.entities.event
    .get(candidates.map(({ userId, eventId }) => ({ userId, eventId })))
    .go({ consistent: true });
  const open = new Map(data.filter((item) => item.publishedAt === undefined).map((item) => [`${item.userId}\n${item.eventId}`, item]));
  return candidates.flatMap(({ userId, eventId }) => open.get(`${userId}\n${eventId}`) ?? []);
}

/** Marks an event published (removes it from the outbox index); already marked is fine. */
async function markPublished(ctx: Pick<Context, "db" | "clock">, event: ServiceEvent): Promise<void> {
  try {
    await ctx.db.entities.event
      .patch({ userId: event.userId, eventId: event.eventId })
      .set({ publishedAt: ctx.clock.now().toISOString() })
      .remove(["outboxBucket", "outboxSort"])
      .where((attr, op) => op.notExists(attr.publishedAt))
      .go();
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}
