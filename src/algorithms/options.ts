/**
 * What every algorithm is given and what it reports.
 */
import { GREEDY, type SamplingParams } from "../core/sampling.js";
import type { Decision, Draft, DraftSource, PositionOutput, VerifyRule } from "../core/verify.js";
import type { Runtime } from "../runtime/runtime.js";
import { MAX_NGRAM, NGRAM_DEFAULTS } from "./drafting/ngram-index.js";
import { applicabilityProblem, defaultVerify, draftProblem, verifyProblem, DRAFT_MODES, GENERATION_OPTIONS, type DraftMode, type OptionKey } from "./option-spec.js";

export type AlgorithmName = "nonsi" | "si" | "dsi";
export { ALGORITHMS, MAX_LOOKAHEAD } from "./option-spec.js";

/** Tokens generated when `maxTokens` is not given. */
export const DEFAULT_MAX_TOKENS = GENERATION_OPTIONS.maxTokens.defaults.cli as number;
/**
 * Drafts per verification window when `lookahead` is not given (si, dsi): chosen online per
 * window (see lookahead.ts), 0 (plain target steps) where speculation does not pay.
 */
export const DEFAULT_LOOKAHEAD: Lookahead = "auto";
/** A fixed number of drafts per window (1 or more), or `"auto"`. */
export type Lookahead = number | "auto";

/**
 * A generation's options. Only the prompt is required. The speculation parallelism is the size
 * of the runtime's target pool, or less for one generation (`maxInstances`).
 */
