/** The CLI as a user meets it: exit codes, one-line errors, JSON shape, traces. */
import "../helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers/temp.js";
import { dsi as run } from "../helpers/cli.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** `dsi ARGS` in this process (main, with its output captured). */
const dsi = (...args: string[]) => run(args);

/** `dsi ARGS` as the binary, in a process of its own. */
function dsiProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const BAD: [string[], RegExp][] = [
  [["--lookahead", "0"], /--lookahead.*integer in 1\.\.1024/],
  [["--lookahead", "x"], /--lookahead.*integer in 1\.\.1024/],
  [["--lookahead", "auto5"], /--lookahead.*must be auto or an integer in 1\.\.1024/],
  [["--sp", "0"], /--sp.*integer in 1..1024/],
  [["--temperature", "-0.5"], /--temperature.*\[0, 100\]/],
  [["--top-p", "0"], /--top-p.*\(0, 1\]/],
  [["--top-p", "1.01"], /--top-p.*\(0, 1\]/],
  [["--latency", "gpt-5/tiny"], /--latency.*unknown latency profile; allowed: none, vicuna-13b\/vicuna-68m:cnn-dm/],
  [["--backend", "onnx"], /--backend.*Allowed choices are synthetic/],
  [["--algo", "medusa"], /--algo.*must be one of nonsi, si, dsi/],
  [["--verify", "greedy", "--temperature", "0.7"], /--verify.*temperature 0/],
  [["--verify", "rejection"], /--verify.*temperature > 0/],
  [["--vocab", "65"], /--vocab.*2\.\.64/],
  [["--agreement", "1.5"], /--agreement.*\[0, 1\]/],
  [["--copy", "1.5"], /--copy.*\[0, 1\]/],
  [["--copy", "-0.1"], /--copy.*\[0, 1\]/],
  [["--prompt", "日本"], /--prompt.*not in the synthetic vocabulary/],
  [["--prompt", "Hello, World!"], /--prompt: character "H" is not in the synthetic vocabulary of 32 tokens \("abcdefghijklmnopqrstuvwxyz \.ABCD"\); --vocab 36 or more includes it/],
  [["--vocab", "64", "--prompt", "Hello, World!"], /character "," is not in the synthetic vocabulary of 64 tokens .*; it is in no synthetic vocabulary/],
  [["--frobnicate"], /unknown option '--frobnicate'/],
  // Empty or inapplicable values are errors, not a silent default.
  [["--target", ""], /--target must not be empty/],
  [["--drafter", ""], /--drafter must not be empty/],
  [["--target", "t.gguf", "--drafter", "d.gguf"], /--target applies to --backend llama, not synthetic/],
  [["--backend", "llama", "--vocab", "16"], /--vocab applies to --backend synthetic, not llama/],
  [["--backend", "llama", "--copy", "0.5"], /--copy applies to --backend synthetic, not llama/],
  [["--cluster", "c.json", "--copy", "0.5"], /--copy does not apply with --cluster/],
  [["--algo", "nonsi", "--lookahead", "3"], /--lookahead applies to --algo si and dsi/],
  [["--algo", "si", "--sp", "2"], /--sp applies to --algo dsi/],
  [["--trace", ""], /--trace must not be empty/],
  [["--stop", ""], /--stop.*must not be empty/],
  // Seeds are 32-bit: every accepted value is used, and --n may not run past the last one.
  [["--seed", "4294967296"], /--seed.*0\.\.4294967295/],
  [["--model-seed", "4294967296"], /--model-seed.*0\.\.4294967295/],
  [["--seed", "4294967295", "--n", "2"], /seeds 4294967295\.\.4294967296, past the largest seed 4294967295/],
  // Every size has a range.
  [["--max-tokens", "1000000000000"], /--max-tokens.*0\.\.1000000/],
  [["--history", "1000000000"], /--history.*0\.\.64/],
  [["--threads", "100000"], /--threads.*1\.\.256/],
  [["--latency", "2147483648/1"], /--latency.*at most 86400000 ms/],
  [["--n", "100000"], /--n.*1\.\.1000/],
  // Output paths are checked before any work.
  [["--trace", "/nonexistent/dir/t.json"], /--trace: cannot write \/nonexistent\/dir\/t\.json \(ENOENT\)/],
  [["--trace", "/"], /--trace: \/ is a directory/],
];

