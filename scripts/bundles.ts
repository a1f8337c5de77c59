/**
 * The Lambda bundles, built as SST 4.17 builds them, and what they cost at a cold start.
 *
 * SST builds a Node function with esbuild, in Go (sst/sst `pkg/runtime/node/build.go`,
 * `Runtime.Build`): platform node, format ESM, target esnext, bundle, `keepNames`,
 * `mainFields` ["module", "main"], `sharp` and `pg-native` always external, a banner that
 * gives ESM code `require`, `__filename` and `__dirname`, and, outside `sst dev`, the three
 * minify flags (whitespace, syntax, identifiers) when `nodejs.minify` is on: the component
 * documents it as default `true` (`.sst/platform/src/components/aws/function.ts`,
 * `nodejs.minify`), and the infra sets it (infra/settings.ts `FUNCTION_DEFAULTS`). The esbuild is the one SST pins: `github.com/evanw/esbuild v0.21.5` in
 * sst's `go.mod`, and `"esbuild": "0.21.5"` in `.sst/platform/package.json`; this project's
 * dev dependency `esbuild-sst` is that same 0.21.5 under an npm alias (checked at build), so
 * that the top-level `esbuild` stays the one vite and tsx need. Two differences, neither of which
 * changes the code that runs: SST also writes a linked source map (uploaded apart and left
 * out of the zip; here none), and it names the file `bundle.mjs` in the function's own
 * folder (here `<name>/<file>.mjs`).
 *
 * `buildBundles(outDir)` builds every handler: each entry of `HTTP_FUNCTIONS`
 * (functions/routes.ts), the daily job and the event publisher, plus a baseline that only
 * constructs a DynamoDB client. `measureInit` times a bundle's module initialisation in
 * fresh `node` processes; `invokeBundle` loads a bundle in a fresh `node` process (no tsx,
 * no project `node_modules` when `outDir` is outside the project) and calls its handler.
 *
 * `npm run bundles` builds them all into a temporary folder, prints each bundle's size and
 * init time against the baseline, where the bytes of the consumption bundle go, and writes
 * bench/bundles.json.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, version as esbuildVersion, type BuildOptions, type Metafile } from "esbuild-sst";
import { HTTP_FUNCTIONS, PACKAGE_FILES, type HttpFunctionName } from "../functions/routes.js";

/** The project's root folder (where `functions/` is). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** A fresh temporary folder for bundles (outside the project, so that a bundle cannot fall back on its `node_modules`). */
export function temporaryBundleDir(): string {
  return mkdtempSync(join(tmpdir(), `user-credits-bundles-${randomUUID().slice(0, 8)}-`));
}

/** The esbuild version SST 4.17 builds with (sst `go.mod`, `.sst/platform/package.json`). */
export const SST_ESBUILD_VERSION = "0.21.5";

/**
 * SST's esbuild options for a Node function deployed (not `sst dev`), ESM, with the
 * default `nodejs` settings (sst/sst `pkg/runtime/node/build.go`): what every bundle here is
 * built with. `outfile` and `entryPoints` are per bundle.
 */
export const SST_ESBUILD_OPTIONS = {
  platform: "node",
  format: "esm",
  target: "esnext",
  bundle: true,
  keepNames: true,
  mainFields: ["module", "main"],
  external: ["sharp", "pg-native"],
  banner: {
    js: [
      `import { createRequire as topLevelCreateRequire } from 'module';`,
      `const require = topLevelCreateRequire(import.meta.url);`,
      `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
      `const __filename = topLevelFileUrlToPath(import.meta.url)`,
      `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
      "", // nodejs.banner: none
    ].join("\n"),
  },
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true,
  sourcemap: false,
  metafile: true,
  write: true,
  logLevel: "silent",
} as const satisfies BuildOptions;

/** Name of the baseline bundle: a handler that only constructs a DynamoDB client. */
export const BASELINE = "baseline";

/** The baseline's source: `new DynamoDBClient({})` from `@aws-sdk/client-dynamodb`, nothing else. */
export const BASELINE_SOURCE = [
  `import { DynamoDBClient } from "@aws-sdk/client-dynamodb";`,
  `export const client = new DynamoDBClient({});`,
  `export const handler = async () => ({ ok: true });`,
].join("\n");

/** One Lambda handler to bundle. */
export interface BundleEntry {
  /** `HTTP_FUNCTIONS` key, `dailyJob`, `publisher` or {@link BASELINE}. */
  name: string;
  /** The handler as SST names it, e.g. `functions/orders.handler` (the baseline: `baseline.handler`). */
  handler: string;
}

