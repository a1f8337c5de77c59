/**
 * A small local stand-in for Amazon SQS `SendMessage`, for the real `@aws-sdk/client-sqs`
 * pointed at it through `endpoint` (`SQS_ENDPOINT`). The protocol is AWS JSON 1.0 as the
 * SDK speaks it: `POST /` with `X-Amz-Target: AmazonSQS.SendMessage` and a JSON body
 * `{ QueueUrl, MessageBody }`; the answer is `{ MessageId, MD5OfMessageBody }` (Amazon SQS
 * API Reference, `SendMessage`). Any other action is a 400 `InvalidAction`. Tests read the
 * messages received.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";

/** A running stand-in. */
export class SqsStandIn {
  /** Every message received, in order. */
  readonly messages: Array<{ QueueUrl: string; MessageBody: string }> = [];
  private server?: Server;
  url = "";

  /** Starts listening on 127.0.0.1 (a free port). */
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const target = req.headers["x-amz-target"];
        if (target !== "AmazonSQS.SendMessage") {
          res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
          res.end(JSON.stringify({ __type: "com.amazonaws.sqs#InvalidAction", message: `unsupported ${String(target)}` }));
          return;
        }
        const message = JSON.parse(body) as { QueueUrl: string; MessageBody: string };
        this.messages.push(message);
        res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify({ MessageId: randomUUID(), MD5OfMessageBody: createHash("md5").update(message.MessageBody).digest("hex") }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
