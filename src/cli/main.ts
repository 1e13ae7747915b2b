#!/usr/bin/env node
/** The `dsi` command line. Usage errors print one line and exit with code 2. */
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ALGORITHMS, MAX_LOOKAHEAD } from "../algorithms/options.js";
import { AUTO_MAX_LOOKAHEAD } from "../algorithms/lookahead.js";
import { VERIFY_RULES } from "../core/verify.js";
import { PROFILES, profileNames, resolveProfile, type LatencyProfile } from "../models/latency.js";
import { SYNTHETIC_DEFAULTS, SYNTHETIC_MAX_VOCAB, type SyntheticSpec } from "../models/synthetic.js";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair, MIN_VOCAB, writePair, type PairSpec } from "../models/gguf/llama-model.js";
import { ModelFileError } from "../models/llama.js";
import { BACKENDS, BackendSpecError, openBackend as openBackendSpec, syntheticBackend, type Backend } from "../models/backend.js";
import { runDemo } from "./demo.js";
import { autoOrIntInRange, collectNonEmpty, intInRange, MAX_LATENCY_MS, MAX_SEED, nonEmpty, numberInRange, UsageError } from "./flags.js";
import { runGenerate, textSink, type GenerateFlags } from "./generate.js";
import { runHeatmapCommand, type HeatmapFlags } from "./heatmap.js";
import { runPlan, runTable } from "./paper.js";
import { runSimulate, type SimulateFlags } from "./simulate.js";
import { runWorker } from "./worker.js";
import { runCluster } from "./cluster.js";
import cliProgress from "cli-progress";
import type { DownloadProgress } from "../models/resolve.js";
import { checkServeFlags, runServe, SERVE_DEFAULTS } from "./serve.js";
import { ClusterError, clusterBackend, loadClusterFile, type ClusterOptions } from "../models/remote/cluster.js";

/** More target instances than any machine here has; also keeps typos from exhausting memory. */
const MAX_SP = 1024;
/** Most tokens one completion may ask for (a llama model's context bounds it further). */
const MAX_TOKENS = 1_000_000;
/** Most repeats of a simulated configuration. */
const MAX_REPEATS = 100_000;
/** Most threads per llama.cpp instance. */
const MAX_THREADS = 256;
/** Largest forward pass `--eval-chunk` may ask for (node-llama-cpp's default batch size). */
const MAX_EVAL_CHUNK = 512;
/** Most previous tokens the synthetic tables condition on. */
const MAX_SYNTHETIC_CONTEXT = 64;

function profileFlag(v: string): LatencyProfile {
  const p = resolveProfile(v);
  if (!p) throw new InvalidArgumentError(`unknown latency profile; allowed: ${profileNames().join(", ")}, or TARGET_MS/DRAFTER_MS (e.g. 30/3).`);
  for (const ms of [p.target.tpotMs, p.target.ttftMs, p.drafter.tpotMs, p.drafter.ttftMs]) {
    if (!(ms <= MAX_LATENCY_MS)) throw new InvalidArgumentError(`latencies must be at most ${MAX_LATENCY_MS} ms (a day).`);
  }
  return p;
}

/** The synthetic model's flags, the same in generate, worker and cluster. */
function syntheticFlag(key: "vocab" | "agreement" | "history" | "modelSeed"): Option {
  switch (key) {
    case "vocab":
      return new Option("--vocab <V>", `synthetic: vocabulary size, 2..${SYNTHETIC_MAX_VOCAB}`).argParser(intInRange(2, SYNTHETIC_MAX_VOCAB)).default(SYNTHETIC_DEFAULTS.vocab);
    case "agreement":
      return new Option("--agreement <X>", "synthetic: how often the drafter agrees with the target, in [0, 1]").argParser(numberInRange(0, 1)).default(SYNTHETIC_DEFAULTS.agreement);
    case "history":
      return new Option("--history <N|all>", `synthetic: previous tokens the tables condition on, 0..${MAX_SYNTHETIC_CONTEXT}, or all (the whole prefix: every output depends on every earlier token)`)
        .argParser(historyFlag)
        .default(SYNTHETIC_DEFAULTS.context);
    case "modelSeed":
      return new Option("--model-seed <N>", `synthetic: seed of the model tables, 0..${MAX_SEED}`).argParser(intInRange(0, MAX_SEED)).default(SYNTHETIC_DEFAULTS.seed);
  }
}