/** Every handler the infrastructure deploys: the HTTP functions (whatever the table holds), the daily job, the publisher. */
export function bundleEntries(): BundleEntry[] {
  return [
    ...Object.entries(HTTP_FUNCTIONS).map(([name, handler]) => ({ name, handler: handler as string })),
    { name: "dailyJob", handler: "functions/daily-job.handler" },
    { name: "publisher", handler: "functions/publisher.handler" },
  ];
}

/** A built bundle. */
export interface BuiltBundle extends BundleEntry {
  /** Absolute path of the `.mjs` file. */
  file: string;
  /** The handler's export name (`handler`). */
  exportName: string;
  /** Size of the `.mjs` file, bytes. */
  bytes: number;
  /** esbuild's metafile of this build (inputs, and what each put in the output). */
  metafile: Metafile;
  /** Bytes in the output per npm package (`@scope/name` or `name`), or `(project)` for this repository's code. */
  packages: Record<string, number>;
}

/** The npm package an esbuild input path belongs to (the innermost `node_modules/...`), or `(project)`. */
export function packageOf(inputPath: string): string {
  const parts = inputPath.split("/");
  const at = parts.lastIndexOf("node_modules");
  if (at < 0) return "(project)";
  const first = parts[at + 1] ?? "";
  return first.startsWith("@") ? `${first}/${parts[at + 2] ?? ""}` : first;
}

/** True when the bundle's inputs include files of npm package `name`. */
export function includesPackage(bundle: Pick<BuiltBundle, "metafile">, name: string): boolean {
  return Object.keys(bundle.metafile.inputs).some((input) => packageOf(input) === name);
}

/**
 * Builds the bundles of `entries` (default: every deployed handler, then the baseline) into
 * `outDir`, each as `<outDir>/<name>/<file>.mjs`, with {@link SST_ESBUILD_OPTIONS}.
 * @param outDir an absolute folder; outside the project, so that a bundle cannot reach the project's `node_modules`
 * @throws an Error listing esbuild's errors when a build fails (an unresolvable import, a syntax error, ...),
 *   or when the installed esbuild is not {@link SST_ESBUILD_VERSION}
 */
export async function buildBundles(
  outDir: string,
  entries: BundleEntry[] = [...bundleEntries(), { name: BASELINE, handler: "baseline.handler" }],
): Promise<BuiltBundle[]> {
  if (esbuildVersion !== SST_ESBUILD_VERSION) {
    throw new Error(`esbuild ${esbuildVersion} is installed; SST 4.17 builds with ${SST_ESBUILD_VERSION}.`);
  }
  return Promise.all(
    entries.map(async (entry) => {
      const dot = entry.handler.lastIndexOf(".");
      const source = entry.handler.slice(0, dot);
      const exportName = entry.handler.slice(dot + 1);
      const file = join(outDir, entry.name, `${basename(source)}.mjs`);
      mkdirSync(dirname(file), { recursive: true });
      const input: BuildOptions =
        entry.name === BASELINE
          ? { stdin: { contents: BASELINE_SOURCE, resolveDir: PROJECT_ROOT, sourcefile: "baseline.ts", loader: "ts" } }
          : { entryPoints: [join(PROJECT_ROOT, `${source}.ts`)] };
      let result;
      try {
        result = await build({ ...SST_ESBUILD_OPTIONS, ...input, absWorkingDir: PROJECT_ROOT, outfile: file });
      } catch (error) {
        const errors = (error as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors ?? [];
        const details = errors.map((e) => `${e.text}${e.location ? ` (${e.location.file}:${e.location.line})` : ""}`).join("; ");
        throw new Error(`Bundling ${entry.handler} failed: ${details || String(error)}`);
      }
      // SST's `copyFiles` (infra/api.ts): the files copied into the package beside the bundle,
      // which the function reads from its root (the child's working folder here, as
      // LAMBDA_TASK_ROOT in Lambda).
      for (const { from, to } of PACKAGE_FILES[entry.name as HttpFunctionName] ?? []) cpSync(join(PROJECT_ROOT, from), join(dirname(file), to), { recursive: true });
      const metafile = result.metafile!; // metafile: true
      const packages: Record<string, number> = {};
      for (const output of Object.values(metafile.outputs)) {
        for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
          const name = packageOf(path);
          packages[name] = (packages[name] ?? 0) + bytesInOutput;
        }
      }
      return { ...entry, file, exportName, bytes: statSync(file).size, metafile, packages };
    }),
  );
}

/** What a child process reports on its last line. */
const RESULT_MARK = "@@bundle-result ";

