/**
 * The service's storage: one DynamoDB table (DESIGN.md, "The single table").
 */
import { sstDynamoArgs, TABLE } from "../core/db/table";

/**
 * The single table. Its keys, work index and TTL attribute come from `core/db/table.ts`,
 * the definition the ElectroDB entities, the local runner and the tests also use, so the
 * deployed table cannot drift from the one the code queries. SST makes it on-demand with
 * point-in-time recovery; production (`$app.protect`) also gets deletion protection. Its
 * stream (new images) tells the event publisher when events are written (infra/bus.ts).
 */
export const table = new sst.aws.Dynamo("Table", {
  ...sstDynamoArgs(),
  stream: "new-image",
  deletionProtection: $app.protect,
});

/** The ARNs permissions name (infra/permissions.ts): the table, its work index, its stream. */
export const tableArns = {
  table: table.arn,
  workIndex: $interpolate`${table.arn}/index/${TABLE.workIndex.name}`,
  tableStream: table.nodes.table.streamArn,
};
