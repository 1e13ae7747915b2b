/**
 * Batch invariance: the self-test that finds the chunk size, its cache, and on generated GGUF
 * models (random weights: near ties everywhere) outputs at every position that do not depend
 * on how the context was read: one token at a time, in windows of 1-8, or in one call.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { InvalidRequestError, TokenView } from "../../src/core/instance.js";
import { GREEDY, type SamplingParams } from "../../src/core/sampling.js";
import type { PositionOutput } from "../../src/core/verify.js";
import { evalChunkWarning, measureEvalChunk, probePath, selfTestEvalChunk, type ProbeOutput, type ProbeRunner } from "../../src/models/batch-invariance.js";
import { assembleRuntime } from "../../src/models/runtime.js";
import { LlamaPair, type LlamaInstance } from "../../src/models/llama.js";
import { LONG_PAIR, pairFiles, SMALL_PAIR } from "../helpers/gguf-models.js";
import { tempDir } from "../helpers/temp.js";

/** A fake kernel whose outputs change in the last bit once a call holds more than `limit` tokens. */
function kernel(limit: number, calls: number[][] = []): ProbeRunner {
  return async (path, sizes) => {
    const out: ProbeOutput[] = [];
    const sizesUsed: number[] = [];
    for (let at = 0, k = 0; at < path.length; k++) {
      const n = Math.min(sizes[k % sizes.length], path.length - at);
      sizesUsed.push(n);
      for (let i = 0; i < n; i++) out.push({ token: path[at + i] % 7, confidence: 0.5 + (n > limit ? 1e-9 : 0) });
      at += n;
    }
    calls.push(sizesUsed);
    return out;
  };
}

describe("self-test", () => {
  const path = probePath(100, 96, 1);

  test("the largest matching size, with a margin of one size below", async () => {
    const r = await selfTestEvalChunk(kernel(56), path);
    assert.deepEqual([r.chunk, r.invariantUpTo, r.firstDiffering, r.source], [32, 48, 64, "self-test"]);
  });

  test("every size tried matches: the largest, up to the probe's length", async () => {
    const r = await selfTestEvalChunk(kernel(1e9), path);
    assert.deepEqual([r.chunk, r.invariantUpTo, r.firstDiffering], [96, 96, undefined]);
    const short = await selfTestEvalChunk(kernel(1e9), path.slice(0, 40));
    assert.equal(short.chunk, 32);
  });

  test("chunks of one are exact but slow: the user is told; any larger chunk says nothing", async () => {
    const one = await selfTestEvalChunk(kernel(1), path);
    assert.match(evalChunkWarning(one, "t.gguf")!, /t\.gguf: .* only in passes of one token \(differ at 2\).*outputs stay exact but SI and DSI cannot beat non-SI/);
    assert.equal(evalChunkWarning(await selfTestEvalChunk(kernel(56), path), "t.gguf"), undefined);
    assert.equal(evalChunkWarning({ chunk: 1, source: "flag" }, "t.gguf"), undefined, "asked for");
  });

  test("sizes below 8 are tried only when 8 differs; nothing but one token at a time matches: chunks of one", async () => {
    assert.deepEqual(await selfTestEvalChunk(kernel(5), path).then((r) => [r.chunk, r.invariantUpTo, r.firstDiffering]), [2, 4, 8]);
    assert.deepEqual(await selfTestEvalChunk(kernel(3), path).then((r) => [r.chunk, r.invariantUpTo, r.firstDiffering]), [1, 2, 4]);
    const r = await selfTestEvalChunk(kernel(1), path);
    assert.deepEqual([r.chunk, r.invariantUpTo, r.firstDiffering], [1, 1, 2]);
  });

  test("each size is tried with shorter calls at odd offsets too, never beyond the size", async () => {
    const calls: number[][] = [];
    await selfTestEvalChunk(kernel(20, calls), path);
    assert.deepEqual(calls[0], Array(96).fill(1)); // the reference
    const tried = calls.slice(1).map((c) => Math.max(...c));
    assert.deepEqual(tried, [8, 16, 32]);
    for (const c of calls.slice(1)) assert.ok(new Set(c).size >= 2, `mixed call sizes: ${c.join(",")}`);
  });

  test("results are cached per model and kernels; an unreadable cache is a warning and a new measurement", async () => {
    const dir = await tempDir("chunk-cache");
    const model = join(dir, "model.bin");
    await writeFile(model, Buffer.alloc(200_000, 7));
    const warnings: string[] = [];
    const calls: number[][] = [];
    const o = { modelPath: model, kernels: { build: "b1", device: "cpu", threads: 1 }, cacheDir: dir, run: kernel(56, calls), path, warn: (m: string) => warnings.push(m) };
    const first = await measureEvalChunk(o);
    assert.equal(first.source, "self-test");
    const again = await measureEvalChunk(o);
    assert.deepEqual([again.source, again.chunk, again.invariantUpTo, again.firstDiffering], ["cache", 32, 48, 64]);
    const before = calls.length;
    // Other kernels (threads, build) or another model are measured anew.
    assert.equal((await measureEvalChunk({ ...o, kernels: { ...o.kernels, threads: 2 } })).source, "self-test");
    await writeFile(model, Buffer.alloc(200_000, 8));
    assert.equal((await measureEvalChunk(o)).source, "self-test");
    assert.ok(calls.length > before);
    assert.deepEqual(warnings, []);
    await writeFile(join(dir, "batch-invariance.json"), "{not json");
    const broken = await measureEvalChunk(o);
    assert.equal(broken.source, "self-test");
    assert.match(warnings.join("\n"), /batch-invariance\.json is not a batch-invariance cache/);
    assert.equal(JSON.parse(await readFile(join(dir, "batch-invariance.json"), "utf8")).version, 1, "rewritten whole");
    // No cache folder: measured every time, nothing written.
    assert.equal((await measureEvalChunk({ ...o, cacheDir: undefined })).source, "self-test");
  });
});

