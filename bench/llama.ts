/**
 * Real compute on this machine: the generated default GGUF pair (target >= 10x the
 * drafter's cost), SP=1, one thread per instance, greedy. Tokens per second of our
 * non-SI, SI and DSI, against node-llama-cpp's own DraftSequenceTokenPredictor (the
 * TypeScript SI anchor) and its plain evaluation loop, on the same prompt, measured in one
 * run with the methods interleaved round after round (the machine is shared and noisy;
 * medians and ratios, not absolute numbers, are what to read).
 *
 * Our SI and DSI run with a fixed lookahead and with `auto` (the adaptive lookahead: each
 * method keeps one runtime across rounds, so its observed costs carry over as in a server).
 * Goal: auto DSI at least 0.95x of non-SI's speed, on a CPU where speculation cannot pay.
 *
 * Usage: node dist/bench/llama.js [--tokens 64] [--rounds 5] [--lookahead 5] [--prompt TEXT]
 */
import { cpus } from "node:os";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";
import { timeTheirLoop } from "./node-llama-cpp-loop.js";
import Table from "cli-table3";
import { DraftSequenceTokenPredictor, type LlamaContextSequence } from "node-llama-cpp";
import { generate } from "../src/algorithms/generate.js";
import type { AlgorithmName, Lookahead } from "../src/algorithms/options.js";
import type { Runtime } from "../src/runtime/runtime.js";
import { GREEDY } from "../src/core/sampling.js";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair } from "../src/models/gguf/llama-model.js";
import { LlamaPair } from "../src/models/llama.js";
import { DEMO_PROMPT } from "../src/cli/demo.js";
import { assembleRuntime } from "../src/models/runtime.js";

const values = benchArgs(
  "usage: node dist/bench/llama.js [--tokens 64] [--rounds 5] [--lookahead 5] [--prompt TEXT]",
  { tokens: { default: 64, min: 1 }, rounds: { default: 5, min: 1 }, lookahead: { default: 5, min: 1 } },
  { prompt: DEMO_PROMPT },
);
const TOKENS = values.tokens;
const ROUNDS = values.rounds;
const L = values.lookahead;

const files = await ensurePair(defaultCacheDir(), DEFAULT_PAIR);
const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
const drafter = await pair.instance("drafter", "drafter");
const target = await pair.instance("target", "target-0");
const prompt = pair.encode(values.prompt);

// node-llama-cpp's own paths, on contexts of their own.
const anchorTarget = await pair.target.createContext({ contextSize: pair.contextSize, threads: 1 });
const anchorDraft = await pair.drafter!.createContext({ contextSize: pair.contextSize, threads: 1 });
const predictor = new DraftSequenceTokenPredictor(anchorDraft.getSequence(), { maxTokens: L, minConfidence: 0 });
const anchorSeq = anchorTarget.getSequence({ tokenPredictor: predictor });
const plainContext = await pair.target.createContext({ contextSize: pair.contextSize, threads: 1 });
const plainSeq = plainContext.getSequence();

interface Sample {
  ms: number;
  tokens: number[];
  /** Drafts decided: accepted and rejected (ours, SI and DSI). */
  decided?: { accepted: number; rejected: number };
}

/** One runtime per method, kept across rounds (the adaptive lookahead's costs carry over). */
const runtimes = new Map<string, Runtime>();

async function ours(algo: AlgorithmName, lookahead: { lookahead?: Lookahead } = {}): Promise<Sample> {
  await drafter.reset();
  await target.reset();
  const key = `${algo}/${lookahead.lookahead}`;
  let rt = runtimes.get(key);
  if (!rt) {
    rt = assembleRuntime({ clock: "real", drafter, target: () => target, vocabSize: pair.vocabSize, eosToken: pair.eosToken, sp: 1, events: false });
    runtimes.set(key, rt);
  }
  const t0 = performance.now();
  const r = await generate(algo, rt, { prompt, maxTokens: TOKENS, sampling: GREEDY, verify: "greedy", seed: 0, ...lookahead, stopAtEos: false }).result;
  return { ms: performance.now() - t0, tokens: r.tokens, decided: algo === "nonsi" ? undefined : { accepted: r.stats.accepted, rejected: r.stats.rejected } };
}

