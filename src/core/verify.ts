/**
 * The three lossless verification rules, as pure functions of one position.
 *
 * A decision at position p needs the target's output at p (computed on the committed
 * prefix), the draft at p if there is one, and the position's own uniforms. With no draft
 * the committed token is the target's own (greedy token or sample), exactly as non-SI.
 */
import { keyedUniform, Stream } from "./random.js";
import { argmax, sampleIndex } from "./sampling.js";

export type VerifyRule = "greedy" | "rejection" | "match";
export const VERIFY_RULES: readonly VerifyRule[] = ["greedy", "rejection", "match"];

/**
 * A next-token distribution. Float32 ones are what a worker sends, kept as views of the bytes
 * received; the rules only read them, and float32 converts to float64 exactly, so a decision
 * is the same as on a float64 copy.
 */
export type Probs = Float64Array | Float32Array;

/** What a model returned for one position. */
export interface PositionOutput {
  /** Greedy token (greedy), or the model's own keyed sample (`match`). -1 when not asked for. */
  token: number;
  /** The full next-token distribution under the request's sampling settings, when asked for. */
  probs?: Probs;
}

/** Where a draft came from: the drafter model, or prompt lookup (an n-gram of the context). */
export type DraftSource = "model" | "ngram";

export interface Draft {
  token: number;
  /**
   * The drafter's distribution q at this position (needed by `rejection`); absent for a
   * deterministic proposal (prompt lookup), whose q is all on `token`.
   */
  probs?: Probs;
  /** Defaults to the drafter model. */
  source?: DraftSource;
}

export interface Decision {
  /** The token committed at this position. */
  token: number;
  /** True when a draft existed and was accepted. */
  accepted: boolean;
}

/** Which outputs a rule needs from target and drafter. */
export function outputModes(rule: VerifyRule): { target: OutputMode; drafter: OutputMode } {
  switch (rule) {
    case "greedy":
      return { target: "greedy", drafter: "greedy" };
    case "rejection":
      return { target: "dist", drafter: "dist" };
    case "match":
      return { target: "sample", drafter: "sample" };
  }
}

/** greedy: the argmax token; sample: the model's own sample with the keyed uniform; dist: the full distribution. */
export type OutputMode = "greedy" | "sample" | "dist";

/** The target's token at a position where no draft is checked (non-SI step, bonus token). */
export function targetToken(rule: VerifyRule, out: PositionOutput, seed: number, position: number): number {
  if (rule === "rejection") return sampleIndex(out.probs!, keyedUniform(seed, Stream.target, position));
  return out.token;
}

/** The drafter's proposal at a position, from its output. */
export function draftFromOutput(rule: VerifyRule, out: PositionOutput, seed: number, position: number): Draft {
  if (rule === "rejection") {
    return { token: sampleIndex(out.probs!, keyedUniform(seed, Stream.draft, position)), probs: out.probs };
  }
  return { token: out.token };
}

/** Decides one position. */
export function decide(
  rule: VerifyRule,
  target: PositionOutput,
  draft: Draft | undefined,
  seed: number,
  position: number,
): Decision {
  if (draft === undefined) return { token: targetToken(rule, target, seed, position), accepted: false };
  switch (rule) {
    case "greedy":
    case "match":
      // greedy: target argmax; match: target's own sample. Either way the target's token stands.
      return draft.token === target.token ? { token: draft.token, accepted: true } : { token: target.token, accepted: false };
    case "rejection":
      return rejectionStep(target.probs!, draft, keyedUniform(seed, Stream.accept, position), keyedUniform(seed, Stream.residual, position));
  }
}

/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): accept d with
 * probability min(1, p(d)/q(d)), otherwise sample from normalize(max(0, p - q)).
 * The committed token is distributed exactly as p. A draft without `probs` is a deterministic
 * proposal (q all on d): accepted with probability p(d), else the residual is p without d.
 */
export function rejectionStep(p: Probs, draft: Draft, uAccept: number, uResidual: number): Decision {
  const q = draft.probs;
  const d = draft.token;
  if (uAccept * (q ? q[d] : 1) < p[d]) return { token: d, accepted: true };
  const residual = new Float64Array(p.length);
  let mass = 0;
  for (let i = 0; i < p.length; i++) {
    const r = p[i] - (q ? q[i] : i === d ? 1 : 0);
    if (r > 0) {
      residual[i] = r;
      mass += r;
    }
  }
  // mass is 0 only if p == q, where rejection has probability 0; fall back to p for safety.
  if (!(mass > 0)) return { token: sampleIndex(p, uResidual), accepted: false };
  return { token: sampleIndex(residual, uResidual * mass), accepted: false };
}

export { argmax };
