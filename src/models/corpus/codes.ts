/**
 * Token codes: for each token a vector of +-1/sqrt(dims), any two of which have a correlation
 * (dot product) of at most `bound` in absolute value. A code's dot product with itself is 1,
 * so a detector that fires above (1 + bound) / 2 tells a token from every other one for sure.
 * Codes are drawn from a seeded generator and redrawn until they keep the bound; the check
 * counts differing bits, so it is exact.
 */
import { FastRng } from "../../core/random.js";

export interface TokenCodes {
  dims: number;
  /** The same signs as bits (1: +1), dims/32 words per token. */
  bits: Uint32Array;
  /** +1 or -1 per token and dimension (token-major). */
  signs: Int8Array;
  /** The largest |correlation| between two codes. */
  maxCorrelation: number;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** `count` codes of `dims` dimensions (a multiple of 32) with pairwise |correlation| <= bound (1: unchecked, maxCorrelation NaN). */
export function boundedCodes(count: number, dims: number, bound: number, seed: number, stream: number): TokenCodes {
  if (dims % 32 !== 0) throw new RangeError(`code dimensions must be a multiple of 32, got ${dims}`);
  const words = dims / 32;
  const bits = new Uint32Array(count * words);
  const rng = new FastRng(seed, stream);
  const maxDiff = Math.floor((dims * (1 + bound)) / 2); // differing bits allowed (correlation >= -bound)
  const minDiff = Math.ceil((dims * (1 - bound)) / 2); // (correlation <= bound)
  let worst = 0;
  for (let t = 0; t < count; t++) {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 1000) throw new Error(`cannot draw ${count} codes of ${dims} dimensions with correlation <= ${bound}`);
      // next() is r / 2^32 for a 32-bit integer r: multiplying back is exact.
      for (let w = 0; w < words; w++) bits[t * words + w] = rng.next() * 4294967296;
      let ok = true;
      let local = 0;
      for (let o = 0; o < t && ok && bound < 1; o++) {
        let diff = 0;
        for (let w = 0; w < words; w++) diff += popcount(bits[t * words + w] ^ bits[o * words + w]);
        if (diff < minDiff || diff > maxDiff) ok = false;
        else local = Math.max(local, Math.abs(dims - 2 * diff));
      }
      if (ok) {
        worst = Math.max(worst, local);
        break;
      }
    }
  }
  const signs = new Int8Array(count * dims);
  for (let t = 0; t < count; t++) {
    for (let d = 0; d < dims; d++) signs[t * dims + d] = (bits[t * words + (d >>> 5)] >>> (d & 31)) & 1 ? 1 : -1;
  }
  return { dims, bits, signs, maxCorrelation: bound < 1 ? worst / dims : NaN };
}

/** Dot product of two codes (their correlation): 1 - 2 (differing signs) / dims. */
export function correlation(codes: TokenCodes, a: number, b: number): number {
  const words = codes.dims / 32;
  let diff = 0;
  for (let w = 0; w < words; w++) diff += popcount(codes.bits[a * words + w] ^ codes.bits[b * words + w]);
  return (codes.dims - 2 * diff) / codes.dims;
}
