/**
 * The corpus pair's arithmetic in JavaScript: the next-token logits the drafter and the
 * target compute, from the compiled tables directly instead of through the tensors. llama.cpp
 * gives the same up to quantisation (Q8_0 weights and activations, F16 keys and values),
 * which the tests check; perplexities and margins are computed here, in a fraction of the time.
 */
import { TABLE_BLOCK, type CompiledPair } from "./compile.js";
import { detExp } from "./det-math.js";
import { EMBED_NORM, REPEAT_MATCH, REPEAT_SINK_GAP, RMS_EPS } from "./spec.js";
import { BOS } from "./vocabulary.js";

/** 1/rms of a residual with squared length n2 in `width` dimensions, as llama.cpp's RMS norm computes it. */
export function rmsScale(n2: number, width: number): number {
  return 1 / Math.sqrt(n2 / width + RMS_EPS);
}

/** The repeat head's penalty per unit of its output (the head's weight on a match is ~1). */
export function repeatGain(pair: CompiledPair): number {
  return pair.spec.repeatPenalty;
}

export class PairReference {
  private readonly width: number;
  /** 1/rms of an embedding row: the scale every weight is set for. */
  readonly embedScale: number;
  private readonly base = new Map<number, Float64Array>();
  private readonly codeNorm2: number;

  constructor(readonly pair: CompiledPair) {
    this.width = pair.layout.width;
    this.embedScale = rmsScale(EMBED_NORM * EMBED_NORM, this.width);
    const k = pair.codes.dims;
    this.codeNorm2 = k * Math.fround(1 / Math.sqrt(k)) ** 2;
  }

  /** bias[v] + <bigram(t), out(v)> for every v: the drafter's logits before its tables. */
  baseRow(t: number): Float64Array {
    let row = this.base.get(t);
    if (row) return row;
    const { vocab, rank } = this.pair.spec;
    const { embedBigram, outBigram, bias } = this.pair;
    row = Float64Array.from(bias);
    const a = embedBigram.subarray(t * rank, (t + 1) * rank);
    for (let v = 0; v < vocab; v++) {
      let s = 0;
      const o = v * rank;
      for (let j = 0; j < rank; j++) s += a[j] * outBigram[o + j];
      row[v] += s;
    }
    this.base.set(t, row);
    return row;
  }

  /** Logits from a base row, the correction vector and the repeat vector, scaled by the final RMS norm. */
  private finish(t: number, correction: Float64Array, repeat: Float64Array | undefined, otherNorm2: number): Float64Array {
    const { vocab } = this.pair.spec;
    const z = this.pair.correctionCodes;
    const kT = z.dims;
    const zScale = 1 / Math.sqrt(kT);
    let c2 = 0;
    for (let i = 0; i < kT; i++) c2 += correction[i] * correction[i];
    let r2 = 0;
    if (repeat) for (let i = 0; i < repeat.length; i++) r2 += repeat[i] * repeat[i];
    const scale = rmsScale(EMBED_NORM * EMBED_NORM + otherNorm2 + c2 + r2, this.width) / this.embedScale;
    const base = this.baseRow(t);
    const out = new Float64Array(vocab);
    const k = this.pair.codes.dims;
    const codeScale = 1 / Math.sqrt(k);
    const gain = repeatGain(this.pair);
    const text = this.pair.textToken;
    for (let v = 0; v < vocab; v++) {
      if (!text[v]) {
        out[v] = scale * base[v];
        continue;
      }
      let s = 0;
      const o = v * kT;
      for (let i = 0; i < kT; i++) s += z.signs[o + i] * correction[i];
      let l = base[v] + s * zScale;
      if (repeat && r2 > 0) {
        let p = 0;
        const oc = v * k;
        for (let i = 0; i < k; i++) p += this.pair.codes.signs[oc + i] * repeat[i];
        l -= gain * p * codeScale;
      }
      out[v] = scale * l;
    }
    return out;
  }

  /** The drafter's next-token logits after token t (it sees only the last token). */
  drafterLogits(t: number): Float64Array {
    const table = this.pair.tokenTableOf.get(t);
    const correction = new Float64Array(this.pair.correctionCodes.dims);
    if (table) add(correction, table.correction, 1);
    return this.finish(t, correction, undefined, 0);
  }

  /** A target pass over a sequence, one token at a time (the repeat head needs the history). */
  targetTrace(): TargetTrace {
    return new TargetTrace(this);
  }

  /** @internal for TargetTrace */
  finishTarget(t: number, correction: Float64Array, repeat: Float64Array | undefined, otherNorm2: number): Float64Array {
    return this.finish(t, correction, repeat, otherNorm2);
  }

