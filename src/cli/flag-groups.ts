/**
 * Flags several commands share, declared once: the generation options (derived from the
 * option table in algorithms/option-spec), the synthetic model's, the llama backend's, the
 * latency profile; the check that a flag given does not apply; and opening the backend the
 * flags describe.
 */
import { availableParallelism } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import { AUTO_MAX_LOOKAHEAD } from "../algorithms/lookahead.js";
import { crossCheck, GENERATION_OPTIONS, rangeText, type OptionKey } from "../algorithms/option-spec.js";
import type { AlgorithmName } from "../algorithms/options.js";
import { BackendSpecError, openBackend as openBackendSpec, type Backend } from "../models/backend.js";
import { PROFILES, profileNames, resolveProfile, type LatencyProfile } from "../models/latency.js";
import { clusterBackend, loadClusterFile, type ClusterOptions } from "../models/remote/cluster.js";
import { TOKEN_ENV } from "../models/remote/security.js";
import type { DownloadProgress } from "../models/resolve.js";
import { LEARNED_CACHE_ENV, learnedCacheOff } from "../models/learned-store.js";
import { MAX_EVAL_CHUNK, MAX_THREADS, SYNTHETIC_MAX_HISTORY, SYNTHETIC_MAX_VOCAB } from "../models/limits.js";
import { SYNTHETIC_DEFAULTS, type SyntheticSpec } from "../models/synthetic.js";
import { autoOrIntInRange, collectNonEmpty, intInRange, MAX_LATENCY_MS, MAX_SEED, nonEmpty, numberInRange, UsageError } from "./flags.js";
import type { CliIo } from "./io.js";

export { MAX_THREADS } from "../models/limits.js";

/**
 * Target instances when `--sp` is not given. Instances of an in-process backend that computes
 * (llama) share this machine's cores with the drafter and each other: one per core beside the
 * drafter's (at most 7), or one per core (at most 8) where no drafter model runs (`--draft
 * ngram`); more only time-share the same cores (on 2 cores, 4 instances made one-token steps
 * twice as slow). Modelled backends (synthetic) get `modelled`.
 */
export function defaultSp(realCompute: boolean, modelled: number, drafterRuns = true): number {
  const cores = availableParallelism() - (drafterRuns ? 1 : 0);
  return realCompute ? Math.max(1, Math.min(drafterRuns ? 7 : 8, cores)) : modelled;
}

/** The help's words for that default. */
export function defaultSpHelp(modelled: number, noDrafter = "with --draft ngram"): string {
  return `default: llama, one per core beside the drafter's, at most 7 (${defaultSp(true, modelled)} here; ${noDrafter}, one per core: ${defaultSp(true, modelled, false)}); synthetic, ${modelled}`;
}

