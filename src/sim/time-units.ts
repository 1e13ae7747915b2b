/**
 * The paper's offline "time units" model: target latency 1, drafter latency c in (0, 1],
 * and per verification window a number of accepted drafts min(Geometric(1 - a) - 1, L)
 * (i.i.d. per-token acceptance a). Closed-form per iteration, so a heatmap of thousands of
 * cells takes seconds; checked against the engine on the virtual clock (test/sim).
 *
 * Differences from the paper's own simulator, made so the model predicts our engine:
 * - early rejection: when window m+1's first draft is rejected, the rejection is already
 *   known from window m's last output, so window m+1's drafting is not paid for;
 * - the model assumes full windows (L*c < 1) and enough target instances
 *   (SP >= ceil(1/(L*c)), so at least two: the engine's frontier task holds one). Outside
 *   that regime the engine verifies partial windows or queues, and only the engine
 *   (`--engine`) is exact; at L*c = 1 with one target the model is 5-11% optimistic.
 */
import { FastRng } from "../core/random.js";

export interface TimeUnitConfig {
  /** Drafter latency as a fraction of the target's, in (0, 1]. */
  c: number;
  /** Per-token acceptance rate in [0, 1]. */
  a: number;
  /** Lookahead (drafts per window). */
  L: number;
  /** Tokens to generate. */
  tokens: number;
}

/** An endless stream of accepted-draft counts min(Geometric(1 - a) - 1, L), seeded. */
export class AcceptanceDraws {
  private readonly rng: FastRng;
  private readonly logA: number;
  constructor(
    private readonly a: number,
    private readonly L: number,
    seed: number,
    repeat: number,
  ) {
    this.rng = new FastRng(seed, repeat, 0x5eed);
    this.logA = Math.log(a);
  }
  next(): number {
    if (this.a <= 0) return 0;
    if (this.a >= 1) return this.L;
    // Successes before the first failure: floor(log(u) / log(a)), u uniform in (0, 1].
    const u = 1 - this.rng.next();
    return Math.min(this.L, Math.floor(Math.log(u) / this.logA));
  }
}

export function nonSiTime(cfg: TimeUnitConfig): number {
  return cfg.tokens;
}

/** SI: draft k = min(L, tokens left - 1), verify (1 time unit), keep accepted + 1. */
export function siTime(cfg: TimeUnitConfig, draws: AcceptanceDraws): number {
  let cost = 0;
  let left = cfg.tokens;
  while (left > 0) {
    const k = Math.min(cfg.L, left - 1);
    cost += k * cfg.c + 1;
    left -= Math.min(k, draws.next()) + 1;
  }
  return cost;
}

export interface DsiBreakdown {
  time: number;
  /** Drafts accepted. */
  accepted: number;
  /** Runs: stretches between rejections, each ended by one target pass that reveals it. */
  runs: number;
  /** Upper bound of the model per repeat: each run at most its non-SI time and at most its accepted drafts plus one window of drafting, plus one pass. */
  upper: number;
}

/**
 * DSI with enough target instances: windows of L drafts are verified as they are drafted,
 * so a run of windows ending in a rejection costs its drafting plus one target pass, and
 * never more than non-SI would take for the same tokens (the frontier task).
 */
export function dsiTime(cfg: TimeUnitConfig, draws: AcceptanceDraws): DsiBreakdown {
  let time = 0;
  let toks = 0;
  let accepted = 0;
  let runs = 0;
  let upper = 0;
  while (toks < cfg.tokens) {
    let fresh = 0; // tokens this run commits
    let drafting = 0; // time spent drafting windows whose verification the run waits for
    let runAccepted = 0;
    let windows = 0;
    for (;;) {
      const k = Math.min(cfg.L, cfg.tokens - 1 - toks - fresh);
      const ok = Math.min(k, draws.next());
      windows++;
      fresh += ok;
      runAccepted += ok;
      const rejected = k === 0 || ok < k;
      // Early rejection: a first draft rejected in a later window was already decided by
      // the previous window's last output.
      if (!(rejected && ok === 0 && windows > 1)) drafting += k * cfg.c;
      if (rejected) {
        fresh += 1; // the target's own token (correction, or the last one)
        break;
      }
    }
    time += Math.min(drafting + 1, fresh);
    upper += Math.min((runAccepted + cfg.L) * cfg.c + 1, fresh);
    accepted += runAccepted;
    runs++;
    toks += fresh;
  }
  return { time, accepted, runs, upper };
}

/** Target instances DSI needs so that no window waits: ceil(1 / (L*c)). */
export function spNeeded(c: number, L: number): number {
  return Math.max(1, Math.ceil(1 / (L * c) - 1e-9));
}

export interface Summary {
  mean: number;
  std: number;
}

export function summarize(xs: readonly number[]): Summary {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

export interface SimResult {
  nonsi: Summary;
  si: Summary;
  dsi: Summary;
  speedups: { si_over_nonsi: number; dsi_over_si: number; dsi_over_nonsi: number; dsi_over_best: number };
}

export function speedups(nonsi: number, si: number, dsi: number): SimResult["speedups"] {
  return { si_over_nonsi: nonsi / si, dsi_over_si: si / dsi, dsi_over_nonsi: nonsi / dsi, dsi_over_best: Math.min(si, nonsi) / dsi };
}

/** Runs the model `repeats` times; SI and DSI see the same acceptance draws in each repeat. */
export function simulateTimeUnits(cfg: TimeUnitConfig, repeats: number, seed: number): SimResult {
  const si: number[] = [];
  const dsi: number[] = [];
  for (let r = 0; r < repeats; r++) {
    si.push(siTime(cfg, new AcceptanceDraws(cfg.a, cfg.L, seed, r)));
    dsi.push(dsiTime(cfg, new AcceptanceDraws(cfg.a, cfg.L, seed, r)).time);
  }
  const nonsi = Array.from({ length: repeats }, () => nonSiTime(cfg));
  const res = { nonsi: summarize(nonsi), si: summarize(si), dsi: summarize(dsi) };
  return { ...res, speedups: speedups(res.nonsi.mean, res.si.mean, res.dsi.mean) };
}
