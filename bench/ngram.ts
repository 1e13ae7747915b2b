/**
 * Prompt lookup on real compute: the generated default GGUF pair, SP=1, one thread per
 * instance, greedy, on prompts whose continuation copies them (a list to continue, a passage
 * to repeat) and on an open prompt. Per prompt: our non-SI; auto SI and DSI drafting from the
 * drafter model, from prompt lookup alone (a target alone: no drafter loaded into the runtime)
 * and from lookup before the model; node-llama-cpp's InputLookupTokenPredictor (its prompt
 * lookup, the anchor) and its plain loop. Methods interleaved round after round, the order
 * rotating; each method keeps one runtime across rounds (as a server does: what it measured
 * carries over), after one warm-up round that is not counted. Medians and ratios to our
 * non-SI; acceptance by source.
 *
 * Goals (issue 21): on copying prompts, DSI with `--draft ngram` faster than non-SI and than
 * node-llama-cpp's input-lookup loop; on the open prompt, no auto method below 0.95x of non-SI.
 *
 * Usage: node dist/bench/ngram.js [--tokens 64] [--rounds 3]
 */
import { cpus } from "node:os";
import Table from "cli-table3";
import { InputLookupTokenPredictor, type LlamaContextSequence } from "node-llama-cpp";
import { generate } from "../src/algorithms/generate.js";
import type { DraftMode } from "../src/algorithms/option-spec.js";
import type { AlgorithmName } from "../src/algorithms/options.js";
import { GREEDY } from "../src/core/sampling.js";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair } from "../src/models/gguf/llama-model.js";
import { LlamaPair } from "../src/models/llama.js";
import { assembleRuntime } from "../src/models/runtime.js";
import type { Runtime } from "../src/runtime/runtime.js";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";
import { timeTheirLoop } from "./node-llama-cpp-loop.js";

const values = benchArgs("usage: node dist/bench/ngram.js [--tokens 64] [--rounds 3]", { tokens: { default: 64, min: 8 }, rounds: { default: 3, min: 1 } });
const TOKENS = values.tokens;

/** Input-grounded prompts (their continuation repeats them) and an open one. */
const PROMPTS: { name: string; copying: boolean; text: string }[] = [
  { name: "a list to continue", copying: true, text: "one, two, three, four, five, six, seven, eight, nine, ten. one, two, three, four, five, six, seven, eight, nine, ten. one, two, three," },
  {
    name: "a passage to repeat",
    copying: true,
    text: "The committee met in the morning and decided to build a new school near the river. The committee met in the morning and decided to build a new school near the river. The committee met in the morning and",
  },
  { name: "an open prompt", copying: false, text: "the quick brown fox" },
];

const files = await ensurePair(defaultCacheDir(), DEFAULT_PAIR);
const pair = await LlamaPair.load({ ...files, threads: 1, gpu: false });
const drafter = await pair.instance("drafter", "drafter");
const target = await pair.instance("target", "target-0");
const plainContext = await pair.target.createContext({ contextSize: pair.contextSize, threads: 1 });
const plainSeq = plainContext.getSequence();
const lookupContext = await pair.target.createContext({ contextSize: pair.contextSize, threads: 1 });
const lookupSeq = lookupContext.getSequence({ tokenPredictor: new InputLookupTokenPredictor() });

interface Sample {
  ms: number;
  tokens: number[];
  bySource?: { model: { accepted: number; rejected: number }; ngram: { accepted: number; rejected: number } };
  windows?: number[];
}

const runtimes = new Map<string, Runtime>();

async function ours(prompt: number[], key: string, algo: AlgorithmName, draft?: DraftMode): Promise<Sample> {
  await drafter.reset();
  await target.reset();
  let rt = runtimes.get(key);
  if (!rt) {
    // Prompt lookup alone runs on a target alone: the drafter is not part of the runtime.
    rt = assembleRuntime({ clock: "real", ...(draft === "ngram" ? {} : { drafter }), target: () => target, vocabSize: pair.vocabSize, eosToken: pair.eosToken, sp: 1, sharedDevice: true, events: false });
    runtimes.set(key, rt);
  }
  const t0 = performance.now();
  const r = await generate(algo, rt, { prompt, maxTokens: TOKENS, sampling: GREEDY, verify: "greedy", seed: 0, stopAtEos: false, ...(algo === "nonsi" ? {} : { lookahead: "auto", draft }) }).result;
  return { ms: performance.now() - t0, tokens: r.tokens, ...(algo === "nonsi" ? {} : { bySource: r.stats.bySource, windows: r.stats.windows }) };
}

const theirs = (seq: LlamaContextSequence, prompt: number[]): Promise<Sample> => timeTheirLoop(seq, prompt, TOKENS);

