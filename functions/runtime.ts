/**
 * The process-wide runtime of the Lambda handlers (and of the local runner, which
 * serves the same handlers): configuration from environment variables (the API
 * contract's table) or, for secrets in the cloud, from SST-linked secrets; one DynamoDB
 * client; the payment provider; the event bus and the daily job's continuation queue when
 * they are configured; a Powertools logger. Built once per process,
 * on first use.
 *
 * The SDKs of Stripe, EventBridge and SQS are not imported here: each Lambda bundle holds
 * only what its handler calls (scripts/bundles.ts checks it). A handler that calls one
 * registers its adapter with {@link provideAdapters} when its module loads
 * (functions/stripe-payments.ts for Stripe; the publisher and the daily job for the bus and
 * the queue). The runtime builds an adapter on first use, so registering before or after
 * the runtime is built makes no difference; a handler that uses an adapter nobody
 * registered gets an `InvariantViolation` (a wiring fault, never a request's fault).
 */
import { Resource } from "sst/resource";
import { createBalanceCache } from "../core/balance-cache.js";
import { systemClock, type Clock } from "../core/clock.js";
import type { Context } from "../core/context.js";
import { InvariantViolation } from "../core/errors.js";
import type { EventBus } from "../core/events.js";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDynamoClient } from "../core/db/client.js";
import type { Continuation } from "./continuation.js";
import { createDb } from "../core/db/service.js";
import { TABLE } from "../core/db/table.js";
import { createManualProvider } from "../core/payments/manual.js";
import type { BillingProvider, PaymentProvider } from "../core/payments/provider.js";
import type { StripeProviderOptions } from "../core/payments/stripe.js";
import { Logger } from "@aws-lambda-powertools/logger";

/** Configuration (API.md "Configuration"). */
export interface RuntimeConfig {
  /** Valid API keys (several during a rotation). */
  apiKeys: string[];
  stripeSecretKey?: string | undefined;
  stripeWebhookSecret?: string | undefined;
  /** The secret portal session tokens are signed with (core/portal-sessions.ts); unset: no portal. */
  portalSigningSecret?: string | undefined;
  stripeApiUrl?: string | undefined;
  defaultCurrency: string;
  tableName: string;
  dynamoEndpoint?: string | undefined;
  /** The EventBridge bus events are published to (`EVENT_BUS_NAME`); none: no publishing. */
  eventBusName?: string | undefined;
  /** Another EventBridge endpoint than AWS's (`EVENTBRIDGE_ENDPOINT`, e.g. a local stand-in). */
  eventBridgeEndpoint?: string | undefined;
  /** The daily job's continuation queue (`EXPIRY_CONTINUATION_QUEUE_URL`); none: a stopped run waits for the next schedule. */
  continuationQueueUrl?: string | undefined;
  /** Another SQS endpoint than AWS's (`SQS_ENDPOINT`, e.g. a local stand-in). */
  sqsEndpoint?: string | undefined;
  /** Days after which an unpaid order is abandoned (`ABANDON_ORDERS_AFTER_DAYS`, default 7). */
  abandonOrdersAfterDays?: number | undefined;
}

/**
 * A secret linked by SST (`Resource.<name>.value`, SST's `sst/resource`), or undefined
 * outside SST (no `SST_RESOURCE_*` variable and no `SST_KEY_FILE`: tests, `npm start`).
 */
function linkedSecret(name: string): string | undefined {
  if (!Object.keys(process.env).some((key) => key.startsWith("SST_RESOURCE_") || key === "SST_KEY_FILE")) return undefined;
  try {
    const value = (Resource as unknown as Record<string, { value?: unknown } | undefined>)[name]?.value;
    return typeof value === "string" && value ? value : undefined;
  } catch {
    return undefined; // not linked to this function
  }
}

/** A Stripe setting, or undefined when unset or `none` (an SST secret must have a value). */
function stripeSetting(value: string | undefined): string | undefined {
  return value && value.trim().toLowerCase() !== "none" ? value.trim() : undefined;
}

/**
 * Reads the configuration: environment variables first, then, for the four secrets,
 * SST-linked secrets. The bus and the continuation queue come from `EVENT_BUS_NAME` and
 * `EXPIRY_CONTINUATION_QUEUE_URL` only (the infrastructure sets them). A Stripe secret set
 * to `none` counts as unset (manual provider, webhooks refused).
 */
