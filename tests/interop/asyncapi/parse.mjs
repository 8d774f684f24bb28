// Parses an AsyncAPI document with the official parser (@asyncapi/parser, pinned by
// package-lock.json) and prints its diagnostics as one JSON object on stdout:
//   {"parsed": true, "diagnostics": [{"code", "severity", "message", "path"}, ...]}
// severity is "error", "warning", "information" or "hint". Remote $refs are refused, so the
// check reads nothing from the network. Exit code 0 once it ran (the caller judges), 2 on usage.
//
//   usage: node parse.mjs FILE
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Parser } from "@asyncapi/parser";

const SEVERITIES = ["error", "warning", "information", "hint"];

const refuseRemote = (schema) => ({
  schema,
  order: 1,
  read: (uri) => {
    throw new Error(`remote $ref ${uri} refused: the document must stand alone`);
  },
});

async function main(argv) {
  if (argv.length !== 1) {
    console.error("usage: node parse.mjs FILE");
    return 2;
  }
  const path = resolve(argv[0]);
  const text = await readFile(path, "utf8");
  const parser = new Parser({
    __unstable: { resolver: { resolvers: [refuseRemote("http"), refuseRemote("https")] } },
  });
  const { document, diagnostics } = await parser.parse(text, { source: path });
  const report = {
    parsed: document !== undefined,
    diagnostics: diagnostics.map((item) => ({
      code: String(item.code),
      severity: SEVERITIES[item.severity] ?? String(item.severity),
      message: item.message,
      path: item.path.join("."),
    })),
  };
  process.stdout.write(JSON.stringify(report) + "\n");
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
