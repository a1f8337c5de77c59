/**
 * The infra (sst.config.ts, infra/), evaluated by SST's own components under Pulumi mocks,
 * with no AWS account and no `sst` CLI. What the CLI provides is stood in for here: the
 * globals it defines before running sst.config.ts (`$app`, `$cli`, `$dev`, `sst`, `aws`,
 * `$interpolate`, ...), and a small RPC server answering the two calls SST's Function
 * component makes to the CLI (the account's bootstrap bucket; the build of a handler,
 * here an empty bundle). The result lists the resources the program declared, as the
 * Pulumi engine would receive them, and each function's build links, environment and
 * IAM policy, by its name in infra/permissions.ts.
 *
 * The mocks answer as AWS would where the infra reads an answer: ARNs in each service's
 * format, a table's stream ARN, a queue's URL, and `iam.getPolicyDocument` building the
 * policy document (`Version`, `Statement`: `Effect`, `Action`, `Resource`) from the
 * statements it is given, so that the roles' inline policies hold the real statements.
 *
 * Each call to `evaluateInfra` runs the program again, from freshly loaded infra modules
 * (`vi.resetModules`), with the deploy-time environment it is given (infra/settings.ts).
 *
 * Needs SST's platform in `.sst/platform` (`npm run sst:install`, which `.ci/run` runs):
 * check `PLATFORM_INSTALLED` to skip without it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { vi } from "vitest";
import { HTTP_FUNCTIONS, type HttpFunctionName } from "../../functions/routes.js";
import { TABLE } from "../../core/db/table.js";
import type { FunctionName, ResourceKind } from "../../infra/permissions.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const platform = join(root, ".sst/platform");

/** True when SST's platform is installed (else the infra cannot be evaluated). */
export const PLATFORM_INSTALLED = existsSync(join(platform, "src/auto/run.ts"));

/** The AWS account and region the mocks answer with. */
export const ACCOUNT = "123456789012";
export const REGION = "us-east-1";

/** One resource the program declared: its type, logical name, inputs (secret envelopes removed), and the ARN the mock gave it. */
export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, any>;
  arn: string;
}

/** A `Runtime.Build` request of SST's Function component (one per function). */
export interface BuildRequest {
  functionID: string;
  handler: string;
  runtime: string;
  links: Record<string, unknown>;
  /** The function's `nodejs` arguments, as SST's Go build reads them (`minify`, ...). */
  properties?: { minify?: boolean } | null;
}

/** One statement of an IAM policy document, as the mock of `getPolicyDocument` writes it. */
export interface PolicyStatement {
  Effect: string;
  Action: string[];
  Resource: string[];
  Condition?: unknown;
}

/** A function of the app as declared: its build, its Lambda function, its role's inline policy. */
export interface DeclaredFunction {
  name: FunctionName;
  build: BuildRequest;
  lambda: Declared;
  role: Declared;
  /** The role's inline policy statements (none when SST attached no inline policy). */
  statements: PolicyStatement[];
  /** The Lambda function's environment variables, secret-wrapped values unwrapped. */
  environment: Record<string, string>;
}

/** What sst.config.ts exports: `$config(...)`'s input. */
export interface SstConfig {
  app(input: { stage: string }): { name: string; home: string; removal: string; protect?: boolean };
  run(): Promise<Record<string, unknown>>;
}