/** `dsi ARGS` exits 2 with one line on stderr matching `message`, and prints nothing on stdout. */
function badInput(args: string[], message: RegExp): void {
  test(`bad input: dsi ${args.join(" ")} -> exit 2, one line`, async () => {
    const r = await dsi(...args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], message);
  });
}

for (const [args, message] of BAD) badInput(["generate", ...args], message);

test("generate --json: one object with completions, seeds S, S+1, ... and aggregate stats", async () => {
  const r = await dsi("generate", "--algo", "dsi", "--n", "3", "--seed", "5", "--max-tokens", "12", "--temperature", "0.9", "--verify", "rejection", "--json", "--latency", "vicuna-7b/vicuna-68m", "--clock", "virtual");
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.algo, "dsi");
  assert.equal(out.completions.length, 3);
  assert.deepEqual(
    out.completions.map((c: { seed: number }) => c.seed),
    [5, 6, 7],
  );
  for (const c of out.completions) {
    assert.equal(c.tokens.length, 12);
    assert.equal(typeof c.text, "string");
    assert.equal(c.stats.clock, "virtual");
  }
  assert.equal(out.config.lookahead, "auto");
  // The windows the adaptive lookahead sent: every verification, by drafts; summed over completions.
  for (const c of out.completions) assert.equal(c.stats.windows.reduce((a: number, n: number) => a + n, 0), c.stats.verifications);
  assert.deepEqual(
    out.stats.windows,
    out.completions.reduce((acc: number[], c: { stats: { windows: number[] } }) => c.stats.windows.map((n, k) => n + (acc[k] ?? 0)).concat(acc.slice(c.stats.windows.length)), []),
  );
  assert.equal(out.stats.tokens, 36);
  assert.equal(out.stats.clock, "virtual");
  const sum = out.completions.reduce((a: number, c: { stats: { timeMs: number } }) => a + c.stats.timeMs, 0);
  assert.ok(Math.abs(out.stats.timeMs - sum) < 1e-6);
  // Virtual time is deterministic: the same command gives the same JSON.
  const again = await dsi("generate", "--algo", "dsi", "--n", "3", "--seed", "5", "--max-tokens", "12", "--temperature", "0.9", "--verify", "rejection", "--json", "--latency", "vicuna-7b/vicuna-68m", "--clock", "virtual");
  assert.equal(again.stdout, r.stdout);
});

test("generate: greedy output is the same for every algorithm", async () => {
  const texts = [];
  for (const algo of ["nonsi", "si", "dsi"]) {
    const shape = algo === "nonsi" ? [] : algo === "si" ? ["--lookahead", "3"] : ["--sp", "2", "--lookahead", "3"];
    const r = await dsi("generate", "--algo", algo, "--max-tokens", "40", "--json", ...shape);
    assert.equal(r.code, 0, r.stderr);
    texts.push(JSON.parse(r.stdout).completions[0].text);
  }
  assert.equal(texts[0].length, 40);
  assert.deepEqual(texts, [texts[0], texts[0], texts[0]]);
});

test("generate --stop: the output ends before the stop sequence", async () => {
  const full = JSON.parse((await dsi("generate", "--max-tokens", "40", "--json")).stdout).completions[0];
  const stop = full.text.slice(10, 12);
  const cut = JSON.parse((await dsi("generate", "--max-tokens", "40", "--json", "--stop", stop)).stdout).completions[0];
  assert.equal(cut.finishReason, "stop");
  assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
});

test("generate --trace: Chrome trace events with a track per instance", async () => {
  const dir = await tempDir("trace");
  const file = join(dir, "trace.json");
  const r = await dsi("generate", "--sp", "3", "--lookahead", "2", "--latency", "30/3", "--clock", "virtual", "--agreement", "0.5", "--max-tokens", "30", "--trace", file);
  assert.equal(r.code, 0, r.stderr);
  const trace = JSON.parse(await readFile(file, "utf8"));
  const names = trace.traceEvents.filter((e: { name: string }) => e.name === "thread_name").map((e: { args: { name: string } }) => e.args.name);
  assert.deepEqual(names.sort(), ["drafter", "engine (commits)", "target-0", "target-1", "target-2"]);
  const cats = new Set(trace.traceEvents.map((e: { cat?: string }) => e.cat));
  for (const c of ["draft", "verify", "preempted", "accepted", "rejected"]) assert.ok(cats.has(c), `no ${c} events`);
  const commits = trace.traceEvents.filter((e: { ph: string }) => e.ph === "i");
  assert.equal(commits.length, 30);
  for (const e of trace.traceEvents.filter((e: { ph: string }) => e.ph === "X")) assert.ok(e.dur >= 0 && e.ts >= 0);
});

