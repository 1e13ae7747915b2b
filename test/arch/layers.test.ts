/** The rooms of src/ import only inner rooms (docs/architecture.md): checked on the sources. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/** Which rooms each room may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  runtime: ["core"],
  algorithms: ["core", "runtime"],
  models: ["core", "runtime"],
  present: ["core", "runtime"],
  sim: ["core", "runtime", "algorithms", "models"],
  worker: ["core", "runtime", "models"],
  serve: ["core", "runtime", "algorithms", "models"],
  cli: ["core", "runtime", "algorithms", "models", "present", "sim", "worker", "serve"],
};

// dist/test/arch -> the repository root
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const src = join(root, "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

test("no room imports an outer room", () => {
  const files = sources(src);
  assert.ok(files.length > 30, `found ${files.length} sources under ${src}`);
  const rooms = new Set(Object.keys(ALLOWED));
  const violations: string[] = [];
  for (const file of files) {
    const room = relative(src, file).split(sep)[0];
    if (!rooms.has(room)) continue; // src/index.ts: the public API re-exports every room
    for (const m of readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)"/g)) {
      const target = relative(src, resolve(dirname(file), m[1])).split(sep)[0];
      if (target !== room && !ALLOWED[room].includes(target)) violations.push(`${relative(root, file)} imports ${m[1]}`);
    }
  }
  assert.deepEqual(violations, []);
  assert.deepEqual(readdirSync(src).filter((e) => !e.endsWith(".ts")).sort(), [...rooms].sort(), "every folder of src/ is a room of the table");
});
