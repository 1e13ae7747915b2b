/** `dsi simulate`: non-SI, SI and DSI times for one configuration (the time-unit model or the engine). */
import type { Command } from "commander";
import { MAX_LOOKAHEAD, MAX_SP, MAX_TOKENS } from "../../algorithms/option-spec.js";
import { intInRange, MAX_SEED, numberInRange } from "../flags.js";
import { generationOption, latencyOption } from "../flag-groups.js";
import { println, type CliIo } from "../io.js";
import { runSimulate, type SimulateFlags } from "../simulate.js";

/** Most repeats of a simulated configuration. */
export const MAX_REPEATS = 100_000;

export function register(program: Command, io: CliIo): void {
  program
    .command("simulate")
    .description("non-SI, SI and DSI times for one configuration, in target latencies (the paper's time-unit model, or the engine)")
    .addOption(latencyOption("target and drafter latencies: a paper pair (see `dsi profiles`) or TARGET_MS/DRAFTER_MS; the model uses their ratio c = drafter/target", "10/1"))
    .option("--acceptance <A>", "per-token acceptance rate, in [0, 1] (default: the paper pair's, else 0.8)", numberInRange(0, 1))
    .option("--lookahead <L>", `drafts per window, 1..${MAX_LOOKAHEAD}`, intInRange(1, MAX_LOOKAHEAD), 5)
    .option("--sp <N>", `target instances for DSI, 1..${MAX_SP} (default: ceil(1/(L*c)))`, intInRange(1, MAX_SP))
    .option("--max-tokens <N>", "tokens per generation", intInRange(1, MAX_TOKENS), 1000)
    .option("--repeats <R>", `generations per algorithm, 1..${MAX_REPEATS}`, intInRange(1, MAX_REPEATS), 20)
    .option("--seed <X>", `seed of the acceptance draws, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
    .option("--engine", "run the real DSI engine on the virtual clock instead of the model", false)
    .option(
      "--copy <P>",
      "with --engine: how often the synthetic target copies spans of its context, in [0, 1] (as generate --copy); the drafter model's acceptance stays --acceptance",
      numberInRange(0, 1),
    )
    .addOption(generationOption("draft", { help: "with --engine: where SI's and DSI's drafts come from (as generate --draft)", noDefault: true }))
    .option("--json", "print one JSON object", false)
    .action(async (o: SimulateFlags) => {
      println(io.stdout, await runSimulate(o));
    });
}
