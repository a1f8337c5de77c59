/**
 * Events out (DESIGN.md, "Events out"; README, "Events"): the EventBridge bus the app's
 * own rules listen to, and the publisher that puts the outbox's events on it.
 *
 * Events are written to the table in the same transaction as the change they report
 * (the outbox, core/events.ts). The table's stream tells the publisher (functions/
 * publisher.ts) that events were inserted; it publishes whatever the outbox holds, at
 * least once. The daily job publishes the outbox too (infra/cron.ts), as a backstop.
 */
import { EVENT_INSERTS } from "../functions/stream-filters";
import { accessOf, statementsOf } from "./permissions";
import { secretsNamed } from "./secrets";
import { FUNCTION_DEFAULTS, runtimeEnvironment, stageSettings } from "./settings";
import { table, tableArns } from "./table";

const settings = stageSettings();

/** The bus: entries with `source` "user-credits", `detail-type` the event type, `detail` the event. */
export const bus = new sst.aws.Bus("Events");

/**
 * The publisher, subscribed to the table's stream, woken only by inserts of event items
 * (`EVENT_INSERTS`: ElectroDB's entity attribute `__edb_e__` = "event"). A batch it fails
 * (the bus refused some events) is retried up to 10 times, then dropped: nothing is lost
 * with it, since the events stay in the outbox until the bus accepts them, for the next
 * batch or the daily job. Its grants are infra/permissions.ts's; SST adds the stream's
 * read actions itself.
 */
export const publisher = table.subscribe(
  "Publisher",
  {
    handler: "functions/publisher.handler",
    ...FUNCTION_DEFAULTS,
    timeout: "1 minute",
    // Stripe's key: the publisher runs the automatic top-ups the outbox requests (core/top-ups.ts).
    link: secretsNamed(accessOf("publisher").secrets),
    permissions: statementsOf(accessOf("publisher").actions, { ...tableArns, bus: bus.arn }),
    environment: { ...runtimeEnvironment(settings, table.name), EVENT_BUS_NAME: bus.name },
  },
  {
    filters: [EVENT_INSERTS],
    transform: {
      eventSourceMapping: {
        batchSize: 100,
        maximumBatchingWindowInSeconds: 1,
        maximumRetryAttempts: 10,
      },
    },
  },
);
