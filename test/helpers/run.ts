/** Test helpers: run an algorithm on a synthetic pair and collect the result and events. */
import { generate } from "../../src/algorithms/generate.js";
import type { AlgorithmName, Completion, GenerateOptions } from "../../src/algorithms/options.js";
import { syntheticRuntime } from "../../src/algorithms/runtime.js";
import { GREEDY } from "../../src/core/sampling.js";
import { flatLatency, type LatencyProfile } from "../../src/models/latency.js";
import type { SyntheticPair } from "../../src/models/synthetic.js";
import type { EngineEvent } from "../../src/runtime/events.js";

export function profile(targetMs: number, drafterMs: number): LatencyProfile {
  return { name: `${targetMs}/${drafterMs}`, target: flatLatency(targetMs), drafter: flatLatency(drafterMs) };
}

export interface RunResult extends Completion {
  events: EngineEvent[];
}

export async function run(
  algo: AlgorithmName,
  pair: SyntheticPair,
  opts: Partial<GenerateOptions> & { profile?: LatencyProfile; clock?: "real" | "virtual" } = {},
): Promise<RunResult> {
  const sp = opts.sp ?? 1;
  const rt = syntheticRuntime({ pair, profile: opts.profile ?? profile(10, 1), clock: opts.clock ?? "virtual", targets: sp });
  const options: GenerateOptions = {
    prompt: [1, 2, 3],
    maxTokens: 30,
    sampling: GREEDY,
    verify: "greedy",
    seed: 0,
    lookahead: 3,
    sp,
    ...opts,
  };
  const result = await generate(algo, rt, options).result;
  return { ...result, events: rt.events.events };
}
