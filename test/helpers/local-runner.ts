/**
 * Runs `npm start` (and `npm run expire`) as a user would, as child processes, against
 * the test run's DynamoDB Local and a table of their own, and talks to the server over
 * HTTP.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "../../scripts/dynamodb-local.js";

/** A running `npm start`. */
export interface LocalRunner {
  url: string;
  apiKey: string;
  output: () => string;
  /** fetch against the runner with the API key (unless `auth: false`) and a JSON body. */
  request(method: string, path: string, options?: { body?: unknown; headers?: Record<string, string>; auth?: boolean; raw?: string }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

const env = (extra: Record<string, string>) => ({
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? "",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  POWERTOOLS_LOG_LEVEL: "WARN",
  ...extra,
});

/** Starts `npm start` with `vars` and waits for it to listen. */
export async function startLocalRunner(vars: Record<string, string>): Promise<LocalRunner> {
  const port = await freePort();
  const apiKey = vars.API_KEY ?? "e2e-key-0123456789";
  const child: ChildProcess = spawn("npm", ["start", "--silent"], {
    env: env({ PORT: String(port), API_KEY: apiKey, ...vars }),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes("listening on")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    apiKey,
    output: () => output,
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (options.auth !== false) headers.authorization = `Bearer ${apiKey}`;
      let body: string | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["content-type"] ??= "application/json";
      }
      const response = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(-child.pid!, "SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
    },
  };
}

/** Runs `npm run expire` with `vars` and returns its printed summary. */
export async function runExpire(vars: Record<string, string>): Promise<{ code: number; summary: any; output: string }> {
  const child = spawn("npm", ["run", "--silent", "expire"], { env: env(vars), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number>((resolve) => child.once("exit", (c) => resolve(c ?? -1)));
  const line = output.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  return { code, summary: line ? JSON.parse(line) : undefined, output };
}
