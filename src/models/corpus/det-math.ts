/**
 * Logarithm, exponential, sine and cosine from + - * / only, so that every weight the corpus
 * pair is built from is the same double on every machine. IEEE-754 fixes the result of each
 * of those operations (JavaScript has no fused multiply-add), while Math.log, Math.exp,
 * Math.sin and Math.cos are allowed to differ in the last bit between engines and versions.
 * Accuracy: within a few ulps of the true value, plenty for model weights.
 */

const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;

/** Natural logarithm: x = m * 2^e with m in [1/sqrt2, sqrt2), then 2 atanh((m-1)/(m+1)) as a series. */
export function detLog(x: number): number {
  if (Number.isNaN(x) || x < 0) return NaN;
  if (x === 0) return -Infinity;
  if (x === Infinity) return Infinity;
  let e = 0;
  // Scaling by powers of two is exact.
  while (x >= 2) {
    x *= 0.5;
    e++;
  }
  while (x < 1) {
    x *= 2;
    e--;
  }
  if (x > SQRT2) {
    x *= 0.5;
    e++;
  }
  const s = (x - 1) / (x + 1);
  const s2 = s * s;
  let term = s;
  let sum = 0;
  for (let k = 1; k < 60; k += 2) {
    const add = term / k;
    sum += add;
    if (add < 1e-18 && add > -1e-18) break;
    term *= s2;
  }
  return 2 * sum + e * LN2;
}

/** e^x: x = k ln2 + r with |r| <= ln2/2, a Taylor series for e^r, times 2^k by squaring. */
export function detExp(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 709) return Infinity;
  if (x < -745) return 0;
  const k = Math.round(x / LN2);
  const r = x - k * LN2;
  let term = 1;
  let sum = 1;
  for (let i = 1; i < 40; i++) {
    term *= r / i;
    sum += term;
    if (term < 1e-18 && term > -1e-18) break;
  }
  let p = 1;
  let b = 2;
  let n = Math.abs(k);
  while (n > 0) {
    if (n & 1) p *= b;
    b *= b;
    n >>= 1;
  }
  return k >= 0 ? sum * p : sum / p;
}

/** Sine and cosine of a small angle (|x| <= 8: RoPE angles of a few positions) by their series. */
export function detSinCos(x: number): { sin: number; cos: number } {
  if (!(Math.abs(x) <= 8)) throw new RangeError(`detSinCos takes |x| <= 8, got ${x}`);
  // Halve until small, then double back with sin 2a = 2 sin a cos a, cos 2a = 1 - 2 sin^2 a.
  let halvings = 0;
  while (Math.abs(x) > 0.25) {
    x *= 0.5;
    halvings++;
  }
  const x2 = x * x;
  let s = x;
  let c = 1;
  let ts = x;
  let tc = 1;
  for (let i = 1; i < 20; i++) {
    ts *= -x2 / ((2 * i) * (2 * i + 1));
    tc *= -x2 / ((2 * i - 1) * (2 * i));
    s += ts;
    c += tc;
  }
  for (let i = 0; i < halvings; i++) {
    const s2 = 2 * s * c;
    c = 1 - 2 * s * s;
    s = s2;
  }
  return { sin: s, cos: c };
}
