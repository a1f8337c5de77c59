/**
 * Raw HTTP/1.1 over a TCP socket (`node:net`), for requests `fetch` will not send as
 * written: an invalid or empty `Host`, malformed percent-encoding kept in the path, any
 * `Content-Encoding` with any bytes.
 */
import { connect } from "node:net";

/** A parsed response: status, headers (lowercased names), body text and, when JSON, the parsed body. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: any;
}

/**
 * The bytes of a request: request line, `Host: 127.0.0.1` unless `host` is given (`null`
 * leaves it out, `""` sends it empty), the headers, `Content-Length` when there is a
 * body, and `Connection: close`.
 */
export function rawRequest(
  method: string,
  target: string,
  options: { host?: string | null; headers?: Record<string, string>; body?: string | Buffer } = {},
): Buffer {
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const lines = [`${method} ${target} HTTP/1.1`];
  const host = options.host === undefined ? "127.0.0.1" : options.host;
  if (host !== null) lines.push(`Host: ${host}`);
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`);
  if (body.byteLength > 0) lines.push(`Content-Length: ${body.byteLength}`);
  lines.push("Connection: close", "", "");
  return Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), body]);
}

/** Decodes a `Transfer-Encoding: chunked` body. */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf("\r\n", at);
    if (end < 0) break;
    const size = parseInt(data.subarray(at, end).toString("latin1"), 16);
    if (!size) break;
    parts.push(data.subarray(end + 2, end + 2 + size));
    at = end + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Sends `request` to the server at `url` (`http://127.0.0.1:port`) and reads the response until the server closes. */
export function sendRaw(url: string, request: Buffer): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(30_000, () => socket.destroy(new Error("no response within 30 s")));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const data = Buffer.concat(chunks);
      const split = data.indexOf("\r\n\r\n");
      if (split < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(data.toString("latin1"))}`));
      const [statusLine = "", ...headerLines] = data.subarray(0, split).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const raw = data.subarray(split + 4);
      const text = (headers["transfer-encoding"] === "chunked" ? dechunk(raw) : raw).toString("utf8");
      let body: any;
      if ((headers["content-type"] ?? "").startsWith("application/json") && text) body = JSON.parse(text);
      resolve({ status: Number(statusLine.split(" ")[1]), headers, text, body });
    });
    socket.write(request);
  });
}
