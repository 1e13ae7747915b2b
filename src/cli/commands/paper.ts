/** `dsi table` and `dsi plan`: the paper's Table 1 recomputed, and the best configuration for a pair. */
import { Option, type Command } from "commander";
import { MAX_SP, MAX_TOKENS } from "../../algorithms/option-spec.js";
import { intInRange, MAX_SEED, numberInRange } from "../flags.js";
import { profileFlag } from "../flag-groups.js";
import { println, type CliIo } from "../io.js";
import { runPlan, runTable } from "../paper.js";
import { MAX_REPEATS } from "./simulate.js";

export function register(program: Command, io: CliIo): void {
  program
    .command("table")
    .description("the paper's Table 1 recomputed by the engine, beside the paper's figures")
    .option("--max-tokens <N>", "tokens per generation", intInRange(1, MAX_TOKENS), 50)
    .option("--repeats <R>", `runs per configuration, 1..${MAX_REPEATS}`, intInRange(1, MAX_REPEATS), 30)
    .option("--seed <X>", `seed, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), 0)
    .addOption(new Option("--json", "print JSON").default(false).conflicts("markdown"))
    .option("--markdown", "print the note on reading the table after it instead of before (the table is Markdown either way)", false)
    .action(async (o) => {
      println(io.stdout, await runTable(o));
    });

  program
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
      println(io.stdout, await runPlan(o));
    });
}
