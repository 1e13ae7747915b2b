/** `dsi cluster`: start N target workers on this machine and write the cluster file. */
import { InvalidArgumentError, Option, type Command } from "commander";
import { BACKENDS } from "../../models/backend.js";
import { runCluster } from "../cluster.js";
import { intInRange, nonEmpty } from "../flags.js";
import { MAX_SEQUENCES } from "../../models/limits.js";
import { latencyOption, refuseOtherBackend, syntheticSpec, withLlamaFlags, withSyntheticFlags } from "../flag-groups.js";
import type { CliIo } from "../io.js";

/** Most workers `dsi cluster` starts on one machine. */
const MAX_CLUSTER_TARGETS = 64;

/** "0,1,2" -> [0, 1, 2]: device ids for `--gpus`. */
function deviceList(v: string): number[] {
  if (!/^\d{1,3}(,\d{1,3})*$/.test(v)) throw new InvalidArgumentError("give device ids separated by commas, e.g. 0,1,2,3.");
  const ids = v.split(",").map(Number);
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError("a device id is listed twice.");
  return ids;
}

export function register(program: Command, io: CliIo): void {
  const c = program
    .command("cluster")
    .description("start N target workers on this machine (one per GPU with --gpus), write the cluster file, stop them on Ctrl-C")
    .addOption(new Option("--backend <name>", "model backend").choices(BACKENDS).default("synthetic"))
    .option("--targets <N>", `target workers, 1..${MAX_CLUSTER_TARGETS} (default: one per --gpus entry)`, intInRange(1, MAX_CLUSTER_TARGETS))
    .option("--gpus <ids>", "device ids, e.g. 0,1,2,3: worker i gets CUDA_VISIBLE_DEVICES=ids[i mod count] (llama, implies --gpu)", deviceList);
  withLlamaFlags(
    c,
    [
      { flag: "--target", help: "llama: the target GGUF each worker serves" },
      { flag: "--drafter", help: "llama: the drafter GGUF (runs in the orchestrator)" },
    ],
    "threads per worker",
  );
  withSyntheticFlags(c)
    .addOption(latencyOption("latency profile: workers add its target part, the drafter its drafter part (emulates devices)"))
    .option("--out <file>", "the cluster file to write (.json, or .yaml/.yml); removed when the cluster stops", nonEmpty("--out"), "dsi-cluster.json")
    .option("--start-timeout <s>", "seconds to wait for every worker to answer, 1..3600", intInRange(1, 3600), 600)
    .option("--sequences <S>", `sequences each worker serves, 1..${MAX_SEQUENCES}: one generation each, its context kept cached`, intInRange(1, MAX_SEQUENCES), 1)
    .action(async (o, command: Command) => {
      refuseOtherBackend(o, command, ["target", "drafter", "threads", "gpu", "gpus", "evalChunk"], "cluster ");
      await runCluster({ ...o, synthetic: syntheticSpec(o) }, io);
    });
}
