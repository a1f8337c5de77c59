/**
 * DynamoDB stream batches for the stream-triggered publisher (functions/publisher.ts),
 * built from the Lambda sample event (test/fixtures/dynamodb-event.json) with the table's
 * real items, read back from DynamoDB Local in their wire format, as `Keys`/`NewImage`
 * (`StreamViewType` "NEW_IMAGE", as infra/table.ts configures the stream).
 */
import { ScanCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import streamSample from "../fixtures/dynamodb-event.json" with { type: "json" };

/** The table's items of `userId` whose ElectroDB entity is `entity` (default: events), as DynamoDB sends them (wire format). */
export async function rawItems(client: DynamoDBClient, tableName: string, userId: string, entity = "event"): Promise<Array<Record<string, AttributeValue>>> {
  const { Items = [] } = await client.send(
    new ScanCommand({
      TableName: tableName,
      ConsistentRead: true,
      FilterExpression: "#user = :user AND #entity = :entity",
      ExpressionAttributeNames: { "#user": "userId", "#entity": "__edb_e__" },
      ExpressionAttributeValues: { ":user": { S: userId }, ":entity": { S: entity } },
    }),
  );
  return Items;
}

/** A batch of INSERT records of `items`, from the stream `streamArn`. */
export function insertBatch(items: ReadonlyArray<Record<string, AttributeValue>>, streamArn: string): DynamoDBStreamEvent {
  const sample = streamSample.Records[0] as unknown as DynamoDBRecord;
  return {
    Records: items.map(
      (item, index): DynamoDBRecord => ({
        ...structuredClone(sample),
        eventName: "INSERT",
        eventSourceARN: streamArn,
        dynamodb: {
          ...sample.dynamodb,
          Keys: { pk: item.pk, sk: item.sk } as never,
          NewImage: item as never,
          SequenceNumber: `1110000000000000${String(index).padStart(10, "0")}`,
          StreamViewType: "NEW_IMAGE",
        },
      }),
    ),
  };
}
