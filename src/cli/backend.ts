/** Backends the CLI can build a runtime from. */
import type { Runtime } from "../algorithms/options.js";
import { syntheticRuntime } from "../algorithms/runtime.js";
import type { LatencyProfile } from "../models/latency.js";
import { SyntheticPair, SyntheticTokenizer, type SyntheticSpec } from "../models/synthetic.js";
import type { Clock } from "../runtime/clock.js";

export const BACKENDS = ["synthetic"] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Tokenizer {
  encode(text: string): number[];
  decode(tokens: readonly number[]): string;
}

export interface Backend {
  name: BackendName;
  tokenizer: Tokenizer;
  /** A fresh runtime (instances, event log) on the given clock, with `targets` target instances. */
  runtime(clock: Clock, targets: number, profile: LatencyProfile): Runtime;
  describe(): string;
}

export function syntheticBackend(spec: Partial<SyntheticSpec>): Backend {
  const pair = new SyntheticPair(spec);
  const s = pair.spec;
  return {
    name: "synthetic",
    tokenizer: new SyntheticTokenizer(s.vocab),
    runtime: (clock, targets, profile) => syntheticRuntime({ pair, clock, targets, profile }),
    describe: () => `synthetic (vocab ${s.vocab}, context ${s.context}, agreement ${s.agreement}, model seed ${s.seed})`,
  };
}
