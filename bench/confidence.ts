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
 * Then what a cut would gain SI: the target's cost of a window of k drafts and the drafter's
 * step are measured on the same contexts, and SI's expected time per token (the adaptive
 * lookahead's model, positions independent) is compared with and without a cut at each
 * threshold, each at its best lookahead: with the costs measured here, with flat costs (a
 * window costs one step, as on a GPU where decoding is memory-bound), and with flat costs and
 * a drafter at a third of a step (the paper's starcoder pair): a cut saves drafter steps and
 * verification, so it pays most where those are dear.
 *
 * Usage: node dist/bench/confidence.js [--tokens 64]
 */
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import Table from "cli-table3";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";
import { GREEDY } from "../src/core/sampling.js";
import { Stream } from "../src/core/random.js";
import { AUTO_MAX_LOOKAHEAD, siMsPerToken, type CostModel } from "../src/algorithms/lookahead.js";
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
/** Measured ms of a target window of k drafts (index k) and of a drafter step. */
const windowMs: number[][] = Array.from({ length: AUTO_MAX_LOOKAHEAD + 1 }, () => []);
const draftMs: number[] = [];

/**
 * ms of evaluating `tokens` from `from` with the cache holding the first `cached` tokens: the
 * untimed call leaves exactly those in the instance's cache (as after a commit).
 */
async function timed(instance: typeof target, tokens: number[], cached: number, from: number): Promise<number> {
  const base = tokens.slice(0, cached);
  await instance.evaluate({ tokens: base, from: cached, mode: "greedy", sampling: GREEDY, seed: 0, stream: Stream.target });
  const t0 = performance.now();
  await instance.evaluate({ tokens, from, mode: "greedy", sampling: GREEDY, seed: 0, stream: Stream.target });
  return performance.now() - t0;
}
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
  // Costs, every 8th position: a window of k drafts at p evaluates the last committed token and
  // k drafts (k + 1 outputs); a drafter step evaluates one token.
  for (let p = prompt.length + 4; p + AUTO_MAX_LOOKAHEAD <= seq.length; p += 8) {
    for (let k = 0; k <= AUTO_MAX_LOOKAHEAD; k++) windowMs[k].push(await timed(target, seq.slice(0, p + k), p - 1, p));
    draftMs.push(await timed(drafter, seq.slice(0, p), p - 1, p));
  }
}
await pair.dispose();

/** The share of accepted drafts among `xs`. */
const acceptanceOf = (xs: typeof samples): number => xs.filter((s) => s.accepted).length / xs.length;
const rate = (xs: typeof samples): string => (xs.length === 0 ? "" : acceptanceOf(xs).toFixed(2));
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

/**
 * SI's expected ms per token with lookahead k and a cut at confidence θ, positions independent:
 * a share h of drafts have confidence >= θ and acceptance aHigh, the others aLow. `keep`: the
 * window ends with the first draft below θ (verified); otherwise that draft is dropped (its
 * drafter step is paid all the same). With h = 1 this is siMsPerToken.
 */
function cutMsPerToken(k: number, m: CostModel, h: number, aHigh: number, aLow: number, keep: boolean): number {
  if (k === 0) return m.t0;
  const a = h * aHigh + (1 - h) * aLow;
  let tokens = 1;
  let steps = 0;
  let verify = 0;
  for (let j = 1; j <= k; j++) {
    steps += h ** (j - 1); // the drafter makes draft j when drafts 1..j-1 were all confident
    tokens += keep ? (h * aHigh) ** (j - 1) * a : (h * aHigh) ** j;
    // Window size j: (keep) draft j is the first below θ, or the k-th; (drop) draft j+1 is.
    const size = keep ? (j < k ? h ** (j - 1) * (1 - h) : h ** (k - 1)) : j < k ? h ** j * (1 - h) : h ** k;
    verify += size * m.t(j);
  }
  if (!keep) verify += (1 - h) * m.t0; // the first draft below θ: a window of none
  return (steps * m.d + verify) / tokens;
}

const t = windowMs.map(median);
const d = median(draftMs);
const overall = acceptanceOf(samples);
/** Each threshold's split of the positions: the share at or above it and both acceptances. */
const splits = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8].flatMap((theta) => {
  const high = samples.filter((s) => s.confidence >= theta);
  const low = samples.filter((s) => s.confidence < theta);
  return high.length === 0 || low.length === 0 ? [] : [{ theta, h: high.length / samples.length, aHigh: acceptanceOf(high), aLow: acceptanceOf(low) }];
});
/** The best lookahead (0..AUTO_MAX_LOOKAHEAD) by a time-per-token function, and its time. */
const best = (f: (k: number) => number): [number, number] => {
  let [bk, bms] = [0, f(0)];
  for (let k = 1; k <= AUTO_MAX_LOOKAHEAD; k++) if (f(k) < bms) [bk, bms] = [k, f(k)];
  return [bk, bms];
};
const plans = new Table({ style: { head: [], border: [] }, head: ["costs", "no cut: best L, ms/token", "best cut: θ, L, ms/token", "cut vs no cut"] });
for (const [name, cost, drafterMs] of [
  ["measured", (k: number) => t[k], d],
  ["flat (a window = one step)", () => t[0], d],
  ["flat, drafter at 1/3 of a step", () => t[0], t[0] / 3],
] as const) {
  const m: CostModel = { a: overall, d: drafterMs, t: cost, t0: t[0] };
  const [k0, ms0] = best((k) => siMsPerToken(k, m));
  let cut = { theta: 0, k: k0, ms: ms0, keep: true };
  for (const { theta, h, aHigh, aLow } of splits) {
    for (const keep of [true, false]) {
      const [k, ms] = best((k) => cutMsPerToken(k, m, h, aHigh, aLow, keep));
      if (ms < cut.ms) cut = { theta, k, ms, keep };
    }
  }
  plans.push([
    name,
    `L=${k0}${k0 === 0 ? " (plain steps)" : ""}, ${ms0.toFixed(2)}`,
    cut.theta === 0 ? "none better" : `θ=${cut.theta} (${cut.keep ? "verify" : "drop"} the first below), L=${cut.k}, ${cut.ms.toFixed(2)}`,
    `${(ms0 / cut.ms).toFixed(3)}x`,
  ]);
}
console.log(
  `Measured: target window of k drafts ${t.map((x, k) => `${k}:${x.toFixed(1)}`).join(" ")} ms; drafter step ${d.toFixed(2)} ms (medians over ${draftMs.length} contexts). SI's expected ms per token (positions independent):`,
);
console.log(plans.toString());
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores); llama.cpp ${pair.llama.llamaCppRelease.release} (${pair.llama.buildType} build)`);
