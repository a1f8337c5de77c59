/**
 * `npm run smoke -- --url <api url> --key <api key>`: checks a deployed stage (or
 * `npm start`) from the outside, WITHOUT WRITING ANYTHING. Every request is a read or one
 * the service refuses before it touches the table:
 *
 * 1. `GET /offers` without `Authorization` -> 401 JSON `unauthorized` (API.md "Auth").
 * 2. `GET /offers` with the key -> 200 `{ "offers": [...] }` (API.md "Offers").
 * 3. `GET` of a route that does not exist -> 404 JSON `not_found` (API.md "Conventions").
 * 4. `POST /webhooks/stripe` with a body that is no event and a forged `Stripe-Signature`
 *    -> 400 `invalid_signature` whose message says the signature does not verify: proof
 *    that the stage has a webhook signing secret and checks signatures with it
 *    (core/payments/stripe-webhook.ts). A stage without a secret refuses the request too,
 *    but with "No webhook signing secret is configured": that is reported as a failure
 *    (Stripe's deliveries would all be refused), unless `--no-webhook-secret` says the
 *    stage runs without Stripe on purpose, in which case exactly that refusal is expected.
 * 5. `GET /openapi.json` (no key) -> 200 JSON with `openapi` "3.1.x" (API.md
 *    "Machine-readable contract").
 *
 * Each check prints one line, `ok` or `FAILED` with what was expected and what came back;
 * a request nobody answers (connection refused, DNS, timeout: `--timeout` ms, default
 * 10000) is a failed check with the network error's own words. Exit code 0 when every check
 * passed, 1 when one failed, 2 for bad arguments. Arguments are read with node's
 * `util.parseArgs`; the key may come from `API_KEY` instead of `--key` (keeps it out of the
 * process list).
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

/** What one request came back with: status and body (parsed when JSON), or the network error. */
type Reply = { status: number; contentType: string; text: string; json: unknown } | { error: string };

/** The outcome of one check: `problem` is undefined when it passed. */
interface CheckResult {
  name: string;
  problem?: string;
}

/** One check: a name (as printed) and what it does. */
interface Check {
  name: string;
  run(): Promise<string | undefined>;
}

const USAGE = `usage: npm run smoke -- --url <api url> --key <api key> [--timeout <ms>] [--no-webhook-secret]
  --url                 the stage's API, e.g. https://abc123.execute-api.us-east-1.amazonaws.com
  --key                 a valid API key (or set API_KEY)
  --timeout             per request, in milliseconds (default 10000)
  --no-webhook-secret   the stage runs without Stripe: expect webhooks refused for want of a secret`;

/**
 * Sends one request and reads the whole answer, never throwing: a network failure or a
 * timeout comes back as `{ error }` with a readable reason.
 */
async function send(url: string, init: RequestInit, timeoutMs: number): Promise<Reply> {
  try {
    const response = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    const contentType = response.headers.get("content-type") ?? "";
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, contentType, text, json };
  } catch (error) {
    return { error: networkReason(error, timeoutMs) };
  }
}

/** A network error in words: the underlying cause's code and message when fetch gives one. */
function networkReason(error: unknown, timeoutMs: number): string {
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === "TimeoutError" || err?.name === "AbortError") return `no answer within ${timeoutMs} ms`;
  const cause = err?.cause;
  if (cause?.message) return `could not connect: ${cause.message}`;
  if (cause?.code) return `could not connect: ${cause.code}`;
  return `request failed: ${err?.message ?? String(error)}`;
}

/** How a reply reads in a report: `401 {"error":...}` (body cut to 200 characters), or its network error. */
function describe(reply: Reply): string {
  if ("error" in reply) return reply.error;
  const body = reply.text.length > 200 ? `${reply.text.slice(0, 200)}...` : reply.text;
  return `${reply.status} ${body || "(empty body)"}`;
}

/** The `error.code` of a JSON error body, if it is one. */
function errorCode(reply: Reply): string | undefined {
  if ("error" in reply) return undefined;
  const body = reply.json as { error?: { code?: unknown } } | undefined;
  return typeof body?.error?.code === "string" ? body.error.code : undefined;
}

/** The `error.message` of a JSON error body, if it is one. */
function errorMessage(reply: Reply): string {
  if ("error" in reply) return "";
  const body = reply.json as { error?: { message?: unknown } } | undefined;
  return typeof body?.error?.message === "string" ? body.error.message : "";
}

/** "expected X, got Y", the failure text of every check. */
const expected = (what: string, reply: Reply) => `expected ${what}, got ${describe(reply)}`;

