/**
 * How far the greedy path of a model pair is from a tie, measured in llama.cpp itself: along
 * the target's greedy continuation of a prompt, the gap between the top two logits of the
 * target and of the drafter at every position, against how much llama.cpp's CPU kernels move
 * those logits when the same path is evaluated in one batch instead of one token at a time
 * (another summation order; the closest thing to another CPU's SIMD path on one machine).
 * A gap far above that cannot flip on another CPU, so the text and the drafter's guesses
 * (the acceptance) are the same everywhere.
 */
import type { LlamaModel } from "node-llama-cpp";
import { loadLlama } from "../llama.js";

/** A gap counts as wide when it is at least this many times the rounding difference, */
export const WIDE_MARGIN_FACTOR = 10;
/**
 * taken as at least this (nats) even where the measurement shows none: more than another
 * summation order can move a float32 logit of a few units summed over a few thousand products.
 */
export const ROUNDING_FLOOR = 1e-4;

export interface PathMargins {
  /** The target's greedy tokens after the prompt, and their text. */
  tokens: number[];
  text: string;
  /** Smallest top-1/top-2 logit gap along the path (nats), and where (index into `tokens`). */
  targetGap: { min: number; at: number };
  drafterGap: { min: number; at: number };
  /** Largest |log p| difference of the top three tokens, one token at a time vs one batch. */
  targetRounding: number;
  drafterRounding: number;
  /** Positions where the drafter's greedy token is the target's. */
  agreement: number;
  /** Both gaps at least WIDE_MARGIN_FACTOR times the larger rounding difference (ROUNDING_FLOOR at least). */
  wide: boolean;
}

type Probabilities = Map<number, number>;

async function stepwise(model: LlamaModel, prefix: number[], extend: number | undefined): Promise<{ tokens: number[]; probabilities: Probabilities[] }> {
  const context = await model.createContext({ contextSize: prefix.length + (extend ?? 0) + 8, threads: 1, batchSize: 512 });
  try {
    const sequence = context.getSequence();
    const tokens = [...prefix];
    const probabilities: Probabilities[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const [r] = (await sequence.controlledEvaluate([[tokens[i], { generateNext: { probabilities: true, options: { temperature: 0 } } }]] as never)) as { next: { probabilities: Probabilities } }[];
      probabilities.push(r.next.probabilities);
      if (extend !== undefined && i === tokens.length - 1 && tokens.length < prefix.length + extend) tokens.push(r.next.probabilities.keys().next().value as number);
    }
    return { tokens, probabilities };
  } finally {
    await context.dispose();
  }
}

async function batched(model: LlamaModel, tokens: number[]): Promise<Probabilities[]> {
  const context = await model.createContext({ contextSize: tokens.length + 8, threads: 1, batchSize: 512 });
  try {
    const results = (await context.getSequence().controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]) as never)) as { next: { probabilities: Probabilities } }[];
    return results.map((r) => r.next.probabilities);
  } finally {
    await context.dispose();
  }
}

function gapOf(p: Probabilities): { top: number; gap: number } {
  const [[top, p1], [, p2]] = [...p.entries()].slice(0, 2);
  return { top, gap: Math.log(p1) - Math.log(p2) };
}

function rounding(a: Probabilities[], b: Probabilities[]): number {
  let worst = 0;
  a.forEach((p, i) => {
    for (const [token, prob] of [...p.entries()].slice(0, 3)) worst = Math.max(worst, Math.abs(Math.log(prob) - Math.log(b[i].get(token) ?? 0)));
  });
  return worst;
}

/** Measures a pair of GGUF files along the target's greedy continuation of `prompt` (`tokens` long). */
export async function measurePathMargins(files: { target: string; drafter: string }, prompt: string, tokens: number): Promise<PathMargins> {
  const llama = await loadLlama(false);
  const target = await llama.loadModel({ modelPath: files.target, gpuLayers: 0 });
  const drafter = await llama.loadModel({ modelPath: files.drafter, gpuLayers: 0 });
  try {
    const bos = target.tokens.bos;
    const prefix = [...(bos !== null ? [bos] : []), ...(target.tokenize(prompt) as number[])];
    const t = await stepwise(target, prefix, tokens);
    const path = t.tokens;
    const d = await stepwise(drafter, path.slice(0, -1), undefined);
    const targetRounding = rounding(t.probabilities.slice(0, path.length - 1), await batched(target, path.slice(0, -1)));
    const drafterRounding = rounding(d.probabilities, await batched(drafter, path.slice(0, -1)));
    const targetGap = { min: Infinity, at: -1 };
    const drafterGap = { min: Infinity, at: -1 };
    let agreement = 0;
    for (let i = prefix.length - 1; i < path.length - 1; i++) {
      const tg = gapOf(t.probabilities[i]);
      const dg = gapOf(d.probabilities[i]);
      if (tg.gap < targetGap.min) Object.assign(targetGap, { min: tg.gap, at: i + 1 - prefix.length });
      if (dg.gap < drafterGap.min) Object.assign(drafterGap, { min: dg.gap, at: i + 1 - prefix.length });
      if (dg.top === tg.top) agreement++;
    }
    const generated = path.slice(prefix.length);
    const noise = Math.max(targetRounding, drafterRounding, ROUNDING_FLOOR);
    return {
      tokens: generated,
      text: target.detokenize(generated as never),
      targetGap,
      drafterGap,
      targetRounding,
      drafterRounding,
      agreement: agreement / generated.length,
      wide: Math.min(targetGap.min, drafterGap.min) >= WIDE_MARGIN_FACTOR * noise,
    };
  } finally {
    await target.dispose();
    await drafter.dispose();
  }
}
