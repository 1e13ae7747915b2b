/** Pearson's chi-square goodness-of-fit, pooling cells with small expected counts. */

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