const DIST: SamplingParams = { temperature: 1, topK: 0, topP: 1 };

/** Outputs after every prefix of `path` (positions 1..n), the context read in calls of `sizes` (cycled). */
async function outputsByCalls(inst: LlamaInstance, path: readonly number[], sizes: readonly number[] | "one call"): Promise<PositionOutput[]> {
  await inst.reset();
  if (sizes === "one call") return inst.evaluate({ tokens: path, from: 1, mode: "dist", sampling: DIST, seed: 0, stream: 0 });
  const out: PositionOutput[] = [];
  for (let at = 0, k = 0; at < path.length; k++) {
    const end = Math.min(path.length, at + sizes[k % sizes.length]);
    // Outputs for positions at+1..end: the context up to end, asked from at+1.
    const got = await inst.evaluate({ tokens: new TokenView(path, end), from: at + 1, mode: "dist", sampling: DIST, seed: 0, stream: 0 });
    out.push(...got.slice(0, end - at));
    at = end;
  }
  return out;
}

/** Positions (1-based) whose distributions differ in any bit. */
function differing(a: readonly PositionOutput[], b: readonly PositionOutput[]): number[] {
  assert.equal(a.length, b.length);
  const diff: number[] = [];
  for (let i = 0; i < a.length; i++) {
    const [p, q] = [a[i].probs!, b[i].probs!];
    if (p.some((v, j) => !Object.is(v, q[j]))) diff.push(i + 1);
  }
  return diff;
}