/**
 * The child's program (`node --input-type=module -e`): imports the bundle given as the
 * first argument, timing the import with `performance.now()`; with a second argument (an
 * export name) it reads an event (JSON) from standard input and calls that export with it
 * and a Lambda-like context. It prints one line, {@link RESULT_MARK} + JSON.
 */
const CHILD = `
const [file, exportName, remainingMs, functionName] = process.argv.slice(1);
const report = (value) => process.stdout.write("\\n${RESULT_MARK}" + JSON.stringify(value) + "\\n", () => process.exit(0));
const describe = (error) => ({ name: error?.name, message: error?.message ?? String(error), stack: error?.stack });
const started = performance.now();
let mod;
try {
  mod = await import(file);
} catch (error) {
  report({ ok: false, phase: "import", error: describe(error) });
}
if (mod) {
  const importMs = performance.now() - started;
  if (!exportName) report({ ok: true, importMs, sinceStartMs: performance.now() });
  else {
    let input = "";
    for await (const chunk of process.stdin) input += chunk;
    const deadline = Date.now() + Number(remainingMs);
    const context = {
      functionName, functionVersion: "$LATEST", memoryLimitInMB: "1024",
      invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:" + functionName,
      awsRequestId: crypto.randomUUID(), logGroupName: "/aws/lambda/" + functionName, logStreamName: "local",
      callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    try {
      if (typeof mod[exportName] !== "function") throw new Error("the bundle exports no function " + exportName);
      const result = await mod[exportName](JSON.parse(input), context);
      report({ ok: true, importMs, result });
    } catch (error) {
      report({ ok: false, phase: "invoke", importMs, error: describe(error) });
    }
  }
}
`;

/** What a child process reported. */
export type ChildReport =
  | { ok: true; importMs: number; sinceStartMs?: number; result?: unknown }
  | { ok: false; phase: "import" | "invoke"; importMs?: number; error: { name?: string; message: string; stack?: string } };

/** The outcome of running a bundle in a fresh `node` process. */
export interface ChildRun {
  report: ChildReport;
  /** What the process wrote besides its report (the handler's logs). */
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/**
 * Runs {@link CHILD} in a fresh `node` process with only `env` (plus `PATH` and `HOME`), in
 * the bundle's folder, as Lambda runs a function in /var/task.
 * @throws when the process prints no report (it crashed, or was killed after `timeoutMs`)
 */
function runChild(args: string[], options: { env: Record<string, string>; stdin?: string; cwd: string; timeoutMs?: number }): Promise<ChildRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", CHILD, "--", ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (exitCode) => {
      clearTimeout(timer);
      const lines = stdout.split("\n");
      const line = lines.findLast((l) => l.startsWith(RESULT_MARK));
      if (!line) {
        reject(new Error(`node exited (${exitCode}) without a report.\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`));
        return;
      }
      const logs = lines.filter((l) => l !== line).join("\n").trim();
      resolvePromise({ report: JSON.parse(line.slice(RESULT_MARK.length)) as ChildReport, stdout: logs, stderr, exitCode });
    });
    child.stdin.end(options.stdin ?? "");
  });
}

/** Settings of one invocation. */
export interface InvokeOptions {
  /** The function's environment (its configuration: `TABLE_NAME`, `DYNAMODB_ENDPOINT`, ...). */
  env: Record<string, string>;
  /** What `context.getRemainingTimeInMillis()` starts at (default 15 minutes). */
  remainingMs?: number;
}

/**
 * Loads `bundle` in a fresh `node` process and calls its handler once with `event` (JSON)
 * and a Lambda-like context.
 * @returns the child's report: `{ ok: true, result }`, or `{ ok: false, phase, error }` when the import or the call threw
 */
export function invokeBundle(bundle: Pick<BuiltBundle, "file" | "exportName" | "name">, event: unknown, options: InvokeOptions): Promise<ChildRun> {
  const args = [pathToFileURL(bundle.file).href, bundle.exportName, String(options.remainingMs ?? 15 * 60_000), bundle.name];
  return runChild(args, { env: options.env, stdin: JSON.stringify(event), cwd: dirname(bundle.file) });
}

/** The median of `values` (the mean of the two middle values for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Module initialisation of each bundle: the time, in ms, of `await import(bundle)` measured
 * inside a fresh `node` process, `runs` times per bundle. The runs go round-robin (one of
 * each bundle, then again), so that a busy spell of the machine weighs on every bundle alike.
 * @param env the processes' environment (what a deployed function has before its first request)
 * @returns per bundle file, each run's time and their median
 * @throws when an import fails
 */
