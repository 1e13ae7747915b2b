/**
 * Latency profiles: wrap any instance so that each evaluation also takes modelled time on
 * whichever clock runs. On the virtual clock this turns zero-cost synthetic models into
 * the paper's setting; on the real clock it adds a pair's latency on top of real compute.
 */
import type { PositionOutput } from "../core/verify.js";
import type { Clock } from "../runtime/clock.js";
import type { EvalRequest, ModelInstance } from "../core/instance.js";
import { PAPER_PAIRS } from "./paper-pairs.js";

/** The cost model of one model (all milliseconds). */
export interface ModelLatency {
  /** Time to first token: the first evaluation of an instance (prompt prefill). */
  ttftMs: number;
  /** Time per output token: every later forward pass. */
  tpotMs: number;
  /** Extra time per additional position in one forward pass (a window of k drafts has k+1). */
  perExtraPositionMs: number;
}

export interface LatencyProfile {
  name: string;
  target: ModelLatency;
  drafter: ModelLatency;
  /** The acceptance rate measured for this pair, when the profile comes from the paper. */
  acceptance?: number;
}

/** The paper's setting: a forward pass costs its TPOT whatever the window size; TTFT is not reported, so it equals TPOT. */
export function flatLatency(ms: number): ModelLatency {
  return { ttftMs: ms, tpotMs: ms, perExtraPositionMs: 0 };
}

export const NO_LATENCY: LatencyProfile = { name: "none", target: flatLatency(0), drafter: flatLatency(0) };

/** Built-in profiles: `none` and the ten pairs of the paper's Table 1. */
export const PROFILES: ReadonlyMap<string, LatencyProfile> = new Map<string, LatencyProfile>([
  ["none", NO_LATENCY],
  ...PAPER_PAIRS.map((p): [string, LatencyProfile] => [
    p.name,
    { name: p.name, target: flatLatency(p.targetMs), drafter: flatLatency(p.drafterMs), acceptance: p.acceptance },
  ]),
]);

/** Short names: a pair without its dataset means the pair's first row of Table 1. */
const ALIASES = new Map<string, string>();
for (const p of PAPER_PAIRS) {
  const pair = p.name.split(":")[0];
  if (!ALIASES.has(pair)) ALIASES.set(pair, p.name);
}

export function profileNames(): string[] {
  return [...PROFILES.keys(), ...ALIASES.keys()];
}

/**
 * Resolves a profile by name, alias, or as "TARGET_MS/DRAFTER_MS" (e.g. "30/3").
 * Returns undefined for an unknown name.
 */
export function resolveProfile(spec: string): LatencyProfile | undefined {
  const key = spec.toLowerCase();
  const named = PROFILES.get(key) ?? PROFILES.get(ALIASES.get(key) ?? "");
  if (named) return named;
  const m = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(spec);
  if (m) {
    const [t, d] = [Number(m[1]), Number(m[2])];
    return { name: spec, target: flatLatency(t), drafter: flatLatency(d) };
  }
  return undefined;
}

export class LatencyInstance implements ModelInstance {
  readonly label: string;
  readonly vocabSize: number;
  readonly eosToken: number | undefined;
  private warm = false;
  constructor(
    private readonly inner: ModelInstance,
    private readonly clock: Clock,
    private readonly latency: ModelLatency,
  ) {
    this.label = inner.label;
    this.vocabSize = inner.vocabSize;
    this.eosToken = inner.eosToken;
    if (inner.probe) this.probe = () => inner.probe!();
  }

  readonly probe?: () => Promise<boolean>;

  /** Modelled duration of an evaluation producing `positions` outputs. */
  cost(positions: number): number {
    const base = this.warm ? this.latency.tpotMs : this.latency.ttftMs;
    return base + this.latency.perExtraPositionMs * Math.max(0, positions - 1);
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    const outputs = await this.inner.evaluate(req, signal);
    const ms = this.cost(outputs.length);
    this.warm = true;
    await this.clock.sleep(ms, signal);
    return outputs;
  }
}

export function withLatency(inner: ModelInstance, clock: Clock, latency: ModelLatency): ModelInstance {
  return latency.ttftMs === 0 && latency.tpotMs === 0 && latency.perExtraPositionMs === 0 ? inner : new LatencyInstance(inner, clock, latency);
}
