/** The llama backend on generated GGUF models: lossless greedy and sampling, the KV cache, errors. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import type { AlgorithmName, GenerateOptions } from "../../src/algorithms/options.js";
import { GREEDY, type SamplingParams } from "../../src/core/sampling.js";
import { flatLatency } from "../../src/models/latency.js";
import { InvalidRequestError, TokenView } from "../../src/core/instance.js";
import { ContextOverflowError, LlamaPair, type LlamaInstance } from "../../src/models/llama.js";
import { assembleRuntime } from "../../src/models/runtime.js";
import type { Runtime } from "../../src/runtime/runtime.js";
import { assertFirstTwoTokensFollow } from "../helpers/chi-square.js";
import { pairFiles, SMALL_PAIR, TINY_PAIR } from "../helpers/gguf-models.js";
import { CountingView } from "../helpers/counting-view.js";

async function loadPair(name: string, spec: typeof SMALL_PAIR): Promise<{ pair: LlamaPair; drafter: LlamaInstance; targets: LlamaInstance[] }> {
  const files = await pairFiles(name, spec);
  const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
  const drafter = await pair.instance("drafter", "drafter");
  const targets = [];
  for (let i = 0; i < 3; i++) targets.push(await pair.instance("target", `target-${i}`));
  return { pair, drafter, targets };
}

/** A runtime on the real clock; `latency` adds modelled time on top of the real compute. */
function runtime(m: { pair: LlamaPair; drafter: LlamaInstance; targets: LlamaInstance[] }, sp: number, latency?: [number, number]): Runtime {
  return assembleRuntime({
    clock: "real",
    drafter: m.drafter,
    target: (i) => m.targets[i],
    vocabSize: m.pair.vocabSize,
    eosToken: m.pair.eosToken,
    sp,
    profile: latency ? { name: "test", target: flatLatency(latency[0]), drafter: flatLatency(latency[1]) } : undefined,
  });
}