export interface GenerateOptions {
  /** Prompt tokens (at least one). */
  prompt: readonly number[];
  /** Most tokens to generate. Defaults to 64 (`DEFAULT_MAX_TOKENS`). */
  maxTokens?: number;
  /** Defaults to greedy (temperature 0). */
  sampling?: SamplingParams;
  /**
   * Lossless rule; `greedy` needs temperature 0, the others temperature > 0. Defaults to
   * `greedy` at temperature 0, else `rejection`.
   */
  verify?: VerifyRule;
  /** Keys all randomness of the generation (see core/random). Defaults to 0. */
  seed?: number;
  /**
   * Drafts per verification window (si, dsi; an error for nonsi): a number, or `"auto"` (the
   * default): per window, the lookahead in 0..8 that minimises the expected time per token
   * by the observed costs and acceptance.
   */
  lookahead?: Lookahead;
  /**
   * Where drafts come from (si, dsi): `model` (the drafter, the default), `ngram` (prompt
   * lookup: the tokens that followed the context's last n tokens where they occurred before in
   * the prompt or the output; no match, no draft), or `ngram+model` (lookup where it matches,
   * the drafter elsewhere).
   */
  draft?: DraftMode;
  /** Shortest and longest match prompt lookup drafts from (defaults 2 and 5; `ngram` and `ngram+model` only). */
  ngramMin?: number;
  ngramMax?: number;
  /**
   * Most target instances this generation holds at once (dsi; non-SI and SI use one): its
   * speculation parallelism, at most the pool's size (the default).
   */
  maxInstances?: number;
  /** Token sequences that end the generation; they are not part of the output. */
  stop?: readonly (readonly number[])[];
  /**
   * Strings that end the generation when they appear in the decoded output (what users
   * mean by stop sequences: matched on text, whatever the tokenization). The output keeps
   * only tokens that decode to text before the match; `Completion.text` is cut at the match
   * itself, even inside a token. Matching costs O(1) per token: the text is decoded
   * incrementally (core/detokenize) and only its unreleased tail is searched.
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

/** Options with every default filled in; what the algorithms read. */
export type ResolvedOptions = Required<Pick<GenerateOptions, "prompt" | "maxTokens" | "sampling" | "verify" | "seed" | "lookahead" | "draft" | "ngramMin" | "ngramMax">> &
  Omit<GenerateOptions, "prompt" | "maxTokens" | "sampling" | "verify" | "seed" | "lookahead" | "draft" | "ngramMin" | "ngramMax"> & {
    /** Speculation parallelism: `maxInstances`, else the size of the runtime's target pool. */
    sp: number;
  };

/** Decides one drafted position: the target's output there, the draft, the generation seed. */
export type Verifier = (target: PositionOutput, draft: Draft, seed: number, position: number) => Decision;

export interface Stats {
  /**
   * Tokens committed: the output's plus a stop sequence's or the EOS token that ended the
   * generation (work the models did, though the output leaves them out).
   */
  tokens: number;
  /** Drafter outputs produced (including ones later thrown away). */
  drafted: number;
  /** Drafts accepted by verification. */
  accepted: number;
  /** Drafts rejected by verification. */
  rejected: number;
  /** The same counts by where the drafts came from (`draft`): the drafter model, prompt lookup. */
  bySource: Record<DraftSource, { drafted: number; accepted: number; rejected: number }>;
  /** accepted / (accepted + rejected): the share of verified drafts that were accepted. */
  acceptanceRate: number;
  /** Target forward passes started. */
  verifications: number;
  /**
   * Target tasks by the number of drafts they verified: `windows[k]` tasks verified k drafts;
   * `windows[0]` are plain target steps (every step of non-SI; where `auto` found that
   * speculation did not pay; DSI's frontier tasks before drafts were ready).
   */
  windows: number[];
  /** Windows the adaptive lookahead sent to learn, beyond its model's choice. */
  probes: number;
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
  /**
   * Output tokens (a stop sequence or EOS that ended the generation is not included). Where a
   * stop string of `stopText` begins inside a token, that token is not included either: the
   * tokens are those whose text lies wholly before the stop string.
   */
  tokens: number[];
  /**
   * With `stopText` only: the output's text, what users should be shown. It is the tokens
   * decoded, plus, where a stop string began inside a token, that token's text before it: the
   * text up to, not including, the stop string (OpenAI's semantics). A streamed text
   * (`TextStreamer`) is always a prefix of it; `TextStreamer.rest(text)` is what is left.
   */
  text?: string;
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

/** Fills in the defaults and validates; throws an OptionError naming the first bad option. */
export function resolveOptions(o: GenerateOptions, runtime: Runtime, algo: AlgorithmName): ResolvedOptions {
  const sampling = o.sampling ?? GREEDY;
  // The same applicability and verify-rule checks, in the engine's names, as the CLI and HTTP faces.
  const given = new Set<OptionKey>();
  if (o.lookahead !== undefined) given.add("lookahead");
  if (o.maxInstances !== undefined) given.add("sp");
  if (o.draft !== undefined) given.add("draft");
  if (o.ngramMin !== undefined) given.add("ngramMin");
  if (o.ngramMax !== undefined) given.add("ngramMax");
  const problem = applicabilityProblem({ algo, given }, "engine") ?? draftProblem({ given, draft: o.draft, ngramMin: o.ngramMin, ngramMax: o.ngramMax }, "engine");
  if (problem) throw new OptionError(GENERATION_OPTIONS[problem.key].engine, problem.message);
  const size = runtime.pool.size;
  if (o.maxInstances !== undefined && !(Number.isInteger(o.maxInstances) && o.maxInstances >= 1 && o.maxInstances <= size)) {
    throw new OptionError("maxInstances", `maxInstances must be an integer in 1..${size} (the pool's size), got ${o.maxInstances}`);
  }
  const r: ResolvedOptions = {
    ...o,
    maxTokens: o.maxTokens ?? DEFAULT_MAX_TOKENS,
    sampling,
    verify: o.verify ?? defaultVerify(sampling.temperature),
    seed: o.seed ?? 0,
    lookahead: o.lookahead ?? DEFAULT_LOOKAHEAD,
    draft: o.draft ?? "model",
    ngramMin: o.ngramMin ?? NGRAM_DEFAULTS.min,
    ngramMax: o.ngramMax ?? NGRAM_DEFAULTS.max,
    sp: o.maxInstances ?? size,
  };
  checkOptions(r, runtime, algo);
  return r;
}

function checkOptions(o: ResolvedOptions, runtime: Runtime, algo: AlgorithmName): void {
  if (!runtime.drafter && algo !== "nonsi" && o.draft !== "ngram") {
    throw new OptionError("draft", `draft ${o.draft} needs a drafter model and this runtime has none (a target alone): use draft ngram, prompt lookup, which needs none`);
  }
  const int = (name: string, v: number, min: number): void => {
    if (!(Number.isInteger(v) && v >= min)) throw new OptionError(name, `${name} must be an integer >= ${min}, got ${v}`);
  };
  int("maxTokens", o.maxTokens, 0);
  if (o.lookahead !== "auto" && !(Number.isInteger(o.lookahead) && o.lookahead >= 1)) {
    throw new OptionError("lookahead", `lookahead must be an integer >= 1 or "auto", got ${o.lookahead}`);
  }
  int("seed", o.seed, 0);
  if (!DRAFT_MODES.includes(o.draft)) throw new OptionError("draft", `draft must be one of ${DRAFT_MODES.join(", ")}, got ${String(o.draft)}`);
  for (const name of ["ngramMin", "ngramMax"] as const) {
    if (!(Number.isInteger(o[name]) && o[name] >= 1 && o[name] <= MAX_NGRAM)) throw new OptionError(name, `${name} must be an integer in 1..${MAX_NGRAM}, got ${o[name]}`);
  }
  if (o.prompt.length === 0) throw new OptionError("prompt", "prompt must hold at least one token");
  const { temperature, topK, topP } = o.sampling;
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new OptionError("temperature", `temperature must be >= 0, got ${temperature}`);
  int("topK", topK, 0);
  if (!(topP > 0 && topP <= 1)) throw new OptionError("topP", `topP must be in (0, 1], got ${topP}`);
  const problem = verifyProblem({ temperature, verify: o.verify }, "engine");
  if (problem) throw new OptionError(GENERATION_OPTIONS[problem.key].engine, problem.message);
  const vocab = runtime.pool.vocabSize;
  if (runtime.drafter && runtime.drafter.vocabSize !== vocab) {
    throw new OptionError("drafter", `drafter vocabulary (${runtime.drafter.vocabSize}) differs from the target's (${vocab})`);
  }
  for (const t of o.prompt) {
    if (!(Number.isInteger(t) && t >= 0 && t < vocab)) throw new OptionError("prompt", `prompt token ${t} is outside the vocabulary`);
  }
}
