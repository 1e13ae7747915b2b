/**
 * The same configurations run by the real engine: synthetic target and drafter (greedy
 * acceptance = a per token) behind flat latency profiles (target 1, drafter c), on the
 * virtual clock. Slower than the time-unit model, exact for every SP and lookahead.
 */
import { generate } from "../algorithms/generate.js";
import type { AlgorithmName } from "../algorithms/options.js";
import { syntheticRuntime } from "../algorithms/runtime.js";
import { hash32 } from "../core/random.js";
import { GREEDY } from "../core/sampling.js";
import { flatLatency } from "../models/latency.js";
import { SyntheticPair } from "../models/synthetic.js";
import { speedups, summarize, type SimResult, type TimeUnitConfig } from "./time-units.js";

export interface EngineConfig extends TimeUnitConfig {
  sp: number;
}

/** One generation's time on the virtual clock, for explicit latencies (ms). */
export async function engineRun(
  algo: AlgorithmName,
  cfg: { targetMs: number; drafterMs: number; a: number; L: number; sp: number; tokens: number },
  pairSeed: number,
): Promise<number> {
  const pair = new SyntheticPair({ vocab: 32, agreement: cfg.a, seed: pairSeed });
  const profile = { name: "sim", target: flatLatency(cfg.targetMs), drafter: flatLatency(cfg.drafterMs) };
  const rt = syntheticRuntime({ pair, profile, clock: "virtual", targets: algo === "dsi" ? cfg.sp : 1, events: false });
  const r = await generate(algo, rt, {
    prompt: [1, 2, 3],
    maxTokens: cfg.tokens,
    sampling: GREEDY,
    verify: "greedy",
    seed: 0,
    lookahead: cfg.L,
    sp: cfg.sp,
  }).result;
  return r.stats.timeMs;
}

/** One generation's time in target latencies (target 1, drafter c). */
export function engineTime(algo: AlgorithmName, cfg: EngineConfig, seed: number, repeat: number): Promise<number> {
  return engineRun(algo, { targetMs: 1, drafterMs: cfg.c, a: cfg.a, L: cfg.L, sp: cfg.sp, tokens: cfg.tokens }, hash32(seed, repeat));
}

export async function simulateEngine(cfg: EngineConfig, repeats: number, seed: number): Promise<SimResult> {
  const times = { nonsi: [] as number[], si: [] as number[], dsi: [] as number[] };
  for (let r = 0; r < repeats; r++) {
    for (const algo of ["nonsi", "si", "dsi"] as const) times[algo].push(await engineTime(algo, cfg, seed, r));
  }
  const res = { nonsi: summarize(times.nonsi), si: summarize(times.si), dsi: summarize(times.dsi) };
  return { ...res, speedups: speedups(res.nonsi.mean, res.si.mean, res.dsi.mean) };
}
