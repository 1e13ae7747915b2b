/** `dsi demo`: the main job: one prompt through non-SI, SI and DSI. */
import { Option, type Command } from "commander";
import { BACKENDS, syntheticBackend } from "../../models/backend.js";
import { profileNames, resolveProfile } from "../../models/latency.js";
import { DEMO_PROMPT, runDemo } from "../demo.js";
import { nonEmpty, UsageError } from "../flags.js";
import {
  defaultSp,
  defaultSpHelp,
  flagName,
  generationOption,
  givenIn,
  learnedCacheOption,
  openBackend,
  refuseByOptionTable,
  refuseMissingDrafter,
  withLlamaFlags,
  type BackendFlags,
} from "../flag-groups.js";
import { println, type CliIo } from "../io.js";

export function register(program: Command, io: CliIo): void {
  const c = program
    .command("demo")
    .description("the main job: one prompt through non-SI, SI and DSI; outputs, speedups and a timeline picture")
    .addOption(new Option("--backend <name>", "llama: the generated GGUF pair on this machine; synthetic: the paper's latencies in virtual time").choices(BACKENDS).default("llama"));
  withLlamaFlags(c, [
    { flag: "--target", help: "llama: target model (default: the generated default pair)" },
    { flag: "--drafter", help: "llama: drafter model" },
  ])
    .addOption(learnedCacheOption())
    .option("--latency <profile>", "latency profile: synthetic, the modelled latencies (and a paper pair's acceptance; default vicuna-13b/vicuna-68m:cnn-dm); llama, added on top of real compute (default none)")
    .addOption(generationOption("maxTokens", { help: "tokens to generate" }))
    .addOption(generationOption("lookahead"))
    .addOption(generationOption("draft", { help: "where SI's and DSI's drafts come from: the drafter model, prompt lookup (ngram) or ngram+model" }))
    .addOption(generationOption("ngramMin"))
    .addOption(generationOption("ngramMax"))
    .addOption(generationOption("sp", { help: `DSI target instances (${defaultSpHelp(7)})` }))
    .option("--prompt <text>", "prompt text", DEMO_PROMPT)
    .option("--svg <file>", "timeline picture", nonEmpty("--svg"), "dsi-timeline.svg")
    .option("--trace <file>", "also write a Chrome trace-event timeline", nonEmpty("--trace"))
    .action(async (o, command: Command) => {
      const synthetic = o.backend === "synthetic";
      const given = givenIn(command);
      // The synthetic demo is the paper's setting: fixed prompt, the profile's latencies.
      const inapplicable = synthetic ? ["prompt", "target", "drafter", "threads", "gpu", "evalChunk", "learnedCache"] : [];
      for (const key of inapplicable) if (given(key)) throw new UsageError(`${flagName(key)} applies to demo --backend ${synthetic ? "llama" : "synthetic"}, not ${o.backend}`);
      if (o.maxTokens === 0) throw new UsageError("--max-tokens: the demo compares the algorithms on at least one token; give 1 or more");
      // SI and DSI both run: the drafting options' checks as for --algo si.
      refuseByOptionTable(command, { ...o, algo: "si" }, ["draft", "ngramMin", "ngramMax"]);
      if (!synthetic) refuseMissingDrafter({ ...o, backend: "llama", algo: "si" }, "the demo's SI and DSI");
      const profile = resolveProfile(o.latency ?? (synthetic ? "vicuna-13b/vicuna-68m:cnn-dm" : "none"));
      if (!profile) throw new UsageError(`--latency: unknown latency profile; allowed: ${profileNames().join(", ")}, or TARGET_MS/DRAFTER_MS (e.g. 30/3)`);
      if (synthetic && !(profile.target.tpotMs > 0 && profile.drafter.tpotMs > 0)) {
        throw new UsageError("--latency: the synthetic demo runs in modelled time and needs a profile with latencies (a paper pair or TARGET_MS/DRAFTER_MS), not none");
      }
      const backend = synthetic
        ? syntheticBackend({ vocab: 64, agreement: profile.acceptance ?? 0.7, seed: 7 })
        : await openBackend({ ...o, backend: "llama" } as BackendFlags, io);
      try {
        const sp = o.sp ?? defaultSp(!synthetic, 7, o.draft !== "ngram");
        const { text, identical } = await runDemo(backend, {
          maxTokens: o.maxTokens,
          lookahead: o.lookahead,
          draft: o.draft,
          ngramMin: o.ngramMin,
          ngramMax: o.ngramMax,
          sp,
          prompt: synthetic ? "the" : o.prompt,
          latency: profile,
          clock: synthetic ? "virtual" : "real",
          svg: o.svg,
          trace: o.trace,
        });
        println(io.stdout, text);
        if (!identical) throw new OutputsDiffer();
      } finally {
        await backend.close();
      }
    });
}

/** The demo's three outputs differed (a lossless bug): exit code 1 after the report is printed. */
export class OutputsDiffer extends Error {
  override readonly name = "OutputsDiffer";
  constructor() {
    super("the outputs of non-SI, SI and DSI differ");
  }
}
