/**
 * The one table definition: key attribute names, the global secondary index, the TTL
 * attribute. Everything that creates the table reads it from here: `infra/table.ts`
 * (SST `sst.aws.Dynamo`), the local runner and the tests (`createTableInput`), and the
 * ElectroDB entities (the schemas in `core/db/*.ts`, bound in `core/db/service.ts`, take their `field` names from it), so the
 * deployed table and the indexes the code queries cannot drift apart (DESIGN.md,
 * "One table definition").
 *
 * This module imports no runtime dependency, so `infra/` can load it inside SST's
 * Pulumi program.
 */

/** Attribute names of the base table and its index, and the TTL attribute. */
export const TABLE = {
  /** Default table name when `TABLE_NAME` is unset (API.md configuration table). */
  defaultName: "user-credits",
  partitionKey: "pk",
  sortKey: "sk",
  /**
   * `gsi1`: the sparse work index, shared by the kinds of work still to do (ElectroDB
   * prefixes keep them apart; keys in core/rules/work-index.ts): active grants that
   * expire (partition `expiry day + shard`, sort `expiry instant + user + grant`), events
   * not yet published (the outbox), pending orders (for the abandoned-order pass), and
   * reservations still held (by their hold's expiry, for the hold-expiry pass). Items
   * leave it when done. Every attribute is projected, so each write of an indexed item
   * also writes its index copy (1 write unit per KB, 2 when its index key moves): the
   * balance items, written by every consumption, never enter it. The physical names stay
   * `gsi1*`: renaming them would replace the deployed index.
   */
  workIndex: { name: "gsi1", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
  /** Epoch seconds after which DynamoDB may delete an item (idempotency records, webhook events). */
  ttlAttribute: "ttl",
} as const;

/**
 * The input of DynamoDB `CreateTable` for this table (on-demand billing, every
 * attribute projected into the index). Used by the local runner and the tests.
 */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey, workIndex } = TABLE;
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST" as const,
    AttributeDefinitions: [partitionKey, sortKey, workIndex.partitionKey, workIndex.sortKey].map(
      (AttributeName) => ({ AttributeName, AttributeType: "S" as const }),
    ),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: "HASH" as const },
      { AttributeName: sortKey, KeyType: "RANGE" as const },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: workIndex.name,
        KeySchema: [
          { AttributeName: workIndex.partitionKey, KeyType: "HASH" as const },
          { AttributeName: workIndex.sortKey, KeyType: "RANGE" as const },
        ],
        Projection: { ProjectionType: "ALL" as const },
      },
    ],
  };
}

/**
 * The arguments of SST's `sst.aws.Dynamo` component for this table (fields, primary
 * index, global index, TTL). `infra/table.ts` passes them as they are.
 */
export function sstDynamoArgs() {
  const { partitionKey, sortKey, workIndex, ttlAttribute } = TABLE;
  return {
    fields: {
      [partitionKey]: "string",
      [sortKey]: "string",
      [workIndex.partitionKey]: "string",
      [workIndex.sortKey]: "string",
    } as Record<string, "string">,
    primaryIndex: { hashKey: partitionKey, rangeKey: sortKey },
    globalIndexes: {
      [workIndex.name]: { hashKey: workIndex.partitionKey, rangeKey: workIndex.sortKey },
    },
    ttl: ttlAttribute,
  };
}
