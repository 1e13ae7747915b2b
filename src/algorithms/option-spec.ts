/**
 * The generation options, described once: name, type, range, default, the algorithms each
 * applies to, its CLI flag and its HTTP field. The CLI derives its flags and help from this
 * table, the server its request schema, and both (and the engine) their cross-field checks and
 * messages, so every face accepts, refuses and names an option alike. Adding an option is one
 * entry here (plus the code that uses its value).
 */
import { MAX_SEED } from "../core/random.js";
import { MAX_POOL_SIZE } from "../runtime/pool.js";
import { MAX_NGRAM, NGRAM_DEFAULTS } from "./drafting/ngram-index.js";
import type { AlgorithmName } from "./options.js";

export { MAX_SEED };

export const ALGORITHMS: readonly AlgorithmName[] = ["nonsi", "si", "dsi"];

/** Largest fixed lookahead: longer windows only waste drafting. */
export const MAX_LOOKAHEAD = 1024;
/** Most target instances: the pool's bound (more than any machine has; keeps typos from exhausting memory). */
export const MAX_SP = MAX_POOL_SIZE;
/** Most tokens one generation may ask for (a model's context bounds it further). */
export const MAX_TOKENS = 1_000_000;

/** What an option's value may be. */
export type ValueSpec =
  | { type: "int"; min: number; max: number }
  | { type: "number"; min: number; max: number; openMin?: boolean }
  | { type: "choice"; choices: readonly string[] }
  /** `auto` or an integer in min..max. */
  | { type: "autoOrInt"; min: number; max: number }
  /** Non-empty strings, at most `maxCount` of them. */
  | { type: "texts"; maxCount: number };

export interface OptionSpec {
  /** The option's name in the engine's `GenerateOptions` (and in `OptionError.option`). */
  engine: string;
  /** The CLI's flag (`dsi generate`, `dsi serve` where it sets a request default). */
  flag: string;
  /** The placeholder in the flag's help, e.g. `<N>`. */
  placeholder: string;
  /** The HTTP request's field, a dotted path inside the body (`dsi.lookahead`). */
  field: string;
  value: ValueSpec;
  /**
   * A narrower range in the HTTP API, where the OpenAI API documents one that clients rely on
   * (temperature 0..2, n up to 16 choices per request); the words of the refusal are the same.
   */
  http?: { max: number };
  /** The algorithms it applies to; giving it for another is an error, never ignored. */
  algos: readonly AlgorithmName[];
  /** The default when not given, per face where they differ (OpenAI's temperature is 1; a CLI run is greedy unless asked). */
  defaults: { cli?: unknown; http?: unknown };
  /** What it does, for the help text. */
  help: string;
}

export type OptionKey = "algo" | "lookahead" | "sp" | "draft" | "ngramMin" | "ngramMax" | "maxTokens" | "temperature" | "topK" | "topP" | "seed" | "verify" | "stop" | "n";

/** Where drafts come from: the drafter model, prompt lookup, or prompt lookup where it matches and the model elsewhere. */
export const DRAFT_MODES = ["model", "ngram", "ngram+model"] as const;
export type DraftMode = (typeof DRAFT_MODES)[number];

const ALL = ALGORITHMS;

