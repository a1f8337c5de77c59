/**
 * The DynamoDB stream filter of the event publisher (functions/publisher.ts): which
 * records of the table's stream invoke it. Read by `infra/bus.ts` (the event source
 * mapping's filter criteria) and by the tests, which check it against records built from
 * real items. No runtime dependency: infra loads it.
 */
import { eventSchema } from "../core/db/event.js";

/** The attribute in which ElectroDB writes, on every item, the name of its entity. */
export const ENTITY_ATTRIBUTE = "__edb_e__";

/**
 * Inserts of event items (Lambda event filtering syntax, "Filtering DynamoDB events": each
 * key must be present and hold one of the listed values). The publisher's own updates
 * (marking events published) are `MODIFY` records and do not match, nor does any other
 * item of the table.
 */
export const EVENT_INSERTS = {
  eventName: ["INSERT"],
  dynamodb: { NewImage: { [ENTITY_ATTRIBUTE]: { S: [eventSchema.model.entity] } } },
};
