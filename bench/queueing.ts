/**
 * Beyond the paper: DSI with fewer target instances than ceil(t/(L*c)), where windows queue.
 * The paper's model refuses these configurations; the engine on the virtual clock runs them.
 * For each configuration: DSI's time as SP grows from 1 to the paper's requirement, against
 * SI at the same lookahead and non-SI (time in target latencies, mean of the repeats).
 *
 * Usage: node dist/bench/queueing.js [--tokens 200] [--repeats 20]
 */
import { benchArgs } from "./args.js";
import Table from "cli-table3";
import { simulateEngine } from "../src/sim/engine.js";
import { spNeeded } from "../src/sim/time-units.js";

const { tokens, repeats } = benchArgs("usage: node dist/bench/queueing.js [--tokens 200] [--repeats 20]", {
  tokens: { default: 200, min: 1 },
  repeats: { default: 20, min: 1 },
});
const CONFIGS = [
  { c: 0.05, a: 0.8, L: 2 },
  { c: 0.1, a: 0.6, L: 1 },
  { c: 0.066, a: 0.63, L: 3 },
  { c: 0.2, a: 0.9, L: 2 },
];
for (const { c, a, L } of CONFIGS) {
  const needed = spNeeded(c, L);
  const table = new Table({ style: { head: [], border: [] }, head: ["SP", "DSI", "SI/DSI", "non-SI/DSI", "queueing"] });
  let si = 0;
  let nonsi = 0;
  for (let sp = 1; sp <= needed + 1; sp++) {
    const r = await simulateEngine({ c, a, L, tokens, sp }, repeats, 1);
    si = r.si.mean;
    nonsi = r.nonsi.mean;
    table.push([sp, r.dsi.mean.toFixed(1), `${(r.si.mean / r.dsi.mean).toFixed(2)}x`, `${(r.nonsi.mean / r.dsi.mean).toFixed(2)}x`, sp < needed ? "yes" : ""]);
  }
  console.log(`c=${c} a=${a} L=${L}: the paper needs SP >= ceil(1/(L*c)) = ${needed}; SI ${si.toFixed(1)}, non-SI ${nonsi.toFixed(1)} (${tokens} tokens, ${repeats} repeats)`);
  console.log(table.toString());
}
