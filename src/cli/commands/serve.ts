/** `dsi serve`: the OpenAI-compatible HTTP server. */
import type { Command } from "commander";
import { MAX_TOKENS } from "../../algorithms/option-spec.js";
import { BACKENDS } from "../../models/backend.js";
import { intInRange, nonEmpty } from "../flags.js";
import { DEFAULT_SEQUENCES_CAP, MAX_SEQUENCES } from "../../models/limits.js";
import { defaultSp, defaultSpHelp, generationOption, latencyOption, openBackend, refuseBackendFlags, refuseByOptionTable, refuseMissingDrafter, withBackendFlags } from "../flag-groups.js";
import type { CliIo } from "../io.js";
import { checkServeFlags, runServe, SERVE_DEFAULTS } from "../serve.js";

export function register(program: Command, io: CliIo): void {
  const c = program.command("serve").description("an OpenAI-compatible HTTP server (completions, chat, streaming) whose every response is lossless DSI");
  withBackendFlags(c, BACKENDS)
    .option("--cluster <file>", "targets in worker processes (a cluster file), instead of --backend", nonEmpty("--cluster"))
    .addOption(latencyOption("latency profile added on top of each evaluation (emulates devices)"))
    .option("--host <host>", "address to listen on; beyond loopback an API key is required", nonEmpty("--host"), "127.0.0.1")
    .option("--port <N>", "port, 0..65535 (0 picks a free one)", intInRange(0, 65_535), 8080)
    .addOption(generationOption("sp", { help: `target instances shared by all requests, whatever their algorithm (${defaultSpHelp(4, "a target alone (--target without --drafter)")})`, everyAlgo: true }))
    .addOption(generationOption("algo", { help: "default algorithm (a request's dsi.algo overrides it)" }))
    .addOption(generationOption("lookahead", { help: "default lookahead (a request's dsi.lookahead overrides it)" }))
    .addOption(generationOption("draft", { help: "default source of drafts (a request's dsi.draft overrides it): model, ngram (prompt lookup) or ngram+model" }))
    .addOption(generationOption("ngramMin", { help: "default shortest match of prompt lookup (dsi.ngram_min)" }))
    .addOption(generationOption("ngramMax", { help: "default longest match of prompt lookup (dsi.ngram_max)" }))
    .addOption(generationOption("maxTokens", { help: "tokens generated when a request gives no max_tokens (at most --max-tokens-limit)", default: 16 }))
    .option("--max-tokens-limit <N>", `most tokens a request may ask for (max_tokens, per choice), 1..${MAX_TOKENS}`, intInRange(1, MAX_TOKENS), SERVE_DEFAULTS.maxTokensLimit)
    .option("--request-timeout <s>", "seconds a client has to send a whole request, headers and body (then 408), 1..3600", intInRange(1, 3600), SERVE_DEFAULTS.requestTimeoutS)
    .option("--headers-timeout <s>", "seconds a client has to send a request's headers (then 408), 1..3600, at most --request-timeout", intInRange(1, 3600), SERVE_DEFAULTS.headersTimeoutS)
    .option("--api-key <key>", "requests to /v1/ must send Authorization: Bearer KEY, 16+ characters (default: $DSI_API_KEY)", nonEmpty("--api-key"))
    .option(
      "--sequences <S>",
      `llama: sequences per target instance, 1..${MAX_SEQUENCES}: S generations per instance each keep their context cached, sharing the instance's forward passes on a CPU with one thread, else taking turns on it pass by pass (default: on a CPU with one thread, --max-concurrent over the target instances, at most ${DEFAULT_SEQUENCES_CAP}, as many as fit a quarter of free memory; else 1)`,
      intInRange(1, MAX_SEQUENCES),
    )
    .option("--max-concurrent <N>", "generations running at once, 1..4096", intInRange(1, 4096), 64)
    .option("--max-queue <N>", "requests waiting beyond those (then 429), 0..100000", intInRange(0, 100_000), 256)
    .option("--shutdown-timeout <s>", "on SIGTERM, seconds running generations may take to finish, 0..3600", intInRange(0, 3600), 10)
    .action(async (o, command: Command) => {
      refuseBackendFlags(o, command);
      // --sp here sizes the shared pool (what a request's dsi.sp may use), whatever the default algorithm.
      refuseByOptionTable(command, o, ["lookahead", "draft", "ngramMin", "ngramMax"]);
      refuseMissingDrafter(o); // the requests' default must run
      const apiKey = checkServeFlags(o, io.env);
      // A server waits for its target workers (503 until one answers); generate needs one now.
      await runServe(
        async () => {
          // Without --sequences, a llama server picks them for its concurrency (LlamaPair.defaultSequences).
          if (o.backend === "llama" && o.cluster === undefined) {
            // (A drafter model, where one is loaded, runs for any request that asks for it: dsi.draft.)
            o.sp ??= defaultSp(true, 4, !(o.target !== undefined && o.drafter === undefined));
            if (o.sequences === undefined) o.sequencesFor = { concurrent: o.maxConcurrent, instances: o.sp };
          }
          const backend = await openBackend(o, io, { waitForTargets: true });
          o.sp ??= defaultSp(backend.realCompute && backend.targetCount === undefined, 4);
          return backend;
        },
        o,
        apiKey,
        io,
      );
    });
}
