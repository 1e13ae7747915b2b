/** The adaptive lookahead tests' workload: generations on one virtual-time runtime (run off-thread, see off-thread.ts). */
import { generate } from "../../src/algorithms/generate.js";
import type { AlgorithmName, Lookahead } from "../../src/algorithms/options.js";
import { sumHistograms } from "../../src/algorithms/output.js";
import type { ModelLatency } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair, type SyntheticSpec } from "../../src/models/synthetic.js";
import { learnedFromSnapshot, snapshotLearned, type Learned, type LearnedSnapshot } from "../../src/runtime/costs.js";
import type { Runtime } from "../../src/runtime/runtime.js";

export interface Setup {
  pair: Partial<SyntheticSpec>;
  target: ModelLatency;
  drafter: ModelLatency;
  sp: number;
  prompts: number;
  tokens: number;
  /** The drafter and the targets share one device (LatencyProfile.contention). */
  contention?: number;
}

export interface Totals {
  ms: number;
  tokens: number[][];
  windows: number[];
  probes: number;
}

/**
 * `prompts` generations, one after another on one runtime (as a server runs them). `warm`: the
 * runtime starts from what a first runtime learned running the same generations, through its
 * snapshot (as a later command starts from the file the last one left).
 */
export async function runAll(algo: AlgorithmName, s: Setup, lookahead?: Lookahead, warm = false): Promise<Totals> {
  const runtime = (learned?: Learned) =>
    syntheticRuntime({
      pair: new SyntheticPair(s.pair),
      profile: { name: "test", target: s.target, drafter: s.drafter, ...(s.contention === undefined ? {} : { contention: s.contention }) },
      clock: "virtual",
      sp: algo === "dsi" ? s.sp : 1,
      events: false,
      learned,
    });
  let prior: Learned | undefined;
  if (warm) {
    const first = runtime();
    await runOn(first, algo, s, lookahead);
    prior = learnedFromSnapshot(JSON.parse(JSON.stringify(snapshotLearned(first.learned))) as LearnedSnapshot);
  }
  return runOn(runtime(prior), algo, s, lookahead);
}

async function runOn(rt: Runtime, algo: AlgorithmName, s: Setup, lookahead?: Lookahead): Promise<Totals> {
  const out: Totals = { ms: 0, tokens: [], windows: [], probes: 0 };
  for (let i = 0; i < s.prompts; i++) {
    const prompt = [i % 32, (3 * i + 1) % 32, (7 * i + 2) % 32];
    const r = await generate(algo, rt, { prompt, maxTokens: s.tokens, ...(algo === "nonsi" ? {} : { lookahead }) }).result;
    out.ms += r.stats.timeMs;
    out.tokens.push(r.tokens);
    out.probes += r.stats.probes;
    out.windows = sumHistograms([out.windows, r.stats.windows]);
  }
  return out;
}


/**
 * 8000 samples of 3 tokens (seeds 0..7999) after the prompt [1, 2] on one runtime, so the
 * adaptive lookahead changes between samples: the counts of each 3-token outcome and the windows sent.
 */
export async function sampleOnOneRuntime(algo: AlgorithmName, target: ModelLatency, drafter: ModelLatency): Promise<{ counts: Float64Array; windows: number[] }> {
  const V = 6;
  const pair = new SyntheticPair({ vocab: V, seed: 77, agreement: 0.5, sharpness: 2.5 });
  const rt = syntheticRuntime({ pair, profile: { name: "test", target, drafter }, clock: "virtual", sp: 2, events: false });
  const counts = new Float64Array(V ** 3);
  let windows: number[] = [];
  for (let seed = 0; seed < 8000; seed++) {
    const r = await generate(algo, rt, { prompt: [1, 2], maxTokens: 3, sampling: { temperature: 1, topK: 0, topP: 1 }, verify: "rejection", seed, lookahead: "auto" }).result;
    const [a, b, c] = r.tokens;
    counts[a * V * V + b * V + c]++;
    windows = sumHistograms([windows, r.stats.windows]);
  }
  return { counts, windows };
}
