/** `dsi heatmap`: the paper's speedup grids (CSV, SVG, PNG). */
import type { Command } from "commander";
import { MAX_SP, MAX_TOKENS } from "../../algorithms/option-spec.js";
import { intInRange, MAX_SEED } from "../flags.js";
import { MAX_THREADS } from "../flag-groups.js";
import { runHeatmapCommand, type HeatmapFlags } from "../heatmap.js";
import { println, type CliIo } from "../io.js";
import { MAX_REPEATS } from "./simulate.js";

export function register(program: Command, io: CliIo): void {
  program
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
      println(io.stdout, await runHeatmapCommand({ ...o, tokens: o.maxTokens, maxSp: o.sp }, io.stderr));
    });
}
