/**
 * The full heatmap (ndim 20, 1000 tokens, 5 repeats per cell, time-unit model): wall time
 * over worker threads (one per core) against a plain single-threaded run of the same model,
 * measured in one process, twice each, interleaved. Goal: under 10 s on this machine.
 *
 * Usage: node dist/bench/heatmap.js [--ndim 20] [--tokens 1000] [--repeats 5]
 */
import { availableParallelism } from "node:os";
import { benchArgs } from "./args.js";
import { runHeatmap } from "../src/sim/run-heatmap.js";

const values = benchArgs("usage: node dist/bench/heatmap.js [--ndim 20] [--tokens 1000] [--repeats 5]", {
  ndim: { default: 20, min: 2 },
  tokens: { default: 1000, min: 1 },
  repeats: { default: 5, min: 1 },
});
const o = { ...values, maxSp: 7, seed: 0, engine: false };
const cores = availableParallelism();
const times: Record<string, number[]> = { parallel: [], single: [] };
let cells = 0;
for (let round = 0; round < 2; round++) {
  for (const [name, threads] of [
    ["parallel", cores],
    ["single", 0],
  ] as const) {
    const t0 = performance.now();
    cells = (await runHeatmap(o, { threads })).length;
    times[name].push((performance.now() - t0) / 1000);
  }
}
const best = (xs: number[]): number => Math.min(...xs);
console.log(`heatmap ndim ${o.ndim} (${cells} cells x ${o.ndim} lookaheads x ${o.repeats} repeats x SI+DSI), ${o.tokens} tokens, time-unit model`);
console.log(`  ${cores} worker threads: ${best(times.parallel).toFixed(2)} s (runs: ${times.parallel.map((t) => t.toFixed(2)).join(", ")})`);
console.log(`  single thread:    ${best(times.single).toFixed(2)} s (runs: ${times.single.map((t) => t.toFixed(2)).join(", ")})`);
console.log(`  speedup of the pool: ${(best(times.single) / best(times.parallel)).toFixed(2)}x; goal under 10 s: ${best(times.parallel) < 10 ? "met" : "NOT met"}`);
