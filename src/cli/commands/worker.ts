/** `dsi worker`: one model instance served over gRPC (one process per device). */
import { Option, type Command } from "commander";
import { BACKENDS } from "../../models/backend.js";
import { intInRange, nonEmpty } from "../flags.js";
import { MAX_SEQUENCES } from "../../models/limits.js";
import { latencyOption, refuseOtherBackend, syntheticSpec, withLlamaFlags, withSyntheticFlags } from "../flag-groups.js";
import type { CliIo } from "../io.js";
import { runWorker } from "../worker.js";

export function register(program: Command, io: CliIo): void {
  const c = program
    .command("worker")
    .description("serve one model instance to an orchestrator over gRPC (one process per device)")
    .addOption(new Option("--backend <name>", "model backend").choices(BACKENDS).default("synthetic"))
    .option("--listen <host:port>", "address to serve on (port 0 picks a free one); beyond loopback a token is required", nonEmpty("--listen"), "127.0.0.1:0")
    .addOption(new Option("--role <role>", "which model of the pair").choices(["target", "drafter"]).default("target"));
  withSyntheticFlags(withLlamaFlags(c, [{ flag: "--model", help: "llama: the GGUF model this worker serves" }], "threads"))
    .addOption(latencyOption("latency profile added on top of each evaluation (emulates a device)"))
    .option("--token <secret>", "a token every call must carry, 16+ characters (default: $DSI_TOKEN; prefer it: flags show in ps)", nonEmpty("--token"))
    .option("--tls-cert <file>", "serve over TLS with this certificate chain (PEM)", nonEmpty("--tls-cert"))
    .option("--tls-key <file>", "the certificate's private key (PEM)", nonEmpty("--tls-key"))
    .addOption(new Option("--sequences <S>", `sequences served (a target worker), 1..${MAX_SEQUENCES}: each keeps its own cache and calls name theirs (llama: the sequences share one context's forward passes on a CPU with one thread, else take turns; an emulated device (--latency) shares their passes)`).argParser(intInRange(1, MAX_SEQUENCES)).default(1))
    .option("--exit-on-stdin-close", "stop when standard input closes (how dsi cluster ties workers to itself)", false)
    .action(async (o, command: Command) => {
      refuseOtherBackend(o, command, ["model", "threads", "gpu", "evalChunk"], "worker ");
      await runWorker({ ...o, synthetic: syntheticSpec(o) }, io);
    });
}
