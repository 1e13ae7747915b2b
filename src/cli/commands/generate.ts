/** `dsi generate`: completions with one algorithm, as text or one JSON object. */
import { Command, Option } from "commander";
import { BACKENDS } from "../../models/backend.js";
import { MAX_SEED, nonEmpty, UsageError } from "../flags.js";
import { defaultSp, defaultSpHelp, generationOption, latencyOption, openBackend, refuseBackendFlags, refuseByOptionTable, refuseMissingDrafter, withBackendFlags, withSamplingFlags, type BackendFlags } from "../flag-groups.js";
import { runGenerate, textSink, type GenerateFlags } from "../generate.js";
import { println, type CliIo } from "../io.js";

export function register(program: Command, io: CliIo): void {
  const c = program.command("generate").description("generate completions with one algorithm");
  c.addOption(generationOption("algo"))
    .addOption(generationOption("lookahead"))
    .addOption(generationOption("draft"))
    .addOption(generationOption("ngramMin"))
    .addOption(generationOption("ngramMax"))
    .addOption(generationOption("sp", { help: `target instances verifying at once (${defaultSpHelp(4)}; a cluster: its targets)` }))
    .addOption(generationOption("maxTokens"));
  withSamplingFlags(c);
  withBackendFlags(c, BACKENDS)
    .option("--prompt <text>", 'prompt text (default: "the", or the first letters of a synthetic vocabulary too small for it)')
    .addOption(generationOption("stop"))
    .addOption(latencyOption("latency profile: none, a paper pair (see `dsi profiles`), or TARGET_MS/DRAFTER_MS (each at most a day)"))
    .addOption(new Option("--clock <kind>", "real time or deterministic virtual time").choices(["real", "virtual"]).default("real"))
    .option("--cluster <file>", "targets in worker processes: a cluster file (JSON: drafter, targets' addresses); SP is the number of targets", nonEmpty("--cluster"))
    .addOption(generationOption("n", { help: "independent completions with seeds S, S+1, ..." }))
    .option("--json", "print one JSON object", false)
    .option("--trace <file>", "write a Chrome trace-event timeline (Perfetto)", nonEmpty("--trace"))
    .action(async (o: GenerateFlags & BackendFlags, command: Command) => {
      refuseBackendFlags(o, command);
      refuseByOptionTable(command, o);
      refuseMissingDrafter(o);
      // The CLI's completions take seeds S, S+1, ...: all of them must be seeds.
      if (o.seed + o.n - 1 > MAX_SEED) throw new UsageError(`--seed/--n: completions use seeds ${o.seed}..${o.seed + o.n - 1}, past the largest seed ${MAX_SEED}`);
      const backend = await openBackend(o, io);
      o.sp ??= defaultSp(backend.realCompute && backend.targetCount === undefined, 4, o.draft !== "ngram");
      try {
        if (o.json) println(io.stdout, JSON.stringify((await runGenerate(backend, o)).report, null, 2));
        else {
          const sink = textSink((s) => io.stdout.write(s));
          sink.finish((await runGenerate(backend, o, sink)).report);
        }
      } finally {
        await backend.close();
      }
    });
}