const BAD_COMMANDS: [string[], RegExp][] = [
  [["help", "bogus"], /unknown command 'bogus'/],
  [["bench", "--help"], /unknown command 'bench'/],
  [["plan", "--latency", "1e308/1e-308", "--acceptance", "0.5"], /--latency.*unknown latency profile/],
  [["plan", "--latency", "100000000/1", "--acceptance", "0.5"], /--latency.*at most 86400000 ms/],
  [["make-model", "--model-seed", "4294967296"], /--model-seed.*0\.\.4294967295/],
  [["make-model", "--weights", "random", "--width", "16384", "--layers", "256"], /make-model: the target would take about \d+\.\d GiB \(at most 4 GiB\)/],
  [["make-model", "--width", "64"], /make-model: --width applies to --weights random, not corpus/],
  [["make-model", "--weights", "random", "--trigram-weight", "0.5"], /make-model: --trigram-weight applies to --weights corpus, not random/],
  [["make-model", "--layers", "1"], /make-model: --layers must be an integer in 2\.\.64, got 1/],
  [["make-model", "--trigram-weight", "1.5"], /--trigram-weight.*\[0, 1\]/],
  [["make-model", "--repeat-penalty", "-21"], /--repeat-penalty.*\[-20, 20\]/],
  [["make-model", "--weights", "random", "--repeat-penalty", "-9"], /make-model: --repeat-penalty applies to --weights corpus, not random/],
  [["serve", "--sequences", "2"], /--sequences applies to --backend llama, not synthetic/],
  [["worker", "--role", "drafter", "--sequences", "2"], /--sequences applies to --role target: a cluster uses one sequence of its drafter worker/],
  [["serve", "--cluster", "c.json", "--sequences", "2"], /--sequences does not apply with --cluster \(the cluster file and its workers set it\)/],
  [["serve", "--backend", "llama", "--sequences", "65"], /--sequences.*1\.\.64/],
  [["make-model", "--weights", "bogus"], /--weights.*Allowed choices are corpus, random/],
  [["heatmap", "--ndim", "1000"], /--ndim.*2\.\.100/],
  [["simulate", "--repeats", "1000000000"], /--repeats.*1\.\.100000/],
  [["demo", "--backend", "synthetic", "--prompt", "hello"], /--prompt applies to demo --backend llama, not synthetic/],
  [["demo", "--backend", "synthetic", "--threads", "2"], /--threads applies to demo --backend llama/],
  [["demo", "--backend", "synthetic", "--latency", "none"], /--latency: the synthetic demo .* needs a profile with latencies/],
  [["demo", "--backend", "synthetic", "--svg", ""], /--svg must not be empty/],
  [["demo", "--backend", "synthetic", "--ngram-max", "3"], /--ngram-max applies to --draft ngram and ngram\+model/],
];

for (const [args, message] of BAD_COMMANDS) badInput(args, message);