/** Every generation option, in the order the help lists them. */
export const GENERATION_OPTIONS: Readonly<Record<OptionKey, OptionSpec>> = {
  algo: { engine: "algo", flag: "--algo", placeholder: "<name>", field: "dsi.algo", value: { type: "choice", choices: ALGORITHMS }, algos: ALL, defaults: { cli: "dsi", http: "dsi" }, help: "algorithm" },
  lookahead: {
    engine: "lookahead",
    flag: "--lookahead",
    placeholder: "<L>",
    field: "dsi.lookahead",
    value: { type: "autoOrInt", min: 1, max: MAX_LOOKAHEAD },
    algos: ["si", "dsi"],
    defaults: { cli: "auto", http: "auto" },
    help: "drafts per verification window",
  },
  sp: {
    engine: "maxInstances",
    flag: "--sp",
    placeholder: "<N>",
    field: "dsi.sp",
    value: { type: "int", min: 1, max: MAX_SP },
    algos: ["dsi"],
    defaults: {},
    help: "target instances verifying at once (speculation parallelism)",
  },
  draft: {
    engine: "draft",
    flag: "--draft",
    placeholder: "<source>",
    field: "dsi.draft",
    value: { type: "choice", choices: DRAFT_MODES },
    algos: ["si", "dsi"],
    defaults: { cli: "model", http: "model" },
    help: "where drafts come from: the drafter model, prompt lookup (ngram: the tokens that followed the context's last n tokens where they occurred before), or ngram+model (lookup where it matches, the model elsewhere)",
  },
  ngramMin: {
    engine: "ngramMin",
    flag: "--ngram-min",
    placeholder: "<N>",
    field: "dsi.ngram_min",
    value: { type: "int", min: 1, max: MAX_NGRAM },
    algos: ["si", "dsi"],
    defaults: { cli: NGRAM_DEFAULTS.min, http: NGRAM_DEFAULTS.min },
    help: "shortest match prompt lookup drafts from",
  },
  ngramMax: {
    engine: "ngramMax",
    flag: "--ngram-max",
    placeholder: "<N>",
    field: "dsi.ngram_max",
    value: { type: "int", min: 1, max: MAX_NGRAM },
    algos: ["si", "dsi"],
    defaults: { cli: NGRAM_DEFAULTS.max, http: NGRAM_DEFAULTS.max },
    help: "longest match prompt lookup tries first",
  },
  maxTokens: { engine: "maxTokens", flag: "--max-tokens", placeholder: "<N>", field: "max_tokens", value: { type: "int", min: 0, max: MAX_TOKENS }, algos: ALL, defaults: { cli: 64 }, help: "tokens to generate" },
  temperature: {
    engine: "temperature",
    flag: "--temperature",
    placeholder: "<T>",
    field: "temperature",
    value: { type: "number", min: 0, max: 100 },
    http: { max: 2 },
    algos: ALL,
    defaults: { cli: 0, http: 1 },
    help: "0 is greedy",
  },
  topK: { engine: "topK", flag: "--top-k", placeholder: "<K>", field: "top_k", value: { type: "int", min: 0, max: 1_000_000 }, algos: ALL, defaults: { cli: 0, http: 0 }, help: "keep the K most likely tokens (0: all)" },
  topP: { engine: "topP", flag: "--top-p", placeholder: "<P>", field: "top_p", value: { type: "number", min: 0, max: 1, openMin: true }, algos: ALL, defaults: { cli: 1, http: 1 }, help: "nucleus mass" },
  seed: { engine: "seed", flag: "--seed", placeholder: "<S>", field: "seed", value: { type: "int", min: 0, max: MAX_SEED }, algos: ALL, defaults: { cli: 0 }, help: "seed of the first completion" },
  verify: {
    engine: "verify",
    flag: "--verify",
    placeholder: "<rule>",
    field: "dsi.verify",
    value: { type: "choice", choices: ["greedy", "rejection", "match"] },
    algos: ALL,
    defaults: {},
    help: "lossless rule (default: greedy at temperature 0, else rejection)",
  },
  stop: { engine: "stop", flag: "--stop", placeholder: "<text>", field: "stop", value: { type: "texts", maxCount: 4 }, algos: ALL, defaults: { cli: [] }, help: "stop sequence (repeatable, not empty)" },
  n: { engine: "n", flag: "--n", placeholder: "<count>", field: "n", value: { type: "int", min: 1, max: 1000 }, http: { max: 16 }, algos: ALL, defaults: { cli: 1, http: 1 }, help: "independent completions" },
};

export type Face = "cli" | "http" | "engine";

/** How a face names an option: `--max-tokens`, `max_tokens` or `maxTokens`. */
export function optionName(key: OptionKey, face: Face): string {
  const o = GENERATION_OPTIONS[key];
  return face === "cli" ? o.flag : face === "http" ? o.field : o.engine;
}

/** The option an engine name (`OptionError.option`) stands for. */
export function keyOfEngineName(engine: string): OptionKey | undefined {
  return (Object.keys(GENERATION_OPTIONS) as OptionKey[]).find((k) => GENERATION_OPTIONS[k].engine === engine);
}

/** The largest value a face accepts. */
export function maxOf(key: OptionKey, face: Face): number {
  const o = GENERATION_OPTIONS[key];
  const v = o.value;
  if (v.type === "choice") throw new TypeError(`${key} has no range`);
  const max = v.type === "texts" ? v.maxCount : v.max;
  return face === "http" && o.http ? Math.min(max, o.http.max) : max;
}

