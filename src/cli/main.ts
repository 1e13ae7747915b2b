#!/usr/bin/env node
/** The `dsi` command line. Usage errors print one line and exit with code 2. */
import { availableParallelism } from "node:os";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ALGORITHMS } from "../algorithms/options.js";
import { VERIFY_RULES } from "../core/verify.js";
import { PROFILES, profileNames, resolveProfile, type LatencyProfile } from "../models/latency.js";
import { SYNTHETIC_DEFAULTS, SYNTHETIC_MAX_VOCAB } from "../models/synthetic.js";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair, MIN_VOCAB, writePair, type PairSpec } from "../models/gguf/llama-model.js";
import { ModelFileError } from "../models/llama.js";
import { BACKENDS, BackendSpecError, openBackend as openBackendSpec, syntheticBackend, type Backend } from "../models/backend.js";
import { runDemo } from "./demo.js";
import { collect, intAtLeast, intInRange, numberAtLeast, numberInRange, UsageError } from "./flags.js";
import { formatReport, runGenerate, type GenerateFlags } from "./generate.js";
import { runHeatmapCommand, type HeatmapFlags } from "./heatmap.js";
import { runPlan, runTable } from "./paper.js";
import { runSimulate, type SimulateFlags } from "./simulate.js";

/** More target instances than any machine here has; also keeps typos from exhausting memory. */
const MAX_SP = 1024;

function profileFlag(v: string): LatencyProfile {
  const p = resolveProfile(v);
  if (!p) throw new InvalidArgumentError(`unknown latency profile; allowed: ${profileNames().join(", ")}, or TARGET_MS/DRAFTER_MS (e.g. 30/3).`);
  return p;
}

