/** `dsi make-model` and `dsi generate --backend llama` as a user meets them. */
import "../helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";

import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers/temp.js";
import { dsi as run } from "../helpers/cli.js";
import { readBrown } from "../../src/models/corpus/brown.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** `dsi ARGS` in this process (main, with its output captured). */
const dsi = (...args: string[]) => run(args);

/** make-model's seeded random weights (near ties everywhere: losslessness where it is hardest). */
const RANDOM = ["--weights", "random"];
const SMALL = ["--vocab", "320", "--width", "64", "--layers", "3", "--heads", "4", "--ff", "128", "--context", "64", "--model-seed", "3"];
let dir: string;
let target: string;
let drafter: string;

before(async () => {
  dir = await tempDir("cli-models");
  const made = await dsi("make-model", "--out", join(dir, "a"), ...RANDOM, ...SMALL);
  assert.equal(made.code, 0, made.stderr);
  target = join(dir, "a", "target.gguf");
  drafter = join(dir, "a", "drafter.gguf");
});

test("make-model writes a pair that generate runs; greedy outputs agree across algorithms", async () => {
  const texts = [];
  for (const algo of ["nonsi", "si", "dsi"]) {
    const sp = algo === "dsi" ? ["--sp", "2"] : [];
    const r = await dsi("generate", "--backend", "llama", "--target", target, "--drafter", drafter, "--algo", algo, ...sp, "--max-tokens", "20", "--prompt", "hello", "--json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.completions[0].tokens.length, 20);
    texts.push(out.completions[0].text);
  }
  assert.deepEqual(texts, [texts[0], texts[0], texts[0]]);
});

test("prompt lookup on the GGUF pair: SI and DSI with --draft ngram and ngram+model give non-SI's tokens", async () => {
  const common = ["generate", "--backend", "llama", "--target", target, "--drafter", drafter, "--max-tokens", "40", "--prompt", "abc abc abc abc abc", "--json"];
  const tokens = async (...args: string[]) => {
    const r = await dsi(...common, ...args);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).completions[0] as { tokens: number[]; stats: { bySource: { ngram: { drafted: number; accepted: number } } } };
  };
  const reference = (await tokens("--algo", "nonsi")).tokens;
  let lookupAccepted = 0;
  for (const draft of ["ngram", "ngram+model"]) {
    for (const algo of [["--algo", "si"], ["--algo", "dsi", "--sp", "2"]]) {
      const c = await tokens(...algo, "--draft", draft, "--ngram-min", "1", "--lookahead", "3");
      assert.deepEqual(c.tokens, reference, `${algo.join(" ")} --draft ${draft}`);
      lookupAccepted += c.stats.bySource.ngram.accepted;
    }
  }
  assert.ok(lookupAccepted > 0, "prompt lookup's drafts were accepted somewhere (the test is not vacuous)");
});

test("a target alone (no --drafter): non-SI and --draft ngram run on it, with non-SI's tokens", async () => {
  const common = ["generate", "--backend", "llama", "--target", target, "--max-tokens", "30", "--prompt", "abc abc abc abc", "--json"];
  const reference = JSON.parse((await dsi(...common, "--algo", "nonsi")).stdout);
  assert.match(reference.config.backend, /a target alone/);
  for (const algo of [["--algo", "si"], ["--algo", "dsi", "--sp", "2"]]) {
    const r = await dsi(...common, ...algo, "--draft", "ngram", "--ngram-min", "1");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).completions[0].tokens, reference.completions[0].tokens, algo.join(" "));
  }
});

test("generate --json reports the eval chunk and how it was found; --eval-chunk overrides it; bad values and synthetic exit 2", async () => {
  const args = ["generate", "--backend", "llama", "--target", target, "--drafter", drafter, "--max-tokens", "4", "--prompt", "hello", "--json"];
  const measured = JSON.parse((await dsi(...args)).stdout).config.evalChunk;
  assert.ok(["self-test", "cache"].includes(measured.target.source), JSON.stringify(measured));
  assert.ok(measured.target.chunk >= 1 && measured.target.chunk <= measured.target.invariantUpTo, JSON.stringify(measured));
  const again = JSON.parse((await dsi(...args)).stdout).config.evalChunk;
  assert.equal(again.target.source, "cache", "the second load reads the cache");
  assert.equal(again.target.chunk, measured.target.chunk);
  const given = JSON.parse((await dsi(...args, "--eval-chunk", "8")).stdout).config.evalChunk;
  assert.deepEqual(given.target, { chunk: 8, source: "flag" });
  for (const bad of [["--eval-chunk", "0"], ["--eval-chunk", "513"], ["--eval-chunk", "x"]]) assert.equal((await dsi(...args, ...bad)).code, 2, bad.join(" "));
  const synthetic = await dsi("generate", "--eval-chunk", "8", "--max-tokens", "2");
  assert.equal(synthetic.code, 2);
  assert.match(synthetic.stderr, /--eval-chunk applies to --backend llama/);
});