/** What a value must be, in the words every face uses: "must be an integer in 1..1024". */
export function rangeText(key: OptionKey, face: Face, maxGiven?: number): string {
  const v = GENERATION_OPTIONS[key].value;
  if (v.type === "choice") return `must be one of ${v.choices.join(", ")}`;
  const max = maxGiven ?? maxOf(key, face);
  switch (v.type) {
    case "int":
      return `must be an integer in ${v.min}..${max}`;
    case "number":
      return `must be a number in ${v.openMin ? "(" : "["}${v.min}, ${max}]`;
    case "autoOrInt":
      return `must be auto or an integer in ${v.min}..${max}`;
    case "texts":
      return `must be 1..${max} non-empty strings`;
  }
}

/** A problem found by a cross-field check: the option to name and the message. */
export interface OptionProblem {
  key: OptionKey;
  message: string;
}

/** The settings the cross-field checks read; `given` holds the options the user set. */
export interface CrossCheckInput {
  algo: AlgorithmName;
  given: ReadonlySet<OptionKey>;
  temperature: number;
  verify?: string;
  draft?: string;
  ngramMin?: number;
  ngramMax?: number;
}

/**
 * The checks between options, in every face's words: an option given for an algorithm it does
 * not apply to, a verify rule that does not fit the temperature, prompt-lookup settings without
 * prompt lookup or out of order.
 */
export function crossCheck(o: CrossCheckInput, face: Face): OptionProblem | undefined {
  return applicabilityProblem(o, face) ?? verifyProblem(o, face) ?? draftProblem(o, face);
}

/** Match lengths given where drafts come from the model alone, or a shortest match longer than the longest. */
export function draftProblem(o: Pick<CrossCheckInput, "given" | "draft" | "ngramMin" | "ngramMax">, face: Face): OptionProblem | undefined {
  const name = (k: OptionKey): string => optionName(k, face);
  const lookup = o.draft !== undefined && o.draft !== "model";
  for (const key of ["ngramMin", "ngramMax"] as const) {
    if (o.given.has(key) && !lookup) return { key, message: `${name(key)} applies to ${name("draft")} ngram and ngram+model (the drafter model matches nothing)` };
  }
  const min = o.ngramMin ?? NGRAM_DEFAULTS.min;
  const max = o.ngramMax ?? NGRAM_DEFAULTS.max;
  if (lookup && min > max) {
    return { key: o.given.has("ngramMin") ? "ngramMin" : "ngramMax", message: `${name("ngramMin")} (${min}) must not exceed ${name("ngramMax")} (${max})` };
  }
  return undefined;
}

/** An option given for an algorithm it does not apply to. */
export function applicabilityProblem(o: Pick<CrossCheckInput, "algo" | "given">, face: Face): OptionProblem | undefined {
  const name = (k: OptionKey): string => optionName(k, face);
  for (const key of Object.keys(GENERATION_OPTIONS) as OptionKey[]) {
    const algos = GENERATION_OPTIONS[key].algos;
    if (!o.given.has(key) || algos.includes(o.algo)) continue;
    const why = o.algo === "nonsi" ? "non-SI drafts nothing" : `${o.algo} verifies on one target at a time`;
    const algoName = face === "engine" ? "" : `${name("algo")} `;
    return { key, message: `${name(key)} applies to ${algoName}${algos.join(" and ")} (${why})` };
  }
  return undefined;
}

/** A verify rule that does not fit the temperature (greedy needs 0, the sampling rules more). */
export function verifyProblem(o: Pick<CrossCheckInput, "temperature" | "verify">, face: Face): OptionProblem | undefined {
  const name = (k: OptionKey): string => optionName(k, face);
  if (o.verify === "greedy" && o.temperature !== 0) {
    return { key: "verify", message: `${name("verify")} greedy needs ${name("temperature")} 0 (got ${o.temperature}); use rejection or match for sampling` };
  }
  if (o.verify !== undefined && o.verify !== "greedy" && o.temperature === 0) {
    return { key: "verify", message: `${name("verify")} ${o.verify} samples and needs ${name("temperature")} > 0; use greedy at ${name("temperature")} 0` };
  }
  return undefined;
}

/** The lossless rule when none is given: greedy at temperature 0, else rejection sampling. */
export function defaultVerify(temperature: number): "greedy" | "rejection" {
  return temperature === 0 ? "greedy" : "rejection";
}

/** The context check: a prompt of `promptTokens` plus `maxTokens` must fit the model's context. */
export function contextProblem(promptTokens: number, maxTokens: number, contextSize: number | undefined, face: Face): string | undefined {
  if (contextSize === undefined || promptTokens + maxTokens <= contextSize) return undefined;
  return `the prompt (${promptTokens} tokens) plus ${optionName("maxTokens", face)} (${maxTokens}) exceeds the model's context of ${contextSize} tokens`;
}
