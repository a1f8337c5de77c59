/**
 * DynamoDB client construction, for the cloud (default credentials chain) and for
 * DynamoDB Local (an endpoint with dummy credentials).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

/**
 * A DynamoDB client. With `endpoint` (e.g. `http://127.0.0.1:8000`, DynamoDB Local)
 * it uses region `local` and dummy credentials unless the environment has real ones.
 */
export function createDynamoClient(options: { endpoint?: string | undefined } = {}): DynamoDBClient {
  if (!options.endpoint) return new DynamoDBClient({});
  return new DynamoDBClient({
    endpoint: options.endpoint,
    region: process.env.AWS_REGION ?? "local",
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "local",
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "local",
    },
  });
}