const started = performance.now();
const verdicts: string[] = [];
let pass = true;
console.log(
  `Prompt lookup on real compute: the default pair (Brown Corpus pair: ${DEFAULT_PAIR.layers} vs 1 blocks, vocabulary ${DEFAULT_PAIR.vocab}), CPU, 1 thread per instance, SP=1, ${TOKENS} tokens, greedy, auto lookahead, median of ${values.rounds} interleaved rounds after a warm-up round.`,
);
for (const p of PROMPTS) {
  const prompt = pair.encode(p.text);
  const methods: [string, () => Promise<Sample>][] = [
    ["node-llama-cpp plain loop", () => theirs(plainSeq, prompt)],
    ["node-llama-cpp InputLookupTokenPredictor (anchor)", () => theirs(lookupSeq, prompt)],
    ["dsi non-SI", () => ours(prompt, `${p.name}/nonsi`, "nonsi")],
  ];
  for (const algo of ["si", "dsi"] as const) {
    for (const draft of ["model", "ngram", "ngram+model"] as const) methods.push([`dsi ${algo.toUpperCase()} --draft ${draft}`, () => ours(prompt, `${p.name}/${algo}/${draft}`, algo, draft)]);
  }
  const samples = new Map<string, Sample[]>(methods.map(([n]) => [n, []]));
  for (const [, run] of methods) await run(); // warm-up
  for (let r = 0; r < values.rounds; r++) {
    for (let i = 0; i < methods.length; i++) {
      const [name, run] = methods[(i + r) % methods.length];
      samples.get(name)!.push(await run());
    }
  }
  const ms = (name: string): number => median(samples.get(name)!.map((s) => s.ms));
  const reference = samples.get("dsi non-SI")![0].tokens.join();
  const table = new Table({ style: { head: [], border: [] }, head: ["method", "median ms", "tokens/s", "vs non-SI", "acceptance (model / lookup)", "plain steps", "same tokens"] });
  for (const [name] of methods) {
    const runs = samples.get(name)!;
    const rate = (k: "model" | "ngram"): string => {
      const a = runs.reduce((x, s) => x + (s.bySource?.[k].accepted ?? 0), 0);
      const d = runs.reduce((x, s) => x + (s.bySource ? s.bySource[k].accepted + s.bySource[k].rejected : 0), 0);
      return d === 0 ? "-" : `${(a / d).toFixed(2)} of ${d}`;
    };
    const windows = runs[0].windows;
    table.push([
      name,
      ms(name).toFixed(0),
      ((1000 * TOKENS) / ms(name)).toFixed(1),
      `${(ms("dsi non-SI") / ms(name)).toFixed(2)}x`,
      runs[0].bySource ? `${rate("model")} / ${rate("ngram")}` : "",
      windows ? String(median(runs.map((s) => s.windows?.[0] ?? 0))) : "",
      name.startsWith("dsi") ? (runs.every((s) => s.tokens.join() === reference) ? "yes" : "NO") : "",
    ]);
    if (name.startsWith("dsi") && !runs.every((s) => s.tokens.join() === reference)) pass = false;
  }
  console.log(`\n${p.name} (${prompt.length} tokens): ${JSON.stringify(p.text.slice(0, 60))}...`);
  console.log(table.toString());
  console.log(`non-SI's continuation: ${JSON.stringify(pair.decode(samples.get("dsi non-SI")![0].tokens).slice(0, 100))}`);
  if (p.copying) {
    const lookup = ms("dsi DSI --draft ngram");
    const ok = lookup < ms("dsi non-SI") && lookup < ms("node-llama-cpp InputLookupTokenPredictor (anchor)");
    pass &&= ok;
    verdicts.push(`${p.name}: DSI --draft ngram ${(ms("dsi non-SI") / lookup).toFixed(2)}x of non-SI, ${(ms("node-llama-cpp InputLookupTokenPredictor (anchor)") / lookup).toFixed(2)}x of the anchor (goal: > 1 both) ${ok ? "PASS" : "FAIL"}`);
  } else {
    const worst = Math.min(...methods.filter(([n]) => n.startsWith("dsi ") && n !== "dsi non-SI").map(([n]) => ms("dsi non-SI") / ms(n)));
    pass &&= worst >= 0.95;
    verdicts.push(`${p.name}: the slowest auto method ${worst.toFixed(2)}x of non-SI (goal >= 0.95) ${worst >= 0.95 ? "PASS" : "FAIL"}`);
  }
}
const release = pair.llama.llamaCppRelease;
console.log(`\nCPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores); node-llama-cpp ${release.repo} release ${release.release} (${pair.llama.buildType} build); ${pair.llama.systemInfo.trim()}`);
for (const v of verdicts) console.log(v);
console.log(`verdict: ${pass ? "PASS" : "FAIL"} (and every output non-SI's). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
await plainContext.dispose();
await lookupContext.dispose();
await pair.dispose();
