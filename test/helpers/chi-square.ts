/** Pearson's chi-square goodness-of-fit, pooling cells with small expected counts. */
import assert from "node:assert/strict";
import type { SamplingParams } from "../../src/core/sampling.js";
import type { SyntheticPair } from "../../src/models/synthetic.js";

/** Upper critical value of chi-square at alpha 0.001 (Wilson-Hilferty; within ~0.5% for df >= 3). */
export function chiSquareCritical001(df: number): number {
  const z = 3.090232; // standard normal quantile at 1 - 0.001
  const h = 2 / (9 * df);
  return df * Math.pow(1 - h + z * Math.sqrt(h), 3);
}

export interface ChiSquareResult {
  statistic: number;
  df: number;
  critical: number;
  rejected: boolean;
}

/** counts[i] observed, probs[i] exact; cells with expected < minExpected are pooled into one. */
export function chiSquareTest(counts: ArrayLike<number>, probs: ArrayLike<number>, minExpected = 5): ChiSquareResult {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  let stat = 0;
  let cells = 0;
  let pooledObs = 0;
  let pooledExp = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = probs[i] * n;
    if (e < minExpected) {
      pooledObs += counts[i];
      pooledExp += e;
      continue;
    }
    stat += (counts[i] - e) ** 2 / e;
    cells++;
  }
  if (pooledExp > 0) {
    stat += (pooledObs - pooledExp) ** 2 / pooledExp;
    cells++;
  } else if (pooledObs > 0) {
    stat = Infinity; // observed outcomes of probability zero
  }
  const df = cells - 1;
  const critical = chiSquareCritical001(df);
  return { statistic: stat, df, critical, rejected: stat > critical };
}

/**
 * Runs `samples` generations (seed 0, 1, ...) and asserts that their first two tokens follow
 * `exact` (indexed first * vocab + second): chi-square at alpha 0.001 over at least 30 degrees
 * of freedom, with both accepted and rejected drafts exercised (more than 500 each).
 */
export async function assertFirstTwoTokensFollow(
  exact: ArrayLike<number>,
  vocab: number,
  samples: number,
  generation: (seed: number) => Promise<{ tokens: number[]; stats: { accepted: number; rejected: number } }>,
  /** Generations in flight at once (each seed's output is a lossless sample however they overlap). */
  concurrency = 1,
): Promise<void> {
  const counts = new Float64Array(vocab * vocab);
  let accepted = 0;
  let rejected = 0;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < samples) {
      const r = await generation(next++);
      counts[r.tokens[0] * vocab + r.tokens[1]]++;
      accepted += r.stats.accepted;
      rejected += r.stats.rejected;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  assert.ok(accepted > 500 && rejected > 500, `accepted ${accepted}, rejected ${rejected}`);
  const chi = chiSquareTest(counts, exact);
  assert.ok(chi.df >= 30, `df ${chi.df}`);
  assert.ok(!chi.rejected, `chi-square ${chi.statistic.toFixed(1)} > ${chi.critical.toFixed(1)} (df ${chi.df})`);
}

/**
 * The target's exact joint distribution of the next `count` tokens after `prompt`, indexed
 * x1·V^(count-1) + ... + x_count (what the chi-square tests compare sampled outputs with).
 */
export function targetJoint(pair: SyntheticPair, prompt: readonly number[], count: number, sampling: SamplingParams): Float64Array {
  const V = pair.spec.vocab;
  const joint = new Float64Array(V ** count);
  const fill = (prefix: number[], index: number, p: number): void => {
    if (prefix.length === prompt.length + count) {
      joint[index] = p;
      return;
    }
    const dist = pair.distribution("target", prefix, prefix.length, sampling);
    for (let x = 0; x < V; x++) fill([...prefix, x], index * V + x, p * dist[x]);
  };
  fill([...prompt], 0, 1);
  return joint;
}