test("the synthetic default prompt works for every vocabulary size", async () => {
  for (const vocab of ["2", "4", "19", "20"]) {
    const r = await dsi("generate", "--vocab", vocab, "--max-tokens", "3", "--json");
    assert.equal(r.code, 0, `--vocab ${vocab}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).completions[0].tokens.length, 3);
  }
});

test("profiles: aligned columns with a header", async () => {
  const r = await dsi("profiles");
  assert.equal(r.code, 0);
  const rows = r.stdout.split("\n").filter((l) => /^(profile|none|vicuna|starcoder|phi3)/.test(l));
  assert.ok(rows.length >= 11);
  assert.match(rows[0], /^profile\s+target ms  drafter ms  acceptance$/);
  // Numbers are right-aligned: every row's drafter figure ends where the header's does.
  const end = rows[0].indexOf("drafter ms") + "drafter ms".length;
  for (const row of rows.slice(1)) assert.ok(row[end - 1] !== " " && (row.length === end || row[end] === " "), row);
});

test("plain-text output streams as tokens commit: a long generation shows text long before it ends", async () => {
  const child = spawn(process.execPath, [CLI, "generate", "--max-tokens", "1000000"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const seen = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      // The configuration line, then text of the first completion (its end is far away).
      if (/\[0\] seed 0: "[^"]{200}/.test(out)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  });
  child.kill("SIGINT");
  await new Promise((r) => child.once("exit", r));
  assert.ok(seen, `no streamed text: ${JSON.stringify(out.slice(0, 300))}`);
  assert.doesNotMatch(out, /\(length\)/, "the generation had not ended");
});

test("the binary: exit codes, one-line errors and output as main returns them", async () => {
  const bad = await dsiProcess("generate", "--sp", "0");
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.match(bad.stderr, /^error: option '--sp <N>' argument '0' is invalid\. must be an integer in 1\.\.1024\.\n$/);
  // Virtual time: the same command prints the same bytes, in a process or in-process.
  const args = ["generate", "--max-tokens", "5", "--json", "--clock", "virtual", "--latency", "10/1"];
  const good = await dsiProcess(...args);
  assert.equal(good.code, 0, good.stderr);
  assert.deepEqual(good, await dsi(...args));
});

test("bare dsi prints the help on stdout; --version the package's version", async () => {
  const bare = await dsi();
  assert.equal(bare.code, 0);
  assert.match(bare.stdout, /^Usage: dsi /);
  assert.equal(bare.stderr, "");
  const v = await dsi("--version");
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")).version);
});

test("an output path that fails only when written (a full device) names the path and exits 2", async () => {
  const r = await dsi("generate", "--max-tokens", "4", "--trace", "/dev/full");
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^error: --trace: cannot write \/dev\/full \(ENOSPC\)/);
});

test("stats.tokens counts every committed token, a stop sequence's included", async () => {
  const full = JSON.parse((await dsi("generate", "--algo", "nonsi", "--max-tokens", "12", "--json")).stdout);
  const text: string = full.completions[0].text;
  const stop = text.slice(6, 8);
  const r = await dsi("generate", "--algo", "nonsi", "--max-tokens", "12", "--stop", stop, "--json");
  const c = JSON.parse(r.stdout).completions[0];
  assert.equal(c.finishReason, "stop");
  assert.equal(c.text, text.slice(0, text.indexOf(stop)));
  assert.equal(c.stats.tokens, c.tokens.length + stop.length, "the stop sequence's tokens are counted");
  assert.equal(c.stats.verifications, c.stats.tokens, "non-SI: one verification per committed token");
});

test("demo --backend synthetic: identical outputs, DSI at least as fast as SI and non-SI, a timeline picture", async () => {
  const dir = await tempDir("demo");
  const svg = join(dir, "t.svg");
  const r = await dsi("demo", "--backend", "synthetic", "--max-tokens", "32", "--svg", svg);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /outputs identical \(lossless\)/);
  const times = Object.fromEntries([...r.stdout.matchAll(/^(non-SI|SI|DSI)\s+([\d.]+) ms/gm)].map((m) => [m[1], Number(m[2])]));
  assert.ok(times.DSI <= times.SI && times.DSI <= times["non-SI"], JSON.stringify(times));
  const picture = await readFile(svg, "utf8");
  assert.match(picture, /^<svg /);
  for (const lane of ["drafter", "target-0", "target-2", "commits"]) assert.ok(picture.includes(`>${lane}</text>`), lane);
  assert.ok(picture.includes("preempted"));
});

test("demo --draft: SI and DSI draft by prompt lookup before the drafter, the header and the instances say so, outputs identical", async () => {
  const dir = await tempDir("demo-draft");
  const r = await dsi("demo", "--backend", "synthetic", "--max-tokens", "32", "--draft", "ngram+model", "--ngram-min", "1", "--svg", join(dir, "t.svg"));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /lookahead auto, draft ngram\+model, virtual clock/);
  assert.match(r.stdout, /^DSI .* prompt lookup, 1 drafter \+ 7 targets$/m);
  assert.match(r.stdout, /outputs identical \(lossless\)/);
});
