/**
 * DynamoDB client construction, for the cloud (default credentials chain) and for
 * DynamoDB Local (an endpoint with dummy credentials).
 */
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";

/**
 * A DynamoDB client. With `endpoint` (e.g. `http://127.0.0.1:8000`, DynamoDB Local)
 * it uses region `local` and dummy credentials unless the environment has real ones.
 * `requestHandler` replaces the SDK's HTTP handler (Smithy's `HttpHandler`), for
 * scripts/profile-consumption.ts, which answers from memory; Lambda and `npm start` leave it out.
 */
export function createDynamoClient(options: { endpoint?: string | undefined; requestHandler?: DynamoDBClientConfig["requestHandler"] } = {}): DynamoDBClient {
  const handler = options.requestHandler ? { requestHandler: options.requestHandler } : {};
  const client = options.endpoint
    ? new DynamoDBClient({
        ...handler,
        endpoint: options.endpoint,
        region: process.env.AWS_REGION ?? "local",
        credentials: {
          accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "local",
          secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "local",
        },
      })
    : new DynamoDBClient(handler);
  // The SDK's logger middleware filters every input and output for its logger, even the
  // no-op one the client has (none is configured): 45-130 µs of CPU per request, measured
  // by scripts/profile-consumption.ts. Our own logs say what a request did.
  client.middlewareStack.remove("loggerMiddleware");
  return client;
}