  /** @internal squared length of a copied code (1 up to f32 rounding) */
  get codeLength2(): number {
    return this.codeNorm2;
  }
}

function add(x: Float64Array, y: Float64Array, f: number): void {
  for (let i = 0; i < x.length; i++) x[i] += f * y[i];
}

function norm2(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/**
 * The target's state along a sequence: push tokens (starting with <s>), read the logits for
 * the next one. Per position it keeps the scale of block 1's input (the repeat head's keys and
 * values depend on it) and which positions follow each pair of tokens.
 */
export class TargetTrace {
  private readonly tokens: number[] = [];
  private readonly block1Scale: number[] = [];
  /** Positions j whose two previous tokens are (a, b), by key a*vocab+b. */
  private readonly after = new Map<number, number[]>();
  private last: { correction: Float64Array; repeat: Float64Array | undefined; other: number } | undefined;

  constructor(private readonly ref: PairReference) {}

  push(token: number): void {
    const pair = this.ref.pair;
    const V = pair.spec.vocab;
    const p = this.tokens.length;
    this.tokens.push(token);
    const width = pair.layout.width;
    const se = this.ref.embedScale;
    const c2 = this.ref.codeLength2;
    const prev = p >= 1 ? this.tokens[p - 1] : BOS;
    const prev2 = p >= 2 ? this.tokens[p - 2] : BOS;
    // Block 0's heads copy the codes of the two tokens before (<s> has none).
    let other = (prev !== BOS ? c2 : 0) + (prev2 !== BOS ? c2 : 0);
    const correction = new Float64Array(pair.correctionCodes.dims);
    const single = pair.tokenTableOf.get(token);
    const pairTable = prev !== BOS ? pair.pairTableOf.get(prev * V + token) : undefined;
    const pairBlock = pairTable ? pairTable.block : -1;
    let repeat: Float64Array | undefined;
    let scale1 = se;
    for (let b = 0; b < pair.spec.layers; b++) {
      if (b === 1) {
        // The repeat head: earlier positions that followed (prev, token), against the sink at <s>.
        scale1 = rmsScale(EMBED_NORM * EMBED_NORM + other + norm2(correction), width);
        if (p >= 1) this.record(p);
        repeat = this.repeatAt(p, prev, token, scale1);
        if (repeat) other += norm2(repeat);
      }
      const s = rmsScale(EMBED_NORM * EMBED_NORM + other + norm2(correction), width);
      if (b === TABLE_BLOCK && single) add(correction, single.correction, 2 * (s / se) - 1);
      if (b === pairBlock && pairTable) add(correction, pairTable.correction, 4 * (s / se) - 3);
    }
    this.block1Scale[p] = scale1;
    if (repeat) other -= norm2(repeat);
    this.last = { correction, repeat, other };
  }

  /** Position p is keyed by its two previous tokens. */
  private record(p: number): void {
    if (p < 2) return;
    const a = this.tokens[p - 2];
    const b = this.tokens[p - 1];
    if (a === BOS || b === BOS) return;
    const key = a * this.ref.pair.spec.vocab + b;
    const list = this.after.get(key);
    if (list) list.push(p);
    else this.after.set(key, [p]);
  }

  private repeatAt(p: number, prev: number, token: number, scale: number): Float64Array | undefined {
    if (prev === BOS || this.ref.pair.spec.repeatPenalty === 0) return undefined;
    const matches = this.after.get(prev * this.ref.pair.spec.vocab + token);
    if (!matches || matches.length === 0) return undefined;
    const se = this.ref.embedScale;
    // Scores relative to the sink's: a full match scores 2*REPEAT_MATCH scaled by both positions' norms.
    const weights = matches.map((j) => detExp(2 * REPEAT_MATCH * ((scale * this.scaleAt(j, scale, p)) / (se * se) - 1) + REPEAT_SINK_GAP));
    const total = 1 + weights.reduce((a, w) => a + w, 0);
    const k = this.ref.pair.codes.dims;
    const out = new Float64Array(k);
    const codeScale = Math.fround(1 / Math.sqrt(k));
    matches.forEach((j, i) => {
      const w = (weights[i] / total) * (this.scaleAt(j, scale, p) / se);
      const o = this.tokens[j] * k;
      for (let d = 0; d < k; d++) out[d] += w * this.ref.pair.codes.signs[o + d] * codeScale;
    });
    return out;
  }

  private scaleAt(j: number, current: number, p: number): number {
    return j === p ? current : this.block1Scale[j];
  }

  /** Logits for the token after the last one pushed. */
  logits(): Float64Array {
    if (!this.last) throw new Error("push a token first");
    return this.ref.finishTarget(this.tokens[this.tokens.length - 1], this.last.correction, this.last.repeat, this.last.other);
  }
}
