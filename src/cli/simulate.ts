/** `dsi simulate`: one configuration through the time-unit model or the engine. */
import { simulateEngine } from "../sim/engine.js";
import { simulateTimeUnits, spNeeded, type SimResult } from "../sim/time-units.js";
import type { LatencyProfile } from "../models/latency.js";
import { UsageError } from "./flags.js";
import { MAX_SP, type DraftMode } from "../algorithms/option-spec.js";

export interface SimulateFlags {
  latency: LatencyProfile;
  /** Default: the profile's (a paper pair), else 0.8. */
  acceptance?: number;
  lookahead: number;
  sp?: number;
  maxTokens: number;
  repeats: number;
  seed: number;
  /** How often the engine's synthetic target copies its context (--engine only). */
  copy?: number;
  /** With --engine: where drafts come from (as generate --draft). */
  draft?: DraftMode;
  engine: boolean;
  json: boolean;
}

/** The drafter's latency as a fraction of the target's: the time-unit model's c. */
export function drafterFraction(p: LatencyProfile): number {
  const [t, d] = [p.target.tpotMs, p.drafter.tpotMs];
  if (!(t > 0 && d > 0 && d <= t)) throw new UsageError(`--latency: needs 0 < drafter <= target latency (got ${p.name}: target ${t} ms, drafter ${d} ms)`);
  return d / t;
}

export async function runSimulate(f: SimulateFlags): Promise<string> {
  const c = drafterFraction(f.latency);
  const acceptance = f.acceptance ?? f.latency.acceptance ?? 0.8;
  const needed = spNeeded(c, f.lookahead);
  if (f.sp === undefined && needed > MAX_SP) {
    throw new UsageError(`--latency: with c=${c} and L=${f.lookahead} DSI would need ${needed} target instances; give --sp (at most ${MAX_SP}) with --engine`);
  }
  if (f.copy !== undefined && !f.engine) throw new UsageError("--copy: the time-unit model draws acceptances, not tokens, and has nothing to copy; add --engine");
  if (f.draft !== undefined && !f.engine) throw new UsageError("--draft: the time-unit model draws acceptances, not tokens, and has no context to look up; add --engine");
  const sp = f.sp ?? needed;
  if (!f.engine && sp < needed) {
    throw new UsageError(
      `--sp: the time-unit model needs SP >= ceil(1/(L*c)) = ${needed} target instances for L=${f.lookahead}, c=${c}; add --engine to simulate fewer (queueing)`,
    );
  }
  const cfg = { c, a: acceptance, L: f.lookahead, tokens: f.maxTokens, sp, ...(f.copy !== undefined ? { copy: f.copy } : {}), ...(f.draft !== undefined ? { draft: f.draft } : {}) };
  const result: SimResult = f.engine ? await simulateEngine(cfg, f.repeats, f.seed) : simulateTimeUnits(cfg, f.repeats, f.seed);
  const config = { ...cfg, repeats: f.repeats, seed: f.seed, method: f.engine ? "engine (virtual clock)" : "time-unit model" };
  if (f.json) return JSON.stringify({ config, ...result }, null, 2);
  const row = (name: string, s: { mean: number; std: number }): string => `${name.padEnd(7)} ${s.mean.toFixed(2).padStart(10)} ± ${s.std.toFixed(2)}`;
  const x = (v: number): string => `${v.toFixed(3)}x`;
  const outside = !f.engine && cfg.c * cfg.L >= 1 ? "\nnote: L*c >= 1 is outside the model's regime (full windows, two or more targets); --engine gives the engine's exact times" : "";
  return [
    `${config.method}: c=${cfg.c} a=${cfg.a}${f.copy !== undefined ? ` copy=${f.copy}` : ""}${f.draft !== undefined ? ` draft=${f.draft}` : ""} L=${cfg.L} SP=${sp} (needs ${needed}), ${cfg.tokens} tokens, ${f.repeats} repeats, time in target latencies`,
    row("non-SI", result.nonsi),
    row("SI", result.si),
    row("DSI", result.dsi),
    `speedups: SI/non-SI ${x(result.speedups.si_over_nonsi)}, DSI over SI ${x(result.speedups.dsi_over_si)}, DSI over non-SI ${x(result.speedups.dsi_over_nonsi)}, DSI over the better of the two ${x(result.speedups.dsi_over_best)}${outside}`,
  ].join("\n");
}
