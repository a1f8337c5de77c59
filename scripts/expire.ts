/**
 * `npm run expire`: runs the scheduled expiry handler once against the local table
 * (`DYNAMODB_ENDPOINT`, default http://127.0.0.1:8000; `TABLE_NAME`), with an
 * EventBridge scheduled event like the one the cloud sends, and prints its summary.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
process.env.DYNAMODB_ENDPOINT ||= "http://127.0.0.1:8000";
process.env.POWERTOOLS_LOG_LEVEL ||= "WARN";

import { localLambdaContext } from "./local-gateway.js";

async function main() {
  const { handler } = await import("../functions/daily-job.js");
  const now = new Date();
  const event = {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "000000000000",
    time: now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    region: "local",
    resources: ["arn:aws:scheduler:local:000000000000:schedule/default/ExpiryJob"],
    detail: {},
  };
  const summary = await handler(event, localLambdaContext("dailyJob", 15 * 60_000));
  console.log(JSON.stringify(summary));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
