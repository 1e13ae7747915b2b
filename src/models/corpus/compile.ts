/**
 * What the corpus pair knows, compiled from the corpus statistics (no training): the drafter's
 * low-rank bigram, token codes, and the tables that set the top continuations of frequent
 * tokens (drafter and target) and of frequent token pairs (target) to their smoothed corpus
 * log-probabilities. Tensors (weights.ts) and the pair's exact arithmetic (reference.ts) are
 * both made from this.
 */
import { FastRng } from "../../core/random.js";
import { boundedCodes, correlation, type TokenCodes } from "./codes.js";
import { detLog } from "./det-math.js";
import { rangeFinder, transposeTimes } from "./linalg.js";
import { bigramProbability, entry, type TrigramContexts } from "./ngrams.js";
import { streamLayout, type CorpusPairSpec, type StreamLayout } from "./spec.js";
import type { CorpusStatistics } from "./statistics.js";
import { BOS, type PieceVocabulary } from "./vocabulary.js";

/** Codes of different tokens correlate at most this much: detectors fire at 1, never at 0.45. */
export const CODE_CORRELATION_BOUND = 0.45;
/** Gap in nats kept between the values a table sets (ties in the counts broken by token id). */
export const TABLE_MIN_GAP = 0.2;
/** Tokens outside a token table that come within this many nats of its lowest value are set too, */
export const TAIL_MARGIN = 1;
/** at most this many per table; */
const MAX_TAIL_FIXES = 24;
/** and only tokens whose uncorrected value is within this many nats more are looked at. */
const TAIL_SLACK = 1.5;
/** The target's first block with tables (the blocks from here on hold them in unit order). */
export const TABLE_BLOCK = 1;
/** The logit of special and byte tokens: never chosen, never drafted. */
export const NON_TEXT_LOGIT = -30;
const TEXT_TYPE = 1;
/** Power iterations of the range finder (one is enough for a bigram's spectrum). */
const POWER_ITERATIONS = 1;

/** A table: the correction it writes into the correction dimensions when it fires. */
export interface Table {
  /** The token before `token` (pair tables only). */
  previous?: number;
  token: number;
  /** The continuations it sets. */
  tokens: number[];
  /**
   * The target block whose feed-forward layer holds it (token tables: TABLE_BLOCK; the
   * drafter holds them in its only block). Target block 0 holds none, so that the repeat
   * head in block 1 reads keys of the same length at every position.
   */
  block: number;
  correction: Float64Array;
}

export interface CompiledPair {
  spec: CorpusPairSpec;
  layout: StreamLayout;
  vocabulary: PieceVocabulary;
  /** log pc(v): the logit every context starts from (NON_TEXT_LOGIT for <unk>, <s>, </s> and bytes). */
  bias: Float64Array;
  /** 1 for pieces of text, 0 for special and byte tokens (which no context predicts). */
  textToken: Uint8Array;
  /** The drafter's bigram: logit(v | t) = bias[v] + <embedBigram[t], outBigram[v]> (token-major, `rank` per token). */
  embedBigram: Float32Array;
  outBigram: Float32Array;
  /** Identity codes (the current/previous token, the repeat head) and correction codes (the output side of tables). */
  codes: TokenCodes;
  correctionCodes: TokenCodes;
  /** Token tables (the drafter's block and the target's block 1) and pair tables (the target's), in unit order. */
  tokenTables: Table[];
  pairTables: Table[];
  /** Tables by token and by pair key previous*vocab+token. */
  tokenTableOf: Map<number, Table>;
  pairTableOf: Map<number, Table>;
}

/** Solves G d = b (G symmetric, near identity) by Gaussian elimination with partial pivoting. */
function solve(G: number[][], b: number[]): number[] {
  const m = b.length;
  const a = G.map((row, i) => [...row, b[i]]);
  for (let i = 0; i < m; i++) {
    let p = i;
    for (let r = i + 1; r < m; r++) if (Math.abs(a[r][i]) > Math.abs(a[p][i])) p = r;
    [a[i], a[p]] = [a[p], a[i]];
    for (let r = i + 1; r < m; r++) {
      const f = a[r][i] / a[i][i];
      if (f === 0) continue;
      for (let c = i; c <= m; c++) a[r][c] -= f * a[i][c];
    }
  }
  const d = new Array<number>(m).fill(0);
  for (let i = m - 1; i >= 0; i--) {
    let s = a[i][m];
    for (let c = i + 1; c < m; c++) s -= a[i][c] * d[c];
    d[i] = s / a[i][i];
  }
  return d;
}

/**
 * The `count` most frequent pairs of text tokens (indices into `trigram`), most frequent first,
 * ties by key. Only pairs at or above the count of the count-th are sorted.
 */