export async function readConfig(env: NodeJS.ProcessEnv = process.env): Promise<RuntimeConfig> {
  const apiKey = env.API_KEY || linkedSecret("ApiKey");
  return {
    apiKeys: (apiKey ?? "")
      .split(",")
      .map((key) => key.trim())
      .filter((key) => key.length > 0),
    stripeSecretKey: stripeSetting(env.STRIPE_SECRET_KEY || linkedSecret("StripeSecretKey")),
    stripeWebhookSecret: stripeSetting(env.STRIPE_WEBHOOK_SECRET || linkedSecret("StripeWebhookSecret")),
    portalSigningSecret: env.PORTAL_SIGNING_SECRET || linkedSecret("PortalSigningSecret") || undefined,
    stripeApiUrl: env.STRIPE_API_URL || undefined,
    defaultCurrency: (env.DEFAULT_CURRENCY || "usd").toLowerCase(),
    tableName: env.TABLE_NAME || TABLE.defaultName,
    dynamoEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    eventBusName: env.EVENT_BUS_NAME || undefined,
    eventBridgeEndpoint: env.EVENTBRIDGE_ENDPOINT || undefined,
    continuationQueueUrl: env.EXPIRY_CONTINUATION_QUEUE_URL || undefined,
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

/**
 * The adapters a handler registers for the services it calls (each an SDK that only its
 * bundles should hold). Options are the runtime's configuration.
 */
export interface RuntimeAdapters {
  /** The Stripe payment provider (core/payments/stripe.ts `createStripeProvider`). */
  stripe: (options: StripeProviderOptions) => PaymentProvider;
  /** The EventBridge bus (core/bus/eventbridge.ts `createEventBridgeBus`). */
  eventBus: (options: { busName: string; endpoint?: string | undefined }) => EventBus;
  /** The SQS continuation queue (functions/continuation.ts `createSqsContinuation`). */
  continuation: (options: { queueUrl: string; endpoint?: string | undefined }) => Continuation;
}

const adapters: Partial<RuntimeAdapters> = {};

/**
 * Registers adapters (called at module load by the handlers that call these services).
 * Registering one again replaces it for the adapters not built yet (each is built on its first use).
 */
export function provideAdapters(provided: Partial<RuntimeAdapters>): void {
  Object.assign(adapters, provided);
}

/**
 * Builds the `kind` adapter once, on first use.
 * @throws InvariantViolation when no handler of this bundle registered it
 */
function lazily<K extends keyof RuntimeAdapters>(kind: K, build: (factory: RuntimeAdapters[K]) => ReturnType<RuntimeAdapters[K]>) {
  let built: ReturnType<RuntimeAdapters[K]> | undefined;
  return (): ReturnType<RuntimeAdapters[K]> => {
    if (built) return built;
    const factory = adapters[kind];
    if (!factory) {
      throw new InvariantViolation(`This function does not call ${kind}: no ${kind} adapter is registered (functions/runtime.ts provideAdapters).`, { adapter: kind });
    }
    built = build(factory as RuntimeAdapters[K]);
    return built;
  };
}

/**
 * The Stripe provider, built on its first call from the registered factory; a function
 * whose bundle registered none refuses every call with an InvariantViolation. `name` is
 * `stripe` from the start (core reads it to tell Stripe orders from manual ones).
 */
function stripePayments(options: StripeProviderOptions): PaymentProvider {
  const provider = lazily("stripe", (create) => create(options));
  const billing = (): BillingProvider => {
    const found = provider().billing;
    if (!found) throw new InvariantViolation("The Stripe provider has no billing half.", { adapter: "stripe" });
    return found;
  };
  return {
    name: "stripe",
    checkAmount: (amount, currency) => provider().checkAmount(amount, currency),
    createPayment: async (request) => provider().createPayment(request),
    retrievePaymentIntent: async (id) => provider().retrievePaymentIntent(id),
    cancelPaymentIntent: async (id) => provider().cancelPaymentIntent(id),
    retrieveCheckoutSession: async (id) => provider().retrieveCheckoutSession(id),
    expireCheckoutSession: async (id) => provider().expireCheckoutSession(id),
    refund: async (request) => provider().refund(request),
    listRefunds: async (id) => provider().listRefunds(id),
    retrieveDispute: async (id) => provider().retrieveDispute(id),
    listDisputes: async (id) => provider().listDisputes(id),
    billing: {
      createCustomer: async (request) => billing().createCustomer(request),
      recurringPrice: async (request) => billing().recurringPrice(request),
      retrieveInvoice: async (id) => billing().retrieveInvoice(id),
      invoiceOfPayment: async (id) => billing().invoiceOfPayment(id),
      createSetup: async (request) => billing().createSetup(request),
      retrieveSetupIntent: async (id) => billing().retrieveSetupIntent(id),
      retrieveSubscription: async (id) => billing().retrieveSubscription(id),
      cancelSubscription: async (id, atPeriodEnd) => billing().cancelSubscription(id, atPeriodEnd),
      payOffSession: async (request) => billing().payOffSession(request),
      defaultPaymentMethod: async (id) => billing().defaultPaymentMethod(id),
    },
  };
}

let current: Promise<Runtime> | undefined;

/**
 * Builds the runtime from `config` (exported for tests that need their own clock, or
 * their own DynamoDB client, e.g. one that injects faults). With a Stripe secret key the
 * payment provider is Stripe's (functions/stripe-payments.ts), otherwise the manual one;
 * the bus and the continuation exist when configured (their adapters are built on first use).
 */
export function buildRuntime(
  config: RuntimeConfig,
  clock: Clock = systemClock,
  client: DynamoDBClient = createDynamoClient({ endpoint: config.dynamoEndpoint }),
): Runtime {
  const payments = config.stripeSecretKey
    ? stripePayments({ secretKey: config.stripeSecretKey, apiUrl: config.stripeApiUrl })
    : createManualProvider();
  const { eventBusName, continuationQueueUrl } = config;
  const bus = eventBusName ? lazily("eventBus", (create) => create({ busName: eventBusName, endpoint: config.eventBridgeEndpoint })) : undefined;
  const queue = continuationQueueUrl ? lazily("continuation", (create) => create({ queueUrl: continuationQueueUrl, endpoint: config.sqsEndpoint })) : undefined;
  return {
    config,
    core: {
      db: createDb(client, config.tableName),
      clock,
      payments,
      config: { defaultCurrency: config.defaultCurrency },
      logger,
      // The instance's balance items, for one-request consumptions when warm (core/balance-cache.ts).
      balanceCache: createBalanceCache({ now: () => clock.now().getTime() }),
    },
    bus: bus ? { publish: async (events) => bus().publish(events) } : undefined,
    continuation: queue ? { send: async (n) => queue().send(n) } : undefined,
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
