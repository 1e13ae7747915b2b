/**
 * Multi-sequence llama instances: one context holding 8 sequences, 8 generations at once, each
 * on its own sequence (its cache kept), the sequences sharing the context's passes. Every output
 * must be what the same request gives alone (greedy, and `match` under sampling, seed for
 * seed), on random weights (near ties everywhere), whatever the others do: non-SI steps, SI and
 * DSI windows of several sizes, prompt lookup.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import type { GenerateOptions } from "../../src/algorithms/options.js";
import { GREEDY } from "../../src/core/sampling.js";
import { llamaBackend, type Backend } from "../../src/models/backend.js";
import { PROFILES } from "../../src/models/latency.js";
import type { LlamaInstance } from "../../src/models/llama.js";
import type { SequenceRouter } from "../../src/models/sequence-router.js";
import { makeClock } from "../../src/runtime/clock.js";
import { LONG_PAIR, pairFiles } from "../helpers/gguf-models.js";

const PROMPTS = ["the quick brown fox", "once upon a time", "speculative decoding", "to be or not to be", "hello world", "call me ishmael", "in the beginning", "zebra"];
const TOKENS = 80;
const NONE = PROFILES.get("none")!;

/** Request i: a mix of algorithms, lookaheads and sources, so batch-mates differ in shape. */
function request(backend: Backend, i: number, sampled: boolean): { algo: "nonsi" | "si" | "dsi"; options: GenerateOptions } {
  const algo = (["nonsi", "si", "dsi", "dsi"] as const)[i % 4];
  const base: GenerateOptions = {
    prompt: backend.tokenizer.encode(PROMPTS[i]),
    maxTokens: TOKENS,
    sampling: sampled ? { temperature: 0.8, topK: 0, topP: 1 } : GREEDY,
    verify: sampled ? "match" : "greedy",
    seed: i,
  };
  if (algo === "nonsi") return { algo, options: base };
  return { algo, options: { ...base, lookahead: i % 3 === 0 ? "auto" : 2 + (i % 5), ...(i === 6 ? { draft: "ngram+model" as const } : {}) } };
}

let files: { target: string; drafter: string };
const alone = new Map<string, number[]>();

before(async () => {
  files = await pairFiles("long", LONG_PAIR);
  // Non-SI alone, one generation at a time, on a backend of its own (one sequence).
  const single = await llamaBackend({ ...files, threads: 1, gpu: false });
  try {
    for (const sampled of [false, true]) {
      for (let i = 0; i < PROMPTS.length; i++) {
        const rt = await single.runtime(makeClock("real"), 1, NONE);
        const { options } = request(single, i, sampled);
        const { lookahead: _l, draft: _d, ...plain } = options;
        alone.set(`${sampled}/${i}`, (await generate("nonsi", rt, plain).result).tokens);
      }
    }
  } finally {
    await single.close();
  }
});

let backend: Backend | undefined;
after(async () => {
  await backend?.close();
});

test("8 generations at once on one 8-sequence instance: each equals the same request alone (greedy and match)", { timeout: 240_000 }, async () => {
  backend = await llamaBackend({ ...files, threads: 1, gpu: false, sequences: 8 });
  assert.match(backend.describe(), /8 sequences per target instance/);
  for (const sampled of [false, true]) {
    // SP 1: one instance, its 8 sequences; each generation keeps one.
    const rt = await backend.runtime(makeClock("real"), 1, NONE, { events: true });
    const runs = PROMPTS.map((_, i) => {
      const { algo, options } = request(backend!, i, sampled);
      return generate(algo, rt, options).result;
    });
    const results = await Promise.all(runs);
    results.forEach((r, i) => assert.deepEqual(r.tokens, alone.get(`${sampled}/${i}`), `${sampled ? "match" : "greedy"} request ${i} (${request(backend!, i, sampled).algo})`));
    // Every generation ran at once (admitted on its own sequence), never waiting for another.
    assert.equal(rt.pool.queuedMembers, 0);
    const leased = new Set(rt.events.events.flatMap((e) => (e.type === "lease" ? [e.instance] : [])));
    assert.equal(leased.size, 8, `sequences used: ${[...leased]}`);
    rt.close();
  }
});

test("the drafter keeps a sequence per generation the pool runs at once (4 target instances, one sequence each): no generation re-reads its context there", { timeout: 120_000 }, async () => {
  const b = await llamaBackend({ ...files, threads: 1, gpu: false });
  try {
    const rt = await b.runtime(makeClock("real"), 4, NONE);
    const router = rt.drafter as SequenceRouter;
    assert.equal(router.members.length, 4, "one drafter sequence per admitted generation");
    const prompts = PROMPTS.slice(0, 4).map((p) => b.tokenizer.encode(p));
    const results = await Promise.all(prompts.map((prompt, i) => generate("si", rt, { prompt, maxTokens: 24, sampling: GREEDY, verify: "greedy", seed: i, lookahead: 3 }).result));
    results.forEach((r, i) => assert.deepEqual(r.tokens, alone.get(`false/${i}`)?.slice(0, 24), `request ${i}`));
    // Each drafter sequence read a prompt once, then a window's worth at a time. One sequence
    // shared by the four re-read a whole context (prompt and output) at every switch.
    const longest = Math.max(...prompts.map((p) => p.length));
    const reads = router.members.map((m) => (m as LlamaInstance).longestRead);
    assert.ok(reads.every((n) => n > 0 && n <= longest + 4), `longest reads ${reads}, prompts up to ${longest} tokens`);
    rt.close();
    // A runtime that admits more generations gets more drafter sequences.
    const wider = await b.runtime(makeClock("real"), 6, NONE);
    assert.equal((wider.drafter as SequenceRouter).members.length, 6);
    wider.close();
  } finally {
    await b.close();
  }
});
