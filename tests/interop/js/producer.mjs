// A CloudEvents producer built on the JavaScript SDK (npm `cloudevents`), for interop tests.
//
//   node producer.mjs <url> < specs.json
//
// stdin: a JSON list of event specs
//   {"mode": "binary" | "structured",
//    "attributes": {"id": ..., "source": ..., "type": ..., "time": ..., "myext": 42, ...},
//    "data": {"kind": "text", "value": "..."} | {"kind": "json", "value": ...}
//          | {"kind": "binary", "base64": "..."}          (absent: an event without data)}
// Each event is built with the SDK's `CloudEvent`, encoded with `HTTP.binary` or
// `HTTP.structured` and POSTed to <url> with node's fetch. stdout: one JSON line per event,
// {"id", "mode", "status", "body", "headers"} (`headers`: what the SDK put on the wire).
// Exits 1 if any event could not be built or sent (the line then has "error").

import { CloudEvent, HTTP } from "cloudevents";

const url = process.argv[2];
if (!url) {
  console.error("usage: node producer.mjs <url> < specs.json");
  process.exit(2);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function dataOf(spec) {
  if (spec.data === undefined || spec.data === null) return undefined;
  switch (spec.data.kind) {
    case "text":
    case "json":
      return spec.data.value;
    case "binary":
      // A Buffer: the SDK sends it as raw bytes in binary mode, as data_base64 in structured mode.
      return Buffer.from(spec.data.base64, "base64");
    default:
      throw new Error(`unknown data kind ${JSON.stringify(spec.data.kind)}`);
  }
}

function encode(event, mode) {
  if (mode === "binary") return HTTP.binary(event);
  if (mode === "structured") return HTTP.structured(event);
  throw new Error(`unknown mode ${JSON.stringify(mode)}`);
}

const specs = JSON.parse(await readStdin());
let failed = false;
for (const spec of specs) {
  const line = { id: spec.attributes?.id, mode: spec.mode };
  try {
    const data = dataOf(spec);
    const event = new CloudEvent({ ...spec.attributes, ...(data === undefined ? {} : { data }) });
    const message = encode(event, spec.mode);
    // Header values the SDK leaves as numbers or booleans (extensions) become strings here.
    const headers = Object.fromEntries(
      Object.entries(message.headers).map(([name, value]) => [name, String(value)]),
    );
    const response = await fetch(url, { method: "POST", headers, body: message.body });
    Object.assign(line, { status: response.status, body: await response.text(), headers });
  } catch (error) {
    failed = true;
    line.error = String(error?.stack ?? error);
  }
  process.stdout.write(JSON.stringify(line) + "\n");
}
process.exitCode = failed ? 1 : 0;