test("--stop matches the decoded text, whatever the tokenization", async () => {
  const base = ["generate", "--backend", "llama", "--target", target, "--drafter", drafter, "--max-tokens", "40", "--prompt", "hello", "--json"];
  const full = JSON.parse((await dsi(...base)).stdout).completions[0].text as string;
  const stop = full.slice(12, 15);
  const at = full.indexOf(stop);
  for (const algo of ["nonsi", "dsi"]) {
    const r = await dsi(...base, "--algo", algo, "--stop", stop);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout).completions[0];
    assert.equal(c.finishReason, "stop");
    assert.ok(full.startsWith(c.text), `${JSON.stringify(c.text)} is not a prefix of ${JSON.stringify(full)}`);
    assert.ok(!c.text.includes(stop));
    assert.ok(c.text.length >= at - 4 && c.text.length <= at, `${c.text.length} vs ${at}`);
  }
});

test("--latency on real compute is stated in the output", async () => {
  const r = await dsi("generate", "--backend", "llama", "--target", target, "--drafter", drafter, "--max-tokens", "4", "--latency", "5/1");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /latency=5\/1 \(added on top of real compute\)/);
});

const ERRORS: [string, () => string[], RegExp][] = [
  ["missing model file", () => ["--target", join(dir, "nope.gguf"), "--drafter", drafter], /target model file not found: .*nope\.gguf.*dsi make-model/],
  ["not a GGUF file", () => ["--target", join(dir, "fake.gguf"), "--drafter", drafter], /target model .*fake\.gguf is not a GGUF file/],
  ["vocabulary mismatch", () => ["--target", target, "--drafter", join(dir, "b", "drafter.gguf")], /vocabularies differ: the target has 320 tokens, the drafter 330/],
  ["prompt longer than the context", () => ["--target", target, "--drafter", drafter, "--prompt", "word ".repeat(80), "--max-tokens", "4"], /exceeds the model's context of 64 tokens/],
  ["a target alone where the drafter model is asked for", () => ["--target", target], /--drafter: --algo dsi with --draft model needs a drafter model; give --drafter, or run the target alone with --draft ngram/],
  ["a drafter alone", () => ["--drafter", drafter], /--drafter needs --target/],
  ["a directory as the model", () => ["--target", dir, "--drafter", drafter], /target model .* is a directory, not a GGUF file/],
  ["a GGUF of an unknown version", () => ["--target", join(dir, "corrupt.gguf"), "--drafter", drafter], /target model .*corrupt\.gguf has GGUF version 99; llama.cpp reads versions 2 and 3/],
  ["a truncated GGUF", () => ["--target", join(dir, "truncated.gguf"), "--drafter", drafter], /target model .*truncated\.gguf is truncated or corrupt: metadata .* claims \d+ items, more than the \d+ bytes left/],
  // A 24-byte header claiming 2^62 tensors (or metadata entries) once made llama.cpp (and
  // node-llama-cpp's own reader) run for minutes while memory grew; now it is refused at once.
  ["a GGUF header with a huge tensor count", () => ["--target", join(dir, "huge-tensors.gguf"), "--drafter", drafter], /huge-tensors\.gguf is truncated or corrupt: tensor count at byte 8 is 4611686018427387904, more than any file can hold/],
  ["a GGUF header with a huge metadata count", () => ["--target", join(dir, "huge-kv.gguf"), "--drafter", drafter], /huge-kv\.gguf is truncated or corrupt: metadata count at byte 16 is 4611686018427387904, more than any file can hold/],
  ["a header-only GGUF", () => ["--target", join(dir, "header-only.gguf"), "--drafter", drafter], /header-only\.gguf has no general\.architecture metadata/],
  ["virtual clock with real models", () => ["--target", target, "--drafter", drafter, "--clock", "virtual"], /--clock: virtual time needs the synthetic backend/],
];

for (const [name, args, message] of ERRORS) {
  test(`llama errors: ${name} -> exit 2 with a clear message`, async () => {
    await writeFile(join(dir, "fake.gguf"), "this is not a model");
    await writeFile(join(dir, "corrupt.gguf"), Buffer.concat([Buffer.from("GGUF"), Buffer.from([99, 0, 0, 0]), Buffer.alloc(40)]));
    await writeFile(join(dir, "truncated.gguf"), (await readFile(target)).subarray(0, 5000));
    const header = (tensors: bigint, kv: bigint): Buffer => {
      const b = Buffer.alloc(24);
      b.write("GGUF", 0, "latin1");
      b.writeUInt32LE(3, 4);
      b.writeBigUInt64LE(tensors, 8);
      b.writeBigUInt64LE(kv, 16);
      return b;
    };
    await writeFile(join(dir, "huge-tensors.gguf"), header(2n ** 62n, 0n));
    await writeFile(join(dir, "huge-kv.gguf"), header(0n, 2n ** 62n));
    await writeFile(join(dir, "header-only.gguf"), header(0n, 0n));
    if (name === "vocabulary mismatch") {
      const other = await dsi("make-model", "--out", join(dir, "b"), ...RANDOM, ...SMALL.slice(2), "--vocab", "330");
      assert.equal(other.code, 0, other.stderr);
    }
    const r = await dsi("generate", "--backend", "llama", ...args(), "--max-tokens", "4");
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], message);
  });
}