/** `--max-tokens` -> `maxTokens`: commander's key of a flag. */
export const keyOfFlag = (flag: string): string => flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
/** `maxTokens` -> `--max-tokens` (and the negated flags by their `--no-` name). */
export const flagName = (key: string): string => `--${NEGATED.has(key) ? "no-" : ""}${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
/** Keys of `--no-...` flags (commander keys them without the `no`). */
const NEGATED = new Set(["learnedCache"]);

/** Whether the user gave the flag of `key` on the command line (not a default). */
export function givenIn(command: Command): (key: string) => boolean {
  return (key) => command.getOptionValueSource(key) === "cli";
}

/**
 * The commander parser of a generation option: refuses what the option table refuses, in the
 * words of `rangeText` (the flag parsers of flags.ts say the same).
 */
function parserOf(key: OptionKey): (v: string, previous?: unknown) => unknown {
  const v = GENERATION_OPTIONS[key].value;
  switch (v.type) {
    case "int":
      return intInRange(v.min, v.max);
    case "number":
      return numberInRange(v.min, v.max, v.openMin);
    case "autoOrInt":
      return autoOrIntInRange(v.min, v.max);
    case "texts":
      return (s, previous) => {
        const all = collectNonEmpty(s, previous as string[] | undefined);
        if (all.length > v.maxCount) throw new InvalidArgumentError(`give at most ${v.maxCount} (${rangeText(key, "cli")}).`);
        return all;
      };
    case "choice":
      return (s) => {
        if (!v.choices.includes(s)) throw new InvalidArgumentError(`${rangeText(key, "cli")}.`);
        return s;
      };
  }
}

/** The range part of a generation option's help: "1..1024", "[0, 100]", "auto or 1..1024". */
function rangeHelp(key: OptionKey): string {
  const v = GENERATION_OPTIONS[key].value;
  switch (v.type) {
    case "int":
      return `${v.min}..${v.max}`;
    case "number":
      return `in ${v.openMin ? "(" : "["}${v.min}, ${v.max}]`;
    case "autoOrInt":
      return key === "lookahead" ? `auto (chosen per window, 0..${AUTO_MAX_LOOKAHEAD}, by the observed costs) or ${v.min}..${v.max}` : `auto or ${v.min}..${v.max}`;
    case "texts":
      return `at most ${v.maxCount}`;
    case "choice":
      return `one of ${v.choices.join(", ")}`;
  }
}

/**
 * A generation option as a commander Option: flag, help (with its range and the algorithms it
 * applies to), parser and the CLI default, all from the option table; `help` and `default`
 * override where a command means something more specific.
 */
export function generationOption(key: OptionKey, o: { help?: string; default?: unknown; noDefault?: boolean; /** Applies to every algorithm here (serve's --sp sizes the shared pool). */ everyAlgo?: boolean } = {}): Option {
  const spec = GENERATION_OPTIONS[key];
  const applies = spec.algos.length < 3 && !o.everyAlgo ? ` (${spec.algos.join(", ")} only)` : "";
  const range = rangeHelp(key);
  const option = new Option(`${spec.flag} ${spec.placeholder}`, `${o.help ?? spec.help}${range ? `, ${range}` : ""}${applies}`);
  option.argParser(parserOf(key) as (v: string, p: unknown) => unknown);
  const def = "default" in o ? o.default : spec.defaults.cli;
  if (!o.noDefault && def !== undefined) option.default(def);
  return option;
}

/** The sampling options, the same in every command that samples. */
export function withSamplingFlags(c: Command): Command {
  for (const key of ["temperature", "topK", "topP", "seed", "verify"] as const) c.addOption(generationOption(key));
  return c;
}

/**
 * The cross-field checks of the option table on what the user gave: an option for an algorithm
 * it does not apply to, a verify rule that does not fit the temperature.
 */
export function refuseByOptionTable(
  command: Command,
  o: { algo: AlgorithmName; temperature?: number; verify?: string; draft?: string; ngramMin?: number; ngramMax?: number },
  only?: readonly OptionKey[],
): void {
  const given = givenIn(command);
  const keys = (only ?? (Object.keys(GENERATION_OPTIONS) as OptionKey[])).filter((k) => given(keyOfFlag(GENERATION_OPTIONS[k].flag)));
  const problem = crossCheck({ algo: o.algo, given: new Set(keys), temperature: o.temperature ?? 0, verify: o.verify, draft: o.draft, ngramMin: o.ngramMin, ngramMax: o.ngramMax }, "cli");
  if (problem) throw new UsageError(problem.message);
}

export function profileFlag(v: string): LatencyProfile {
  const p = resolveProfile(v);
  if (!p) throw new InvalidArgumentError(`unknown latency profile; allowed: ${profileNames().join(", ")}, or TARGET_MS/DRAFTER_MS (e.g. 30/3).`);
  for (const ms of [p.target.tpotMs, p.target.ttftMs, p.drafter.tpotMs, p.drafter.ttftMs]) {
    if (!(ms <= MAX_LATENCY_MS)) throw new InvalidArgumentError(`latencies must be at most ${MAX_LATENCY_MS} ms (a day).`);
  }
  return p;
}

/** `--latency <profile>` with this command's meaning of it; `none` unless `fallback` says otherwise. */
export function latencyOption(help: string, fallback: string | null = "none"): Option {
  const option = new Option("--latency <profile>", help).argParser(profileFlag);
  return fallback === null ? option : option.default(fallback === "none" ? PROFILES.get("none") : resolveProfile(fallback), fallback);
}

/** `--history`: a number of previous tokens, or `all`. */
function historyFlag(v: string): number | "all" {
  if (v.trim() === "all") return "all";
  try {
    return intInRange(0, SYNTHETIC_MAX_HISTORY)(v);
  } catch {
    throw new InvalidArgumentError(`must be all or an integer in 0..${SYNTHETIC_MAX_HISTORY}.`);
  }
}

/** The synthetic model's flags, the same in generate, serve, worker and cluster. */
export const SYNTHETIC_ONLY = ["vocab", "agreement", "history", "modelSeed", "copy"] as const;

export function withSyntheticFlags(c: Command): Command {
  return c
    .addOption(new Option("--vocab <V>", `synthetic: vocabulary size, 2..${SYNTHETIC_MAX_VOCAB}`).argParser(intInRange(2, SYNTHETIC_MAX_VOCAB)).default(SYNTHETIC_DEFAULTS.vocab))
    .addOption(
      new Option("--agreement <X>", "synthetic: how often the drafter agrees with the target, in [0, 1]").argParser(numberInRange(0, 1)).default(SYNTHETIC_DEFAULTS.agreement),
    )
    .addOption(
      new Option("--history <N|all>", `synthetic: previous tokens the tables condition on, 0..${SYNTHETIC_MAX_HISTORY}, or all (the whole prefix: every output depends on every earlier token)`)
        .argParser(historyFlag)
        .default(SYNTHETIC_DEFAULTS.context),
    )
    .addOption(new Option("--model-seed <N>", `synthetic: seed of the model tables, 0..${MAX_SEED}`).argParser(intInRange(0, MAX_SEED)).default(SYNTHETIC_DEFAULTS.seed))
    .addOption(
      new Option(
        "--copy <P>",
        "synthetic: how often the target copies its context, in [0, 1]: at that share of positions it favours the token that followed an earlier occurrence of its last tokens, so outputs repeat spans of the prompt and of themselves",
      )
        .argParser(numberInRange(0, 1))
        .default(SYNTHETIC_DEFAULTS.copy),
    );
}

/** The synthetic model the flags describe. */
export function syntheticSpec(o: { vocab: number; agreement: number; history: number | "all"; modelSeed: number; copy: number }): Partial<SyntheticSpec> {
  return { vocab: o.vocab, agreement: o.agreement, context: o.history, seed: o.modelSeed, copy: o.copy };
}

/** The llama backend's flags; `models` names the model flags this command takes (the rest are the same everywhere). */
export function withLlamaFlags(c: Command, models: { flag: string; help: string }[], threadsHelp = "threads per model instance"): Command {
  for (const m of models) c.addOption(new Option(`${m.flag} <file>`, m.help).argParser(nonEmpty(m.flag)));
  return c
    .addOption(new Option("--threads <N>", `llama: ${threadsHelp}, 1..${MAX_THREADS}`).argParser(intInRange(1, MAX_THREADS)).default(1))
    .option("--gpu", "llama: use a GPU build of llama.cpp", false)
    .addOption(
      new Option("--eval-chunk <N>", `llama: tokens per forward pass, 1..${MAX_EVAL_CHUNK} (default: the largest whose outputs match one token at a time, found by a self-test at load)`).argParser(
        intInRange(1, MAX_EVAL_CHUNK),
      ),
    );
}

/**
 * `--no-learned-cache`: llama only (generate, serve, demo); `DSI_LEARNED_CACHE=0` does the same.
 * Commander keys it `learnedCache` (true unless given).
 */
export function learnedCacheOption(): Option {
  return new Option(
    "--no-learned-cache",
    `llama: start cold and keep nothing: no costs and acceptance from earlier commands in $DSI_CACHE_DIR/learned/ (also ${LEARNED_CACHE_ENV}=0)`,
  );
}

/** The models of `dsi generate` and `dsi serve`'s llama backend. */
export const LLAMA_MODELS = [
  { flag: "--target", help: "llama: target model (GGUF path, hf:owner/repo/file.gguf or URL); default: the generated default pair" },
  { flag: "--drafter", help: "llama: drafter model (GGUF path or URI), same vocabulary as the target" },
];
/** Flags of generate and serve that only the llama backend reads (`sequences`: serve's). */
export const LLAMA_ONLY = ["target", "drafter", "threads", "gpu", "evalChunk", "learnedCache", "sequences"] as const;

/** The backend flags of generate and serve: --backend and each backend's own. */
export function withBackendFlags(c: Command, backends: readonly string[]): Command {
  c.addOption(new Option("--backend <name>", "model backend").choices(backends).default("synthetic"));
  withLlamaFlags(c, LLAMA_MODELS).addOption(learnedCacheOption());
  return withSyntheticFlags(c);
}

/** Flags of the backend not chosen are errors: `llamaKeys` are this command's llama-only flags. */
export function refuseOtherBackend(o: { backend: string }, command: Command, llamaKeys: readonly string[], where: string): void {
  const given = givenIn(command);
  for (const key of o.backend === "llama" ? SYNTHETIC_ONLY : llamaKeys) {
    if (given(key)) throw new UsageError(`${flagName(key)} applies to ${where}--backend ${o.backend === "llama" ? "synthetic" : "llama"}, not ${o.backend}`);
  }
}

export interface BackendFlags {
  cluster?: string;
  backend: string;
  vocab: number;
  agreement: number;
  history: number | "all";
  modelSeed: number;
  copy: number;
  target?: string;
  drafter?: string;
  threads: number;
  gpu: boolean;
  evalChunk?: number;
  /** `dsi serve --sequences` (llama): sequences per target instance. */
  sequences?: number;
  /** Without `sequences`: the default rule's inputs (`dsi serve`: --max-concurrent and --sp); else one sequence. */
  sequencesFor?: { concurrent: number; instances: number };
  /** False with `--no-learned-cache`. */
  learnedCache?: boolean;
}

/**
 * A target alone (`--target` without `--drafter`) where the drafter model would be asked for:
 * refused before anything loads. It runs non-SI and prompt lookup (`--draft ngram`).
 */
export function refuseMissingDrafter(o: BackendFlags & { algo: AlgorithmName; draft?: string }, what = `--algo ${o.algo}`): void {
  if (o.cluster !== undefined || o.backend !== "llama" || o.target === undefined || o.drafter !== undefined) return;
  if (o.algo === "nonsi" || o.draft === "ngram") return;
  const alone = what.startsWith("--algo") ? "--draft ngram (prompt lookup) or --algo nonsi" : "--draft ngram (prompt lookup)";
  throw new UsageError(`--drafter: ${what} with --draft ${o.draft ?? "model"} needs a drafter model; give --drafter, or run the target alone with ${alone}`);
}

/** Backend flags that do not apply: another backend's, or any with --cluster (generate, serve). */
export function refuseBackendFlags(o: BackendFlags, command: Command): void {
  const given = givenIn(command);
  if (o.cluster !== undefined) {
    // The cluster file says where the models are; the workers carry their own latency.
    for (const key of ["backend", ...LLAMA_ONLY, ...SYNTHETIC_ONLY, "sp", "latency"]) {
      if (given(key)) throw new UsageError(`${flagName(key)} does not apply with --cluster (the cluster file and its workers set it)`);
    }
  }
  refuseOtherBackend(o, command, LLAMA_ONLY, "");
}

/** Opens the backend the flags describe; its messages (downloads, generated models, workers) go to standard error. */
export async function openBackend(o: BackendFlags, io: CliIo, cluster: ClusterOptions = {}): Promise<Backend> {
  // Workers missing at start, added later, lost and back: one line each on standard error.
  if (o.cluster !== undefined) return clusterBackend(await loadClusterFile(o.cluster), `cluster file ${o.cluster}`, {
      log: (line) => io.stderr.write(`dsi: ${line}\n`),
      token: io.env[TOKEN_ENV] ?? "",
      ...cluster,
    });
  const spec =
    o.backend === "synthetic"
      ? { backend: "synthetic" as const, ...syntheticSpec(o) }
      : {
          backend: "llama" as const,
          target: o.target,
          drafter: o.drafter,
          threads: o.threads,
          gpu: o.gpu,
          evalChunk: o.evalChunk,
          ...(o.sequences !== undefined ? { sequences: o.sequences } : o.sequencesFor ? { sequencesFor: o.sequencesFor } : {}),
          learnedCache: o.learnedCache !== false && !learnedCacheOff(io.env),
        };
  try {
    return await openBackendSpec(spec, (dir) => io.stderr.write(`generated the default model pair in ${dir}\n`), downloadBar(io));
  } catch (err) {
    if (err instanceof BackendSpecError) throw new UsageError(err.message);
    throw err;
  }
}

/** A progress bar on standard error for each model file being downloaded. */
function downloadBar(io: CliIo): DownloadProgress {
  let bar: cliProgress.SingleBar | undefined;
  let current = "";
  return (file, downloaded, total) => {
    if (file !== current) {
      bar?.stop();
      current = file;
      bar = new cliProgress.SingleBar({ format: `downloading ${file} {bar} {percentage}% | {value}/{total} MB`, stream: io.stderr }, cliProgress.Presets.shades_classic);
      bar.start(Math.ceil(total / 2 ** 20), 0);
    }
    bar!.update(Math.floor(downloaded / 2 ** 20));
    if (downloaded >= total) bar!.stop();
  };
}