/** One evaluation of the program. */
export interface InfraProgram {
  config: SstConfig;
  outputs: Record<string, unknown>;
  declared: Declared[];
  builds: BuildRequest[];
  /** The declared resources of a Pulumi type (`aws:lambda/function:Function`, ...). */
  ofType(type: string): Declared[];
  /** The declared resources of that type and logical name (tests expect exactly one). */
  allNamed(type: string, name: string): Declared[];
  /** Every function of the app, by its name in infra/permissions.ts. */
  functions: Map<FunctionName, DeclaredFunction>;
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

/** Pulumi's signature key of a secret value's envelope (`{ [SECRET_SIG]: SECRET_VALUE, value }`). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/**
 * `value` without the envelopes Pulumi puts around secret-derived values, at any depth
 * (an input that depends on a secret, e.g. anything built from a function linked to an
 * SST secret, reaches the mocks wrapped).
 */
export function plain(value: unknown): any {
  if (Array.isArray(value)) return value.map(plain);
  if (!value || typeof value !== "object") return value;
  if (SECRET_SIG in value) return plain((value as unknown as { value: unknown }).value);
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
}

/** The ARN AWS would give a resource of `type` named `name` (the formats of each service's ARNs). */
function arnOf(type: string, name: string): string {
  const at = `${REGION}:${ACCOUNT}`;
  if (type === "aws:dynamodb/table:Table") return `arn:aws:dynamodb:${at}:table/${name}`;
  if (type === "aws:sqs/queue:Queue") return `arn:aws:sqs:${at}:${name}`;
  if (type === "aws:cloudwatch/eventBus:EventBus") return `arn:aws:events:${at}:event-bus/${name}`;
  if (type === "aws:lambda/function:Function") return `arn:aws:lambda:${at}:function:${name}`;
  if (type === "aws:sns/topic:Topic") return `arn:aws:sns:${at}:${name}`;
  if (type === "aws:iam/role:Role") return `arn:aws:iam::${ACCOUNT}:role/${name}`;
  return `arn:aws:${type.split(":")[1]!.split("/")[0]}:${at}:${name}`;
}

/** What the mocks answer for a new resource: AWS's outputs that the infra reads. */
function stateOf(type: string, name: string, inputs: Record<string, any>, arn: string): Record<string, unknown> {
  const physical = inputs.name ?? name;
  const extra: Record<string, unknown> = {};
  if (type === "aws:dynamodb/table:Table") extra.streamArn = `${arn}/stream/2026-01-01T00:00:00.000`;
  if (type === "aws:sqs/queue:Queue") extra.url = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${physical}`;
  return { ...inputs, arn, name: physical, apiEndpoint: "https://api.test", executionArn: arn, ...extra };
}

/**
 * The policy document `iam.getPolicyDocument` returns for `statements` (SST's shape:
 * `effect`, `actions`, `resources`, `conditions`), with `statements` echoed when there
 * are some (SST attaches no inline policy when there are none).
 */
function policyDocument(inputs: { statements?: Array<{ effect?: string; actions?: string[]; resources?: string[]; conditions?: unknown }> }) {
  const statements = inputs.statements ?? [];
  const document = {
    Version: "2012-10-17",
    Statement: statements.map((statement) => ({
      Effect: statement.effect ?? "Allow",
      Action: statement.actions ?? [],
      Resource: statement.resources ?? [],
      ...(statement.conditions ? { Condition: statement.conditions } : {}),
    })),
  };
  return { json: JSON.stringify(document), statements: statements.length > 0 ? statements : undefined };
}

/** Where the current evaluation collects what the program declares and builds. */
let collecting: { declared: Declared[]; builds: BuildRequest[] } = { declared: [], builds: [] };

/** A server answering the RPC calls SST's components make to the CLI, and its URL. */
function startCliStandIn(work: string): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const { method, params } = JSON.parse(body) as { method: string; params: [unknown] };
      const reply = (payload: unknown) => response.end(JSON.stringify(payload));
      if (method === "Provider.Aws.Bootstrap") {
        return reply({ result: { asset: "sst-asset-test", assetEcrRegistryId: ACCOUNT, assetEcrUrl: "ecr.test", state: "sst-state-test", appsyncHttp: "", appsyncRealtime: "" } });
      }
      if (method === "Runtime.Build") {
        const input = params[0] as BuildRequest;
        collecting.builds.push(input);
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

/** The process-wide setup: the CLI's stand-in, the platform and the globals; once. */
interface Setup {
  pulumi: Pulumi;
  run: (program: () => Promise<unknown>) => Promise<Record<string, unknown>>;
  cli: { url: string; server: Server };
  work: string;
}
let setup: Promise<Setup> | undefined;

function prepare(): Promise<Setup> {
  setup ??= (async () => {
    const work = mkdtempSync(join(tmpdir(), "user-credits-infra-"));
    const cli = await startCliStandIn(work);
    process.env.SST_SERVER = cli.url;
    for (const name of ["ApiKey", "StripeSecretKey", "StripeWebhookSecret", "PortalSigningSecret"]) process.env[`SST_SECRET_${name}`] = `test-${name}`;
    const platformRequire = createRequire(join(platform, "package.json"));
    const pulumi = platformRequire("@pulumi/pulumi") as Pulumi;
    // The globals `sst deploy` defines (some platform modules read them on load), then the platform.
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
      aws: platformRequire("@pulumi/aws"),
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
    return { pulumi, run, cli, work };
  })();
  return setup;
}

/** Stops the CLI's stand-in and removes its work directory (call in `afterAll`). */
export async function disposeInfra(): Promise<void> {
  if (!setup) return;
  const { cli, work } = await setup;
  cli.server.close();
  rmSync(work, { recursive: true, force: true });
  setup = undefined;
}

/** Waits until no resource has been declared for 2 s (many are declared inside applies, after builds). */
async function settled(declared: Declared[]): Promise<void> {
  let quietChecks = 0;
  let count = declared.length;
  while (quietChecks < 8) {
    await new Promise((done) => setTimeout(done, 250));
    quietChecks = declared.length === count ? quietChecks + 1 : 0;
    count = declared.length;
  }
}

let evaluations = 0;

/**
 * Runs sst.config.ts's `run()` under the mocks, inside a stack as the CLI runs it
 * (src/auto/run.ts), with `env` set in `process.env` meanwhile (deploy-time settings).
 * The module registry is reset first (the infra modules declare their resources when
 * loaded): a module a test imports dynamically afterwards is a fresh copy, not the one
 * its static imports hold (import the handlers and their runtime together, after).
 * @param options.stage `$app.stage` (default `test`)
 * @throws what the program throws (e.g. an invalid setting)
 */
export async function evaluateInfra(options: { env?: Record<string, string>; stage?: string } = {}): Promise<InfraProgram> {
  const { pulumi, run } = await prepare();
  const declared: Declared[] = [];
  const builds: BuildRequest[] = [];
  collecting = { declared, builds };
  await pulumi.runtime.setMocks(
    {
      newResource: ({ type, name, inputs: wrapped }: { type: string; name: string; inputs: Record<string, any> }) => {
        const inputs = plain(wrapped) as Record<string, any>;
        const arn = arnOf(type, inputs.name ?? name);
        declared.push({ type, name, inputs, arn });
        return { id: type === "aws:sqs/queue:Queue" ? stateOf(type, name, inputs, arn).url : `${name}-id`, state: stateOf(type, name, inputs, arn) };
      },
      call: ({ token, inputs }: { token: string; inputs: Record<string, any> }) => {
        if (token === "aws:index/getPartition:getPartition") return { partition: "aws", dnsSuffix: "amazonaws.com" };
        if (token === "aws:index/getRegion:getRegion") return { name: REGION, region: REGION };
        if (token === "aws:index/getCallerIdentity:getCallerIdentity") return { accountId: ACCOUNT };
        if (token === "aws:iam/getPolicyDocument:getPolicyDocument") return policyDocument(plain(inputs));
        return inputs;
      },
    },
    "user-credits",
    `test${++evaluations}`,
    false,
  );

  const saved = Object.fromEntries(Object.keys(options.env ?? {}).map((key) => [key, process.env[key]]));
  Object.assign(process.env, options.env);
  try {
    vi.resetModules(); // the infra modules declare their resources on import: load them afresh
    const config = (await import(/* @vite-ignore */ join(root, "sst.config.ts"))).default as SstConfig;
    // `$app` as the CLI sets it from the config's `app()` for the stage.
    const stage = options.stage ?? "test";
    const app = config.app({ stage });
    Object.assign(globalThis, { $app: { name: app.name, stage, removal: app.removal, protect: app.protect ?? false, providers: { aws: {} } } });
    const outputs = (await pulumi.runtime.runInPulumiStack(() => run(() => config.run()))) ?? {};
    await settled(declared);
    return program(config, outputs, declared, builds);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** The name in infra/permissions.ts of the function SST built as `functionID`. */
function functionNameOf(functionID: string): FunctionName {
  for (const name of Object.keys(HTTP_FUNCTIONS) as HttpFunctionName[]) {
    if (functionID === `Api${name.charAt(0).toUpperCase()}${name.slice(1)}`) return name;
  }
  if (functionID === "ExpiryJobHandler") return "dailyJob";
  if (/^ExpiryJobContinuationsSubscriber\w+$/.test(functionID)) return "dailyJobContinuations";
  if (functionID === "TableSubscriberPublisherFunction") return "publisher";
  throw new Error(`No function name for the build ${functionID}`);
}

function program(config: SstConfig, outputs: Record<string, unknown>, declared: Declared[], builds: BuildRequest[]): InfraProgram {
  const ofType = (type: string) => declared.filter((resource) => resource.type === type);
  const allNamed = (type: string, name: string) => ofType(type).filter((resource) => resource.name === name);
  const infra: InfraProgram = { config, outputs, declared, builds, ofType, allNamed, functions: new Map() };
  const functions = infra.functions;
  for (const build of builds) {
    const name = functionNameOf(build.functionID);
    if (functions.has(name)) throw new Error(`Two builds of the function ${name}`);
    const lambda = one(infra, "aws:lambda/function:Function", `${build.functionID}Function`);
    const role = one(infra, "aws:iam/role:Role", `${build.functionID}Role`);
    const policies = (role.inputs.inlinePolicies ?? []) as Array<{ name: string; policy: string }>;
    const statements = policies.flatMap((policy) => (JSON.parse(String(plain(policy.policy))) as { Statement: PolicyStatement[] }).Statement);
    const variables = (lambda.inputs.environment?.variables ?? {}) as Record<string, unknown>;
    const environment = Object.fromEntries(Object.entries(variables).map(([key, value]) => [key, String(plain(value))]));
    functions.set(name, { name, build, lambda, role, statements, environment });
  }
  return infra;
}

/** The ARN of each resource kind permissions name (infra/permissions.ts), in an evaluated program. */
export function arnsOf(infra: InfraProgram): Record<ResourceKind, string> {
  const table = one(infra, "aws:dynamodb/table:Table", "TableTable");
  return {
    table: table.arn,
    workIndex: `${table.arn}/index/${TABLE.workIndex.name}`,
    tableStream: `${table.arn}/stream/2026-01-01T00:00:00.000`,
    bus: one(infra, "aws:cloudwatch/eventBus:EventBus", "EventsBus").arn,
    continuationQueue: one(infra, "aws:sqs/queue:Queue", "ExpiryJobContinuationsQueue").arn,
    failureQueue: one(infra, "aws:sqs/queue:Queue", "ExpiryJobFailuresQueue").arn,
  };
}

/** The names functions are given for the table, the bus and the continuation queue (their physical names, the queue's URL). */
export function resourceNamesOf(infra: InfraProgram): { table: string; bus: string; continuationQueueUrl: string } {
  const queue = one(infra, "aws:sqs/queue:Queue", "ExpiryJobContinuationsQueue");
  return {
    table: one(infra, "aws:dynamodb/table:Table", "TableTable").inputs.name,
    bus: one(infra, "aws:cloudwatch/eventBus:EventBus", "EventsBus").inputs.name,
    continuationQueueUrl: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${queue.inputs.name}`,
  };
}

/** The one declared resource of that type and logical name. */
function one(infra: InfraProgram, type: string, name: string): Declared {
  const found = infra.allNamed(type, name);
  if (found.length !== 1) throw new Error(`${found.length} resources ${type} ${name}`);
  return found[0]!;
}