/** `--history`: a number of previous tokens, or `all`. */
function historyFlag(v: string): number | "all" {
  if (v.trim() === "all") return "all";
  try {
    return intInRange(0, MAX_SYNTHETIC_CONTEXT)(v);
  } catch {
    throw new InvalidArgumentError(`must be all or an integer in 0..${MAX_SYNTHETIC_CONTEXT}.`);
  }
}

/** The backend flags of generate and serve: --backend and each backend's own. */
function withBackendFlags(c: Command): Command {
  c.addOption(new Option("--backend <name>", "model backend").choices(BACKENDS).default("synthetic"))
    .option("--target <file>", "llama: target model (GGUF path, hf:owner/repo/file.gguf or URL); default: the generated default pair", nonEmpty("--target"))
    .option("--drafter <file>", "llama: drafter model (GGUF path or URI), same vocabulary as the target", nonEmpty("--drafter"))
    .option("--threads <N>", `llama: threads per model instance, 1..${MAX_THREADS}`, intInRange(1, MAX_THREADS), 1)
    .option("--gpu", "llama: use a GPU build of llama.cpp", false)
    .option("--eval-chunk <N>", `llama: tokens per forward pass, 1..${MAX_EVAL_CHUNK} (default: the largest whose outputs match one token at a time, found by a self-test at load)`, intInRange(1, MAX_EVAL_CHUNK));
  return withSyntheticFlags(c);
}

/** The synthetic model's flags (generate, serve, worker, cluster). */
function withSyntheticFlags(c: Command): Command {
  for (const key of SYNTHETIC_ONLY) c.addOption(syntheticFlag(key));
  return c;
}

/** The synthetic model the flags describe. */
function syntheticSpec(o: { vocab: number; agreement: number; history: number | "all"; modelSeed: number }): Partial<SyntheticSpec> {
  return { vocab: o.vocab, agreement: o.agreement, context: o.history, seed: o.modelSeed };
}

/** Flags of the backend not chosen are errors: `llamaKeys` are this command's llama-only flags. */
function refuseOtherBackend(o: { backend: string }, command: Command, llamaKeys: readonly string[], where: string): void {
  const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
  for (const key of o.backend === "llama" ? SYNTHETIC_ONLY : llamaKeys) {
    if (given(key)) throw new UsageError(`${flagName(key)} applies to ${where}--backend ${o.backend === "llama" ? "synthetic" : "llama"}, not ${o.backend}`);
  }
}

/** Most workers `dsi cluster` starts on one machine. */
const MAX_CLUSTER_TARGETS = 64;

/** "0,1,2" -> [0, 1, 2]: device ids for `dsi cluster --gpus`. */
function deviceList(v: string): number[] {
  if (!/^\d{1,3}(,\d{1,3})*$/.test(v)) throw new InvalidArgumentError("give device ids separated by commas, e.g. 0,1,2,3.");
  const ids = v.split(",").map(Number);
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError("a device id is listed twice.");
  return ids;
}

/** Flags of `generate` that only some backends or algorithms read. */
const LLAMA_ONLY = ["target", "drafter", "threads", "gpu", "evalChunk"] as const;
const SYNTHETIC_ONLY = ["vocab", "agreement", "history", "modelSeed"] as const;
const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Backend flags that do not apply: another backend's, or any with --cluster (generate, serve). */
function refuseBackendFlags(o: BackendFlags, command: Command): void {
  const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
  if (o.cluster !== undefined) {
    // The cluster file says where the models are; the workers carry their own latency.
    for (const key of ["backend", ...LLAMA_ONLY, ...SYNTHETIC_ONLY, "sp", "latency"]) {
      if (given(key)) throw new UsageError(`${flagName(key)} does not apply with --cluster (the cluster file and its workers set it)`);
    }
  }
  refuseOtherBackend(o, command, LLAMA_ONLY, "");
}

/** A flag that does not apply to the chosen backend or algorithm is an error, never ignored. */
function refuseInapplicable(o: GenerateFlags & BackendFlags, command: Command): void {
  const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
  refuseBackendFlags(o, command);
  if (o.algo !== "dsi" && given("sp")) throw new UsageError(`--sp applies to --algo dsi (${o.algo} verifies on one target)`);
  if (o.algo === "nonsi" && given("lookahead")) throw new UsageError("--lookahead applies to --algo si and dsi (non-SI drafts nothing)");
  if (o.seed + o.n - 1 > MAX_SEED) throw new UsageError(`--seed/--n: completions use seeds ${o.seed}..${o.seed + o.n - 1}, past the largest seed ${MAX_SEED}`);
}