export async function measureInit(
  bundles: ReadonlyArray<Pick<BuiltBundle, "file">>,
  runs = 15,
  env: Record<string, string> = {},
): Promise<Map<string, { runs: number[]; medianMs: number }>> {
  const times = new Map<string, number[]>(bundles.map((bundle) => [bundle.file, []]));
  for (let i = 0; i < runs; i++) {
    for (const bundle of bundles) {
      const { report } = await runChild([pathToFileURL(bundle.file).href], { env, cwd: dirname(bundle.file) });
      if (!report.ok) throw new Error(`importing ${bundle.file} failed: ${report.error.message}`);
      times.get(bundle.file)!.push(report.importMs);
    }
  }
  return new Map([...times].map(([file, list]) => [file, { runs: list, medianMs: median(list) }]));
}

/** One row of the report. */
export interface BundleReport {
  name: string;
  handler: string;
  /** Minified size, KB (1024 bytes). */
  kb: number;
  /** Size over the baseline's. */
  sizeRatio: number;
  /** Median module initialisation, ms. */
  initMs: number;
  /** Init time over the baseline's. */
  initRatio: number;
  /** Which of the Stripe, EventBridge and SQS SDKs the bundle holds. */
  sdks: string[];
  /** The packages that put the most bytes in the bundle. */
  topPackages: Array<{ name: string; kb: number }>;
}

/** The SDKs that must be only in the bundles that call them (functions/runtime.ts). */
export const HEAVY_SDKS = ["stripe", "@aws-sdk/client-eventbridge", "@aws-sdk/client-sqs"] as const;

const kb = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;
const ratio = (value: number, base: number) => Math.round((value / base) * 100) / 100;

/** The packages that put the most bytes in `bundle`, largest first. */
export function topPackages(bundle: Pick<BuiltBundle, "packages">, count = 12): Array<{ name: string; kb: number }> {
  return Object.entries(bundle.packages)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, bytes]) => ({ name, kb: kb(bytes) }));
}

/** `npm run bundles` (`INIT_RUNS`: init measurements per bundle, default 15). */
async function main() {
  const runs = Number(process.env.INIT_RUNS ?? 15);
  const outDir = temporaryBundleDir();
  try {
    const bundles = await buildBundles(outDir);
    // What a deployed function has at import: no secret or table is read before the first request.
    const env = { AWS_REGION: "us-east-1", TABLE_NAME: "user-credits", AWS_LAMBDA_FUNCTION_NAME: "bench", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
    process.stderr.write(`measuring module init: ${runs} fresh node processes per bundle...\n`);
    const init = await measureInit(bundles, runs, env);
    const baseline = bundles.find((b) => b.name === BASELINE)!;
    const baselineMs = init.get(baseline.file)!.medianMs;
    const rows: BundleReport[] = bundles.map((b) => {
      const initMs = init.get(b.file)!.medianMs;
      return {
        name: b.name,
        handler: b.handler,
        kb: kb(b.bytes),
        sizeRatio: ratio(b.bytes, baseline.bytes),
        initMs: Math.round(initMs * 10) / 10,
        initRatio: ratio(initMs, baselineMs),
        sdks: HEAVY_SDKS.filter((sdk) => includesPackage(b, sdk)),
        topPackages: topPackages(b),
      };
    });
    const pad = (value: unknown, width: number) => String(value).padStart(width);
    console.log(`esbuild ${esbuildVersion} with SST 4.17's settings; init: median of ${runs} fresh node ${process.version} processes (await import)\n`);
    console.log(`${"bundle".padEnd(12)}${pad("KB", 9)}${pad("x base", 8)}${pad("init ms", 9)}${pad("x base", 8)}  SDKs beyond DynamoDB`);
    for (const row of rows) {
      console.log(`${row.name.padEnd(12)}${pad(row.kb, 9)}${pad(row.sizeRatio, 8)}${pad(row.initMs, 9)}${pad(row.initRatio, 8)}  ${row.sdks.join(", ") || "-"}`);
    }
    const consumption = rows.find((r) => r.name === "consumption");
    if (consumption) {
      console.log(`\nconsumption bundle, KB by package:`);
      for (const p of consumption.topPackages) console.log(`  ${p.name.padEnd(42)}${pad(p.kb, 7)}`);
    }
    const out = join(PROJECT_ROOT, "bench", "bundles.json");
    const report = { measuredAt: new Date().toISOString(), node: process.version, esbuild: esbuildVersion, initRuns: runs, bundles: rows };
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwritten: ${out}`);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}

