/**
 * The infra (sst.config.ts, infra/), evaluated by SST's own components under Pulumi mocks,
 * with no AWS account and no `sst` CLI. What the CLI provides is stood in for here: the
 * globals it defines before running sst.config.ts (`$app`, `$cli`, `$dev`, `sst`,
 * `$interpolate`, ...), and a small RPC server answering the two calls SST's Function
 * component makes to the CLI (the account's bootstrap bucket; the build of a handler,
 * here an empty bundle). The assertions read the resources the program declared, as the
 * Pulumi engine would receive them.
 *
 * Needs SST's platform in `.sst/platform` (`npm run sst:install`, which `.ci/run` runs);
 * without it the file is skipped.
 */
import { STRIPE_WEBHOOK_EVENTS } from "../core/payments/stripe-events.js";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTableInput, TABLE } from "../core/db/table.js";
import { DEFAULT_ROUTE, HTTP_FUNCTIONS, ROUTES } from "../functions/routes.js";
import { EVENT_INSERTS } from "../functions/stream-filters.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const platform = join(root, ".sst/platform");
const EXPIRY_JOB_HANDLER = "functions/daily-job.handler";
const PUBLISHER_HANDLER = "functions/publisher.handler";

/** One resource the program declared: its type, logical name, inputs, and the ARN the mock gave it. */
interface Declared {
  type: string;
  name: string;
  inputs: Record<string, any>;
  arn: string;
}

/** A `Runtime.Build` request of SST's Function component (one per function). */
interface BuildRequest {
  functionID: string;
  handler: string;
  runtime: string;
  links: Record<string, unknown>;
}

/** What sst.config.ts exports: `$config(...)`'s input. */
interface SstConfig {
  app(input: { stage: string }): { name: string; home: string; removal: string; protect?: boolean };
  run(): Promise<Record<string, unknown>>;
}

/** The bits of `@pulumi/pulumi` used here (the platform's own copy, the one its components use). */
interface Pulumi {
  runtime: {
    setMocks(mocks: unknown, project: string, stack: string, preview: boolean): Promise<void>;
    runInPulumiStack(init: () => Promise<unknown>): Promise<Record<string, unknown> | undefined>;
  };
  output: unknown;
  interpolate: unknown;
  all: unknown;
  concat: unknown;
  jsonParse: unknown;
  jsonStringify: unknown;
}

const declared: Declared[] = [];
const builds: BuildRequest[] = [];

/** The declared resources of a Pulumi type (`aws:lambda/function:Function`, ...). */
function ofType(type: string): Declared[] {
  return declared.filter((resource) => resource.type === type);
}

/** The one declared resource of that type and logical name. */
function named(type: string, name: string): Declared {
  const found = ofType(type).filter((resource) => resource.name === name);
  expect(found, `${type} ${name}`).toHaveLength(1);
  return found[0]!;
}

/** A property value without the envelope the mocks put around secret-derived values. */
function plain(value: unknown): unknown {
  return value && typeof value === "object" && "value" in value ? (value as { value: unknown }).value : value;
}

/** Waits until no resource has been declared for 2 s (many are declared inside applies, after builds). */
async function settled(): Promise<void> {
  let quietChecks = 0;
  let count = declared.length;
  while (quietChecks < 8) {
    await new Promise((done) => setTimeout(done, 250));
    quietChecks = declared.length === count ? quietChecks + 1 : 0;
    count = declared.length;
  }
}

/** A server answering the RPC calls SST's components make to the CLI, and its URL. */
function startCliStandIn(work: string): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const { method, params } = JSON.parse(body) as { method: string; params: [unknown] };
      const reply = (payload: unknown) => response.end(JSON.stringify(payload));
      if (method === "Provider.Aws.Bootstrap") {
        return reply({ result: { asset: "sst-asset-test", assetEcrRegistryId: "123456789012", assetEcrUrl: "ecr.test", state: "sst-state-test", appsyncHttp: "", appsyncRealtime: "" } });
      }
      if (method === "Runtime.Build") {
        const input = params[0] as BuildRequest;
        builds.push(input);
        const out = join(work, "builds", input.functionID);
        mkdirSync(out, { recursive: true });
        writeFileSync(join(out, "index.mjs"), "export const handler = async () => ({});\n");
        return reply({ result: { handler: input.handler, out, errors: [], sourcemaps: [] } });
      }
      reply({ error: `rpc: can't find method ${method}` });
    });
  });
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () => done({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server })),
  );
}

