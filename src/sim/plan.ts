/**
 * Capacity planning: for a target/drafter pair (latencies, acceptance), the lookahead and
 * number of target instances that minimise expected latency, measured by the engine on the
 * virtual clock (so configurations with fewer targets than ceil(t/(L*c)), where windows
 * queue, are covered too).
 */
import { engineMean } from "./engine.js";

export interface PlanInput {
  targetMs: number;
  drafterMs: number;
  acceptance: number;
  maxSp: number;
  maxLookahead: number;
  tokens: number;
  repeats: number;
  seed: number;
}

export interface PlanRow {
  sp: number;
  lookahead: number;
  msPerToken: number;
  speedupOverNonSi: number;
  speedupOverSi: number;
  /** Speedup gained by this instance over the best with one fewer (1 for SP=1). */
  marginal: number;
}

export interface Plan {
  nonsiMsPerToken: number;
  si: { lookahead: number; msPerToken: number };
  bySp: PlanRow[];
  best: PlanRow;
  /** The fewest target instances within 2% of the best latency: where more GPUs stop paying. */
  knee: PlanRow;
}

export async function plan(p: PlanInput): Promise<Plan> {
  const cfg = (L: number, sp: number) => ({ targetMs: p.targetMs, drafterMs: p.drafterMs, a: p.acceptance, L, sp, tokens: p.tokens });
  const mean = async (algo: "nonsi" | "si" | "dsi", L: number, sp: number): Promise<number> =>
    (await engineMean(algo, cfg(L, sp), p.repeats, p.seed)) / p.tokens;
  const nonsi = await mean("nonsi", 1, 1);
  let si = { lookahead: 1, msPerToken: Infinity };
  for (let L = 1; L <= p.maxLookahead; L++) {
    const t = await mean("si", L, 1);
    if (t < si.msPerToken) si = { lookahead: L, msPerToken: t };
  }
  const bySp: PlanRow[] = [];
  for (let sp = 1; sp <= p.maxSp; sp++) {
    let best = { lookahead: 1, ms: Infinity };
    for (let L = 1; L <= p.maxLookahead; L++) {
      const t = await mean("dsi", L, sp);
      if (t < best.ms) best = { lookahead: L, ms: t };
    }
    const prev = bySp.at(-1);
    bySp.push({
      sp,
      lookahead: best.lookahead,
      msPerToken: best.ms,
      speedupOverNonSi: nonsi / best.ms,
      speedupOverSi: si.msPerToken / best.ms,
      marginal: prev ? prev.msPerToken / best.ms : 1,
    });
  }
  const best = bySp.reduce((a, b) => (b.msPerToken < a.msPerToken - 1e-9 ? b : a));
  const knee = bySp.find((r) => r.msPerToken <= best.msPerToken * 1.02)!;
  return { nonsiMsPerToken: nonsi, si, bySp, best, knee };
}
