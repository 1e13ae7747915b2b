/**
 * Latency profiles: wrap any instance so that each evaluation also takes modelled time on
 * whichever clock runs. On the virtual clock this turns zero-cost synthetic models into
 * the paper's setting; on the real clock it adds a pair's latency on top of real compute.
 * The wrapper mirrors what the instance's cache holds, so a long prompt, or a sequence the
 * instance has not seen, costs its prefill every time it is read, as on a real model.
 */
import type { PositionOutput } from "../core/verify.js";
import type { Clock } from "../runtime/clock.js";
import type { EvalRequest, ModelInstance } from "../core/instance.js";
import { PAPER_PAIRS } from "./paper-pairs.js";
import type { BatchDevice } from "./batch-device.js";
import type { SharedDevice } from "./shared-device.js";

/** The cost model of one model (all milliseconds). */
export interface ModelLatency {
  /** The first evaluation of an instance (a short prompt's prefill, warm-up): it takes this instead of `tpotMs`. */
  ttftMs: number;
  /** Time per output token: every later forward pass. */
  tpotMs: number;
  /** Extra time per additional position in one forward pass (a window of k drafts has k+1). */
  perExtraPositionMs: number;
  /**
   * Positions a pass carries at the cost of one (default 1): only those beyond it add
   * `perExtraPositionMs` each. A batch cost model: flat up to the knee, then linear
   * (`BATCH_COSTS`); a pass shared by several sequences counts all their positions.
   */
  kneeTokens?: number;
  /**
   * Time per token a pass reads that is not in the instance's cache, once there are more of
   * them than one step's time covers (see `passMs`): a long prompt, an instance catching up
   * or switching to another sequence. Default: `tpotMs / PREFILL_TOKENS_PER_STEP`.
   */
  prefillPerTokenMs?: number;
}

/**
 * How many tokens a forward pass reads in the time of one step, by default. A step is bound
 * by reading the weights, a prefill by compute: on an A100 a 7-15B model prefills at about
 * 0.1-0.15 ms per token against 20-50 ms per step, so up to a few hundred tokens ride along
 * in a step and a 2,000-token prompt costs about 8 steps.
 */
export const PREFILL_TOKENS_PER_STEP = 256;

/**
 * Modelled duration of one forward pass: `outputs` positions verified, `read` tokens fed (the
 * outputs' positions plus whatever before them the cache lacked), `first` on a fresh instance.
 * The larger of the step's cost and the cost of reading: ordinary steps, windows and short
 * catch-ups cost what they always did, a long read grows with its length.
 */
export function passMs(latency: ModelLatency, outputs: number, read: number, first = false): number {
  const step = (first ? latency.ttftMs : latency.tpotMs) + latency.perExtraPositionMs * Math.max(0, outputs - kneeOf(latency));
  const perToken = latency.prefillPerTokenMs ?? latency.tpotMs / PREFILL_TOKENS_PER_STEP;
  return Math.max(step, perToken * read);
}

export interface LatencyProfile {
  name: string;
  target: ModelLatency;
  drafter: ModelLatency;
  /** The acceptance rate measured for this pair, when the profile comes from the paper. */
  acceptance?: number;
  /**
   * The drafter and the targets share one device (shared-device.ts): a pass runs
   * `1 + contention × others` times slower while `others` passes run beside it. Absent: each
   * instance on its own device (the paper's setting).
   */
  contention?: number;
}

/**
 * The paper's setting: a forward pass costs its TPOT whatever the window size; TTFT is not
 * reported, so it equals TPOT (a long read still costs its prefill, `passMs`).
 */
export function flatLatency(ms: number): ModelLatency {
  return { ttftMs: ms, tpotMs: ms, perExtraPositionMs: 0 };
}

/**
 * Batch cost models for the target's passes (a window, several sequences' steps in one pass):
 * positions at the cost of one, and each further position as a share of a step.
 * - `gpu`: decoding reads the weights once per pass whatever it carries, so a pass costs about
 *   a step up to dozens of tokens (32 here), then grows slowly;
 * - `cpu`: compute-bound from the first token; measured on this machine kind (AMD EPYC, one
 *   thread, the default corpus pair): 8 sequences' steps in one pass 23.3 ms against 5.9 ms
 *   for one, ~0.4 of a step per further token.
 */
