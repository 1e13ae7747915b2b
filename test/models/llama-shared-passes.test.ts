/**
 * A llama context's sequences share forward passes (llama.ts, SharedContext): what a decode
 * carries, and that no sequence's outputs depend on what shared its passes. On random weights
 * (near ties everywhere), so a changed bit shows as a changed token.
 *
 * In a file of its own: a process that had run generations first (another test's setup) hid
 * the race these tests catch, where a fresh one shows it in most runs.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import type { EvalRequest } from "../../src/core/instance.js";
import { GREEDY } from "../../src/core/sampling.js";
import type { PositionOutput } from "../../src/core/verify.js";
import type { LlamaInstance } from "../../src/models/llama.js";
import { LONG_PAIR, pairFiles } from "../helpers/gguf-models.js";

let files: { target: string; drafter: string };
before(async () => {
  files = await pairFiles("long", LONG_PAIR);
});

/** Counts llama.cpp decode calls of a context: node-llama-cpp's internal binding (`_ctx`, pinned version), seen through a proxy. */
function countDecodes(slot: LlamaInstance): () => number {
  const context = (slot as unknown as { context: { _ctx: object } }).context;
  let decodes = 0;
  const real = context._ctx;
  context._ctx = new Proxy(real, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (typeof v !== "function") return v;
      if (key === "decodeBatch") decodes++;
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return () => decodes;
}

test("a multi-sequence instance's sequences share passes: 8 one-token steps issued together are one decode", { timeout: 120_000 }, async () => {
  const { LlamaPair } = await import("../../src/models/llama.js");
  const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
  try {
    const slots: LlamaInstance[] = await pair.sequences("target", "t", 8);
    assert.ok(slots.every((s) => s.sharesPasses));
    const decodes = countDecodes(slots[0]);
    const prompt = [1, 2, 3, 4];
    await Promise.all(slots.map((s) => s.evaluate({ tokens: prompt, from: prompt.length, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 })));
    const before = decodes();
    await Promise.all(slots.map((s, i) => s.evaluate({ tokens: [...prompt, 5 + i], from: 5, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 })));
    assert.equal(decodes() - before, 1, "one decode for the eight steps");
    assert.ok(before < 8, `the prompts too went out together (${before} decodes)`);
    // Several threads: sequences take turns (a one-token step alone may take another attention path).
    const threaded = await LlamaPair.load({ ...files, threads: 2, gpu: false });
    try {
      assert.ok((await threaded.sequences("target", "t", 2)).every((s) => !s.sharesPasses));
    } finally {
      await threaded.dispose();
    }
  } finally {
    await pair.dispose();
  }
});

test("shared passes are exact: 8 sequences reading random 160-token paths at once in windows of 1..32 get every greedy token (and, in one round, every distribution bit for bit) as one token at a time alone", { timeout: 240_000 }, async () => {
  const { LlamaPair } = await import("../../src/models/llama.js");
  const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
  try {
    const [reference] = await pair.sequences("target", "alone", 1);
    // (No decode counter here: its proxy slows every call enough to hide the race this test
    // catches; the test above shows the passes are shared.)
    const slots: LlamaInstance[] = await pair.sequences("target", "t", 8);
    let seed = 17;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const SIZES = [1, 1, 1, 2, 3, 5, 8, 32];
    // Greedy rounds catch the race the reads had (without serialised reads, 9 and 12 of 48
    // sequences differed in two runs of 6 rounds; reads of whole distributions overlap less).
    const MODES = ["greedy", "greedy", "greedy", "greedy", "greedy", "dist"] as const;
    for (const [round, mode] of MODES.entries()) {
      const request = (tokens: number[], from: number): EvalRequest => ({ tokens, from, mode, sampling: { temperature: 1, topK: 0, topP: 1 }, seed: 0, stream: 0 });
      const paths = slots.map(() => Array.from({ length: 160 }, () => 1 + rand(300)));
      // Alone, one token at a time: every position's output.
      const expected: PositionOutput[][] = [];
      for (const path of paths) {
        const outputs: PositionOutput[] = [];
        for (let p = 1; p <= path.length; p++) outputs.push(...(await reference.evaluate(request(path.slice(0, p), p))));
        expected.push(outputs);
      }
      // Together: each sequence reads its path in windows of random sizes, all at once, started
      // in reverse (node-llama-cpp orders a decode by when its sequences queued: out of
      // sequence order, llama.cpp reorders the outputs on the first read, which raced with
      // concurrent reads before they were serialised).
      const got = await Promise.all(
        [...slots].reverse().map(async (slot, r) => {
          const s = slots.length - 1 - r;
          const outputs: PositionOutput[] = [];
          for (let at = 1; at <= paths[s].length; ) {
            const end = Math.min(paths[s].length, at + SIZES[rand(SIZES.length)] - 1);
            outputs.push(...(await slot.evaluate(request(paths[s].slice(0, end), at))));
            at = end + 1;
          }
          return outputs;
        }),
      );
      got.reverse();
      got.forEach((outputs, s) => assert.deepEqual(outputs, expected[s], `round ${round} (${mode}), sequence ${s}`));
    }
  } finally {
    await pair.dispose();
  }
});


test("the default sequences per target instance: one per concurrent generation over the instances, at most 8, on a CPU with one thread; else 1", { timeout: 120_000 }, async () => {
  const { LlamaPair } = await import("../../src/models/llama.js");
  const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
  const threaded = await LlamaPair.load({ ...files, threads: 2, gpu: false });
  try {
    // (A context of this small pair's 8 sequences needs a few MB: memory does not bind here.)
    assert.equal(await pair.defaultSequences(64, 1), 8);
    assert.equal(await pair.defaultSequences(64, 4), 8);
    assert.equal(await pair.defaultSequences(6, 2), 3);
    assert.equal(await pair.defaultSequences(1, 4), 1);
    assert.equal(await threaded.defaultSequences(64, 1), 1, "several threads: the sequences would take turns");
  } finally {
    await pair.dispose();
    await threaded.dispose();
  }
});
