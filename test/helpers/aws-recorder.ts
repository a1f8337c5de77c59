/**
 * What a function really asks of AWS, recorded on the wire: a recording HTTP proxy in
 * front of each AWS endpoint the code is pointed at (DynamoDB Local, the EventBridge
 * and SQS stand-ins), so that every request of every SDK client the
 * runtime builds is seen, whoever built it. Each request is kept with its operation (the
 * `X-Amz-Target` header of AWS's JSON protocols, e.g. `DynamoDB_20120810.Query`), its JSON
 * body and the label of whoever was being recorded (`recorder.label`), and
 * `iamActionsOf` turns it into the IAM actions it needs, on which resource.
 *
 * The mapping follows AWS's documentation:
 * - DynamoDB ("Actions, resources, and condition keys for Amazon DynamoDB"; "Using IAM with
 *   DynamoDB transactions"): an operation on a table is the action of its name on the
 *   table, on the index for a `Query`/`Scan` with `IndexName`; `TransactWriteItems` needs,
 *   per item, `PutItem` (`Put`), `UpdateItem` (`Update`), `DeleteItem` (`Delete`) or
 *   `ConditionCheckItem` (`ConditionCheck`); `TransactGetItems` needs `GetItem`;
 *   `BatchGetItem` and `BatchWriteItem` are actions of their own, on each table named.
 * - EventBridge (`PutEvents`): `events:PutEvents` on each entry's bus (the `default` bus
 *   when an entry names none).
 * - SQS: `sqs:<Operation>` on the queue of `QueueUrl` (`SendMessageBatch` is authorized as
 *   `sqs:SendMessage`).
 * An operation of another protocol or service has no mapping here: `iamActionsOf` throws,
 * so that a new kind of call cannot go unchecked.
 */
import { createServer, request as httpRequest, type Server } from "node:http";

/** One AWS request seen by a recording proxy. */
export interface AwsRequest {
  /** Who was being recorded (`recorder.label` when the request arrived). */
  label: string;
  /** The `X-Amz-Target` header: `<service prefix>.<Operation>`. */
  target: string;
  /** The request's JSON body. */
  body: Record<string, any>;
  /** The HTTP status it was answered with. */
  status: number;
}

/** A resource an IAM action is needed on, by the name the request used. */
export type ResourceRef =
  | { kind: "table"; table: string }
  | { kind: "index"; table: string; index: string }
  | { kind: "bus"; bus: string }
  | { kind: "queue"; queueUrl: string };

/** One IAM action a request needs, on one resource. */
export interface NeededAction {
  action: string;
  resource: ResourceRef;
}

/** Recording proxies, and what went through them. */
export class AwsRecorder {
  readonly requests: AwsRequest[] = [];
  /** Who the requests arriving now belong to (set before driving a function). */
  label = "";
  private readonly servers: Server[] = [];

  /**
   * Starts a proxy on 127.0.0.1 that forwards every request to `target` (scheme://host:port)
   * as it came, answers with the target's answer, and records it.
   * @returns the proxy's URL, to use as the SDK client's `endpoint`
   */
  async proxy(target: string): Promise<string> {
    const upstream = new URL(target);
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const raw = Buffer.concat(chunks);
        const label = this.label;
        const forward = httpRequest(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
          (answer) => {
            const parts: Buffer[] = [];
            answer.on("data", (chunk: Buffer) => parts.push(chunk));
            answer.on("end", () => {
              let body: Record<string, any> = {};
              try {
                body = JSON.parse(raw.toString("utf8") || "{}");
              } catch {
                body = { unparsed: raw.toString("utf8") };
              }
              this.requests.push({ label, target: String(req.headers["x-amz-target"] ?? `${req.method} ${req.url}`), body, status: answer.statusCode ?? 0 });
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(Buffer.concat(parts));
            });
          },
        );
        forward.on("error", (error) => {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end(String(error));
        });
        forward.end(raw);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.servers.push(server);
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  /** The requests recorded under `label`. */
  of(label: string): AwsRequest[] {
    return this.requests.filter((request) => request.label === label);
  }

  /** Stops the proxies. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** The kinds of a `TransactWriteItems` item and the action each needs. */
const TRANSACT_WRITE_ACTIONS: Record<string, string> = {
  Put: "dynamodb:PutItem",
  Update: "dynamodb:UpdateItem",
  Delete: "dynamodb:DeleteItem",
  ConditionCheck: "dynamodb:ConditionCheckItem",
};

/**
 * The IAM actions `request` needs, each on its resource (see the file's comment).
 * @throws Error for an operation with no mapping here
 */
export function iamActionsOf(request: Pick<AwsRequest, "target" | "body">): NeededAction[] {
  const [service, operation] = request.target.split(".") as [string, string | undefined];
  const body = request.body;
  if (service === "DynamoDB_20120810" && operation) {
    const onTable = (action: string, table: string, index?: string): NeededAction => ({
      action: `dynamodb:${action}`,
      resource: index ? { kind: "index", table, index } : { kind: "table", table },
    });
    switch (operation) {
      case "TransactWriteItems":
        return (body.TransactItems as Array<Record<string, { TableName: string }>>).map((item) => {
          const [kind, action] = Object.entries(item)[0]!;
          const needed = TRANSACT_WRITE_ACTIONS[kind];
          if (!needed) throw new Error(`TransactWriteItems item of unknown kind ${kind}`);
          return { action: needed, resource: { kind: "table", table: action.TableName } };
        });
      case "TransactGetItems":
        return (body.TransactItems as Array<{ Get: { TableName: string } }>).map((item) => onTable("GetItem", item.Get.TableName));
      case "BatchGetItem":
      case "BatchWriteItem":
        return Object.keys(body.RequestItems as object).map((table) => onTable(operation, table));
      case "GetItem":
      case "PutItem":
      case "UpdateItem":
      case "DeleteItem":
      case "Query":
      case "Scan":
        return [onTable(operation, body.TableName as string, body.IndexName as string | undefined)];
      default:
        throw new Error(`No IAM mapping for DynamoDB ${operation}`);
    }
  }
  if (request.target === "AWSEvents.PutEvents") {
    return (body.Entries as Array<{ EventBusName?: string }>).map((entry) => ({
      action: "events:PutEvents",
      resource: { kind: "bus", bus: entry.EventBusName ?? "default" },
    }));
  }
  if (service === "AmazonSQS" && operation && typeof body.QueueUrl === "string") {
    return [{ action: `sqs:${operation === "SendMessageBatch" ? "SendMessage" : operation}`, resource: { kind: "queue", queueUrl: body.QueueUrl } }];
  }
  throw new Error(`No IAM mapping for the request ${request.target}`);
}