const theirs = (seq: LlamaContextSequence): Promise<Sample> => timeTheirLoop(seq, prompt, TOKENS);

const METHODS: [string, () => Promise<Sample>][] = [
  ["node-llama-cpp plain loop", () => theirs(plainSeq)],
  ["node-llama-cpp DraftSequenceTokenPredictor (anchor)", () => theirs(anchorSeq)],
  ["dsi non-SI", () => ours("nonsi")],
  [`dsi SI (L=${L})`, () => ours("si", { lookahead: L })],
  [`dsi DSI (L=${L}, SP=1)`, () => ours("dsi", { lookahead: L })],
  ["dsi SI (auto)", () => ours("si", { lookahead: "auto" })],
  ["dsi DSI (auto, SP=1)", () => ours("dsi", { lookahead: "auto" })],
];

const started = performance.now();
const samples = new Map<string, Sample[]>(METHODS.map(([n]) => [n, []]));
for (const [, run] of METHODS) await run(); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round so no method always runs right after the same other one.
  for (let i = 0; i < METHODS.length; i++) {
    const [name, run] = METHODS[(i + r) % METHODS.length];
    samples.get(name)!.push(await run());
  }
}

const reference = samples.get(METHODS[2][0])![0].tokens.join();
const medianOf = (name: string): number => median(samples.get(name)!.map((s) => s.ms));
const anchorMs = medianOf(METHODS[1][0]);
const table = new Table({ style: { head: [], border: [] }, head: ["method", "median ms", "tokens/s", "vs anchor", "acceptance", "same tokens as non-SI"] });
for (const [name] of METHODS) {
  const runs = samples.get(name)!;
  const ms = medianOf(name);
  // Pooled over the rounds (auto may decide few drafts, or none, in one round).
  const accepted = runs.reduce((a, s) => a + (s.decided?.accepted ?? 0), 0);
  const decided = runs.reduce((a, s) => a + (s.decided ? s.decided.accepted + s.decided.rejected : 0), 0);
  const acc = runs[0].decided === undefined ? "" : decided === 0 ? "no drafts" : (accepted / decided).toFixed(2);
  table.push([
    name,
    ms.toFixed(1),
    ((1000 * TOKENS) / ms).toFixed(1),
    `${(anchorMs / ms).toFixed(2)}x`,
    acc,
    runs.every((s) => s.tokens.join() === reference) ? "yes" : "NO",
  ]);
}
console.log(
  `Real compute, ${pair.target.fileInfo.metadata.general.name ?? "target"} pair from make-model defaults (Brown Corpus pair: ${DEFAULT_PAIR.layers} vs 1 blocks, vocabulary ${DEFAULT_PAIR.vocab}, Q8_0), CPU, 1 thread per instance, ${TOKENS} tokens, prompt ${JSON.stringify(values.prompt)}, greedy, median of ${ROUNDS} interleaved rounds.`,
);
console.log(table.toString());
// Real compute depends on the machine: which CPU, and which SIMD paths llama.cpp's kernels take.
const release = pair.llama.llamaCppRelease;
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores); node-llama-cpp ${release.repo} release ${release.release} (${pair.llama.buildType} build)`);
console.log(`llama.cpp system info: ${pair.llama.systemInfo.trim()}`);
console.log(`"vs anchor" = anchor's median time / the method's (>1: faster than node-llama-cpp's speculative decoding). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
const autoVsNonSi = medianOf("dsi non-SI") / medianOf("dsi DSI (auto, SP=1)");
const bestFixed = Math.min(medianOf(`dsi SI (L=${L})`), medianOf(`dsi DSI (L=${L}, SP=1)`));
console.log(
  `auto DSI runs at ${autoVsNonSi.toFixed(2)}x of non-SI's speed (goal >= 0.95): ${autoVsNonSi >= 0.95 ? "PASS" : "FAIL"}; ` +
    `auto DSI vs the faster fixed-L method ${(bestFixed / medianOf("dsi DSI (auto, SP=1)")).toFixed(2)}x`,
);

await anchorTarget.dispose();
await anchorDraft.dispose();
await plainContext.dispose();
await pair.dispose();
