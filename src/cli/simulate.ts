/** `dsi simulate`: one configuration through the time-unit model or the engine. */
import { simulateEngine } from "../sim/engine.js";
import { simulateTimeUnits, spNeeded, type SimResult } from "../sim/time-units.js";
import { UsageError } from "./flags.js";

export interface SimulateFlags {
  drafterLatency: number;
  acceptance: number;
  lookahead: number;
  sp?: number;
  tokens: number;
  repeats: number;
  seed: number;
  engine: boolean;
  json: boolean;
}

export async function runSimulate(f: SimulateFlags): Promise<string> {
  const needed = spNeeded(f.drafterLatency, f.lookahead);
  if (f.sp === undefined && needed > 1024) {
    throw new UsageError(`--drafter-latency: with c=${f.drafterLatency} and L=${f.lookahead} DSI would need ${needed} target instances; give --sp (at most 1024) with --engine`);
  }
  const sp = f.sp ?? needed;
  if (!f.engine && sp < needed) {
    throw new UsageError(
      `--sp: the time-unit model needs SP >= ceil(1/(L*c)) = ${needed} target instances for L=${f.lookahead}, c=${f.drafterLatency}; add --engine to simulate fewer (queueing)`,
    );
  }
  const cfg = { c: f.drafterLatency, a: f.acceptance, L: f.lookahead, tokens: f.tokens, sp };
  const result: SimResult = f.engine ? await simulateEngine(cfg, f.repeats, f.seed) : simulateTimeUnits(cfg, f.repeats, f.seed);
  const config = { ...cfg, repeats: f.repeats, seed: f.seed, method: f.engine ? "engine (virtual clock)" : "time-unit model" };
  if (f.json) return JSON.stringify({ config, ...result }, null, 2);
  const row = (name: string, s: { mean: number; std: number }): string => `${name.padEnd(7)} ${s.mean.toFixed(2).padStart(10)} ± ${s.std.toFixed(2)}`;
  const x = (v: number): string => `${v.toFixed(3)}x`;
  const outside = !f.engine && cfg.c * cfg.L >= 1 ? "\nnote: L*c >= 1 is outside the model's regime (full windows, two or more targets); --engine gives the engine's exact times" : "";
  return [
    `${config.method}: c=${cfg.c} a=${cfg.a} L=${cfg.L} SP=${sp} (needs ${needed}), ${cfg.tokens} tokens, ${f.repeats} repeats, time in target latencies`,
    row("non-SI", result.nonsi),
    row("SI", result.si),
    row("DSI", result.dsi),
    `speedups: SI/non-SI ${x(result.speedups.si_over_nonsi)}, DSI over SI ${x(result.speedups.dsi_over_si)}, DSI over non-SI ${x(result.speedups.dsi_over_nonsi)}, DSI over the better of the two ${x(result.speedups.dsi_over_best)}${outside}`,
  ].join("\n");
}
