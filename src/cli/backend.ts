/** Backends the CLI can build a runtime from: synthetic tables or GGUF models. */
import type { Runtime } from "../algorithms/options.js";
import { syntheticRuntime } from "../algorithms/runtime.js";
import { withLatency, type LatencyProfile } from "../models/latency.js";
import { LlamaPair, type LlamaInstance, type LlamaPairOptions } from "../models/llama.js";
import { SyntheticPair, SyntheticTokenizer, type SyntheticSpec } from "../models/synthetic.js";
import type { Clock } from "../runtime/clock.js";
import { EventLog } from "../runtime/events.js";

export const BACKENDS = ["synthetic", "llama"] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Tokenizer {
  /** A prompt's tokens (with BOS where the model wants one). */
  encode(text: string): number[];
  decode(tokens: readonly number[]): string;
}

export interface Backend {
  name: BackendName;
  tokenizer: Tokenizer;
  /** Tokens a sequence may hold, if limited. */
  contextSize: number | undefined;
  /** Whether the models compute in real time (then only the real clock makes sense). */
  realCompute: boolean;
  /** A runtime with `targets` target instances, caches emptied, latency added on `clock`. */
  runtime(clock: Clock, targets: number, profile: LatencyProfile): Promise<Runtime>;
  describe(): string;
  close(): Promise<void>;
}

export function syntheticBackend(spec: Partial<SyntheticSpec>): Backend {
  const pair = new SyntheticPair(spec);
  const s = pair.spec;
  return {
    name: "synthetic",
    tokenizer: new SyntheticTokenizer(s.vocab),
    contextSize: undefined,
    realCompute: false,
    runtime: async (clock, targets, profile) => syntheticRuntime({ pair, clock, targets, profile }),
    describe: () => `synthetic (vocab ${s.vocab}, context ${s.context}, agreement ${s.agreement}, model seed ${s.seed})`,
    close: async () => undefined,
  };
}

/** GGUF target and drafter; instances are created once and reused (caches emptied per run). */
export async function llamaBackend(o: LlamaPairOptions): Promise<Backend> {
  const pair = await LlamaPair.load(o);
  const drafter = await pair.instance("drafter", "drafter");
  const targets: LlamaInstance[] = [];
  return {
    name: "llama",
    tokenizer: { encode: (t) => pair.encode(t), decode: (t) => pair.decode(t) },
    contextSize: pair.contextSize,
    realCompute: true,
    runtime: async (clock: Clock, n: number, profile: LatencyProfile): Promise<Runtime> => {
      while (targets.length < n) targets.push(await pair.instance("target", `target-${targets.length}`));
      for (const i of [drafter, ...targets]) await i.reset();
      return {
        clock,
        drafter: withLatency(drafter, clock, profile.drafter),
        targets: targets.slice(0, n).map((t) => withLatency(t, clock, profile.target)),
        events: new EventLog(() => clock.now()),
      };
    },
    describe: () =>
      `llama.cpp ${o.gpu ? "GPU" : "CPU"} (${o.threads} thread${o.threads > 1 ? "s" : ""} per instance, vocab ${pair.vocabSize}, context ${pair.contextSize})`,
    close: () => pair.dispose(),
  };
}