describe.skipIf(!existsSync(join(platform, "src/auto/run.ts")))("infra (SST components under Pulumi mocks)", () => {
  let work = "";
  let server: Server | undefined;
  let config: SstConfig;
  let outputs: Record<string, unknown> = {};

  beforeAll(async () => {
    // A. The CLI's stand-in (its work directory gets the functions' zips) and the secrets' values.
    work = mkdtempSync(join(tmpdir(), "user-credits-infra-"));
    const cli = await startCliStandIn(work);
    server = cli.server;
    process.env.SST_SERVER = cli.url;
    for (const name of ["ApiKey", "StripeSecretKey", "StripeWebhookSecret"]) process.env[`SST_SECRET_${name}`] = `test-${name}`;

    // B. Pulumi mocks: every resource gets an id and an ARN; data sources answer plausibly.
    const pulumi = createRequire(join(platform, "package.json"))("@pulumi/pulumi") as Pulumi;
    await pulumi.runtime.setMocks(
      {
        newResource: ({ type, name, inputs }: { type: string; name: string; inputs: Record<string, any> }) => {
          const arn = `arn:aws:test:us-east-1:123456789012:${name}`;
          declared.push({ type, name, inputs, arn });
          return { id: `${name}-id`, state: { ...inputs, arn, name: inputs.name ?? name, apiEndpoint: "https://api.test", executionArn: arn } };
        },
        call: ({ token, inputs }: { token: string; inputs: Record<string, unknown> }) => {
          if (token === "aws:index/getPartition:getPartition") return { partition: "aws", dnsSuffix: "amazonaws.com" };
          if (token === "aws:index/getRegion:getRegion") return { name: "us-east-1", region: "us-east-1" };
          if (token === "aws:index/getCallerIdentity:getCallerIdentity") return { accountId: "123456789012" };
          if (token === "aws:iam/getPolicyDocument:getPolicyDocument") return { json: JSON.stringify(inputs) };
          return inputs;
        },
      },
      "user-credits",
      "test",
      false,
    );

    // C. The globals `sst deploy` defines (some platform modules read them on load), then the platform.
    Object.assign(globalThis, {
      $app: { name: "user-credits", stage: "test", removal: "remove", protect: false, providers: { aws: {} } },
      $dev: false,
      $cli: { command: "deploy", rpc: cli.url, home: "aws", paths: { root, work, platform, home: work }, state: { version: {} } },
      $util: pulumi,
      $output: pulumi.output,
      $interpolate: pulumi.interpolate,
      $resolve: pulumi.all,
      $concat: pulumi.concat,
      $jsonParse: pulumi.jsonParse,
      $jsonStringify: pulumi.jsonStringify,
      $secrets: {},
    });
    const load = (path: string) => import(/* @vite-ignore */ join(platform, path));
    const [{ Link }, { $transform, $asset }, { $config }, sst, { run }] = await Promise.all([
      load("src/components/link.ts"),
      load("src/components/component.ts"),
      load("src/config.ts"),
      load("src/components/index.ts"),
      load("src/auto/run.ts"),
    ]);
    Object.assign(globalThis, { $linkable: Link.makeLinkable, $transform, $asset, $config, sst });

    // D. sst.config.ts's run(), inside a stack as the CLI runs it (src/auto/run.ts).
    config = (await import(/* @vite-ignore */ join(root, "sst.config.ts"))).default as SstConfig;
    outputs = (await pulumi.runtime.runInPulumiStack(() => run(() => config.run()))) ?? {};
    await settled();
  }, 120_000);

  afterAll(() => {
    server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("keeps production's resources and protects the stage; other stages are throw-away", () => {
    expect(config.app({ stage: "production" })).toMatchObject({ name: "user-credits", home: "aws", removal: "retain", protect: true });
    expect(config.app({ stage: "dev" })).toMatchObject({ removal: "remove", protect: false });
  });

  it("declares the table of core/db/table.ts: keys, work index, TTL, and a stream of new images", () => {
    expect(ofType("aws:dynamodb/table:Table")).toHaveLength(1);
    const table = named("aws:dynamodb/table:Table", "TableTable").inputs;
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

  it("routes every entry of ROUTES to its function, and $default to notFound", () => {
    const handlerOf = (routeKey: string) => {
      const route = ofType("aws:apigatewayv2/route:Route").find((r) => r.inputs.routeKey === routeKey);
      const integration = ofType("aws:apigatewayv2/integration:Integration").find((i) => route?.inputs.target === `integrations/${i.name}-id`);
      const lambda = ofType("aws:lambda/function:Function").find((l) => l.arn === plain(integration?.inputs.integrationUri));
      return lambda?.inputs.handler as string | undefined;
    };
    const expected = [...ROUTES, DEFAULT_ROUTE].map(({ route, fn }) => [route, HTTP_FUNCTIONS[fn]]);
    expect(expected.map(([route]) => [route, handlerOf(route!)])).toEqual(expected);
    expect(ofType("aws:apigatewayv2/route:Route")).toHaveLength(expected.length);
  });

  it("runs every function on nodejs22.x arm64, with the table's name and the default currency", () => {
    expect(builds.map((build) => build.handler).sort()).toEqual(
      [...Object.values(HTTP_FUNCTIONS), EXPIRY_JOB_HANDLER, EXPIRY_JOB_HANDLER, PUBLISHER_HANDLER].sort(),
    );
    const tableName = named("aws:dynamodb/table:Table", "TableTable").inputs.name as string;
    const lambdas = ofType("aws:lambda/function:Function");
    expect(lambdas).toHaveLength(builds.length);
    for (const lambda of lambdas) {
      expect(lambda.inputs.runtime, lambda.name).toBe("nodejs22.x");
      expect(lambda.inputs.architectures, lambda.name).toEqual(["arm64"]);
      expect(lambda.inputs.environment.variables, lambda.name).toMatchObject({ TABLE_NAME: tableName, DEFAULT_CURRENCY: "usd" });
    }
  });

  it("links each function to the table and to the secrets and bus it needs, no more", () => {
    // The continuations' subscriber's id carries a hash: name it by its prefix.
    const id = (functionID: string) => functionID.replace(/^ExpiryJobContinuationsSubscriber\w+$/, "ExpiryJobContinuationsSubscriber");
    const linksOf = Object.fromEntries(builds.map((build) => [id(build.functionID), Object.keys(build.links).sort()]));
    const withApiKey = ["ApiKey", "StripeSecretKey", "Table"];
    expect(linksOf).toEqual({
      ApiOffers: withApiKey,
      ApiOrders: withApiKey,
      ApiConsumption: withApiKey,
      ApiCredits: withApiKey,
      ApiExpiry: withApiKey,
      ApiWebhook: ["StripeSecretKey", "StripeWebhookSecret", "Table"],
      ApiNotFound: [],
      ExpiryJobHandler: ["Events", "ExpiryJobContinuations", "Table"],
      ExpiryJobContinuationsSubscriber: ["Events", "ExpiryJobContinuations", "Table"],
      TableSubscriberPublisherFunction: ["Events", "Table"],
    });
    const busName = named("aws:cloudwatch/eventBus:EventBus", "EventsBus").inputs.name;
    for (const build of builds.filter((b) => "Events" in b.links)) {
      expect(build.links.Events, build.functionID).toMatchObject({ name: busName, arn: named("aws:cloudwatch/eventBus:EventBus", "EventsBus").arn });
    }
  });

  it("answers HTTP within API Gateway's 30 s integration timeout", () => {
    const http = builds.filter((build) => build.handler !== EXPIRY_JOB_HANDLER && build.handler !== PUBLISHER_HANDLER);
    expect(http).toHaveLength(Object.keys(HTTP_FUNCTIONS).length);
    for (const { functionID } of http) {
      expect(named("aws:lambda/function:Function", `${functionID}Function`).inputs.timeout, functionID).toBeLessThan(30);
    }
  });

  it("runs the daily job every day for up to 15 minutes, retried, with its failures kept in a queue", () => {
    const lambda = named("aws:lambda/function:Function", "ExpiryJobHandlerFunction");
    expect(lambda.inputs.handler).toBe(EXPIRY_JOB_HANDLER);
    expect(lambda.inputs.timeout).toBe(15 * 60);
    const queue = named("aws:sqs/queue:Queue", "ExpiryJobFailuresQueue");

    // The scheduler's delivery: retried, then dead-lettered.
    const schedule = named("aws:scheduler/schedule:Schedule", "ExpiryJobSchedule").inputs;
    expect(schedule.scheduleExpression).toMatch(/^cron\(\d+ \d+ \* \* \? \*\)$/);
    expect(schedule.target.arn).toBe(lambda.arn);
    expect(schedule.target.retryPolicy.maximumRetryAttempts).toBeGreaterThan(0);
    expect(schedule.target.deadLetterConfig).toEqual({ arn: queue.arn });

    // The run itself (an asynchronous invocation): Lambda's retries, then the same queue.
    const invokeConfig = named("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "ExpiryJobHandlerEventInvokeConfig").inputs;
    expect(invokeConfig.maximumRetryAttempts).toBeGreaterThan(0);
    expect(plain(invokeConfig.destinationConfig?.onFailure?.destination)).toBe(queue.arn);
  });

  it("hands what one run of the job could not finish to a queue whose subscriber is the same handler, one message at a time", () => {
    const queue = named("aws:sqs/queue:Queue", "ExpiryJobContinuationsQueue");
    expect(queue.inputs.visibilityTimeoutSeconds).toBeGreaterThan(15 * 60);
    const sqsMappings = ofType("aws:lambda/eventSourceMapping:EventSourceMapping").filter((m) => m.inputs.eventSourceArn === queue.arn);
    expect(sqsMappings).toHaveLength(1);
    expect(sqsMappings[0]!.inputs.batchSize).toBe(1);
    const subscriber = ofType("aws:lambda/function:Function").find((f) => f.arn === sqsMappings[0]!.inputs.functionName);
    expect(subscriber?.inputs).toMatchObject({ handler: EXPIRY_JOB_HANDLER, timeout: 15 * 60 });
  });

  it("declares the Events bus, and subscribes the publisher to the table's stream for inserted event items only", () => {
    expect(ofType("aws:cloudwatch/eventBus:EventBus").map((bus) => bus.name)).toEqual(["EventsBus"]);
    const lambda = named("aws:lambda/function:Function", "TableSubscriberPublisherFunctionFunction");
    expect(lambda.inputs).toMatchObject({ handler: PUBLISHER_HANDLER, timeout: 60 });

    const mappings = ofType("aws:lambda/eventSourceMapping:EventSourceMapping").filter((m) => m.inputs.startingPosition !== undefined);
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]!.inputs;
    expect(mapping.functionName).toBe(lambda.arn);
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

  it("outputs the API URL, the Stripe webhook URL, the table name and the bus name", () => {
    const tableName = named("aws:dynamodb/table:Table", "TableTable").inputs.name;
    const busName = named("aws:cloudwatch/eventBus:EventBus", "EventsBus").inputs.name;
    expect(outputs).toMatchObject({ api: "https://api.test", stripeWebhookUrl: "https://api.test/webhooks/stripe", table: tableName, eventBus: busName });
    // The events to enable on the Stripe endpoint: every type the webhook handles.
    expect(String(outputs.stripeWebhookEvents).split(",")).toEqual([...STRIPE_WEBHOOK_EVENTS]);
  });
});
