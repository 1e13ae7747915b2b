/** The sampling tests' workload: many short generations, counted by outcome (run off-thread, see off-thread.ts). */
import type { DraftMode } from "../../src/algorithms/option-spec.js";
import type { AlgorithmName, Completion, GenerateOptions, Stats } from "../../src/algorithms/options.js";
import type { SamplingParams } from "../../src/core/sampling.js";
import type { VerifyRule } from "../../src/core/verify.js";
import { SyntheticPair, type SyntheticSpec } from "../../src/models/synthetic.js";
import { newLearned } from "../../src/runtime/costs.js";
import { generate } from "../../src/algorithms/generate.js";
import { withBatchCost } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { profile, run, type RunOptions } from "./run.js";

export interface Tally {
  counts: Float64Array;
  accepted: number;
  rejected: number;
  /** Drafts decided by their source. */
  bySource: Stats["bySource"];
}

/**
 * Generations of 3 tokens after `prompt` with seeds from..to-1 (L=2, SP=2, latency 10/3 in
 * virtual time), counted by outcome; `acceptEveryDraft` replaces the lossless rule with one
 * that accepts every draft (the negative control).
 */
export async function tally(o: {
  spec: Partial<SyntheticSpec>;
  prompt: number[];
  algo: AlgorithmName;
  verify: VerifyRule;
  sampling: SamplingParams;
  from: number;
  to: number;
  acceptEveryDraft: boolean;
  draft?: DraftMode;
  /** Prompt lookup's shortest match (default 1). */
  ngramMin?: number;
  /**
   * Generations at once on one runtime of 2 instances x `concurrent / 2` sequences whose passes
   * are shared (CPU-like batch costs, batch-device.ts); default one at a time.
   */
  concurrent?: number;
}): Promise<Tally> {
  const pair = new SyntheticPair(o.spec);
  const V = pair.spec.vocab;
  const counts = new Float64Array(V ** 3);
  let accepted = 0;
  let rejected = 0;
  const bySource: Stats["bySource"] = { model: { drafted: 0, accepted: 0, rejected: 0 }, ngram: { drafted: 0, accepted: 0, rejected: 0 } };
  // Under ngram+model the source choice starts from what earlier generations taught the runtime
  // (costs, each source's acceptance), as on a server: in a fresh runtime a 3-token generation
  // never trusts lookup. What was learned shapes which source drafts, never the distribution.
  const learned = o.draft === "ngram+model" ? newLearned() : undefined;
  const options = (seed: number): RunOptions => ({
    prompt: o.prompt,
    maxTokens: 3,
    lookahead: 2,
    sp: 2,
    profile: profile(10, 3),
    sampling: o.sampling,
    verify: o.verify,
    seed,
    ...(o.draft ? { draft: o.draft, ngramMin: o.ngramMin ?? 1 } : {}),
    ...(learned ? { learned } : {}),
    ...(o.acceptEveryDraft ? { verifier: (_t, draft) => ({ token: draft.token, accepted: true }) } : {}),
  });
  const count = (r: Completion): void => {
    const [a, b, c] = r.tokens;
    counts[a * V * V + b * V + c]++;
    accepted += r.stats.accepted;
    rejected += r.stats.rejected;
    for (const k of ["model", "ngram"] as const) for (const f of ["drafted", "accepted", "rejected"] as const) bySource[k][f] += r.stats.bySource[k][f];
  };
  if (o.concurrent) {
    const rt = syntheticRuntime({ pair, profile: withBatchCost(profile(10, 3), "cpu"), sp: 2, sequences: o.concurrent / 2, events: false });
    for (let seed = o.from; seed < o.to; seed += o.concurrent) {
      const seeds = Array.from({ length: Math.min(o.concurrent, o.to - seed) }, (_, i) => seed + i);
      const { sp: _sp, profile: _p, learned: _l, ...generation } = options(0);
      const results = await Promise.all(seeds.map((s) => generate(o.algo, rt, { ...generation, seed: s } as GenerateOptions).result));
      results.forEach(count);
    }
  } else {
    for (let seed = o.from; seed < o.to; seed++) count(await run(o.algo, pair, options(seed)));
  }
  return { counts, accepted, rejected, bySource };
}
