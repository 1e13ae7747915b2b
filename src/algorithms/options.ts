/**
 * What every algorithm is given and what it reports.
 */
import type { SamplingParams } from "../core/sampling.js";
import type { Decision, Draft, PositionOutput, VerifyRule } from "../core/verify.js";
import type { Clock } from "../runtime/clock.js";
import type { EventLog } from "../runtime/events.js";
import type { ModelInstance } from "../models/instance.js";

export type AlgorithmName = "nonsi" | "si" | "dsi";
export const ALGORITHMS: readonly AlgorithmName[] = ["nonsi", "si", "dsi"];

export interface GenerateOptions {
  /** Prompt tokens (at least one). */
  prompt: readonly number[];
  maxTokens: number;
  sampling: SamplingParams;
  /** Lossless rule; `greedy` needs temperature 0, the others temperature > 0. */
  verify: VerifyRule;
  /** Keys all randomness of the generation (see core/random). */
  seed: number;
  /** Drafts per verification window (si, dsi). */
  lookahead: number;
  /** Target instances verifying at once (dsi). */
  sp: number;
  /** Token sequences that end the generation; they are not part of the output. */
  stop?: readonly (readonly number[])[];
  /**
   * Strings that end the generation when they appear in the decoded output (what users
   * mean by stop sequences: matched on text, whatever the tokenization). The output keeps
   * only tokens that decode to text before the match.
   */
  stopText?: { strings: readonly string[]; decode: (tokens: readonly number[]) => string };
  /** Stop at the target's end-of-sequence token (default true, when the model has one). */
  stopAtEos?: boolean;
  signal?: AbortSignal;
  /**
   * Replaces the decision of `verify` at positions holding a draft (an extension point for
   * experiments with other rules; tests use it for a deliberately lossy negative control).
   */
  verifier?: Verifier;
}

/** Decides one drafted position: the target's output there, the draft, the generation seed. */
export type Verifier = (target: PositionOutput, draft: Draft, seed: number, position: number) => Decision;

/** The instances and services a generation runs on. */
export interface Runtime {
  clock: Clock;
  drafter: ModelInstance;
  /** The target pool; non-SI and SI use the first instance, DSI the first `sp`. */
  targets: readonly ModelInstance[];
  events: EventLog;
}

export interface Stats {
  /** Tokens generated (committed), including a stop sequence's. */
  tokens: number;
  /** Drafter outputs produced (including ones later thrown away). */
  drafted: number;
  /** Drafts accepted by verification. */
  accepted: number;
  /** Drafts rejected by verification. */
  rejected: number;
  /** accepted / (accepted + rejected): the share of verified drafts that were accepted. */
  acceptanceRate: number;
  /** Target forward passes started. */
  verifications: number;
  /** Target tasks and drafter steps preempted because their result could no longer be used. */
  preemptions: number;
  /** Sum over target instances of the time they spent evaluating. */
  targetBusyMs: number;
  /** Time to the first committed token. */
  ttftMs: number;
  /** Total time of the generation on its clock. */
  timeMs: number;
  clock: "real" | "virtual";
}

export type FinishReason = "length" | "stop" | "eos";

export interface Completion {
  /** Output tokens (a stop sequence or EOS that ended the generation is not included). */
  tokens: number[];
  finishReason: FinishReason;
  stats: Stats;
}

/** A user-facing problem with the options: the message names the option and what is allowed. */
export class OptionError extends Error {
  override readonly name = "OptionError";
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
  }
}

/** Validates options; throws an OptionError naming the first bad option. */
export function checkOptions(o: GenerateOptions, runtime: Runtime, algo: AlgorithmName): void {
  const int = (name: string, v: number, min: number): void => {
    if (!(Number.isInteger(v) && v >= min)) throw new OptionError(name, `${name} must be an integer >= ${min}, got ${v}`);
  };
  int("maxTokens", o.maxTokens, 0);
  int("lookahead", o.lookahead, 1);
  int("sp", o.sp, 1);
  int("seed", o.seed, 0);
  if (o.prompt.length === 0) throw new OptionError("prompt", "prompt must hold at least one token");
  const { temperature, topK, topP } = o.sampling;
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new OptionError("temperature", `temperature must be >= 0, got ${temperature}`);
  int("topK", topK, 0);
  if (!(topP > 0 && topP <= 1)) throw new OptionError("topP", `topP must be in (0, 1], got ${topP}`);
  if (o.verify === "greedy" && temperature !== 0) {
    throw new OptionError("verify", `verify=greedy needs temperature 0 (got ${temperature}); use rejection or match for sampling`);
  }
  if (o.verify !== "greedy" && temperature === 0) {
    throw new OptionError("verify", `verify=${o.verify} samples and needs temperature > 0; use greedy at temperature 0`);
  }
  const needed = algo === "dsi" ? o.sp : 1;
  if (runtime.targets.length < needed) {
    throw new OptionError("sp", `${algo} needs ${needed} target instance(s), the runtime has ${runtime.targets.length}`);
  }
  if (runtime.drafter.vocabSize !== runtime.targets[0].vocabSize) {
    throw new OptionError("drafter", `drafter vocabulary (${runtime.drafter.vocabSize}) differs from the target's (${runtime.targets[0].vocabSize})`);
  }
  for (const t of o.prompt) {
    if (!(Number.isInteger(t) && t >= 0 && t < runtime.targets[0].vocabSize)) throw new OptionError("prompt", `prompt token ${t} is outside the vocabulary`);
  }
}
