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
  const client = options.endpoint
    ? new DynamoDBClient({
        endpoint: options.endpoint,
        region: process.env.AWS_REGION ?? "local",
        credentials: {
          accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "local",
          secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "local",
        },
      })
    : new DynamoDBClient({});
  // The SDK's logger middleware filters every input and output for its logger, even the
  // no-op one the client has (none is configured): 45-130 µs of CPU per request, measured
  // by scripts/profile-consumption.ts. Our own logs say what a request did.
  client.middlewareStack.remove("loggerMiddleware");
  return client;
}