describe("llama backend, small SentencePiece pair", () => {
  let m: Awaited<ReturnType<typeof loadPair>>;
  before(async () => {
    m = await loadPair("small", SMALL_PAIR);
  });
  after(async () => {
    await m.pair.dispose();
  });

  const PROMPTS = [
    "the quick brown fox",
    "hello world",
    "speculative decoding",
    "a",
    "DSI is provably faster",
    "lorem ipsum dolor sit amet",
    "0123456789",
    "what is the answer?",
    "once upon a time",
    "to be or not to be",
    "zebra",
    "The Quick Brown Fox",
    "it was the best of times",
    "call me ishmael",
    "in the beginning",
    "x y z",
    "mary had a little lamb",
    "hello, hello, hello",
    "distributed inference",
    "qwerty uiop",
  ];

  test("greedy: si and dsi (SP 1 and 3) equal nonsi on 20 prompts", async () => {
    let accepted = 0;
    let rejected = 0;
    for (const [i, text] of PROMPTS.entries()) {
      const prompt = m.pair.encode(text);
      const opts: GenerateOptions = { prompt, maxTokens: 24, sampling: GREEDY, verify: "greedy", seed: 0, lookahead: 1 + (i % 4) };
      const reference = (await generate("nonsi", runtime(m, 1), { ...opts, lookahead: undefined }).result).tokens;
      assert.equal(reference.length, 24);
      for (const [algo, sp] of [
        ["si", 1],
        ["dsi", 1],
        ["dsi", 3],
      ] as [AlgorithmName, number][]) {
        const r = await generate(algo, runtime(m, sp), opts).result;
        assert.deepEqual(r.tokens, reference, `${algo} SP=${sp} on ${JSON.stringify(text)}`);
        accepted += r.stats.accepted;
        rejected += r.stats.rejected;
      }
    }
    // The pair is neither trivial nor hopeless: both outcomes happen often.
    assert.ok(accepted > 200 && rejected > 100, `accepted ${accepted}, rejected ${rejected}`);
  });

  test("stop sequences: a fragment of the output (no BOS) ends the generation before it", async () => {
    const prompt = m.pair.encode("the quick brown fox");
    const opts: GenerateOptions = { prompt, maxTokens: 30, sampling: GREEDY, verify: "greedy", seed: 0, lookahead: 3 };
    const full = (await generate("nonsi", runtime(m, 1), { ...opts, lookahead: undefined }).result).tokens;
    // A piece inside the output, as a user would type it.
    const at = full.findIndex((t, i) => i >= 5 && !m.pair.decode([t]).startsWith(" ") && m.pair.encode(m.pair.decode([t]), false).join() === String(t));
    assert.ok(at > 0, "no plain piece in the output");
    const stop = m.pair.encode(m.pair.decode([full[at]]), false);
    assert.notEqual(stop[0], 1, "no BOS in a fragment");
    for (const algo of ["nonsi", "dsi"] as const) {
      const r = await generate(algo, runtime(m, 2), { ...opts, stop: [stop], ...(algo === "nonsi" ? { lookahead: undefined } : {}) }).result;
      assert.equal(r.finishReason, "stop");
      assert.deepEqual(r.tokens, full.slice(0, full.indexOf(full[at])));
    }
  });

  test("reset is serialised with evaluations: an unawaited reset cannot corrupt the next evaluation", async () => {
    const [a, fresh] = [m.targets[0], m.targets[1]];
    const tokens = m.pair.encode("serialised resets");
    const req = { tokens, from: tokens.length - 2, mode: "greedy" as const, sampling: GREEDY, seed: 0, stream: 1 };
    await a.evaluate(req);
    void a.reset(); // not awaited on purpose
    const got = await a.evaluate(req);
    await fresh.reset();
    const want = await fresh.evaluate(req);
    assert.deepEqual(
      got.map((o) => o.token),
      want.map((o) => o.token),
    );
  });

  test("tokenizer: the GGUF's own, round trip", () => {
    const text = "the quick brown fox";
    const tokens = m.pair.encode(text);
    assert.equal(tokens[0], 1); // <s>
    assert.equal(m.pair.decode(tokens.slice(1)), text);
  });

  test("KV cache: after rollbacks an instance's outputs equal a fresh instance's", async () => {
    const [a, fresh] = [m.targets[0], m.targets[1]];
    const base = m.pair.encode("the quick brown fox jumps");
    const greedy = (tokens: number[], from: number, inst: LlamaInstance) =>
      inst.evaluate({ tokens, from, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });
    const dist = (tokens: number[], from: number, inst: LlamaInstance) =>
      inst.evaluate({ tokens, from, mode: "dist", sampling: { temperature: 1, topK: 0, topP: 1 }, seed: 0, stream: 1 });
    // Speculate, then roll back to a different continuation several times.
    await a.reset();
    await greedy([...base, 200, 201, 202, 203], base.length, a);
    await greedy([...base, 200, 210, 211], base.length + 1, a);
    await dist([...base.slice(0, 3), 205, 206], 3, a);
    const final = [...base, 220, 221, 222];
    const got = await dist(final, base.length, a);
    const gotGreedy = await greedy(final, base.length - 2, a);
    await fresh.reset();
    const want = await dist(final, base.length, fresh);
    await fresh.reset();
    const wantGreedy = await greedy(final, base.length - 2, fresh);
    assert.deepEqual(
      gotGreedy.map((o) => o.token),
      wantGreedy.map((o) => o.token),
    );
    assert.equal(got.length, want.length);
    for (let i = 0; i < got.length; i++) {
      for (let v = 0; v < got[i].probs!.length; v++) assert.ok(Math.abs(got[i].probs![v] - want[i].probs![v]) < 1e-4, `position ${i} token ${v}`);
    }
  });
});


