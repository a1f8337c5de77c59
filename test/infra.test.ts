/**
 * The infra (sst.config.ts, infra/), evaluated by SST's own components under Pulumi mocks
 * (test/helpers/infra-program.ts: no AWS account, no `sst` CLI), read back as the Pulumi
 * engine would receive it: once with a stage's defaults, once with every setting of
 * infra/settings.ts set through its environment variable. The roles' inline policies hold
 * the real statements (the mock of `iam.getPolicyDocument` builds the document), so the
 * IAM actions of each function are checked here against infra/permissions.ts, and those
 * against what the code really sends in test/infra-permissions.test.ts.
 *
 * Needs SST's platform in `.sst/platform` (`npm run sst:install`, which `.ci/run` runs);
 * without it the file is skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STRIPE_WEBHOOK_EVENTS } from "../core/payments/stripe-events.js";
import { createTableInput, TABLE } from "../core/db/table.js";
import { DEFAULT_ROUTE, HTTP_FUNCTIONS, PAGE_ROUTES, ROUTES, UNAUTHENTICATED_ROUTES, type HttpFunctionName } from "../functions/routes.js";
import { EVENT_INSERTS } from "../functions/stream-filters.js";
import { accessOf, SERVICE_GRANTS, statementsOf, type FunctionName } from "../infra/permissions.js";
import { DEFAULT_SETTINGS, readSettings, SETTING_VARIABLES } from "../infra/settings.js";
import { arnsOf, disposeInfra, evaluateInfra, plain, PLATFORM_INSTALLED, resourceNamesOf, type Declared, type InfraProgram } from "./helpers/infra-program.js";

const EXPIRY_JOB_HANDLER = "functions/daily-job.handler";
const PUBLISHER_HANDLER = "functions/publisher.handler";
const LAMBDA = "aws:lambda/function:Function";

/** The settings of the configured evaluation, through their deploy-time variables. */
const CONFIGURED = {
  [SETTING_VARIABLES.defaultCurrency]: "EUR",
  [SETTING_VARIABLES.abandonOrdersAfterDays]: "3",
  [SETTING_VARIABLES.corsOrigins]: "https://app.example.com, http://localhost:5173",
  [SETTING_VARIABLES.alarmEmail]: "ops@example.com",
};

/** The one declared resource of that type and logical name. */
function named(infra: InfraProgram, type: string, name: string): Declared {
  const found = infra.allNamed(type, name);
  expect(found, `${type} ${name}`).toHaveLength(1);
  return found[0]!;
}

/** `action resource` pairs of statements, sorted (one per action and resource). */
function pairs(statements: Array<{ actions: readonly string[]; resources: readonly string[] }>): string[] {
  return statements.flatMap((s) => s.actions.flatMap((action) => s.resources.map((resource) => `${action} ${resource}`))).sort();
}

describe("infra settings (infra/settings.ts)", () => {
  it("default to usd, 7 days, CORS off and no alarm e-mail; a stage's committed values, then the environment, override them", () => {
    expect(readSettings("dev", {})).toEqual({ ...DEFAULT_SETTINGS, alarmEmail: undefined });
    const stages = { production: { alarmEmail: "ops@example.com", abandonOrdersAfterDays: 14 } };
    expect(readSettings("production", {}, stages)).toMatchObject({ alarmEmail: "ops@example.com", abandonOrdersAfterDays: 14, defaultCurrency: "usd" });
    expect(readSettings("production", { ABANDON_ORDERS_AFTER_DAYS: "2", ALARM_EMAIL: "" }, stages)).toMatchObject({
      alarmEmail: "ops@example.com", // an empty variable counts as unset
      abandonOrdersAfterDays: 2,
    });
    expect(readSettings("dev", CONFIGURED)).toEqual({
      defaultCurrency: "eur",
      abandonOrdersAfterDays: 3,
      corsOrigins: ["https://app.example.com", "http://localhost:5173"],
      alarmEmail: "ops@example.com",
    });
  });

  it("stop the deploy on a value that is not valid, naming the setting and its variable", () => {
    expect(() => readSettings("dev", { DEFAULT_CURRENCY: "euro" })).toThrow(/defaultCurrency \(DEFAULT_CURRENCY\)/);
    expect(() => readSettings("dev", { ABANDON_ORDERS_AFTER_DAYS: "0" })).toThrow(/abandonOrdersAfterDays/);
    expect(() => readSettings("dev", { ABANDON_ORDERS_AFTER_DAYS: "soon" })).toThrow(/abandonOrdersAfterDays/);
    expect(() => readSettings("dev", { CORS_ORIGINS: "https://app.example.com/path" })).toThrow(/corsOrigins/);
    expect(() => readSettings("dev", { ALARM_EMAIL: "ops" })).toThrow(/alarmEmail/);
  });
});

