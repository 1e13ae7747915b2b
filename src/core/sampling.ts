/**
 * Sampling settings and the transforms every backend applies identically: lossless
 * verification needs the target's p and the drafter's q under the *same* settings.
 */

export interface SamplingParams {
  /** 0 means greedy (argmax); otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most likely tokens; 0 keeps all. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p; 1 keeps all. */
  topP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1 };

/** Index of the largest value; ties go to the lowest index (deterministic). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Next-token distribution from logits under the sampling settings:
 * temperature, then top-k, then top-p (nucleus), renormalised.
 */
export function distributionFromLogits(logits: ArrayLike<number>, params: SamplingParams): Float64Array {
  const n = logits.length;
  const probs = new Float64Array(n);
  if (params.temperature === 0) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i] - max) / params.temperature);
    probs[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) probs[i] /= sum;
  return truncate(probs, params);
}

/**
 * `distributionFromLogits(probs.map(Math.log), params)`, bit for bit, from a softmax such as
 * llama.cpp's probabilities (0 where a token is absent), in place: no array of logarithms, no
 * second array, no logarithm or exponential of a zero. Overwrites and returns `probs`.
 */
export function distributionFromProbs(probs: Float64Array, params: SamplingParams): Float64Array {
  const n = probs.length;
  if (params.temperature === 0) {
    // argmax of the logarithms (ties to the lowest index), as the logit path takes it
    let best = 0;
    let top = -Infinity;
    for (let i = 0; i < n; i++) {
      const l = probs[i] > 0 ? Math.log(probs[i]) : -Infinity;
      if (l > top) [best, top] = [i, l];
    }
    probs.fill(0);
    probs[best] = 1;
    return probs;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const l = probs[i] > 0 ? Math.log(probs[i]) : -Infinity;
    probs[i] = l;
    if (l > max) max = l;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    // exp(-Infinity) is 0, and adding 0 leaves the sum as it was: zeros can be skipped.
    if (probs[i] === -Infinity) {
      probs[i] = 0;
      continue;
    }
    const e = Math.exp((probs[i] - max) / params.temperature);
    probs[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) probs[i] /= sum;
  return truncate(probs, params);
}

/** Top-k, then top-p, renormalised; `probs` itself where neither applies. */
function truncate(probs: Float64Array, params: SamplingParams): Float64Array {
  const n = probs.length;
  const keepK = params.topK > 0 && params.topK < n;
  const keepP = params.topP < 1;
  if (!keepK && !keepP) return probs;

  // Order by probability (ties by index, so truncation is deterministic). Zeros would sort
  // last and keep 0 whatever is kept: only the others are ordered.
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (probs[i] > 0) order.push(i);
  order.sort((a, b) => probs[b] - probs[a] || a - b);
  // Top-p acts on the top-k set renormalised (as in llama.cpp, vLLM and transformers);
  // a relative tolerance keeps float round-off from adding a token.
  let kept = Math.min(keepK ? params.topK : n, order.length);
  let keptMass = 0;
  for (let r = 0; r < kept; r++) keptMass += probs[order[r]];
  if (keepP) {
    const threshold = params.topP * keptMass * (1 - 1e-12);
    let mass = 0;
    for (let r = 0; r < kept; r++) {
      mass += probs[order[r]];
      if (mass >= threshold) {
        kept = r + 1;
        keptMass = mass;
        break;
      }
    }
  }
  const out = new Float64Array(n);
  for (let r = 0; r < kept; r++) out[order[r]] = probs[order[r]] / keptMass;
  return out;
}

/** Inverse-CDF sample of a distribution with the uniform u in [0, 1). */
export function sampleIndex(probs: ArrayLike<number>, u: number): number {
  let acc = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    acc += probs[i];
    last = i;
    if (u < acc) return i;
  }
  return last; // rounding: u landed past the accumulated mass
}