describe("llama backend, small SentencePiece pair: requests over the engine's committed prefix", () => {
  let m: Awaited<ReturnType<typeof loadPair>>;
  before(async () => {
    m = await loadPair("small", SMALL_PAIR);
  });
  after(async () => {
    await m.pair.dispose();
  });

  test("a view over the same committed tokens is read only past what the cache holds; outputs equal a fresh instance's", async () => {
    const [a, fresh] = [m.targets[0], m.targets[1]];
    await a.reset();
    const greedy = (tokens: TokenView | number[], from: number, inst: LlamaInstance) =>
      inst.evaluate({ tokens, from, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });
    // The engine's way: committed tokens append-only, each request a view of them plus drafts.
    const committed = m.pair.encode("the quick brown fox jumps over");
    const other = m.pair.encode("a different prompt altogether, longer than the first");
    let reads = 0;
    for (let step = 0; step < 60; step++) {
      const drafts = [(step * 7) % 300, (step * 13 + 5) % 300, (step * 3 + 1) % 300].slice(0, 1 + (step % 3));
      // Every fifth request is another generation's (another base) on the same instance.
      const base = step % 5 === 4 ? other : committed;
      const view = new CountingView(base, base.length, drafts);
      const got = await greedy(view, base.length, a);
      const read = view.reads;
      await fresh.reset();
      const want = await greedy(view.slice(), base.length, fresh);
      assert.deepEqual(got.map((o) => o.token), want.map((o) => o.token), `step ${step}`);
      if (base === committed) {
        if (step > 0 && step % 5 !== 0) reads = Math.max(reads, read - 2 * drafts.length);
        committed.push(got[0].token);
      }
    }
    // Past the committed prefix: the last committed token, the drafts, rolled back and read.
    assert.ok(reads <= 4, `a request over the committed prefix read ${reads} tokens besides its drafts (context ${committed.length})`);
  });

  test("a sequence that fills the context is a ContextOverflowError, a request error", async () => {
    const tokens = Array.from({ length: m.pair.contextSize }, (_, i) => 3 + (i % 200));
    await assert.rejects(
      m.targets[2].evaluate({ tokens, from: tokens.length, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 }),
      (err: Error) => err instanceof ContextOverflowError && err instanceof InvalidRequestError && err.name === "ContextOverflowError" && /the sequence \(256 tokens\) plus the token it predicts exceeds the model context of 256 tokens/.test(err.message),
    );
  });
});

describe("llama backend, tiny character-vocabulary pair", () => {
  let m: Awaited<ReturnType<typeof loadPair>>;
  before(async () => {
    m = await loadPair("tiny", TINY_PAIR);
  });
  after(async () => {
    await m.pair.dispose();
  });

  test("sampling with rejection: DSI's first two tokens follow the target's exact distribution", async () => {
    const V = TINY_PAIR.target.vocab;
    const sampling: SamplingParams = { temperature: 1, topK: 0, topP: 1 };
    const prompt = [0, 3, 4]; // <s> and two characters
    // Exact probabilities by single-step evaluation on a fresh cache.
    const single = m.targets[2];
    const step = async (tokens: number[]): Promise<ArrayLike<number>> => {
      await single.reset();
      const [out] = await single.evaluate({ tokens, from: tokens.length, mode: "dist", sampling, seed: 0, stream: 1 });
      return out.probs!;
    };
    const exact = new Float64Array(V * V);
    const p1 = await step(prompt);
    for (let a = 0; a < V; a++) {
      const p2 = await step([...prompt, a]);
      for (let b = 0; b < V; b++) exact[a * V + b] = p1[a] * p2[b];
    }
    // Tiny models compute in about the same time; modelled latency makes the drafter 10x faster
    // so that windows of drafts reach verification. Three tokens, of which the first two are
    // checked: nothing is drafted at the last position, so with three both checked positions go
    // through rejection sampling.
    await assertFirstTwoTokensFollow(exact, V, 3000, (seed) =>
      generate("dsi", runtime(m, 2, [2, 0.2]), { prompt, maxTokens: 3, sampling, verify: "rejection", seed, lookahead: 2, stopAtEos: false }).result,
    );
  });
});
