/**
 * Bigram and trigram counts of token streams and their Kneser-Ney smoothing (interpolated,
 * absolute discounting). Counts come from sorted keys, so every order is fixed by the data.
 *
 * The smoothed bigram, for a token u seen c(u) times before another token:
 *   P(v|u) = (max(c(u,v) - D, 0) + D N(u.) pc(v)) / c(u)
 * with pc(v) the continuation probability (how many distinct tokens precede v) and N(u.) the
 * number of distinct tokens after u. Its logarithm splits into a row constant, log pc(v)
 * (the same for every u) and a sparse part, non-zero only for pairs seen in the corpus:
 *   S(u,v) = log(1 + max(c(u,v) - D, 0) / (D N(u.) pc(v))).
 * The trigram, for a pair (u,t) seen n(u,t) times, interpolates with the bigram of t the same
 * way, with discount D3; its log-ratio to the bigram is again sparse:
 *   S3(u,t,v) = log(1 + max(c(u,t,v) - D3, 0) / (D3 N(ut.) P(v|t))).
 */
import { detLog } from "./det-math.js";

/** Sparse rows: the columns and values of row i are [ptr[i], ptr[i+1]), columns ascending. */
export interface SparseRows {
  rows: number;
  cols: number;
  ptr: Int32Array;
  col: Int32Array;
  val: Float64Array;
}

/** Runs of equal values in a sorted array: visit(value, count) for each distinct value. */
function runs(sorted: Float64Array, visit: (value: number, count: number) => void): void {
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    while (j < sorted.length && sorted[j] === sorted[i]) j++;
    visit(sorted[i], j - i);
    i = j;
  }
}

export interface BigramModel {
  vocab: number;
  /** c(u): tokens that follow u. */
  contextCount: Float64Array;
  /** c(u,v) as sparse rows. */
  counts: SparseRows;
  discount: number;
  /** N(u.): distinct successors of u. */
  successors: Float64Array;
  /** pc(v) and its logarithm. */
  continuation: Float64Array;
  logContinuation: Float64Array;
  /** S(u,v) over the seen pairs (the layout of `counts`). */
  logRatio: SparseRows;
}

/** Counts and smooths the bigrams of token streams (each stream one document). */
export function bigramModel(streams: readonly (readonly number[])[], vocab: number): BigramModel {
  const keys = sortedKeys(streams, 2, vocab);
  const contextCount = new Float64Array(vocab);
  const successors = new Float64Array(vocab);
  const predecessors = new Float64Array(vocab);
  const ptr = new Int32Array(vocab + 1);
  const cols: number[] = [];
  const vals: number[] = [];
  let once = 0;
  let twice = 0;
  runs(keys, (key, n) => {
    const u = Math.floor(key / vocab);
    const v = key - u * vocab;
    contextCount[u] += n;
    successors[u]++;
    predecessors[v]++;
    ptr[u + 1]++;
    cols.push(v);
    vals.push(n);
    if (n === 1) once++;
    if (n === 2) twice++;
  });
  for (let u = 0; u < vocab; u++) ptr[u + 1] += ptr[u];
  const types = cols.length;
  const discount = once + twice > 0 ? once / (once + 2 * twice) : 0.5;
  // Half a count for every token, so that tokens never seen after another keep some mass.
  const continuation = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) continuation[v] = (predecessors[v] + 0.5) / (types + 0.5 * vocab);
  const logContinuation = continuation.map(detLog);
  const counts: SparseRows = { rows: vocab, cols: vocab, ptr, col: Int32Array.from(cols), val: Float64Array.from(vals) };
  const ratio = new Float64Array(types);
  for (let u = 0; u < vocab; u++) {
    for (let p = ptr[u]; p < ptr[u + 1]; p++) {
      ratio[p] = detLog(1 + Math.max(counts.val[p] - discount, 0) / (discount * successors[u] * continuation[counts.col[p]]));
    }
  }
  return { vocab, contextCount, counts, discount, successors, continuation, logContinuation, logRatio: { ...counts, val: ratio } };
}

/** The value at (r, c) of sparse rows, 0 where nothing is stored (binary search). */
export function entry(rows: SparseRows, r: number, c: number): number {
  let lo = rows.ptr[r];
  let hi = rows.ptr[r + 1] - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const x = rows.col[mid];
    if (x === c) return rows.val[mid];
    if (x < c) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

/** P(v|u) of the smoothed bigram. */
export function bigramProbability(m: BigramModel, u: number, v: number): number {
  const c = m.contextCount[u];
  if (c === 0) return m.continuation[v];
  return (Math.max(entry(m.counts, u, v) - m.discount, 0) + m.discount * m.successors[u] * m.continuation[v]) / c;
}

/** The pairs (u,t) seen before a third token, with their continuations. */
export interface TrigramContexts {
  /** Context keys u*vocab+t, ascending. */
  keys: Float64Array;
  /** n(u,t). */
  count: Float64Array;
  /** Continuations of context i and their counts: [start[i], start[i+1]). */
  start: Int32Array;
  next: Int32Array;
  nextCount: Float64Array;
  discount: number;
}

export function trigramContexts(streams: readonly (readonly number[])[], vocab: number): TrigramContexts {
  const keys = sortedKeys(streams, 3, vocab);
  const ctxKeys: number[] = [];
  const ctxCount: number[] = [];
  const start: number[] = [];
  const next: number[] = [];
  const nextCount: number[] = [];
  let once = 0;
  let twice = 0;
  runs(keys, (key, n) => {
    const ctx = Math.floor(key / vocab);
    const v = key - ctx * vocab;
    if (ctxKeys.length === 0 || ctxKeys[ctxKeys.length - 1] !== ctx) {
      ctxKeys.push(ctx);
      ctxCount.push(0);
      start.push(next.length);
    }
    ctxCount[ctxCount.length - 1] += n;
    next.push(v);
    nextCount.push(n);
    if (n === 1) once++;
    if (n === 2) twice++;
  });
  start.push(next.length);
  return {
    keys: Float64Array.from(ctxKeys),
    count: Float64Array.from(ctxCount),
    start: Int32Array.from(start),
    next: Int32Array.from(next),
    nextCount: Float64Array.from(nextCount),
    discount: once + twice > 0 ? once / (once + 2 * twice) : 0.5,
  };
}

/** Every n-gram of the streams (none across streams) as the number t1*vocab^(n-1) + ... + tn, ascending. */
function sortedKeys(streams: readonly (readonly number[])[], n: 2 | 3, vocab: number): Float64Array {
  let total = 0;
  for (const s of streams) total += Math.max(0, s.length - n + 1);
  const keys = new Float64Array(total);
  let k = 0;
  for (const s of streams) {
    for (let i = n - 1; i < s.length; i++) {
      let key = 0;
      for (let j = i - n + 1; j <= i; j++) key = key * vocab + s[j];
      keys[k++] = key;
    }
  }
  return keys.sort();
}