function mostFrequentPairs(trigram: TrigramContexts, V: number, count: number): number[] {
  const eligible = (i: number): boolean => {
    const u = Math.floor(trigram.keys[i] / V);
    return u !== BOS && trigram.keys[i] - u * V !== BOS;
  };
  const histogram = new Map<number, number>();
  for (let i = 0; i < trigram.keys.length; i++) if (eligible(i)) histogram.set(trigram.count[i], (histogram.get(trigram.count[i]) ?? 0) + 1);
  let threshold = Infinity;
  let above = 0;
  for (const c of [...histogram.keys()].sort((a, b) => b - a)) {
    if (above >= count) break;
    threshold = c;
    above += histogram.get(c)!;
  }
  const order: number[] = [];
  for (let i = 0; i < trigram.keys.length; i++) if (trigram.count[i] >= threshold && eligible(i)) order.push(i);
  order.sort((a, b) => trigram.count[b] - trigram.count[a] || trigram.keys[a] - trigram.keys[b]);
  return order.slice(0, count);
}

/** Sorts wanted logits high to low (ties: smaller token first) and keeps TABLE_MIN_GAP between neighbours. */
function spaced(wanted: { token: number; logit: number }[]): { token: number; logit: number }[] {
  const out = [...wanted].sort((x, y) => y.logit - x.logit || x.token - y.token);
  for (let i = 1; i < out.length; i++) out[i].logit = Math.min(out[i].logit, out[i - 1].logit - TABLE_MIN_GAP);
  return out;
}