function program(): Command {
  const cmd = new Command("dsi")
    .description("Distributed Speculative Inference: lossless non-SI, SI and DSI decoding")
    .option("-V, --version", "print the version")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.trim().split("\n")[0] + "\n") });

  withBackendFlags(
    cmd
      .command("generate")
      .description("generate completions with one algorithm")
      .addOption(new Option("--algo <name>", "algorithm").choices(ALGORITHMS).default("dsi"))
      .option("--lookahead <L>", `drafts per verification window (si, dsi): auto (chosen per window, 0..${AUTO_MAX_LOOKAHEAD}, by the observed costs) or 1..${MAX_LOOKAHEAD}`, autoOrIntInRange(1, MAX_LOOKAHEAD), "auto")
      .option("--sp <N>", `target instances verifying at once (dsi), 1..${MAX_SP}`, intInRange(1, MAX_SP), 4)
      .option("--max-tokens <N>", `tokens to generate, 0..${MAX_TOKENS}`, intInRange(0, MAX_TOKENS), 64)
      .option("--temperature <T>", "0 is greedy, in [0, 100]", numberInRange(0, 100), 0)
      .option("--top-k <K>", "keep the K most likely tokens (0: all), 0..1000000", intInRange(0, 1_000_000), 0)
      .option("--top-p <P>", "nucleus mass in (0, 1]", numberInRange(0, 1, true), 1)
      .option("--seed <S>", `seed of the first completion, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
      .addOption(new Option("--verify <rule>", "lossless rule (default: greedy at temperature 0, else rejection)").choices(VERIFY_RULES)),
  )
    .option("--prompt <text>", 'prompt text (default: "the", or the first letters of a synthetic vocabulary too small for it)')
    .option("--stop <text>", "stop sequence (repeatable, not empty)", collectNonEmpty, [])
    .addOption(
      new Option("--latency <profile>", `latency profile: none, a paper pair (see \`dsi profiles\`), or TARGET_MS/DRAFTER_MS (each at most ${MAX_LATENCY_MS})`)
        .argParser(profileFlag)
        .default(PROFILES.get("none"), "none"),
    )
    .addOption(new Option("--clock <kind>", "real time or deterministic virtual time").choices(["real", "virtual"]).default("real"))
    .option("--cluster <file>", "targets in worker processes: a cluster file (JSON: drafter, targets' addresses); SP is the number of targets", nonEmpty("--cluster"))
    .option("--n <count>", "independent completions with seeds S, S+1, ..., 1..1000", intInRange(1, 1000), 1)
    .option("--json", "print one JSON object", false)
    .option("--trace <file>", "write a Chrome trace-event timeline (Perfetto)", nonEmpty("--trace"))
    .action(async (o: GenerateFlags & BackendFlags, command: Command) => {
      refuseInapplicable(o, command);
      const backend = await openBackend(o);
      try {
        if (o.json) console.log(JSON.stringify((await runGenerate(backend, o)).report, null, 2));
        else {
          const sink = textSink((s) => process.stdout.write(s));
          sink.finish((await runGenerate(backend, o, sink)).report);
        }
      } finally {
        await backend.close();
      }
    });

  cmd
    .command("make-model")
    .description("write a seeded llama-architecture target/drafter pair as GGUF files")
    .option("--out <dir>", "output directory (default: the model cache)")
    .option("--vocab <V>", `vocabulary size, ${MIN_VOCAB}..262144 (below 313 a character tokenizer)`, intInRange(MIN_VOCAB, 262_144), DEFAULT_PAIR.target.vocab)
    .option("--width <N>", "embedding width, 8..16384", intInRange(8, 16_384), DEFAULT_PAIR.target.width)
    .option("--layers <N>", "target blocks, 1..256", intInRange(1, 256), DEFAULT_PAIR.target.layers)
    .option("--heads <N>", "attention heads, 1..256", intInRange(1, 256), DEFAULT_PAIR.target.heads)
    .option("--ff <N>", "feed-forward width, 8..65536", intInRange(8, 65_536), DEFAULT_PAIR.target.ff)
    .option("--context <N>", "context length, 16..1048576", intInRange(16, 1_048_576), DEFAULT_PAIR.target.context)
    .option("--drafter-layers <N>", "drafter blocks (shared with the target's first blocks), 1..--layers", intInRange(1, 256), DEFAULT_PAIR.drafterLayers)
    .option("--depth-scale <X>", "weight of the target-only blocks, in [0, 100]: higher means lower acceptance", numberInRange(0, 100), DEFAULT_PAIR.depthScale)
    .option("--logit-scale <X>", "spread of the logits, in [0, 100]: higher means more peaked", numberInRange(0, 100), DEFAULT_PAIR.logitScale)
    .option("--model-seed <S>", `weights seed, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), DEFAULT_PAIR.seed)
    .action(async (o) => {
      const spec: PairSpec = {
        target: { vocab: o.vocab, width: o.width, layers: o.layers, heads: o.heads, ff: o.ff, context: o.context },
        drafterLayers: o.drafterLayers,
        depthScale: o.depthScale,
        logitScale: o.logitScale,
        seed: o.modelSeed,
      };
      let files: { target: string; drafter: string; generated?: boolean };
      try {
        files = o.out ? await writePair(o.out, spec) : await ensurePair(defaultCacheDir(), spec);
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`make-model: ${err.message}`);
        throw err;
      }
      if (files.generated === false) console.log("the cache already holds this pair (same settings): reused, not written again");
      console.log(`target:  ${files.target}\ndrafter: ${files.drafter}`);
    });

  cmd
    .command("demo")
    .description("the main job: one prompt through non-SI, SI and DSI; outputs, speedups and a timeline picture")
    .addOption(new Option("--backend <name>", "llama: the generated GGUF pair on this machine; synthetic: the paper's latencies in virtual time").choices(BACKENDS).default("llama"))
    .option("--target <file>", "llama: target model (default: the generated default pair)", nonEmpty("--target"))
    .option("--drafter <file>", "llama: drafter model", nonEmpty("--drafter"))
    .option("--threads <N>", `llama: threads per model instance, 1..${MAX_THREADS}`, intInRange(1, MAX_THREADS), 1)
    .option("--gpu", "llama: use a GPU build of llama.cpp", false)
    .option("--eval-chunk <N>", `llama: tokens per forward pass, 1..${MAX_EVAL_CHUNK} (default: the largest whose outputs match one token at a time, found by a self-test at load)`, intInRange(1, MAX_EVAL_CHUNK))
    .option("--latency <profile>", "latency profile: synthetic, the modelled latencies (and a paper pair's acceptance; default vicuna-13b/vicuna-68m:cnn-dm); llama, added on top of real compute (default none)")
    .option("--max-tokens <N>", `tokens to generate, 1..${MAX_TOKENS}`, intInRange(1, MAX_TOKENS), 64)
    .option("--lookahead <L>", `drafts per window: auto (chosen per window, 0..${AUTO_MAX_LOOKAHEAD}) or 1..${MAX_LOOKAHEAD}`, autoOrIntInRange(1, MAX_LOOKAHEAD), "auto")
    .option("--sp <N>", "DSI target instances (default: llama, one per spare core; synthetic, 7)", intInRange(1, MAX_SP))
    .option("--prompt <text>", "prompt text", "the quick brown fox")
    .option("--svg <file>", "timeline picture", nonEmpty("--svg"), "dsi-timeline.svg")
    .option("--trace <file>", "also write a Chrome trace-event timeline", nonEmpty("--trace"))
    .action(async (o, command: Command) => {
      const synthetic = o.backend === "synthetic";
      const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
      // The synthetic demo is the paper's setting: fixed prompt, the profile's latencies.
      const inapplicable = synthetic ? ["prompt", "target", "drafter", "threads", "gpu", "evalChunk"] : [];
      for (const key of inapplicable) if (given(key)) throw new UsageError(`${flagName(key)} applies to demo --backend ${synthetic ? "llama" : "synthetic"}, not ${o.backend}`);
      const profile = resolveProfile(o.latency ?? (synthetic ? "vicuna-13b/vicuna-68m:cnn-dm" : "none"));
      if (!profile) throw new UsageError(`--latency: unknown latency profile; allowed: ${profileNames().join(", ")}, or TARGET_MS/DRAFTER_MS (e.g. 30/3)`);
      if (synthetic && !(profile.target.tpotMs > 0 && profile.drafter.tpotMs > 0)) {
        throw new UsageError("--latency: the synthetic demo runs in modelled time and needs a profile with latencies (a paper pair or TARGET_MS/DRAFTER_MS), not none");
      }
      const backend = synthetic
        ? syntheticBackend({ vocab: 64, agreement: profile.acceptance ?? 0.7, seed: 7 })
        : await openBackend({ ...o, backend: "llama" } as BackendFlags);
      try {
        const sp = o.sp ?? (synthetic ? 7 : Math.max(1, Math.min(7, availableParallelism() - 1)));
        const { text, identical } = await runDemo(backend, {
          maxTokens: o.maxTokens,
          lookahead: o.lookahead,
          sp,
          prompt: synthetic ? "the" : o.prompt,
          latency: profile,
          clock: synthetic ? "virtual" : "real",
          svg: o.svg,
          trace: o.trace,
        });
        console.log(text);
        if (!identical) process.exitCode = 1;
      } finally {
        await backend.close();
      }
    });

  cmd
    .command("simulate")
    .description("non-SI, SI and DSI times for one configuration, in target latencies (the paper's time-unit model, or the engine)")
    .addOption(
      new Option("--latency <profile>", "target and drafter latencies: a paper pair (see `dsi profiles`) or TARGET_MS/DRAFTER_MS; the model uses their ratio c = drafter/target")
        .argParser(profileFlag)
        .default(resolveProfile("10/1"), "10/1"),
    )
    .option("--acceptance <A>", "per-token acceptance rate, in [0, 1] (default: the paper pair's, else 0.8)", numberInRange(0, 1))
    .option("--lookahead <L>", `drafts per window, 1..${MAX_LOOKAHEAD}`, intInRange(1, MAX_LOOKAHEAD), 5)
    .option("--sp <N>", `target instances for DSI, 1..${MAX_SP} (default: ceil(1/(L*c)))`, intInRange(1, MAX_SP))
    .option("--max-tokens <N>", "tokens per generation", intInRange(1, MAX_TOKENS), 1000)
    .option("--repeats <R>", `generations per algorithm, 1..${MAX_REPEATS}`, intInRange(1, MAX_REPEATS), 20)
    .option("--seed <X>", `seed of the acceptance draws, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
    .option("--engine", "run the real DSI engine on the virtual clock instead of the model", false)
    .option("--json", "print one JSON object", false)
    .action(async (o: SimulateFlags) => {
      console.log(await runSimulate(o));
    });

  cmd
    .command("heatmap")
    .description("the paper's heatmaps: speedups over a grid of drafter latency and acceptance (CSV, SVG, PNG)")
    .option("--ndim <N>", "grid steps per axis (and the largest lookahead), 2..100", intInRange(2, 100), 20)
    .option("--max-tokens <N>", "tokens per generation", intInRange(1, MAX_TOKENS), 1000)
    .option("--repeats <R>", `generations per cell, algorithm and lookahead, 1..${MAX_REPEATS}`, intInRange(1, MAX_REPEATS), 5)
    .option("--sp <N>", `target instances DSI may use, 1..${MAX_SP}`, intInRange(1, MAX_SP), 7)
    .option("--out <dir>", "output directory", "heatmap")
    .option("--seed <X>", `seed of the acceptance draws, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
    .option("--engine", "run the real engine on the virtual clock instead of the model (slow)", false)
    .option("--threads <N>", `worker threads, 0..${MAX_THREADS} (default: one per core; 0: none)`, intInRange(0, MAX_THREADS))
    .option("--no-progress", "no progress bar")
    .action(async (o: Omit<HeatmapFlags, "tokens" | "maxSp"> & { maxTokens: number; sp: number }) => {
      console.log(await runHeatmapCommand({ ...o, tokens: o.maxTokens, maxSp: o.sp }));
    });

  cmd
    .command("table")
    .description("the paper's Table 1 recomputed by the engine, beside the paper's figures")
    .option("--max-tokens <N>", "tokens per generation", intInRange(1, MAX_TOKENS), 50)
    .option("--repeats <R>", `runs per configuration, 1..${MAX_REPEATS}`, intInRange(1, MAX_REPEATS), 30)
    .option("--seed <X>", `seed, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
    .addOption(new Option("--json", "print JSON").default(false).conflicts("markdown"))
    .option("--markdown", "print the note on reading the table after it instead of before (the table is Markdown either way)", false)
    .action(async (o) => {
      console.log(await runTable(o));
    });

  cmd
    .command("plan")
    .description("the lookahead and number of target instances that minimise latency for a pair")
    .addOption(
      new Option("--latency <profile>", "target and drafter time per token: a paper pair (see `dsi profiles`) or TARGET_MS/DRAFTER_MS (required)")
        .argParser(profileFlag)
        .makeOptionMandatory(),
    )
    .option("--acceptance <A>", "per-token acceptance rate in [0, 1] (default: the paper pair's; required with TARGET_MS/DRAFTER_MS)", numberInRange(0, 1))
    .option("--max-sp <N>", "most target instances to consider", intInRange(1, MAX_SP), 8)
    .option("--max-lookahead <L>", "largest lookahead to consider, 1..64", intInRange(1, 64), 12)
    .option("--max-tokens <N>", "tokens per simulated generation", intInRange(1, MAX_TOKENS), 100)
    .option("--repeats <R>", `runs per configuration, 1..${MAX_REPEATS}`, intInRange(1, MAX_REPEATS), 10)
    .option("--seed <X>", `seed, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
    .option("--json", "print JSON", false)
    .action(async (o) => {
      console.log(await runPlan(o));
    });

  withSyntheticFlags(
    cmd
      .command("worker")
      .description("serve one model instance to an orchestrator over gRPC (one process per device)")
      .addOption(new Option("--backend <name>", "model backend").choices(BACKENDS).default("synthetic"))
      .option("--listen <host:port>", "address to serve on (port 0 picks a free one); beyond loopback a token is required", nonEmpty("--listen"), "127.0.0.1:0")
      .addOption(new Option("--role <role>", "which model of the pair").choices(["target", "drafter"]).default("target"))
      .option("--model <file>", "llama: the GGUF model this worker serves", nonEmpty("--model"))
      .option("--threads <N>", `llama: threads, 1..${MAX_THREADS}`, intInRange(1, MAX_THREADS), 1)
      .option("--gpu", "llama: use a GPU build of llama.cpp", false)
      .option("--eval-chunk <N>", `llama: tokens per forward pass, 1..${MAX_EVAL_CHUNK} (default: the largest whose outputs match one token at a time, found by a self-test at load)`, intInRange(1, MAX_EVAL_CHUNK)),
  )
    .addOption(
      new Option("--latency <profile>", "latency profile added on top of each evaluation (emulates a device)")
        .argParser(profileFlag)
        .default(PROFILES.get("none"), "none"),
    )
    .option("--token <secret>", "a token every call must carry, 16+ characters (default: $DSI_TOKEN; prefer it: flags show in ps)", nonEmpty("--token"))
    .option("--tls-cert <file>", "serve over TLS with this certificate chain (PEM)", nonEmpty("--tls-cert"))
    .option("--tls-key <file>", "the certificate's private key (PEM)", nonEmpty("--tls-key"))
    .option("--exit-on-stdin-close", "stop when standard input closes (how dsi cluster ties workers to itself)", false)
    .action(async (o, command: Command) => {
      refuseOtherBackend(o, command, ["model", "threads", "gpu", "evalChunk"], "worker ");
      await runWorker({ ...o, synthetic: syntheticSpec(o) });
    });

  withSyntheticFlags(
    cmd
      .command("cluster")
      .description("start N target workers on this machine (one per GPU with --gpus), write the cluster file, stop them on Ctrl-C")
      .addOption(new Option("--backend <name>", "model backend").choices(BACKENDS).default("synthetic"))
      .option("--target <file>", "llama: the target GGUF each worker serves", nonEmpty("--target"))
      .option("--drafter <file>", "llama: the drafter GGUF (runs in the orchestrator)", nonEmpty("--drafter"))
      .option("--targets <N>", `target workers, 1..${MAX_CLUSTER_TARGETS} (default: one per --gpus entry)`, intInRange(1, MAX_CLUSTER_TARGETS))
      .option("--gpus <ids>", "device ids, e.g. 0,1,2,3: worker i gets CUDA_VISIBLE_DEVICES=ids[i mod count] (llama, implies --gpu)", deviceList)
      .option("--threads <N>", `llama: threads per worker, 1..${MAX_THREADS}`, intInRange(1, MAX_THREADS), 1)
      .option("--gpu", "llama: use a GPU build of llama.cpp", false)
      .option("--eval-chunk <N>", `llama: tokens per forward pass, 1..${MAX_EVAL_CHUNK} (default: the largest whose outputs match one token at a time, found by a self-test at load)`, intInRange(1, MAX_EVAL_CHUNK)),
  )
    .addOption(
      new Option("--latency <profile>", "latency profile: workers add its target part, the drafter its drafter part (emulates devices)")
        .argParser(profileFlag)
        .default(PROFILES.get("none"), "none"),
    )
    .option("--out <file>", "the cluster file to write (.json, or .yaml/.yml); removed when the cluster stops", nonEmpty("--out"), "dsi-cluster.json")
    .option("--start-timeout <s>", "seconds to wait for every worker to answer, 1..3600", intInRange(1, 3600), 600)
    .action(async (o, command: Command) => {
      refuseOtherBackend(o, command, ["target", "drafter", "threads", "gpu", "gpus", "evalChunk"], "cluster ");
      await runCluster({ ...o, synthetic: syntheticSpec(o) });
    });

  withBackendFlags(
    cmd
      .command("serve")
      .description("an OpenAI-compatible HTTP server (completions, chat, streaming) whose every response is lossless DSI"),
  )
    .option("--cluster <file>", "targets in worker processes (a cluster file), instead of --backend", nonEmpty("--cluster"))
    .addOption(
      new Option("--latency <profile>", "latency profile added on top of each evaluation (emulates devices)")
        .argParser(profileFlag)
        .default(PROFILES.get("none"), "none"),
    )
    .option("--host <host>", "address to listen on; beyond loopback an API key is required", nonEmpty("--host"), "127.0.0.1")
    .option("--port <N>", "port, 0..65535 (0 picks a free one)", intInRange(0, 65_535), 8080)
    .option("--sp <N>", `target instances shared by all requests, 1..${MAX_SP}`, intInRange(1, MAX_SP), 4)
    .addOption(new Option("--algo <name>", "default algorithm (a request's dsi.algo overrides it)").choices(["nonsi", "si", "dsi"]).default("dsi"))
    .option("--lookahead <L>", `default lookahead: auto (chosen per window, 0..${AUTO_MAX_LOOKAHEAD}) or 1..${MAX_LOOKAHEAD}`, autoOrIntInRange(1, MAX_LOOKAHEAD), "auto")
    .option("--max-tokens <N>", `tokens generated when a request gives no max_tokens, 0..${MAX_TOKENS} (at most --max-tokens-limit)`, intInRange(0, MAX_TOKENS), 16)
    .option("--max-tokens-limit <N>", `most tokens a request may ask for (max_tokens, per choice), 1..${MAX_TOKENS}`, intInRange(1, MAX_TOKENS), SERVE_DEFAULTS.maxTokensLimit)
    .option("--request-timeout <s>", "seconds a client has to send a whole request, headers and body (then 408), 1..3600", intInRange(1, 3600), SERVE_DEFAULTS.requestTimeoutS)
    .option("--headers-timeout <s>", "seconds a client has to send a request's headers (then 408), 1..3600, at most --request-timeout", intInRange(1, 3600), SERVE_DEFAULTS.headersTimeoutS)
    .option("--api-key <key>", "requests to /v1/ must send Authorization: Bearer KEY, 16+ characters (default: $DSI_API_KEY)", nonEmpty("--api-key"))
    .option("--max-concurrent <N>", "generations running at once, 1..4096", intInRange(1, 4096), 64)
    .option("--max-queue <N>", "requests waiting beyond those (then 429), 0..100000", intInRange(0, 100_000), 256)
    .option("--shutdown-timeout <s>", "on SIGTERM, seconds running generations may take to finish, 0..3600", intInRange(0, 3600), 10)
    .action(async (o, command: Command) => {
      const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
      refuseBackendFlags(o, command);
      if (o.algo === "nonsi" && given("lookahead")) throw new UsageError("--lookahead applies to --algo si and dsi (non-SI drafts nothing)");
      const apiKey = checkServeFlags(o);
      // A server waits for its target workers (503 until one answers); generate needs one now.
      await runServe(() => openBackend(o, { waitForTargets: true }), o, apiKey);
    });

  cmd
    .command("profiles")
    .description("list the built-in latency profiles")
    .action(() => {
      const rows = [["profile", "target ms", "drafter ms", "acceptance"]];
      for (const p of PROFILES.values()) rows.push([p.name, String(p.target.tpotMs), String(p.drafter.tpotMs), p.acceptance === undefined ? "" : String(p.acceptance)]);
      const width = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      for (const r of rows) console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(width[i]) : cell.padStart(width[i]))).join("  ").trimEnd());
      console.log("\nA pair without its dataset (e.g. vicuna-7b/vicuna-68m) means its first row; TARGET_MS/DRAFTER_MS (e.g. 30/3) gives any pair.");
    });
  return cmd;
}

interface BackendFlags {
  cluster?: string;
  backend: string;
  vocab: number;
  agreement: number;
  history: number | "all";
  modelSeed: number;
  target?: string;
  drafter?: string;
  threads: number;
  gpu: boolean;
  evalChunk?: number;
}

async function openBackend(o: BackendFlags, cluster: ClusterOptions = {}): Promise<Backend> {
  // Workers missing at start, added later, lost and back: one line each on standard error.
  if (o.cluster !== undefined) return clusterBackend(await loadClusterFile(o.cluster), `cluster file ${o.cluster}`, { log: (line) => console.error(`dsi: ${line}`), ...cluster });
  const spec =
    o.backend === "synthetic"
      ? { backend: "synthetic" as const, ...syntheticSpec(o) }
      : { backend: "llama" as const, target: o.target, drafter: o.drafter, threads: o.threads, gpu: o.gpu, evalChunk: o.evalChunk };
  try {
    return await openBackendSpec(spec, (dir) => console.error(`generated the default model pair in ${dir}`), downloadBar());
  } catch (err) {
    if (err instanceof BackendSpecError) throw new UsageError(err.message);
    throw err;
  }
}

/** A progress bar on standard error for each model file being downloaded. */
function downloadBar(): DownloadProgress {
  let bar: cliProgress.SingleBar | undefined;
  let current = "";
  return (file, downloaded, total) => {
    if (file !== current) {
      bar?.stop();
      current = file;
      bar = new cliProgress.SingleBar({ format: `downloading ${file} {bar} {percentage}% | {value}/{total} MB`, stream: process.stderr }, cliProgress.Presets.shades_classic);
      bar.start(Math.ceil(total / 2 ** 20), 0);
    }
    bar!.update(Math.floor(downloaded / 2 ** 20));
    if (downloaded >= total) bar!.stop();
  };
}

/** The package's version, for --version. */
async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  try {
    const cmd = program();
    const args = argv.slice(2);
    if (args.length === 0) {
      console.log(cmd.helpInformation().trimEnd()); // bare `dsi`: the help, on stdout
      return 0;
    }
    if (args[0] === "--version" || args[0] === "-V") {
      console.log(await version());
      return 0;
    }
    // Commander answers `dsi help bogus` and `dsi bogus --help` with the top-level help and
    // exit 0; an unknown command is an error.
    const names = new Set(cmd.commands.map((c) => c.name()));
    const asked = args[0] === "help" ? args[1] : args[0].startsWith("-") ? undefined : args[0];
    if (asked !== undefined && !names.has(asked) && !(args[0] === "help" && asked.startsWith("-"))) {
      throw new UsageError(`unknown command '${asked}'; the commands are ${[...names].join(", ")} (see dsi --help)`);
    }
    await cmd.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return 2; // commander already printed the one-line message
    }
    if (err instanceof UsageError || err instanceof InvalidArgumentError || err instanceof ModelFileError || err instanceof ClusterError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    const fsErr = err as NodeJS.ErrnoException;
    if (fsErr.path && ["ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EEXIST", "EROFS"].includes(fsErr.code ?? "")) {
      console.error(`error: cannot write or read ${fsErr.path} (${fsErr.code}); check the --out, --svg or --trace path`);
      return 2;
    }
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

// grpc-js sets the TLS server name to the host even when that is an IP address (TLS to a
// worker at 10.0.0.5:7001), which Node reports as DEP0123 on each connection; the certificate
// is still checked against the IP. Other warnings print as Node prints them.
process.removeAllListeners("warning");
process.on("warning", (w: Error & { code?: string }) => {
  if (w.code !== "DEP0123") console.error(`(node:${process.pid}) ${w.code ? `[${w.code}] ` : ""}${w.name}: ${w.message}`);
});

process.exitCode = await main(process.argv);
