/**
 * Does the drafter's confidence predict acceptance? The precondition of a confidence cut
 * (ending a window early when the drafter's probability of its draft is low, as dynamic-
 * lookahead work on SI does): if acceptance does not depend on confidence, no cut can help.
 *
 * On the generated GGUF pair, real compute: the target's greedy continuation of each prompt,
 * then the drafter's distribution at every position of it (teacher forcing: what a draft
 * sees when the drafts before it were accepted). Prints the acceptance (drafter argmax equals
 * the target's token) by the drafter's top probability, and what a cut at each threshold
 * would keep: the share of positions drafted and their acceptance.
 *
 * Usage: node dist/bench/confidence.js [--tokens 64]
 */
import { cpus } from "node:os";
import Table from "cli-table3";
import { benchArgs } from "./args.js";
import { GREEDY } from "../src/core/sampling.js";
import { Stream } from "../src/core/random.js";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair } from "../src/models/gguf/llama-model.js";
import { LlamaPair } from "../src/models/llama.js";

const values = benchArgs("usage: node dist/bench/confidence.js [--tokens 64]", { tokens: { default: 64, min: 1 } });
const PROMPTS = ["the quick brown fox", "once upon a time", "in the beginning", "hello world", "a b c", "it was the best of times", "call me ishmael", "to be or not to be"];

const files = await ensurePair(defaultCacheDir(), DEFAULT_PAIR);
const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
const drafter = await pair.instance("drafter", "drafter");
const target = await pair.instance("target", "target-0");

/** Per position: the drafter's top probability and whether its argmax is the target's token. */
const samples: { confidence: number; accepted: boolean }[] = [];
for (const text of PROMPTS) {
  await drafter.reset();
  await target.reset();
  const prompt = pair.encode(text);
  const seq = [...prompt];
  for (let i = 0; i < values.tokens; i++) {
    const [out] = await target.evaluate({ tokens: seq, from: seq.length, mode: "greedy", sampling: GREEDY, seed: 0, stream: Stream.target });
    seq.push(out.token);
  }
  // The drafter's distribution at every generated position, in one pass (temperature 1).
  const outs = await drafter.evaluate({ tokens: seq, from: prompt.length, mode: "dist", sampling: { temperature: 1, topK: 0, topP: 1 }, seed: 0, stream: Stream.draft });
  for (let i = 0; i < values.tokens; i++) {
    const probs = outs[i].probs!;
    let best = 0;
    for (let v = 1; v < probs.length; v++) if (probs[v] > probs[best]) best = v;
    samples.push({ confidence: probs[best], accepted: best === seq[prompt.length + i] });
  }
}
await pair.dispose();

const rate = (xs: typeof samples): string => (xs.length === 0 ? "" : (xs.filter((s) => s.accepted).length / xs.length).toFixed(2));
const byBucket = new Table({ style: { head: [], border: [] }, head: ["drafter top probability", "positions", "acceptance"] });
for (let b = 0; b < 10; b++) {
  const inBucket = samples.filter((s) => Math.min(9, Math.floor(s.confidence * 10)) === b);
  if (inBucket.length > 0) byBucket.push([`${(b / 10).toFixed(1)}-${((b + 1) / 10).toFixed(1)}`, inBucket.length, rate(inBucket)]);
}
const cuts = new Table({ style: { head: [], border: [] }, head: ["cut: draft only at top probability >=", "positions drafted", "their acceptance"] });
for (const threshold of [0, 0.2, 0.3, 0.4, 0.5, 0.6]) {
  const kept = samples.filter((s) => s.confidence >= threshold);
  cuts.push([threshold.toFixed(1), `${((100 * kept.length) / samples.length).toFixed(0)}%`, rate(kept)]);
}
console.log(`Drafter confidence vs acceptance, generated GGUF pair, ${PROMPTS.length} prompts x ${values.tokens} target-greedy tokens (teacher forcing), ${samples.length} positions; acceptance overall ${rate(samples)}.`);
console.log(byBucket.toString());
console.log(cuts.toString());
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores); llama.cpp ${pair.llama.llamaCppRelease.release} (${pair.llama.buildType} build)`);
