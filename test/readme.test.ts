/**
 * The README's library examples, compiled against the package as a dependency would see it
 * (`import ... from "dsi"`, types from the package's declarations) and run; where the README
 * shows an output, the example must print exactly that.
 */
import "./helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** `<!-- example: NAME -->` before a ts block, `<!-- output: NAME -->` before a text block. */
function blocks(readme: string, kind: "example" | "output"): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of readme.matchAll(new RegExp(`<!-- ${kind}: ([a-z-]+) -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``, "g"))) out.set(m[1], m[2]);
  return out;
}

let dir: string;
let examples: Map<string, string>;
let outputs: Map<string, string>;

before(async () => {
  const readme = await readFile(join(root, "README.md"), "utf8");
  examples = blocks(readme, "example");
  outputs = blocks(readme, "output");
  dir = await mkdtemp(join(tmpdir(), "dsi-readme-"));
  await mkdir(join(dir, "node_modules"));
  await symlink(root, join(dir, "node_modules", "dsi"), "dir");
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  for (const [name, code] of examples) await writeFile(join(dir, `${name}.ts`), code);
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const flags = ["--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--strict", "--skipLibCheck"];
  await run(process.execPath, [tsc, ...flags, "--typeRoots", join(root, "node_modules", "@types"), "--types", "node", "--outDir", "out", ...[...examples.keys()].map((n) => `${n}.ts`)], { cwd: dir });
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the README has a typed example per backend: synthetic, llama, a custom instance", () => {
  assert.deepEqual([...examples.keys()].sort(), ["custom", "llama", "synthetic"]);
});

for (const name of ["synthetic", "custom", "llama"]) {
  test(`README example "${name}" compiles and runs${name === "llama" ? "" : ", printing the output shown"}`, { timeout: 120_000 }, async () => {
    const { stdout } = await run(process.execPath, [join("out", `${name}.js`)], { cwd: dir });
    const shown = outputs.get(name);
    if (shown !== undefined) assert.equal(stdout, shown);
    else {
      // The llama example's numbers are the machine's: its acceptance is a share of drafts.
      const m = /^24 tokens, acceptance (\d+\.\d\d): ".*"\n$/s.exec(stdout);
      assert.ok(m, stdout);
      const acceptance = Number(m[1]);
      assert.ok(acceptance >= 0 && acceptance <= 1, `acceptance ${acceptance} is not a share`);
    }
  });
}
