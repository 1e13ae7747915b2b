/** Test helpers: run an algorithm on a synthetic pair and collect the result and events. */
import { generate } from "../../src/algorithms/generate.js";
import type { AlgorithmName, Completion, GenerateOptions } from "../../src/algorithms/options.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { GREEDY } from "../../src/core/sampling.js";
import { flatLatency, type LatencyProfile } from "../../src/models/latency.js";
import type { SyntheticPair } from "../../src/models/synthetic.js";
import type { Learned } from "../../src/runtime/costs.js";
import type { EngineEvent } from "../../src/runtime/events.js";

export function profile(targetMs: number, drafterMs: number): LatencyProfile {
  return { name: `${targetMs}/${drafterMs}`, target: flatLatency(targetMs), drafter: flatLatency(drafterMs) };
}

export interface RunResult extends Completion {
  events: EngineEvent[];
}

/** Generation options plus the runtime's: SP (pool size), latency profile, clock, what earlier runtimes learned. */
export type RunOptions = Partial<GenerateOptions> & { sp?: number; profile?: LatencyProfile; clock?: "real" | "virtual"; learned?: Learned };

export async function run(
  algo: AlgorithmName,
  pair: SyntheticPair,
  opts: RunOptions = {},
): Promise<RunResult> {
  const { sp = 1, profile: latency, clock, learned, ...rest } = opts;
  const rt = syntheticRuntime({ pair, profile: latency ?? profile(10, 1), clock: clock ?? "virtual", sp, ...(learned ? { learned } : {}) });
  const options: GenerateOptions = {
    prompt: [1, 2, 3],
    maxTokens: 30,
    sampling: GREEDY,
    verify: "greedy",
    seed: 0,
    lookahead: 3,
    ...rest,
    // One options object serves all three algorithms in these tests; non-SI takes no lookahead.
    ...(algo === "nonsi" ? { lookahead: undefined } : {}),
  };
  const result = await generate(algo, rt, options).result;
  return { ...result, events: rt.events.events };
}