test("make-model: bad shapes exit 2", async () => {
  const r = await dsi("make-model", "--out", join(dir, "c"), ...RANDOM, "--width", "30", "--heads", "4");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--width \(30\) must be a multiple of 2 x --heads/);
});

/** Runs the CLI in a child process with `env` (its own cache). */
function spawnCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** The target's held-out perplexity is at least this much below the drafter's (docs/corpus-pair.md states it). */
const PERPLEXITY_MARGIN = 0.05;

test("the default pair (Brown Corpus): make-model reports a better target and wide margins; the demo prints the same English for non-SI, SI and DSI", { timeout: 300_000 }, async () => {
  const cache = await tempDir("cache");
  const env = { ...process.env, DSI_CACHE_DIR: cache };
  const made = await spawnCli(["make-model"], env);
  assert.equal(made.code, 0, made.stderr);
  const ppl = /held-out perplexity \(\d+ tokens of \d+ documents\): drafter (\d+\.\d), target (\d+\.\d)/.exec(made.stdout);
  assert.ok(ppl, made.stdout);
  assert.ok(Number(ppl[2]) <= (1 - PERPLEXITY_MARGIN) * Number(ppl[1]), ppl[0]);
  assert.match(made.stdout, /margin check: PASS/);
  const agreement = /drafter's greedy token is the target's at (\d+)% of positions/.exec(made.stdout);
  assert.ok(agreement && Number(agreement[1]) >= 60 && Number(agreement[1]) <= 80, made.stdout);

  const svg = join(cache, "timeline.svg");
  const r = await spawnCli(["demo", "--svg", svg], env);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /generated the default model pair/, "the demo found the pair make-model wrote");
  assert.match(r.stdout, /outputs identical \(lossless\)/);
  // With the default lookahead (auto) DSI may find that speculation does not pay here.
  assert.match(r.stdout, /^DSI .* (acceptance [01]\.\d\d|no drafts( used)?) +1 drafter \+ 1 target$/m);
  assert.match(r.stdout, /^lookahead auto: windows \(drafts:tasks\) SI (\d+:\d+ ?)+; DSI (\d+:\d+ ?)+$/m);
  const texts = [...r.stdout.matchAll(/^ {7}(".*")$/gm)].map((m) => JSON.parse(m[1]) as string);
  assert.equal(texts.length, 3);
  assert.deepEqual(texts, [texts[0], texts[0], texts[0]]);
  assert.equal(texts[0], JSON.parse(/demo path \(.*\): (".*")$/m.exec(made.stdout)![1]), "make-model checked the demo's path");
  const corpusWords = new Set(readBrown().flatMap((d) => d.text.toLowerCase().match(/[a-z]+/g) ?? []));
  const words = texts[0].toLowerCase().match(/[a-z]+/g) ?? [];
  assert.ok(words.length >= 30, texts[0]);
  const known = words.filter((w) => corpusWords.has(w)).length;
  assert.ok(known >= 0.9 * words.length, `${known} of ${words.length} words are corpus words: ${texts[0]}`);
  const picture = await readFile(svg, "utf8");
  for (const lane of ["drafter", "target-0", "commits"]) assert.ok(picture.includes(`>${lane}</text>`), lane);
});

test("make-model into the cache says when it reused a pair made with the same settings", async () => {
  const cache = await tempDir("cache");
  try {
    const run = (): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [CLI, "make-model", ...RANDOM, ...SMALL], { env: { ...process.env, DSI_CACHE_DIR: cache } }, (err, stdout, stderr) =>
          resolve({ code: err ? 1 : 0, stdout, stderr }),
        );
      });
    const first = await run();
    assert.equal(first.code, 0, first.stderr);
    assert.doesNotMatch(first.stdout, /reused/);
    const second = await run();
    assert.match(second.stdout, /^the cache already holds this pair \(same settings\): reused, not written again\ntarget: /);
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});