export function compilePair(spec: CorpusPairSpec, stats: CorpusStatistics): CompiledPair {
  const V = spec.vocab;
  const R = spec.rank;
  const layout = streamLayout(spec);
  const { bigram, trigram } = stats;

  // The drafter's bigram: S ~ Q (Q^T S), rank R, plus log pc(v) for every row.
  const rng = new FastRng(spec.seed, 0xb16);
  const Q = rangeFinder(bigram.logRatio, R, POWER_ITERATIONS, () => rng.next());
  const B = transposeTimes(bigram.logRatio, Q, R);
  const embedBigram = Float32Array.from(Q);
  const outBigram = Float32Array.from(B);
  const types = stats.tokenizer.vocabulary.types;
  const textToken = Uint8Array.from(types, (type) => (type === TEXT_TYPE ? 1 : 0));
  const bias = Float64Array.from(bigram.logContinuation, (b, v) => (textToken[v] ? b : NON_TEXT_LOGIT));
  const base = (t: number, v: number): number => {
    let s = bias[v];
    for (let j = 0; j < R; j++) s += embedBigram[t * R + j] * outBigram[v * R + j];
    return s;
  };

  /** |out(v)|: with |bigram(t)| it bounds base(t, v) (Cauchy-Schwarz), so most tokens need no product. */
  const outNorm = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    let n2 = 0;
    for (let j = 0; j < R; j++) n2 += outBigram[v * R + j] * outBigram[v * R + j];
    outNorm[v] = Math.sqrt(n2);
  }
  /** The text tokens v with base(t, v) above `threshold`, and base(t, v) for them. */
  const baseAbove = (t: number, threshold: number): Map<number, number> => {
    let n2 = 0;
    for (let j = 0; j < R; j++) n2 += embedBigram[t * R + j] * embedBigram[t * R + j];
    const norm = Math.sqrt(n2);
    const out = new Map<number, number>();
    for (let v = 0; v < V; v++) {
      if (!textToken[v] || bias[v] + norm * outNorm[v] <= threshold) continue;
      const b = base(t, v);
      if (b > threshold) out.set(v, b);
    }
    return out;
  };

  const codes = boundedCodes(V, spec.codeDims, CODE_CORRELATION_BOUND, spec.seed, 0xc0de);
  // Correction codes need no bound: each table solves its own codes' cross-talk away.
  const correctionCodes = boundedCodes(V, spec.correctionDims, 1, spec.seed, 0xc0de + 1);
  const kT = spec.correctionDims;
  const zScale = 1 / Math.sqrt(kT);
  const zDot = (a: number, b: number): number => correlation(correctionCodes, a, b);
  const zDotVector = (a: number, x: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < kT; i++) s += correctionCodes.signs[a * kT + i] * x[i];
    return s * zScale;
  };
  /** The correction that moves the listed tokens' logits by `need` (the codes' cross-talk solved away). */
  const correctionFor = (tokens: number[], need: number[]): Float64Array => {
    const G = tokens.map((a) => tokens.map((b) => zDot(a, b)));
    const d = solve(G, need);
    const x = new Float64Array(kT);
    tokens.forEach((tok, j) => {
      for (let i = 0; i < kT; i++) x[i] += d[j] * correctionCodes.signs[tok * kT + i] * zScale;
    });
    return x;
  };

  // Token tables: the most frequent tokens' top continuations set to the smoothed bigram.
  const tokenOrder = [...bigram.contextCount.keys()]
    .filter((t) => t !== BOS && bigram.contextCount[t] > 0)
    .sort((a, b) => bigram.contextCount[b] - bigram.contextCount[a] || a - b)
    .slice(0, spec.tokenTables);
  const tokenTables: Table[] = [];
  const tokenTableOf = new Map<number, Table>();
  const { logRatio } = bigram;
  for (const t of tokenOrder) {
    const seen: { token: number; logit: number }[] = [];
    for (let p = logRatio.ptr[t]; p < logRatio.ptr[t + 1]; p++) seen.push({ token: logRatio.col[p], logit: bias[logRatio.col[p]] + logRatio.val[p] });
    const top = spaced(seen.sort((x, y) => y.logit - x.logit || x.token - y.token).slice(0, spec.tableWidth));
    // The low-rank bigram overrates some tokens outside the table (it spreads its error over
    // the whole row), and a correction's cross-talk moves the others a little: tokens that come
    // near the table's lowest value are set to their smoothed value or below it, twice over
    // (the second time with the first correction's cross-talk).
    const floor = top[top.length - 1].logit;
    const near = baseAbove(t, floor - TAIL_MARGIN - TAIL_SLACK);
    const candidates = [...near.keys()];
    const baseOf = (v: number): number => near.get(v) ?? base(t, v);
    let wanted = top;
    let correction: Float64Array = new Float64Array(kT);
    for (let pass = 0; pass < 2; pass++) {
      const set = new Set(wanted.map((w) => w.token));
      const rivals = candidates
        .filter((v) => !set.has(v))
        .map((v) => ({ token: v, logit: baseOf(v) + zDotVector(v, correction) }))
        .filter((r) => r.logit > floor - TAIL_MARGIN)
        .sort((x, y) => y.logit - x.logit || x.token - y.token)
        .slice(0, MAX_TAIL_FIXES - (wanted.length - top.length))
        .map((r) => ({ token: r.token, logit: Math.min(baseOf(r.token), Math.max(bias[r.token] + entry(logRatio, t, r.token), floor - TAIL_MARGIN)) }));
      wanted = [...wanted, ...rivals];
      correction = correctionFor(wanted.map((w) => w.token), wanted.map((w) => w.logit - baseOf(w.token)));
    }
    const table = { token: t, block: TABLE_BLOCK, tokens: wanted.map((w) => w.token), correction };
    tokenTables.push(table);
    tokenTableOf.set(t, table);
  }

  // Pair tables: the most frequent pairs' top continuations set to the smoothed trigram.
  const pairCapacity = Math.max(0, (spec.layers - TABLE_BLOCK) * spec.blockTables - tokenTables.length);
  const pairOrder = mostFrequentPairs(trigram, V, pairCapacity);
  const pairTables: Table[] = [];
  const pairTableOf = new Map<number, Table>();
  const D3 = trigram.discount;
  for (const i of pairOrder) {
    const u = Math.floor(trigram.keys[i] / V);
    const t = trigram.keys[i] - u * V;
    const single = tokenTableOf.get(t);
    const known = new Map<number, number>();
    const current = (v: number): number => {
      let c = known.get(v);
      if (c === undefined) known.set(v, (c = base(t, v) + (single ? zDotVector(v, single.correction) : 0)));
      return c;
    };
    const distinct = trigram.start[i + 1] - trigram.start[i];
    const seen: { token: number; logit: number }[] = [];
    for (let p = trigram.start[i]; p < trigram.start[i + 1]; p++) {
      const v = trigram.next[p];
      const ratio = detLog(1 + Math.max(trigram.nextCount[p] - D3, 0) / (D3 * distinct * bigramProbability(bigram, t, v)));
      seen.push({ token: v, logit: bias[v] + entry(logRatio, t, v) + ratio });
    }
    // The trigram's top continuations move trigramWeight of the way from the bigram to the trigram.
    const top = seen
      .sort((x, y) => y.logit - x.logit || x.token - y.token)
      .slice(0, spec.tableWidth)
      .map((w) => ({ token: w.token, logit: current(w.token) + spec.trigramWeight * (w.logit - current(w.token)) }));
    // The token table's top continuations keep their values unless the trigram sets them.
    const inTop = new Set(top.map((w) => w.token));
    const keep = (single?.tokens ?? [])
      .slice(0, spec.tableWidth)
      .filter((v) => !inTop.has(v))
      .map((v) => ({ token: v, logit: current(v) }));
    const wanted = spaced([...top, ...keep]);
    const table = { previous: u, token: t, block: TABLE_BLOCK + Math.floor((tokenTables.length + pairTables.length) / spec.blockTables), tokens: wanted.map((w) => w.token), correction: correctionFor(wanted.map((w) => w.token), wanted.map((w) => w.logit - current(w.token))) };
    pairTables.push(table);
    pairTableOf.set(u * V + t, table);
  }
  return { spec, layout, vocabulary: stats.tokenizer.vocabulary, bias, textToken, embedBigram, outBigram, codes, correctionCodes, tokenTables, pairTables, tokenTableOf, pairTableOf };
}
