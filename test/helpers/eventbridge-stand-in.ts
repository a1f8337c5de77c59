/**
 * A small local stand-in for Amazon EventBridge's `PutEvents`, for the real
 * `@aws-sdk/client-eventbridge` pointed at it through `endpoint`. The protocol is AWS JSON
 * 1.1, as the SDK speaks it: `POST /` with `X-Amz-Target: AWSEvents.PutEvents` and a JSON
 * body `{ Entries: [...] }`; the answer is `{ FailedEntryCount, Entries }` with, at each
 * request entry's index, `{ EventId }` or `{ ErrorCode, ErrorMessage }` (EventBridge API
 * Reference, `PutEvents`). As EventBridge does, more than 10 entries (or none) is a 400
 * `ValidationException`.
 *
 * Tests read what was received (`calls`, `delivered`), make the next calls fail as a whole
 * (`failNext`: HTTP 500 `InternalException`) or reject chosen entries (`rejectNext`).
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll } from "vitest";
import { createEventBridgeBus, type EventBridgeBus } from "../../core/bus/eventbridge.js";

/** An entry as the SDK sent it (`Time` in epoch seconds, as AWS JSON serializes timestamps). */
export interface ReceivedEntry {
  Source?: string;
  DetailType?: string;
  Detail?: string;
  EventBusName?: string;
  Time?: number;
  Resources?: string[];
}

/** One request the stand-in received, and how it answered. */
export interface PutEventsCall {
  target: string;
  entries: ReceivedEntry[];
  status: number;
  /** Per entry: the EventId given, or the ErrorCode (empty when the call failed as a whole). */
  results: Array<{ EventId: string } | { ErrorCode: string; ErrorMessage: string }>;
}

/** A running stand-in. */
export class EventBridgeStandIn {
  readonly calls: PutEventsCall[] = [];
  /** What the next calls do, in order ("fail": HTTP 500); calls beyond it answer normally. */
  private plan: Array<"ok" | "fail"> = [];
  private rejections: Array<{ match: (entry: ReceivedEntry) => boolean; left: number }> = [];
  private server?: Server;
  url = "";

  /** Starts listening on 127.0.0.1 (a free port). */
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const target = String(req.headers["x-amz-target"] ?? "");
        let body: { Entries?: ReceivedEntry[] } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
        } catch {
          // answered below as a validation error
        }
        const { status, payload, call } = this.respond(req.method ?? "GET", target, body);
        if (call) this.calls.push(call);
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomUUID() });
        res.end(JSON.stringify(payload));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    return this;
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /**
   * After `skip` more calls answered normally, the next `count` PutEvents calls fail as a
   * whole: HTTP 500 `InternalException`, nothing accepted.
   */
  failNext(count = 1, options: { skip?: number } = {}): void {
    for (let i = 0; i < (options.skip ?? 0); i++) this.plan.push("ok");
    for (let i = 0; i < count; i++) this.plan.push("fail");
  }

  /** The next `count` entries matching `match` are rejected (`ErrorCode` "InternalFailure"); the rest of their call is accepted. */
  rejectNext(match: (entry: ReceivedEntry) => boolean, count = 1): void {
    this.rejections.push({ match, left: count });
  }

  /** Every entry the stand-in accepted (given an EventId), in the order received. */
  get delivered(): ReceivedEntry[] {
    return this.calls.flatMap((call) => call.entries.filter((_, index) => call.results[index] && "EventId" in call.results[index]!));
  }

  /** The `detail` of each accepted entry, parsed. */
  deliveredDetails(): Array<Record<string, unknown>> {
    return this.delivered.map((entry) => JSON.parse(entry.Detail ?? "null") as Record<string, unknown>);
  }

  /** Forgets the calls received so far (failures and rejections still pending are kept). */
  reset(): void {
    this.calls.length = 0;
  }

  private respond(method: string, target: string, body: { Entries?: ReceivedEntry[] }): { status: number; payload: unknown; call?: PutEventsCall } {
    if (method !== "POST" || target !== "AWSEvents.PutEvents") {
      return { status: 400, payload: { __type: "UnknownOperationException", message: `not a PutEvents call: ${method} ${target}` } };
    }
    const entries = Array.isArray(body.Entries) ? body.Entries : [];
    if (entries.length < 1 || entries.length > 10) {
      const message = `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10 (got ${entries.length})`;
      return { status: 400, payload: { __type: "ValidationException", message }, call: { target, entries, status: 400, results: [] } };
    }
    if (this.plan.shift() === "fail") {
      return { status: 500, payload: { __type: "InternalException", message: "stand-in failure" }, call: { target, entries, status: 500, results: [] } };
    }
    const results = entries.map((entry) => {
      const rule = this.rejections.find((r) => r.left > 0 && r.match(entry));
      if (rule) {
        rule.left--;
        return { ErrorCode: "InternalFailure", ErrorMessage: "stand-in rejection" };
      }
      return { EventId: randomUUID() };
    });
    this.rejections = this.rejections.filter((r) => r.left > 0);
    const failed = results.filter((r) => "ErrorCode" in r).length;
    return { status: 200, payload: { FailedEntryCount: failed, Entries: results }, call: { target, entries, status: 200, results } };
  }
}

/**
 * Registers a test file's hooks: a started stand-in, and the service's EventBridge bus
 * (`busName`) pointed at it with no SDK retry (a failure reaches the publisher). Read
 * `bus` inside tests (it is set in `beforeAll`).
 */
export function useEventBridgeStandIn(busName: string): { standIn: EventBridgeStandIn; readonly bus: EventBridgeBus } {
  const standIn = new EventBridgeStandIn();
  let bus: EventBridgeBus | undefined;
  beforeAll(async () => {
    await standIn.start();
    bus = createEventBridgeBus({ busName, endpoint: standIn.url, region: "us-east-1", maxAttempts: 1 });
  });
  afterAll(async () => {
    bus?.client.destroy();
    await standIn.stop();
  });
  return {
    standIn,
    get bus() {
      if (!bus) throw new Error("the EventBridge stand-in is not started yet");
      return bus;
    },
  };
}