describe("llama.cpp outputs do not depend on how the context was read", () => {
  let pair: LlamaPair;
  let raw: LlamaPair;
  let inst: LlamaInstance;
  let unchunked: LlamaInstance;
  const paths: number[][] = [];
  before(async () => {
    const files = await pairFiles("small", SMALL_PAIR);
    pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
    raw = await LlamaPair.load({ ...files, threads: 1, gpu: false, evalChunk: 512 });
    inst = await pair.instance("target", "target");
    unchunked = await raw.instance("target", "target");
    // Non-SI's greedy path from two prompts, and a pseudo-random one: 200 tokens each.
    for (const prompt of ["the quick brown fox", "once upon a time"]) {
      const path = pair.encode(prompt);
      while (path.length < 200) {
        const [next] = await inst.evaluate({ tokens: path, from: path.length, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 });
        path.push(next.token);
      }
      paths.push(path);
    }
    paths.push(probePath(pair.vocabSize, 200, 1).map((t, i) => (i === 0 ? t : 3 + (t % (pair.vocabSize - 3)))));
  });
  after(async () => {
    await pair.dispose();
    await raw.dispose();
  });

  test("the self-test ran at load and chose a chunk that windows fit in", () => {
    const e = pair.evalChunks.target;
    assert.equal(e.source, "self-test");
    assert.ok(e.chunk >= 1 && e.chunk <= (e.invariantUpTo ?? 0), JSON.stringify(e));
    assert.equal(inst.evalChunk, e.chunk);
    assert.deepEqual(raw.evalChunks.target, { chunk: 512, source: "flag" });
  });

  test("one token at a time, windows of 1-8, one call: the same bits at every position of three 200-token paths", async () => {
    for (const path of paths) {
      const one = await outputsByCalls(inst, path, [1]);
      const windows = await outputsByCalls(inst, path, [1, 2, 3, 4, 5, 6, 7, 8]);
      const whole = await outputsByCalls(inst, path, "one call");
      assert.deepEqual(differing(one, windows), []);
      assert.deepEqual(differing(one, whole), []);
      assert.deepEqual(
        one.map((o) => o.probs!.indexOf(Math.max(...o.probs!))),
        whole.map((o) => o.probs!.indexOf(Math.max(...o.probs!))),
      );
    }
  });

  test("without the chunking, one call differs where the self-test saw these kernels change (the bug this prevents)", async (t) => {
    const first = pair.evalChunks.target.firstDiffering;
    if (first === undefined || first > 200) return t.skip(`this machine's kernels matched one token at a time up to ${pair.evalChunks.target.invariantUpTo} tokens per call`);
    let seen = 0;
    for (const path of paths) seen += differing(await outputsByCalls(unchunked, path, [1]), await outputsByCalls(unchunked, path, "one call")).length;
    assert.ok(seen > 0, "one unchunked call of 200 tokens gave the same bits as one token at a time");
  });
});

describe("DSI over seven llama targets, 300 tokens: instances catch up on long stretches", () => {
  test("greedy DSI and SI equal non-SI token for token, with catch-ups longer than the chunk", async () => {
    const files = await pairFiles("long", LONG_PAIR);
    const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
    try {
      const drafter = await pair.instance("drafter", "drafter");
      const targets: LlamaInstance[] = [];
      for (let i = 0; i < 7; i++) targets.push(await pair.instance("target", `target-${i}`));
      const prompt = pair.encode("the quick brown fox");
      const run = async (algo: "nonsi" | "si" | "dsi", sp: number, lookahead?: number | "auto"): Promise<number[]> => {
        // Caches are kept between runs: an instance resumes from whatever it held.
        const rt = assembleRuntime({ clock: "real", drafter, target: (i) => targets[i], vocabSize: pair.vocabSize, eosToken: pair.eosToken, sp });
        const gen = generate(algo, rt, { prompt, maxTokens: 300, sampling: GREEDY, verify: "greedy", seed: 0, ...(algo === "nonsi" ? {} : { lookahead }) });
        return (await gen.result).tokens;
      };
      const reference = await run("nonsi", 1);
      assert.equal(reference.length, 300);
      assert.deepEqual(await run("dsi", 7, 3), reference);
      assert.deepEqual(await run("dsi", 7, "auto"), reference);
      assert.deepEqual(await run("si", 1, 5), reference);
      assert.deepEqual(await run("dsi", 3, 8), reference);
      const longest = Math.max(...targets.map((t) => t.longestRead));
      assert.ok(longest > pair.evalChunks.target.chunk, `some instance read ${longest} tokens at once, more than one chunk of ${pair.evalChunks.target.chunk}`);
    } finally {
      await pair.dispose();
    }
  });
});

describe("a sequence that fills the context", () => {
  test("is refused (node-llama-cpp would shift the cache silently) and the instance stays exact", async () => {
    const files = await pairFiles("small", SMALL_PAIR);
    const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
    try {
      const inst = await pair.instance("target", "target");
      const fresh = await pair.instance("target", "fresh");
      const n = pair.contextSize;
      const path = probePath(pair.vocabSize, n, 1);
      const ask = (i: LlamaInstance, len: number) => i.evaluate({ tokens: path.slice(0, len), from: len, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 });
      await ask(inst, n - 1); // the longest sequence that fits: it and the token it predicts
      await assert.rejects(ask(inst, n), (err: Error) => err instanceof InvalidRequestError && /exceeds the model context of 256 tokens/.test(err.message));
      assert.deepEqual(await ask(inst, 40), await ask(fresh, 40));
      assert.deepEqual(await ask(inst, n - 1), await ask(fresh, n - 1));
    } finally {
      await pair.dispose();
    }
  });
});
