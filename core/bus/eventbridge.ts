/**
 * The cloud's event bus: an Amazon EventBridge bus (`sst.aws.Bus("Events")`, infra/bus.ts),
 * reached with the AWS SDK's `PutEvents`. Each service event becomes one bus entry:
 * `source` "user-credits", `detail-type` the event's `type`, `detail` the event itself
 * (API.md `Event`), `time` its `createdAt` (README, "Events").
 *
 * PutEvents' rules, from AWS's documentation (EventBridge API Reference, `PutEvents`, and
 * the user guide's "Sending events with PutEvents"): at most 10 entries per request; a
 * request may succeed as a whole while some of its entries fail, which the response
 * reports as `FailedEntryCount` and, at the same index as the request's entry, an entry
 * with `ErrorCode`/`ErrorMessage` instead of an `EventId`. Failed entries must be sent
 * again by the caller; here they are simply not reported as accepted, so they stay in
 * the outbox (core/events.ts `publishPending`) and go out on a later pass.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import type { EventBus, ServiceEvent } from "../events.js";

/** The `source` of every entry the service puts on the bus (what a rule matches on). */
export const source = "user-credits";

/** Most entries in one `PutEvents` request (EventBridge API Reference, `PutEvents`: `Entries`, 1 to 10 items). */
export const MAX_ENTRIES_PER_PUT = 10;

/** How to reach the bus. */
export interface EventBridgeBusOptions {
  /** The bus's name or ARN (`Resource.Events.name`, or `EVENT_BUS_NAME`). */
  busName: string;
  /** Another endpoint than AWS's (a local stand-in in tests), e.g. `http://127.0.0.1:4010`. */
  endpoint?: string | undefined;
  /** Region; default the SDK's (the Lambda's `AWS_REGION`), `us-east-1` with an `endpoint` and none set. */
  region?: string | undefined;
  /** The SDK's attempts per request (its own retries of throttling and 5xx); default the SDK's (3). */
  maxAttempts?: number | undefined;
  /** A client to use instead of building one (the options above are then ignored but `busName`). */
  client?: EventBridgeClient | undefined;
}

/** The `PutEvents` entry of one service event on `busName`. */
export function busEntry(event: ServiceEvent, busName: string): PutEventsRequestEntry {
  return {
    Source: source,
    DetailType: event.type,
    Detail: JSON.stringify(event),
    EventBusName: busName,
    Time: new Date(event.createdAt),
  };
}

/** An {@link EventBus} on EventBridge, with its SDK client (to `destroy()` when done). */
export interface EventBridgeBus extends EventBus {
  readonly client: EventBridgeClient;
}

/**
 * An event bus that puts events on the EventBridge bus `options.busName`, in requests of
 * at most {@link MAX_ENTRIES_PER_PUT} entries.
 *
 * `publish(events)` returns the ids of the events EventBridge accepted (its response
 * entry has an `EventId` and no `ErrorCode`); rejected entries are left out, and the
 * caller (`publishPending`) counts them as failed. A request that fails as a whole (after
 * the SDK's own retries) ends the call: it throws when nothing was accepted yet, and
 * otherwise returns what earlier requests had accepted (the rest is retried later).
 * @throws the SDK's error (e.g. `InternalException`, a network error) when the first request fails
 */
export function createEventBridgeBus(options: EventBridgeBusOptions): EventBridgeBus {
  const client =
    options.client ??
    new EventBridgeClient({
      ...(options.endpoint
        ? {
            endpoint: options.endpoint,
            region: options.region ?? process.env.AWS_REGION ?? "us-east-1",
            credentials: {
              accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "local",
              secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "local",
            },
          }
        : options.region
          ? { region: options.region }
          : {}),
      ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    });
  return {
    client,
    async publish(events) {
      const accepted: string[] = [];
      for (let i = 0; i < events.length; i += MAX_ENTRIES_PER_PUT) {
        const batch = events.slice(i, i + MAX_ENTRIES_PER_PUT);
        let response;
        try {
          response = await client.send(new PutEventsCommand({ Entries: batch.map((event) => busEntry(event, options.busName)) }));
        } catch (error) {
          if (accepted.length === 0) throw error;
          return accepted;
        }
        // Response entries are in the request's order, one per request entry (user guide, "Sending events with PutEvents").
        batch.forEach((event, index) => {
          const result = response.Entries?.[index];
          if (result?.EventId && !result.ErrorCode) accepted.push(event.eventId);
        });
      }
      return accepted;
    },
  };
}
