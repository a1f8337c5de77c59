/**
 * The process-wide runtime of the Lambda handlers (and of the local runner, which
 * serves the same handlers): configuration from environment variables (the API
 * contract's table) or, in the cloud, from SST-linked secrets and resources; one DynamoDB
 * client; the payment provider; the event bus when one is configured; a Powertools
 * logger. Built once per process, on first use.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { systemClock, type Clock } from "../core/clock.js";
import { createEventBridgeBus } from "../core/bus/eventbridge.js";
import type { Context } from "../core/context.js";
import type { EventBus } from "../core/events.js";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDynamoClient } from "../core/db/client.js";
import { createSqsContinuation, type Continuation } from "./continuation.js";
import { createDb } from "../core/db/service.js";
import { TABLE } from "../core/db/table.js";
import { createManualProvider } from "../core/payments/manual.js";
import { createStripeProvider } from "../core/payments/stripe.js";

/** Configuration (API.md "Configuration"). */
export interface RuntimeConfig {
  /** Valid API keys (several during a rotation). */
  apiKeys: string[];
  stripeSecretKey?: string | undefined;
  stripeWebhookSecret?: string | undefined;
  stripeApiUrl?: string | undefined;
  defaultCurrency: string;
  tableName: string;
  dynamoEndpoint?: string | undefined;
  /** The EventBridge bus events are published to (`EVENT_BUS_NAME`, or the linked `Events` bus); none: no publishing. */
  eventBusName?: string | undefined;
  /** Another EventBridge endpoint than AWS's (`EVENTBRIDGE_ENDPOINT`, e.g. a local stand-in). */
  eventBridgeEndpoint?: string | undefined;
  /** The daily job's continuation queue (`EXPIRY_CONTINUATION_QUEUE_URL`, or the linked `ExpiryJobContinuations`); none: a stopped run waits for the next schedule. */
  continuationQueueUrl?: string | undefined;
  /** Another SQS endpoint than AWS's (`SQS_ENDPOINT`, e.g. a local stand-in). */
  sqsEndpoint?: string | undefined;
  /** Days after which an unpaid order is abandoned (`ABANDON_ORDERS_AFTER_DAYS`, default 7). */
  abandonOrdersAfterDays?: number | undefined;
}

/**
 * A property of a resource linked by SST (`Resource.<name>.<property>`: a secret's
 * `value`, a bus's `name`, a queue's `url`), or undefined outside SST.
 */
async function linked(name: string, property: "value" | "name" | "url"): Promise<string | undefined> {
  if (!Object.keys(process.env).some((key) => key.startsWith("SST_RESOURCE_") || key === "SST_KEY_FILE")) return undefined;
  try {
    const { Resource } = await import("sst");
    const resource = (Resource as unknown as Record<string, Record<string, unknown> | undefined>)[name];
    const value = resource?.[property];
    return typeof value === "string" && value ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A secret linked by SST (`Resource.<name>.value`), or undefined outside SST. */
function linkedSecret(name: string): Promise<string | undefined> {
  return linked(name, "value");
}

/** A Stripe setting, or undefined when unset or `none` (an SST secret must have a value). */
function stripeSetting(value: string | undefined): string | undefined {
  return value && value.trim().toLowerCase() !== "none" ? value.trim() : undefined;
}

/**
 * Reads the configuration: environment variables first, then SST-linked secrets. A
 * Stripe secret set to `none` counts as unset (manual provider, webhooks refused).
 */
export async function readConfig(env: NodeJS.ProcessEnv = process.env): Promise<RuntimeConfig> {
  const apiKey = env.API_KEY || (await linkedSecret("ApiKey"));
  return {
    apiKeys: (apiKey ?? "")
      .split(",")
      .map((key) => key.trim())
      .filter((key) => key.length > 0),
    stripeSecretKey: stripeSetting(env.STRIPE_SECRET_KEY || (await linkedSecret("StripeSecretKey"))),
    stripeWebhookSecret: stripeSetting(env.STRIPE_WEBHOOK_SECRET || (await linkedSecret("StripeWebhookSecret"))),
    stripeApiUrl: env.STRIPE_API_URL || undefined,
    defaultCurrency: (env.DEFAULT_CURRENCY || "usd").toLowerCase(),
    tableName: env.TABLE_NAME || TABLE.defaultName,
    dynamoEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    eventBusName: env.EVENT_BUS_NAME || (await linked("Events", "name")),
    eventBridgeEndpoint: env.EVENTBRIDGE_ENDPOINT || undefined,
    continuationQueueUrl: env.EXPIRY_CONTINUATION_QUEUE_URL || (await linked("ExpiryJobContinuations", "url")),
    sqsEndpoint: env.SQS_ENDPOINT || undefined,
    abandonOrdersAfterDays: positiveNumber(env.ABANDON_ORDERS_AFTER_DAYS),
  };
}

/** A positive number from a setting, or undefined. */
function positiveNumber(value: string | undefined): number | undefined {
  const number = Number(value);
  return value && Number.isFinite(number) && number > 0 ? number : undefined;
}

/** The logger of every handler (structured JSON, Powertools for AWS Lambda). */
export const logger = new Logger({ serviceName: "user-credits" });

/** What handlers use. */
export interface Runtime {
  config: RuntimeConfig;
  core: Context;
  /** Where events are published; undefined when no bus is configured (locally, `npm start` prints them instead). */
  bus?: EventBus | undefined;
  /** Where the daily job hands over what one run could not finish; undefined: the next schedule does. */
  continuation?: Continuation | undefined;
}

let current: Promise<Runtime> | undefined;

/**
 * Builds the runtime from `config` (exported for tests that need their own clock, or
 * their own DynamoDB client, e.g. one that injects faults).
 */
export function buildRuntime(
  config: RuntimeConfig,
  clock: Clock = systemClock,
  client: DynamoDBClient = createDynamoClient({ endpoint: config.dynamoEndpoint }),
): Runtime {
  const payments = config.stripeSecretKey
    ? createStripeProvider({ secretKey: config.stripeSecretKey, apiUrl: config.stripeApiUrl })
    : createManualProvider();
  return {
    config,
    core: { db: createDb(client, config.tableName), clock, payments, config: { defaultCurrency: config.defaultCurrency }, logger },
    bus: config.eventBusName ? createEventBridgeBus({ busName: config.eventBusName, endpoint: config.eventBridgeEndpoint }) : undefined,
    continuation: config.continuationQueueUrl
      ? createSqsContinuation({ queueUrl: config.continuationQueueUrl, endpoint: config.sqsEndpoint })
      : undefined,
  };
}

/** The process's runtime, built on first use from the environment. */
export function runtime(): Promise<Runtime> {
  current ??= readConfig().then((config) => buildRuntime(config));
  return current;
}

/** Replaces the process's runtime (tests), or forgets it so the next use rebuilds it. */
export function setRuntime(next: Runtime | undefined): void {
  current = next ? Promise.resolve(next) : undefined;
}