export const BATCH_COSTS = {
  gpu: { kneeTokens: 32, extraShare: 0.02 },
  cpu: { kneeTokens: 1, extraShare: 0.4 },
} as const;

/**
 * Positions one pass of a modelled target carries at the cost of one (the pool lets
 * speculation add tokens to passes other generations share only within them: pool.ts,
 * `PoolMember.room`): unbounded for flat costs (the paper's setting), the knee of a batch
 * model (GPU-like: 32; CPU-like: 1, every token paid). Real compute (no modelled step): 1, a
 * CPU pays for every token of a pass.
 */
export function freePositions(latency: ModelLatency): number {
  if (!(latency.tpotMs > 0)) return 1;
  return latency.perExtraPositionMs === 0 ? Infinity : kneeOf(latency);
}

/** Positions a pass carries at a step's cost (at least 1). */
function kneeOf(latency: ModelLatency): number {
  return Math.max(1, latency.kneeTokens ?? 1);
}

/** A profile whose target passes cost as the batch model says (the drafter's unchanged). */
export function withBatchCost(profile: LatencyProfile, model: keyof typeof BATCH_COSTS): LatencyProfile {
  const b = BATCH_COSTS[model];
  return { ...profile, name: `${profile.name}+${model}-batch`, target: { ...profile.target, kneeTokens: b.kneeTokens, perExtraPositionMs: b.extraShare * profile.target.tpotMs } };
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
  get contextSize(): number | undefined {
    return this.inner.contextSize;
  }
  get evalChunk(): number | undefined {
    return this.inner.evalChunk;
  }
  private warm = false;
  /** The tokens the modelled cache holds (what the last evaluation read), to charge what a request adds. */
  private readonly cached: number[] = [];
  constructor(
    private readonly inner: ModelInstance,
    private readonly clock: Clock,
    private readonly latency: ModelLatency,
    /** The device it shares with the runtime's other instances, if any. */
    private readonly device?: SharedDevice,
    /** The instance whose passes this sequence shares with its other sequences, if any. */
    private readonly batch?: BatchDevice,
  ) {
    this.label = inner.label;
    this.vocabSize = inner.vocabSize;
    this.eosToken = inner.eosToken;
    if (inner.probe) {
      this.probe = async () => {
        const back = await inner.probe!();
        if (back) this.cached.length = 0; // a restarted instance holds nothing
        return back;
      };
    }
  }

  readonly probe?: () => Promise<boolean>;

  /** Modelled duration of an evaluation producing `positions` outputs that reads `read` tokens (default: just those). */
  cost(positions: number, read = positions): number {
    return passMs(this.latency, positions, Math.max(read, positions), !this.warm);
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    // (How long a shared pass may be held counts from the call.)
    const startBy = this.clock.now() + (req.mayWaitMs ?? Infinity);
    const outputs = await this.inner.evaluate(req, signal);
    const read = this.read(req.tokens, req.from);
    const first = !this.warm;
    if (this.batch) {
      this.warm = true;
      await this.batch.pass({ outputs: outputs.length, read, first, sequence: this, startBy }, signal);
    } else {
      const ms = this.cost(outputs.length, read);
      this.warm = true;
      await (this.device ? this.device.run(ms, signal) : this.clock.sleep(ms, signal));
    }
    return outputs;
  }

  /**
   * Tokens the pass for a request feeds, and the cache afterwards: from `from - 1` on (the
   * first output follows tokens[0..from)) plus what the cache lacks before that. The cache is
   * updated at once, also for a call aborted later (a pass that started reads anyway), so
   * calls that overlap, as on a drafter shared by generations, each see the one before.
   */
  private read(tokens: EvalRequest["tokens"], from: number): number {
    const limit = Math.min(this.cached.length, tokens.length);
    let common = 0;
    while (common < limit && this.cached[common] === tokens.at(common)) common++;
    this.cached.length = common;
    for (let i = common; i < tokens.length; i++) this.cached.push(tokens.at(i)!);
    return tokens.length - Math.min(common, Math.max(0, from - 1));
  }
}

export function withLatency(inner: ModelInstance, clock: Clock, latency: ModelLatency, device?: SharedDevice, batch?: BatchDevice): ModelInstance {
  const none = latency.ttftMs === 0 && latency.tpotMs === 0 && latency.perExtraPositionMs === 0 && !latency.prefillPerTokenMs;
  return none ? inner : new LatencyInstance(inner, clock, latency, device, batch);
}