/** The checks against `base` (no trailing slash), in the order they run. */
function checks(base: string, key: string, timeoutMs: number, withoutWebhookSecret: boolean): Check[] {
  const get = (path: string, headers: Record<string, string> = {}) => send(`${base}${path}`, { method: "GET", headers }, timeoutMs);
  const auth = { authorization: `Bearer ${key}` };
  return [
    {
      name: "401 without the API key (GET /offers)",
      async run() {
        const reply = await get("/offers");
        if ("error" in reply || reply.status !== 401 || errorCode(reply) !== "unauthorized") {
          return expected(`401 {"error":{"code":"unauthorized"}}`, reply);
        }
        return undefined;
      },
    },
    {
      name: "GET /offers with the API key",
      async run() {
        const reply = await get("/offers", auth);
        const offers = "error" in reply ? undefined : (reply.json as { offers?: unknown } | undefined)?.offers;
        if ("error" in reply || reply.status !== 200 || !Array.isArray(offers)) {
          return expected(`200 {"offers":[...]}`, reply);
        }
        return undefined;
      },
    },
    {
      name: "404 JSON for an unknown route",
      async run() {
        const path = `/smoke-check/no-such-route-${randomBytes(4).toString("hex")}`;
        const reply = await get(path, auth);
        if ("error" in reply || reply.status !== 404 || errorCode(reply) !== "not_found") {
          return expected(`404 {"error":{"code":"not_found"}} for GET ${path}`, reply);
        }
        return undefined;
      },
    },
    {
      name: "webhook refuses a bad Stripe-Signature (POST /webhooks/stripe)",
      async run() {
        // A current timestamp, so that the refusal is the signature's and not its age.
        const signature = `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}`;
        const reply = await send(
          `${base}/webhooks/stripe`,
          {
            method: "POST",
            headers: { "content-type": "application/json", "stripe-signature": signature },
            body: JSON.stringify({ smoke: "not a Stripe event" }),
          },
          timeoutMs,
        );
        const refused = !("error" in reply) && reply.status === 400 && errorCode(reply) === "invalid_signature";
        const noSecret = /signing secret/i.test(errorMessage(reply));
        if (withoutWebhookSecret) {
          return refused && noSecret ? undefined : expected(`400 invalid_signature "No webhook signing secret is configured" (--no-webhook-secret)`, reply);
        }
        if (refused && noSecret) {
          return `the stage has no webhook signing secret, so every Stripe delivery is refused, signed or not (set StripeWebhookSecret, or pass --no-webhook-secret); got ${describe(reply)}`;
        }
        if (!refused || !/does not verify/i.test(errorMessage(reply))) {
          return expected(`400 {"error":{"code":"invalid_signature","message":"The Stripe-Signature header does not verify."}}`, reply);
        }
        return undefined;
      },
    },
    {
      name: "GET /openapi.json serves an OpenAPI 3.1 document",
      async run() {
        const reply = await get("/openapi.json");
        const version = "error" in reply ? undefined : (reply.json as { openapi?: unknown } | undefined)?.openapi;
        if ("error" in reply || reply.status !== 200 || typeof version !== "string" || !version.startsWith("3.1")) {
          return expected(`200 JSON with "openapi": "3.1.x"`, reply);
        }
        return undefined;
      },
    },
  ];
}

/** Runs every check in order, printing a line for each, and returns their outcomes. */
async function runChecks(list: Check[], print: (line: string) => void): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of list) {
    const problem = await check.run();
    print(problem === undefined ? `ok      ${check.name}` : `FAILED  ${check.name}: ${problem}`);
    results.push(problem === undefined ? { name: check.name } : { name: check.name, problem });
  }
  return results;
}

/** Reads the arguments, or prints the usage and exits with 2. */
function readArguments(): { url: string; key: string; timeoutMs: number; withoutWebhookSecret: boolean } {
  const usage = (message: string): never => {
    console.error(`smoke: ${message}\n${USAGE}`);
    process.exit(2);
  };
  let values: { url?: string; key?: string; timeout?: string; "no-webhook-secret"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        key: { type: "string" },
        timeout: { type: "string" },
        "no-webhook-secret": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return usage((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const key = values.key ?? process.env.API_KEY;
  if (!values.url) return usage("--url is required");
  if (!key) return usage("--key is required (or set API_KEY)");
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    return usage(`--url is not a URL: ${values.url}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return usage(`--url must be http(s): ${values.url}`);
  const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) return usage(`--timeout must be a positive number of milliseconds: ${values.timeout}`);
  return { url: url.toString().replace(/\/+$/, ""), key, timeoutMs, withoutWebhookSecret: values["no-webhook-secret"] ?? false };
}

const { url, key, timeoutMs, withoutWebhookSecret } = readArguments();
console.log(`smoke: ${url} (read-only checks, ${timeoutMs} ms per request)`);
const results = await runChecks(checks(url, key, timeoutMs, withoutWebhookSecret), (line) => console.log(line));
const failed = results.filter((result) => result.problem !== undefined);
if (failed.length === 0) {
  console.log(`smoke: all ${results.length} checks passed`);
} else {
  console.log(`smoke: ${failed.length} of ${results.length} checks FAILED: ${failed.map((result) => result.name).join("; ")}`);
  process.exitCode = 1;
}
