/**
 * Vitest global setup: one DynamoDB Local for the whole run (in memory); each test file
 * creates its own table in it (test/helpers/db.ts), so files running in parallel never
 * see each other's data.
 */
import type { TestProject } from "vitest/node";
import { startDynamoLocal } from "../scripts/dynamodb-local.js";

declare module "vitest" {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const local = await startDynamoLocal({ dataDir: null });
  project.provide("dynamoEndpoint", local.endpoint);
  process.env.DYNAMODB_ENDPOINT = local.endpoint;
  return async () => {
    await local.stop();
  };
}
