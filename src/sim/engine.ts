/**
 * The same configurations run by the real engine: synthetic target and drafter (greedy
 * acceptance = a per token) behind flat latency profiles (target 1, drafter c), on the
 * virtual clock. Slower than the time-unit model, exact for every SP and lookahead.
 */
import { generate } from "../algorithms/generate.js";
import type { DraftMode } from "../algorithms/option-spec.js";
import type { AlgorithmName } from "../algorithms/options.js";
import { syntheticRuntime } from "../models/runtime.js";
import { hash32 } from "../core/random.js";
import { GREEDY } from "../core/sampling.js";
import { flatLatency } from "../models/latency.js";
import { SyntheticPair } from "../models/synthetic.js";
import { speedups, summarize, type SimResult, type TimeUnitConfig } from "./time-units.js";

export interface EngineConfig extends TimeUnitConfig {
  sp: number;
  /** How often the synthetic target copies its context (SyntheticSpec.copy); default 0. */
  copy?: number;
  /** Where SI's and DSI's drafts come from; default the drafter model. */
  draft?: DraftMode;
}

/** A configuration with explicit latencies (ms). */
export interface EngineRunConfig {
  targetMs: number;
  drafterMs: number;
  a: number;
  L: number;
  sp: number;
  tokens: number;
  /**
   * How often the synthetic target copies its context (SyntheticSpec.copy); default 0. The
   * drafter model's greedy acceptance stays `a` either way: copying changes what drafts taken
   * from the context would get, not what the drafter model gets.
   */
  copy?: number;
  /** Where SI's and DSI's drafts come from; default the drafter model. */
  draft?: DraftMode;
}

/** One generation's time on the virtual clock. */
export async function engineRun(algo: AlgorithmName, cfg: EngineRunConfig, pairSeed: number): Promise<number> {
  const pair = new SyntheticPair({ vocab: 32, agreement: cfg.a, seed: pairSeed, copy: cfg.copy });
  const profile = { name: "sim", target: flatLatency(cfg.targetMs), drafter: flatLatency(cfg.drafterMs) };
  const rt = syntheticRuntime({ pair, profile, clock: "virtual", sp: algo === "dsi" ? cfg.sp : 1, events: false });
  const r = await generate(algo, rt, {
    prompt: [1, 2, 3],
    maxTokens: cfg.tokens,
    sampling: GREEDY,
    verify: "greedy",
    seed: 0,
    ...(algo === "nonsi" ? {} : { lookahead: cfg.L, ...(cfg.draft ? { draft: cfg.draft } : {}) }),
  }).result;
  return r.stats.timeMs;
}

/** Times of `repeats` generations, repeat r on the synthetic pair seeded hash32(seed, r). */
export async function engineTimes(algo: AlgorithmName, cfg: EngineRunConfig, repeats: number, seed: number): Promise<number[]> {
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) times.push(await engineRun(algo, cfg, hash32(seed, r)));
  return times;
}

export async function engineMean(algo: AlgorithmName, cfg: EngineRunConfig, repeats: number, seed: number): Promise<number> {
  return summarize(await engineTimes(algo, cfg, repeats, seed)).mean;
}

/** A time-unit configuration (target 1, drafter c) on the engine. */
export async function simulateEngine(cfg: EngineConfig, repeats: number, seed: number): Promise<SimResult> {
  const run: EngineRunConfig = { targetMs: 1, drafterMs: cfg.c, a: cfg.a, L: cfg.L, sp: cfg.sp, tokens: cfg.tokens, copy: cfg.copy, draft: cfg.draft };
  const res = {
    nonsi: summarize(await engineTimes("nonsi", run, repeats, seed)),
    si: summarize(await engineTimes("si", run, repeats, seed)),
    dsi: summarize(await engineTimes("dsi", run, repeats, seed)),
  };
  return { ...res, speedups: speedups(res.nonsi.mean, res.si.mean, res.dsi.mean) };
}
