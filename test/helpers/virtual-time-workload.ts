/** The virtual-time property tests' workload (run off-thread, see off-thread.ts). */
import { SyntheticPair } from "../../src/models/synthetic.js";
import { profile, run } from "./run.js";

export interface Config {
  c: number; // drafter latency as a fraction of the target's
  a: number;
  L: number;
  sp: number;
}

export interface SeedRun {
  nonsiTokens: number[];
  dsiTokens: number[];
  nonsiMs: number;
  siMs: number;
  dsiMs: number;
}

/** Configuration i over `seeds` synthetic pairs: non-SI, SI and DSI, 40 tokens each, target `t` ms. */
export async function runSeeds(i: number, cfg: Config, seeds: number, t: number): Promise<SeedRun[]> {
  const out: SeedRun[] = [];
  for (let s = 0; s < seeds; s++) {
    const pair = new SyntheticPair({ vocab: 16, seed: 1000 * i + s, agreement: cfg.a });
    const opts = { maxTokens: 40, lookahead: cfg.L, sp: cfg.sp, profile: profile(t, t * cfg.c) };
    const [nonsi, si, dsi] = [await run("nonsi", pair, opts), await run("si", pair, opts), await run("dsi", pair, opts)];
    out.push({ nonsiTokens: nonsi.tokens, dsiTokens: dsi.tokens, nonsiMs: nonsi.stats.timeMs, siMs: si.stats.timeMs, dsiMs: dsi.stats.timeMs });
  }
  return out;
}

/** Configuration i with `sp` targets: SI's and DSI's total time over the seeds, per output length 1..8. */
export async function shortOutputs(i: number, cfg: Config, sp: number, seeds: number, t: number): Promise<{ si: number; dsi: number }[]> {
  const out: { si: number; dsi: number }[] = [];
  for (let maxTokens = 1; maxTokens <= 8; maxTokens++) {
    let si = 0;
    let dsi = 0;
    for (let s = 0; s < seeds; s++) {
      const pair = new SyntheticPair({ vocab: 16, seed: 1000 * i + s, agreement: cfg.a });
      const opts = { maxTokens, lookahead: cfg.L, sp, profile: profile(t, t * cfg.c) };
      si += (await run("si", pair, opts)).stats.timeMs;
      dsi += (await run("dsi", pair, opts)).stats.timeMs;
    }
    out.push({ si, dsi });
  }
  return out;
}
