/**
 * The corpus pair on a small configuration (100 documents, 1024 tokens, two target blocks):
 * generated the same bytes every time, loaded by node-llama-cpp, tokenized as llama.cpp
 * tokenizes, and computing in llama.cpp what the compiled arithmetic (reference.ts) says.
 * The full default pair is checked once, in test/cli/llama-cli.test.ts.
 */
import "../helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { LlamaModel } from "node-llama-cpp";
import { detExp, detLog } from "../../src/models/corpus/det-math.js";
import { PairReference } from "../../src/models/corpus/reference.js";
import type { CorpusPairSpec } from "../../src/models/corpus/spec.js";
import { writeCorpusPair, type WrittenCorpusPair } from "../../src/models/corpus/write.js";
import { loadLlama } from "../../src/models/llama.js";
import { tempDir } from "../helpers/temp.js";

/** Small enough to generate in a few seconds; every knob given, so that a change of the defaults leaves its hash alone. */
const SMALL: CorpusPairSpec = {
  kind: "corpus",
  vocab: 1024,
  layers: 2,
  trigramWeight: 0.4,
  context: 256,
  rank: 64,
  codeDims: 64,
  correctionDims: 64,
  tokenTables: 256,
  blockTables: 1024,
  tableWidth: 8,
  repeatPenalty: 3,
  documents: 100,
  seed: 1,
};
/**
 * SHA-256 of the small pair's target.gguf then drafter.gguf. It changes only when the
 * construction does (then bump CORPUS_PAIR_VERSION in models/gguf/llama-model.ts too).
 */
const SMALL_GOLDEN = "e7b4781b5e4d133717893bccf8b352d53e2f1a2edf45c2f83df138a825415b0d";

let written: WrittenCorpusPair;

before(async () => {
  written = await writeCorpusPair(join(await tempDir("corpus-pair"), "a"), SMALL);
});

async function digest(files: { target: string; drafter: string }): Promise<string> {
  const h = createHash("sha256");
  h.update(await readFile(files.target));
  h.update(await readFile(files.drafter));
  return h.digest("hex");
}

test("a corpus pair is the same bytes every time it is generated, and the small one has its golden hash", async () => {
  const again = await writeCorpusPair(join(await tempDir("corpus-pair"), "b"), SMALL);
  assert.ok((await readFile(written.target)).equals(await readFile(again.target)), "target.gguf differs between two generations");
  assert.ok((await readFile(written.drafter)).equals(await readFile(again.drafter)), "drafter.gguf differs between two generations");
  assert.equal(await digest(written), SMALL_GOLDEN);
});

function logSoftmax(logits: Float64Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let z = 0;
  for (const x of logits) z += detExp(x - max);
  const lz = max + detLog(z);
  return logits.map((x) => x - lz);
}

/** log p of every position's next token (full distribution) as llama.cpp computes it, one token at a time. */
async function llamaLogProbs(model: LlamaModel, tokens: number[]): Promise<Map<number, number>[]> {
  const context = await model.createContext({ contextSize: tokens.length + 8, threads: 1 });
  try {
    const sequence = context.getSequence();
    const out: Map<number, number>[] = [];
    for (const t of tokens) {
      const [r] = (await sequence.controlledEvaluate([[t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]] as never)) as { next: { probabilities: Map<number, number> } }[];
      out.push(new Map([...r.next.probabilities].map(([k, p]) => [k, Math.log(p)])));
    }
    return out;
  } finally {
    await context.dispose();
  }
}

/**
 * Where llama.cpp and the compiled arithmetic differ: the largest |log p| difference over the
 * reference's ten most likely tokens, and the positions whose greedy tokens differ although
 * the reference's top two are more than `clear` nats apart.
 */
function compare(llama: Map<number, number>[], reference: Float64Array[], clear: number): { worst: number; flips: number[] } {
  let worst = 0;
  const flips: number[] = [];
  reference.forEach((ref, p) => {
    const order = [...ref.keys()].sort((a, b) => ref[b] - ref[a]);
    for (const t of order.slice(0, 10)) worst = Math.max(worst, Math.abs(ref[t] - (llama[p].get(t) ?? -Infinity)));
    const llamaTop = llama[p].keys().next().value;
    if (llamaTop !== order[0] && ref[order[0]] - ref[order[1]] > clear) flips.push(p);
  });
  return { worst, flips };
}

describe("the small corpus pair in node-llama-cpp", () => {
  let target: LlamaModel;
  let drafter: LlamaModel;
  let ref: PairReference;
  before(async () => {
    const llama = await loadLlama(false);
    target = await llama.loadModel({ modelPath: written.target, gpuLayers: 0 });
    drafter = await llama.loadModel({ modelPath: written.drafter, gpuLayers: 0 });
    ref = new PairReference(written.pair);
  });
  after(async () => {
    await target?.dispose();
    await drafter?.dispose();
  });

  test("both models load; they tokenize corpus sentences as the pair's tokenizer does, and detokenize them back", () => {
    const sentences = written.stats.heldOutDocuments.flatMap((d) => d.text.split(/(?<=[.?!]) /).slice(0, 8));
    sentences.push("Any prompt tokenizes: naïve café, 3.14159 -- ünïcödé, \u4e2d\u6587 and \u{1f600}!");
    assert.ok(sentences.length >= 30);
    for (const s of sentences) {
      const ours = written.stats.tokenizer.encode(s);
      for (const model of [target, drafter]) {
        const theirs = model.tokenize(s) as number[];
        assert.deepEqual(theirs, ours, s);
        assert.equal(model.detokenize(theirs as never), s);
      }
      assert.equal(written.stats.tokenizer.decode(ours), s);
    }
  });

  test("the drafter's next-token distribution is the compiled bigram's, within quantisation (Q8_0 weights and activations)", async () => {
    const tokens = written.stats.heldOut[0].slice(0, 60);
    const llama = await llamaLogProbs(drafter, tokens);
    const reference = tokens.map((t) => logSoftmax(ref.drafterLogits(t)));
    const { worst, flips } = compare(llama.slice(1), reference.slice(1), 0.1);
    assert.ok(worst < 0.15, `largest |log p| difference ${worst}`);
    assert.deepEqual(flips, []);
  });

  test("the target computes its compiled arithmetic: previous-token heads, tables and the repeat head", async () => {
    // A text whose token pairs repeat, so that the repeat head fires.
    const text = "The jury said it did find that many of the laws are old. The jury said it did find that many of the laws are old.";
    const tokens = [1, ...written.stats.tokenizer.encode(text)];
    const llama = await llamaLogProbs(target, tokens);
    const trace = ref.targetTrace();
    const reference = tokens.map((t) => {
      trace.push(t);
      return logSoftmax(trace.logits());
    });
    const { worst, flips } = compare(llama.slice(1), reference.slice(1), 0.1);
    assert.ok(worst < 0.15, `largest |log p| difference ${worst}`);
    assert.deepEqual(flips, []);
    // The second time round, the token that followed each pair before is penalised in both.
    const half = (tokens.length + 1) / 2;
    let penalised = 0;
    for (let p = half + 1; p < tokens.length - 1; p++) {
      const next = tokens[p + 1];
      const drop = (llama[p - half + 1]?.get(next) ?? 0) - (llama[p].get(next) ?? 0);
      if (drop > SMALL.repeatPenalty / 2) penalised++;
    }
    assert.ok(penalised >= (tokens.length - half) / 2, `only ${penalised} repeated continuations were penalised`);
  });
});
