// A CloudEvents subscriber built on the JavaScript SDK (npm `cloudevents`), for interop tests.
//
//   node subscriber.mjs <port> <out.jsonl>
//
// Listens on 127.0.0.1:<port> (0: a free port); the first stdout line is the port it got.
// Every request is decoded with the SDK's `HTTP.toEvent({headers, body})` and answered 202 with
// an empty body (a delivery, not a reply); one JSON line per request is appended to <out.jsonl>:
//   {"path", "headers" (as received), "attributes" (every attribute and extension the SDK
//    decoded), "data" (absent: no data; {"$base64": "..."} for Buffer/Uint8Array data,
//    else the value the SDK decoded)}
// A request the SDK cannot decode is answered 400 and recorded as {"path", "headers", "error",
// "body_base64"}, so that a test sees why.

import { appendFileSync } from "node:fs";
import http from "node:http";
import { HTTP } from "cloudevents";

const [portArg, outPath] = process.argv.slice(2);
if (portArg === undefined || !outPath) {
  console.error("usage: node subscriber.mjs <port> <out.jsonl>");
  process.exit(2);
}

const BASE64_MARKER = "$base64";

function bodyForSdk(headers, raw) {
  // An empty body carries no data.
  if (raw.length === 0) return undefined;
  // The SDK's JSON parser parses strings only: a structured event must be given as text.
  if ((headers["content-type"] ?? "").startsWith("application/cloudevents")) {
    return raw.toString("utf8");
  }
  // Binary mode: the data as bytes (a Buffer), so that non-UTF-8 data survives.
  return raw;
}

function record(event) {
  const attributes = {};
  for (const [name, value] of Object.entries(event)) {
    if (name === "data" || name === "data_base64" || value === undefined) continue;
    attributes[name] = value;
  }
  const line = { attributes };
  if (event.data !== undefined) {
    line.data = ArrayBuffer.isView(event.data)
      ? {
          [BASE64_MARKER]: Buffer.from(
            event.data.buffer,
            event.data.byteOffset,
            event.data.byteLength,
          ).toString("base64"),
        }
      : event.data;
  }
  return line;
}

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const raw = Buffer.concat(chunks);
    const seen = { path: request.url, headers: request.headers };
    let status = 202;
    let line;
    try {
      const event = HTTP.toEvent({ headers: request.headers, body: bodyForSdk(request.headers, raw) });
      line = { ...seen, ...record(event) };
    } catch (error) {
      status = 400;
      line = { ...seen, error: String(error?.stack ?? error), body_base64: raw.toString("base64") };
    }
    appendFileSync(outPath, JSON.stringify(line) + "\n");
    response.writeHead(status, { "content-length": "0" });
    response.end();
  });
});

server.listen(Number(portArg), "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