describe.skipIf(!PLATFORM_INSTALLED)("infra (SST components under Pulumi mocks)", () => {
  let infra: InfraProgram;
  let configured: InfraProgram;

  beforeAll(async () => {
    infra = await evaluateInfra();
    configured = await evaluateInfra({ env: CONFIGURED });
  }, 180_000);

  afterAll(disposeInfra);

  /** The declared function of `name` (infra/permissions.ts names). */
  const fn = (name: FunctionName, program = infra) => {
    const found = program.functions.get(name);
    expect(found, name).toBeDefined();
    return found!;
  };
  const lambdaOf = (name: FunctionName, program = infra) => fn(name, program).lambda;

  it("keeps production's resources and protects the stage; other stages are throw-away", () => {
    expect(infra.config.app({ stage: "production" })).toMatchObject({ name: "user-credits", home: "aws", removal: "retain", protect: true });
    expect(infra.config.app({ stage: "dev" })).toMatchObject({ removal: "remove", protect: false });
  });

  it("declares the table of core/db/table.ts: keys, work index, TTL, and a stream of new images", () => {
    expect(infra.ofType("aws:dynamodb/table:Table")).toHaveLength(1);
    const table = named(infra, "aws:dynamodb/table:Table", "TableTable").inputs;
    const expected = createTableInput("any");
    expect(table.billingMode).toBe(expected.BillingMode);
    expect([table.hashKey, table.rangeKey]).toEqual(expected.KeySchema.map((key) => key.AttributeName));
    expect(table.attributes).toEqual(expected.AttributeDefinitions.map((a) => ({ name: a.AttributeName, type: a.AttributeType })));
    expect(table.globalSecondaryIndexes).toEqual(
      expected.GlobalSecondaryIndexes.map((index) => ({
        name: index.IndexName,
        hashKey: index.KeySchema[0]!.AttributeName,
        rangeKey: index.KeySchema[1]!.AttributeName,
        projectionType: index.Projection.ProjectionType,
      })),
    );
    expect(table.ttl).toEqual({ attributeName: TABLE.ttlAttribute, enabled: true });
    expect(table.pointInTimeRecovery).toEqual({ enabled: true });
    expect(table).toMatchObject({ streamEnabled: true, streamViewType: "NEW_IMAGE" });
  });

  it("routes every entry of ROUTES and PAGE_ROUTES to its function, and $default to notFound", () => {
    const handlerOf = (routeKey: string) => {
      const route = infra.ofType("aws:apigatewayv2/route:Route").find((r) => r.inputs.routeKey === routeKey);
      const integration = infra.ofType("aws:apigatewayv2/integration:Integration").find((i) => route?.inputs.target === `integrations/${i.name}-id`);
      const lambda = infra.ofType(LAMBDA).find((l) => l.arn === plain(integration?.inputs.integrationUri));
      return lambda?.inputs.handler as string | undefined;
    };
    const expected = [...ROUTES, ...PAGE_ROUTES, DEFAULT_ROUTE].map(({ route, fn }) => [route, HTTP_FUNCTIONS[fn]]);
    expect(expected.map(([route]) => [route, handlerOf(route!)])).toEqual(expected);
    expect(infra.ofType("aws:apigatewayv2/route:Route")).toHaveLength(expected.length);
  });

  it("leaves CORS off by default (SST's default allows every origin), and allows only the configured origins", () => {
    const cors = (program: InfraProgram) => plain(named(program, "aws:apigatewayv2/api:Api", "ApiApi").inputs.corsConfiguration) as Record<string, unknown> | undefined;
    expect(cors(infra)?.allowOrigins).toBeUndefined();
    expect(cors(infra) ?? {}).toEqual({});
    expect(cors(configured)).toEqual({
      allowOrigins: ["https://app.example.com", "http://localhost:5173"],
      allowHeaders: ["authorization", "content-type", "idempotency-key"],
      allowMethods: ["GET", "POST", "PUT", "DELETE"],
    });
    // Every method a route uses is allowed (DELETE came with renewing subscriptions and automatic top-ups).
    const allowed = (cors(configured)?.allowMethods ?? []) as string[];
    for (const { route } of ROUTES) expect(allowed, route).toContain(route.split(" ")[0]);
  });

  it("runs every function on nodejs24.x arm64 with 1 GB, its bundle minified", () => {
    expect(infra.builds.map((build) => build.handler).sort()).toEqual(
      [...Object.values(HTTP_FUNCTIONS), EXPIRY_JOB_HANDLER, EXPIRY_JOB_HANDLER, PUBLISHER_HANDLER].sort(),
    );
    const lambdas = infra.ofType(LAMBDA);
    expect(lambdas).toHaveLength(infra.builds.length);
    for (const lambda of lambdas) {
      expect(lambda.inputs, lambda.name).toMatchObject({ runtime: "nodejs24.x", architectures: ["arm64"], memorySize: 1024 });
    }
    // SST's Go build minifies only when asked (pkg/runtime/node/build.go); scripts/bundles.ts measures minified bundles.
    for (const build of infra.builds) expect(build.properties, build.handler).toMatchObject({ minify: true });
  });

  it("gives every function that reads the table its name and the stage's currency; the daily job the abandon age, the bus and the queue", () => {
    for (const program of [infra, configured]) {
      const settings = program === infra ? { currency: "usd", days: "7" } : { currency: "eur", days: "3" };
      const names = resourceNamesOf(program);
      const appVariables = (name: FunctionName) =>
        Object.fromEntries(Object.entries(fn(name, program).environment).filter(([key]) => !key.startsWith("SST_")));
      const runtime = { TABLE_NAME: names.table, DEFAULT_CURRENCY: settings.currency };
      for (const name of ["offers", "orders", "consumption", "credits", "expiry", "webhook", "portal"] as const) expect(appVariables(name), name).toEqual(runtime);
      const job = { ...runtime, ABANDON_ORDERS_AFTER_DAYS: settings.days, EVENT_BUS_NAME: names.bus, EXPIRY_CONTINUATION_QUEUE_URL: names.continuationQueueUrl };
      expect(appVariables("dailyJob")).toEqual(job);
      expect(appVariables("dailyJobContinuations")).toEqual(job);
      expect(appVariables("publisher")).toEqual({ ...runtime, EVENT_BUS_NAME: names.bus });
      expect(appVariables("notFound")).toEqual({});
      expect(appVariables("openapi")).toEqual({});
    }
  });

  it("links each function to the secrets its code reads and nothing else (no table, bus or queue: their links grant `*`)", () => {
    const linksOf = Object.fromEntries([...infra.functions].map(([name, declared]) => [name, Object.keys(declared.build.links).sort()]));
    // By need: the API key for every function with a route that needs it; Stripe's key for
    // those that call Stripe (orders create, read and refund payments; the webhook reads
    // them back; the daily job cancels abandoned attempts; the publisher pays automatic
    // top-ups off-session); the signing secret for the webhook.
    const needsApiKey = (name: HttpFunctionName) => ROUTES.some((route) => route.fn === name && !UNAUTHENTICATED_ROUTES.includes(route.route));
    const callsStripe = new Set<FunctionName>(["orders", "webhook", "dailyJob", "dailyJobContinuations", "publisher", "portal"]);
    const expected = Object.fromEntries(
      [...infra.functions.keys()].map((name) => [
        name,
        [
          ...(name in HTTP_FUNCTIONS && needsApiKey(name as HttpFunctionName) ? ["ApiKey"] : []),
          ...(callsStripe.has(name) ? ["StripeSecretKey"] : []),
          ...(ROUTES.some((route) => route.fn === name && route.route === "POST /webhooks/stripe") ? ["StripeWebhookSecret"] : []),
          // The portal signing secret: only where portal tokens are minted and checked.
          ...(ROUTES.some((route) => route.fn === name && route.route.includes("/portal")) ? ["PortalSigningSecret"] : []),
        ].sort(),
      ]),
    );
    expect(linksOf).toEqual(expected);
    expect(linksOf.dailyJob).toContain("StripeSecretKey");
    expect(linksOf.dailyJobContinuations).toContain("StripeSecretKey");
    expect(Object.keys(expected).sort()).toEqual([...Object.keys(HTTP_FUNCTIONS), "dailyJob", "dailyJobContinuations", "publisher"].sort());
  });

  it("grants each function's role exactly its actions of infra/permissions.ts on exact ARNs, and SST's and Lambda's own", () => {
    const arns = arnsOf(infra);
    for (const [name, declared] of infra.functions) {
      expect(declared.statements.every((s) => s.Effect === "Allow"), name).toBe(true);
      const granted = pairs(declared.statements.map((s) => ({ actions: s.Action, resources: s.Resource })));
      const expected = pairs([...statementsOf(accessOf(name).actions, arns), ...statementsOf(SERVICE_GRANTS[name] ?? {}, arns)]);
      expect(granted, name).toEqual(expected);
      // No wildcard: every action named, every resource an exact ARN.
      expect(granted.filter((pair) => pair.includes("*")), name).toEqual([]);
      expect(declared.role.inputs.managedPolicyArns, name).toEqual(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]);
    }
  });

  it("grants the table's actions on the table, Query of the work index on the index, the bus's and the queues' on their ARNs", () => {
    const arns = arnsOf(infra);
    const table = named(infra, "aws:dynamodb/table:Table", "TableTable").arn;
    expect(arns.workIndex).toBe(`${table}/index/${TABLE.workIndex.name}`);
    const onResource = (name: FunctionName) => {
      const byResource: Record<string, string[]> = {};
      for (const s of fn(name).statements) for (const resource of s.Resource) (byResource[resource] ??= []).push(...s.Action);
      for (const actions of Object.values(byResource)) actions.sort();
      return byResource;
    };
    expect(onResource("consumption")).toEqual({
      [table]: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    });
    expect(onResource("offers")).toEqual({ [table]: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"] });
    expect(onResource("publisher")).toEqual({
      // Publishing (BatchGetItem, UpdateItem) and the automatic top-ups' orders (GetItem, PutItem, Query).
      [table]: ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
      [arns.workIndex]: ["dynamodb:Query"],
      [arns.tableStream]: ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
      [arns.bus]: ["events:PutEvents"],
    });
    const job = onResource("dailyJob");
    expect(job[arns.workIndex]).toEqual(["dynamodb:Query"]);
    expect(job[arns.bus]).toEqual(["events:PutEvents"]);
    expect(job[arns.continuationQueue]).toEqual(["sqs:SendMessage"]);
    expect(job[arns.failureQueue]).toEqual(["sqs:SendMessage"]); // Lambda's on-failure destination
    expect(onResource("dailyJobContinuations")[arns.continuationQueue]).toEqual([
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]);
    // The 404 and the OpenAPI document are granted nothing: SST attaches no inline policy.
    for (const name of ["notFound", "openapi"] as const) {
      expect(fn(name).statements, name).toEqual([]);
      expect(fn(name).role.inputs.inlinePolicies ?? [], name).toEqual([]);
    }
  });

  it("answers HTTP within API Gateway's 30 s integration timeout", () => {
    for (const name of Object.keys(HTTP_FUNCTIONS) as HttpFunctionName[]) {
      expect(lambdaOf(name).inputs.timeout, name).toBeLessThan(30);
    }
  });

  it("runs the daily job every day for up to 15 minutes, retried, with its failures kept 14 days in a queue", () => {
    const lambda = lambdaOf("dailyJob");
    expect(lambda.inputs.handler).toBe(EXPIRY_JOB_HANDLER);
    expect(lambda.inputs.timeout).toBe(15 * 60);
    const queue = named(infra, "aws:sqs/queue:Queue", "ExpiryJobFailuresQueue");
    expect(queue.inputs.messageRetentionSeconds).toBe(14 * 24 * 60 * 60);

    // The scheduler's delivery: retried, then dead-lettered.
    const schedule = named(infra, "aws:scheduler/schedule:Schedule", "ExpiryJobSchedule").inputs;
    expect(schedule.scheduleExpression).toMatch(/^cron\(\d+ \d+ \* \* \? \*\)$/);
    expect(schedule.target.arn).toBe(lambda.arn);
    expect(schedule.target.retryPolicy.maximumRetryAttempts).toBeGreaterThan(0);
    expect(schedule.target.deadLetterConfig).toEqual({ arn: queue.arn });

    // The run itself (an asynchronous invocation): Lambda's retries, then the same queue.
    const invokeConfig = named(infra, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "ExpiryJobHandlerEventInvokeConfig").inputs;
    expect(invokeConfig.maximumRetryAttempts).toBeGreaterThan(0);
    expect(plain(invokeConfig.destinationConfig?.onFailure?.destination)).toBe(queue.arn);
  });

  it("hands what one run could not finish to a queue whose subscriber is the same handler, one message at a time, dead-lettered after 3 receives", () => {
    const queue = named(infra, "aws:sqs/queue:Queue", "ExpiryJobContinuationsQueue");
    const deadLetters = named(infra, "aws:sqs/queue:Queue", "ExpiryJobContinuationsDeadLettersQueue");
    expect(queue.inputs.visibilityTimeoutSeconds).toBeGreaterThan(15 * 60);
    expect(JSON.parse(String(plain(queue.inputs.redrivePolicy)))).toEqual({ deadLetterTargetArn: deadLetters.arn, maxReceiveCount: 3 });
    expect(deadLetters.inputs.messageRetentionSeconds).toBe(14 * 24 * 60 * 60);
    expect(deadLetters.inputs.redrivePolicy).toBeUndefined();
    const sqsMappings = infra.ofType("aws:lambda/eventSourceMapping:EventSourceMapping").filter((m) => m.inputs.eventSourceArn === queue.arn);
    expect(sqsMappings).toHaveLength(1);
    expect(sqsMappings[0]!.inputs.batchSize).toBe(1);
    expect(sqsMappings[0]!.inputs.functionName).toBe(lambdaOf("dailyJobContinuations").arn);
    expect(lambdaOf("dailyJobContinuations").inputs).toMatchObject({ handler: EXPIRY_JOB_HANDLER, timeout: 15 * 60 });
  });

  it("declares the Events bus, and subscribes the publisher to the table's stream for inserted event items only", () => {
    expect(infra.ofType("aws:cloudwatch/eventBus:EventBus").map((bus) => bus.name)).toEqual(["EventsBus"]);
    const lambda = lambdaOf("publisher");
    expect(lambda.inputs).toMatchObject({ handler: PUBLISHER_HANDLER, timeout: 60 });

    const mappings = infra.ofType("aws:lambda/eventSourceMapping:EventSourceMapping").filter((m) => m.inputs.startingPosition !== undefined);
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]!.inputs;
    expect(mapping.functionName).toBe(lambda.arn);
    expect(mapping.eventSourceArn).toBe(arnsOf(infra).tableStream);
    expect(mapping.startingPosition).toBe("LATEST");
    // ElectroDB writes the entity's name in `__edb_e__` (test/core/events.test.ts reads it back
    // from DynamoDB Local); the publisher's own updates are MODIFY records and must not wake it.
    const patterns = mapping.filterCriteria.filters.map((filter: { pattern: string }) => JSON.parse(filter.pattern));
    expect(patterns).toEqual([{ eventName: ["INSERT"], dynamodb: { NewImage: { __edb_e__: { S: ["event"] } } } }]);
    expect(patterns).toEqual([EVENT_INSERTS]);
    // A failing batch is retried, a bounded number of times (the events stay in the outbox).
    expect(mapping.maximumRetryAttempts).toBeGreaterThan(0);
    expect(mapping.maximumRetryAttempts).toBeLessThanOrEqual(10);
  });

  it("raises an alarm on the failure queue, the dead-letter queue and every function's errors, all to one topic", () => {
    const topic = named(infra, "aws:sns/topic:Topic", "Alarms");
    const alarms = infra.ofType("aws:cloudwatch/metricAlarm:MetricAlarm");
    for (const alarm of alarms) {
      expect(alarm.inputs, alarm.name).toMatchObject({
        comparisonOperator: "GreaterThanThreshold",
        threshold: 0,
        evaluationPeriods: 1,
        treatMissingData: "notBreaching",
        alarmActions: [topic.arn],
        okActions: [topic.arn],
      });
    }
    const onQueue = (queue: string) => alarms.filter((a) => a.inputs.namespace === "AWS/SQS" && a.inputs.dimensions?.QueueName === named(infra, "aws:sqs/queue:Queue", queue).inputs.name);
    for (const queue of ["ExpiryJobFailuresQueue", "ExpiryJobContinuationsDeadLettersQueue"]) {
      expect(onQueue(queue), queue).toHaveLength(1);
      expect(onQueue(queue)[0]!.inputs).toMatchObject({ metricName: "ApproximateNumberOfMessagesVisible", statistic: "Maximum" });
    }
    const onErrors = alarms.filter((a) => a.inputs.namespace === "AWS/Lambda");
    expect(onErrors.every((a) => a.inputs.metricName === "Errors" && a.inputs.statistic === "Sum")).toBe(true);
    const watched = onErrors.map((a) => a.inputs.dimensions.FunctionName).sort();
    expect(watched).toEqual(infra.ofType(LAMBDA).map((lambda) => lambda.inputs.name).sort());
    expect(alarms).toHaveLength(2 + infra.functions.size);
  });

  it("e-mails the alarms only when the stage sets an address", () => {
    expect(infra.ofType("aws:sns/topicSubscription:TopicSubscription")).toEqual([]);
    const subscriptions = configured.ofType("aws:sns/topicSubscription:TopicSubscription");
    expect(subscriptions.map((s) => s.inputs)).toEqual([{ topic: named(configured, "aws:sns/topic:Topic", "Alarms").arn, protocol: "email", endpoint: "ops@example.com" }]);
    expect(configured.ofType("aws:cloudwatch/metricAlarm:MetricAlarm")).toHaveLength(infra.ofType("aws:cloudwatch/metricAlarm:MetricAlarm").length);
  });

  it("outputs the API URL, the Stripe webhook URL, the table name and the bus name", () => {
    const tableName = named(infra, "aws:dynamodb/table:Table", "TableTable").inputs.name;
    const busName = named(infra, "aws:cloudwatch/eventBus:EventBus", "EventsBus").inputs.name;
    expect(infra.outputs).toMatchObject({ api: "https://api.test", stripeWebhookUrl: "https://api.test/webhooks/stripe", table: tableName, eventBus: busName });
    // The events to enable on the Stripe endpoint: every type the webhook handles.
    expect(String(infra.outputs.stripeWebhookEvents).split(",")).toEqual([...STRIPE_WEBHOOK_EVENTS]);
  });
});