function program(): Command {
  const cmd = new Command("dsi")
    .description("Distributed Speculative Inference: lossless non-SI, SI and DSI decoding")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.trim().split("\n")[0] + "\n") });

  cmd
    .command("generate")
    .description("generate completions with one algorithm")
    .addOption(new Option("--algo <name>", "algorithm").choices(ALGORITHMS).default("dsi"))
    .option("--lookahead <L>", "drafts per verification window (si, dsi)", intAtLeast(1), 5)
    .option("--sp <N>", "target instances verifying at once (dsi)", intInRange(1, MAX_SP), 4)
    .option("--max-tokens <N>", "tokens to generate", intAtLeast(0), 64)
    .option("--temperature <T>", "0 is greedy", numberAtLeast(0), 0)
    .option("--top-k <K>", "keep the K most likely tokens (0: all)", intAtLeast(0), 0)
    .option("--top-p <P>", "nucleus mass in (0, 1]", numberInRange(0, 1, true), 1)
    .option("--seed <S>", "seed of the first completion", intAtLeast(0), 0)
    .addOption(new Option("--verify <rule>", "lossless rule (default: greedy at temperature 0, else rejection)").choices(VERIFY_RULES))
    .addOption(new Option("--backend <name>", "model backend").choices(BACKENDS).default("synthetic"))
    .option("--target <file>", "llama: target model (GGUF); default: the generated default pair")
    .option("--drafter <file>", "llama: drafter model (GGUF), same vocabulary as the target")
    .option("--threads <N>", "llama: threads per model instance", intAtLeast(1), 1)
    .option("--gpu", "llama: use a GPU build of llama.cpp", false)
    .option("--vocab <V>", `synthetic: vocabulary size`, intInRange(2, SYNTHETIC_MAX_VOCAB), SYNTHETIC_DEFAULTS.vocab)
    .option("--agreement <X>", "synthetic: how often the drafter agrees with the target, in [0, 1]", numberInRange(0, 1), SYNTHETIC_DEFAULTS.agreement)
    .option("--context <N>", "synthetic: previous tokens the tables condition on", intAtLeast(0), SYNTHETIC_DEFAULTS.context)
    .option("--model-seed <N>", "synthetic: seed of the model tables", intAtLeast(0), SYNTHETIC_DEFAULTS.seed)
    .option("--prompt <text>", "prompt text", "the")
    .option("--stop <text>", "stop sequence (repeatable)", collect, [])
    .addOption(
      new Option("--latency <profile>", "latency profile: none, a paper pair (see `dsi profiles`), or TARGET_MS/DRAFTER_MS")
        .argParser(profileFlag)
        .default(PROFILES.get("none"), "none"),
    )
    .addOption(new Option("--clock <kind>", "real time or deterministic virtual time").choices(["real", "virtual"]).default("real"))
    .option("--n <count>", "independent completions with seeds S, S+1, ...", intAtLeast(1), 1)
    .option("--json", "print one JSON object", false)
    .option("--trace <file>", "write a Chrome trace-event timeline (Perfetto)")
    .action(async (o: GenerateFlags & BackendFlags) => {
      const backend = await openBackend(o);
      try {
        const { report } = await runGenerate(backend, o);
        console.log(o.json ? JSON.stringify(report, null, 2) : formatReport(report));
      } finally {
        await backend.close();
      }
    });

  cmd
    .command("make-model")
    .description("write a seeded llama-architecture target/drafter pair as GGUF files")
    .option("--out <dir>", "output directory (default: the model cache)")
    .option("--vocab <V>", `vocabulary size (>= ${MIN_VOCAB}; below 313 a character tokenizer)`, intAtLeast(MIN_VOCAB), DEFAULT_PAIR.target.vocab)
    .option("--width <N>", "embedding width", intAtLeast(8), DEFAULT_PAIR.target.width)
    .option("--layers <N>", "target blocks", intAtLeast(1), DEFAULT_PAIR.target.layers)
    .option("--heads <N>", "attention heads", intAtLeast(1), DEFAULT_PAIR.target.heads)
    .option("--ff <N>", "feed-forward width", intAtLeast(8), DEFAULT_PAIR.target.ff)
    .option("--context <N>", "context length", intAtLeast(16), DEFAULT_PAIR.target.context)
    .option("--drafter-layers <N>", "drafter blocks (shared with the target's first blocks)", intAtLeast(1), DEFAULT_PAIR.drafterLayers)
    .option("--depth-scale <X>", "weight of the target-only blocks: higher means lower acceptance", numberAtLeast(0), DEFAULT_PAIR.depthScale)
    .option("--logit-scale <X>", "spread of the logits: higher means more peaked", numberAtLeast(0), DEFAULT_PAIR.logitScale)
    .option("--seed <S>", "weights seed", intAtLeast(0), DEFAULT_PAIR.seed)
    .action(async (o) => {
      const spec: PairSpec = {
        target: { vocab: o.vocab, width: o.width, layers: o.layers, heads: o.heads, ff: o.ff, context: o.context },
        drafterLayers: o.drafterLayers,
        depthScale: o.depthScale,
        logitScale: o.logitScale,
        seed: o.seed,
      };
      let files: { target: string; drafter: string };
      try {
        files = o.out ? await writePair(o.out, spec) : await ensurePair(defaultCacheDir(), spec);
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`make-model: ${err.message}`);
        throw err;
      }
      console.log(`target:  ${files.target}\ndrafter: ${files.drafter}`);
    });

  cmd
    .command("demo")
    .description("the main job: one prompt through non-SI, SI and DSI; outputs, speedups and a timeline picture")
    .addOption(new Option("--backend <name>", "llama: the generated GGUF pair on this machine; synthetic: the paper's latencies in virtual time").choices(BACKENDS).default("llama"))
    .option("--target <file>", "llama: target model (default: the generated default pair)")
    .option("--drafter <file>", "llama: drafter model")
    .option("--threads <N>", "llama: threads per model instance", intAtLeast(1), 1)
    .option("--gpu", "llama: use a GPU build of llama.cpp", false)
    .option("--profile <name>", "synthetic: latency profile and acceptance of a paper pair", "vicuna-13b/vicuna-68m:cnn-dm")
    .option("--latency <profile>", "llama: latency added on top of real compute", "none")
    .option("--max-tokens <N>", "tokens to generate", intAtLeast(1), 64)
    .option("--lookahead <L>", "drafts per window", intAtLeast(1), 5)
    .option("--sp <N>", "DSI target instances (default: llama, one per spare core; synthetic, 7)", intInRange(1, MAX_SP))
    .option("--prompt <text>", "prompt text", "the quick brown fox")
    .option("--svg <file>", "timeline picture", "dsi-timeline.svg")
    .option("--trace <file>", "also write a Chrome trace-event timeline")
    .action(async (o) => {
      const synthetic = o.backend === "synthetic";
      const flag = synthetic ? "--profile" : "--latency";
      const profile = resolveProfile(synthetic ? o.profile : o.latency);
      if (!profile) throw new UsageError(`${flag}: unknown latency profile; allowed: ${profileNames().join(", ")}, or TARGET_MS/DRAFTER_MS (e.g. 30/3)`);
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
    .option("--drafter-latency <C>", "drafter latency as a fraction of the target's, in (0, 1]", numberInRange(0, 1, true), 0.1)
    .option("--acceptance <A>", "per-token acceptance rate, in [0, 1]", numberInRange(0, 1), 0.8)
    .option("--lookahead <L>", "drafts per window", intAtLeast(1), 5)
    .option("--sp <N>", "target instances for DSI (default: ceil(1/(L*c)))", intInRange(1, MAX_SP))
    .option("--tokens <S>", "tokens per generation", intAtLeast(1), 1000)
    .option("--repeats <R>", "generations per algorithm", intAtLeast(1), 20)
    .option("--seed <X>", "seed of the acceptance draws", intAtLeast(0), 0)
    .option("--engine", "run the real DSI engine on the virtual clock instead of the model", false)
    .option("--json", "print one JSON object", false)
    .action(async (o: SimulateFlags) => {
      console.log(await runSimulate(o));
    });

  cmd
    .command("heatmap")
    .description("the paper's heatmaps: speedups over a grid of drafter latency and acceptance (CSV, SVG, PNG)")
    .option("--ndim <N>", "grid steps per axis (and the largest lookahead)", intAtLeast(2), 20)
    .option("--tokens <S>", "tokens per generation", intAtLeast(1), 1000)
    .option("--repeats <R>", "generations per cell, algorithm and lookahead", intAtLeast(1), 5)
    .option("--max-sp <N>", "target instances DSI may use", intInRange(1, MAX_SP), 7)
    .option("--out <dir>", "output directory", "heatmap")
    .option("--seed <X>", "seed of the acceptance draws", intAtLeast(0), 0)
    .option("--engine", "run the real engine on the virtual clock instead of the model (slow)", false)
    .option("--threads <N>", "worker threads (default: one per core; 0: none)", intAtLeast(0))
    .option("--no-progress", "no progress bar")
    .action(async (o: HeatmapFlags) => {
      console.log(await runHeatmapCommand(o));
    });

  cmd
    .command("table")
    .description("the paper's Table 1 recomputed by the engine, beside the paper's figures")
    .option("--tokens <S>", "tokens per generation", intAtLeast(1), 50)
    .option("--repeats <R>", "runs per configuration", intAtLeast(1), 30)
    .option("--seed <X>", "seed", intAtLeast(0), 0)
    .addOption(new Option("--json", "print JSON").default(false).conflicts("markdown"))
    .option("--markdown", "print a Markdown table (the default output, note last)", false)
    .action(async (o) => {
      console.log(await runTable(o));
    });

  cmd
    .command("plan")
    .description("the lookahead and number of target instances that minimise latency for a pair")
    .requiredOption("--target-ms <T>", "target time per token", numberInRange(0, Number.MAX_VALUE, true))
    .requiredOption("--drafter-ms <D>", "drafter time per token (0 < D <= T)", numberInRange(0, Number.MAX_VALUE, true))
    .requiredOption("--acceptance <A>", "per-token acceptance rate in [0, 1]", numberInRange(0, 1))
    .option("--max-sp <N>", "most target instances to consider", intInRange(1, MAX_SP), 8)
    .option("--max-lookahead <L>", "largest lookahead to consider", intAtLeast(1), 12)
    .option("--tokens <S>", "tokens per simulated generation", intAtLeast(1), 100)
    .option("--repeats <R>", "runs per configuration", intAtLeast(1), 10)
    .option("--seed <X>", "seed", intAtLeast(0), 0)
    .option("--json", "print JSON", false)
    .action(async (o) => {
      console.log(await runPlan(o));
    });

  cmd
    .command("profiles")
    .description("list the built-in latency profiles")
    .action(() => {
      for (const p of PROFILES.values()) {
        const acc = p.acceptance === undefined ? "" : `  acceptance ${p.acceptance}`;
        console.log(`${p.name.padEnd(40)} target ${p.target.tpotMs} ms  drafter ${p.drafter.tpotMs} ms${acc}`);
      }
    });
  return cmd;
}

interface BackendFlags {
  backend: string;
  vocab: number;
  agreement: number;
  context: number;
  modelSeed: number;
  target?: string;
  drafter?: string;
  threads: number;
  gpu: boolean;
}

async function openBackend(o: BackendFlags): Promise<Backend> {
  const spec =
    o.backend === "synthetic"
      ? { backend: "synthetic" as const, vocab: o.vocab, agreement: o.agreement, context: o.context, seed: o.modelSeed }
      : { backend: "llama" as const, target: o.target, drafter: o.drafter, threads: o.threads, gpu: o.gpu };
  try {
    return await openBackendSpec(spec, (dir) => console.error(`generated the default model pair in ${dir}`));
  } catch (err) {
    if (err instanceof BackendSpecError) throw new UsageError(err.message);
    throw err;
  }
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return 2; // commander already printed the one-line message
    }
    if (err instanceof UsageError || err instanceof InvalidArgumentError || err instanceof ModelFileError) {
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

process.exitCode = await main(process.argv);
