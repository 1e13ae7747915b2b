/** Sampling transforms: temperature, top-k, top-p; inverse-CDF sampling; argmax. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Rng } from "../../src/core/random.js";
import { argmax, distributionFromLogits, GREEDY, sampleIndex, type SamplingParams } from "../../src/core/sampling.js";

/** softmax(z / T), computed independently of the code under test. */
function softmax(logits: number[], temperature: number): number[] {
  const scaled = logits.map((z) => z / temperature);
  const m = Math.max(...scaled);
  const e = scaled.map((z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]} (tol ${tol})`);
  }
}

function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}

function support(xs: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) if (xs[i] > 0) out.push(i);
  return out;
}

const params = (temperature: number, topK = 0, topP = 1): SamplingParams => ({ temperature, topK, topP });

describe("argmax", () => {
  test("returns the index of the largest value", () => {
    assert.equal(argmax([0.1, 0.7, 0.2]), 1);
    assert.equal(argmax([-5, -1, -3]), 1);
    assert.equal(argmax([3]), 0);
    assert.equal(argmax(new Float64Array([1, 2, 3, 4])), 3);
    assert.equal(argmax([-Infinity, -1e300]), 1);
  });

  test("ties go to the lowest index", () => {
    assert.equal(argmax([1, 3, 3, 2]), 1);
    assert.equal(argmax([2, 2, 2]), 0);
    assert.equal(argmax([0, 5, 1, 5, 5]), 1);
  });
});

describe("distributionFromLogits: temperature", () => {
  test("temperature 0 gives a one-hot distribution at the argmax", () => {
    const p = distributionFromLogits([0.5, 2.5, -1, 2.4], GREEDY);
    assert.deepEqual(Array.from(p), [0, 1, 0, 0]);
  });

  test("temperature 0 breaks ties toward the lowest index", () => {
    assert.deepEqual(Array.from(distributionFromLogits([1, 4, 0, 4], GREEDY)), [0, 1, 0, 0]);
    assert.deepEqual(Array.from(distributionFromLogits([-2, -2, -2], GREEDY)), [1, 0, 0]);
  });

  test("temperature 0 ignores top-k and top-p", () => {
    const p = distributionFromLogits([3, 1, 2, 9], params(0, 2, 0.1));
    assert.deepEqual(Array.from(p), [0, 0, 0, 1]);
  });

  test("temperature T gives exactly softmax(z / T)", () => {
    const logits = [1.3, -0.2, 2.7, 0.5, 0, -3.1];
    for (const t of [0.1, 0.5, 0.7, 1, 1.7, 4]) {
      assertClose(distributionFromLogits(logits, params(t)), softmax(logits, t), 1e-14);
    }
  });

  test("temperature changes the distribution: lower T sharpens, higher T flattens", () => {
    const logits = [2, 1, 0];
    const cold = distributionFromLogits(logits, params(0.5));
    const unit = distributionFromLogits(logits, params(1));
    const hot = distributionFromLogits(logits, params(3));
    assert.ok(cold[0] > unit[0] && unit[0] > hot[0]);
    assert.ok(cold[2] < unit[2] && unit[2] < hot[2]);
    // softmax([2,1,0]) has p0 = e^2 / (e^2 + e + 1).
    const e = Math.E;
    assert.ok(Math.abs(unit[0] - (e * e) / (e * e + e + 1)) < 1e-15);
  });

  test("is numerically stable with large logits", () => {
    const p = distributionFromLogits([1000, 1001, 999], params(1));
    assertClose(p, softmax([0, 1, -1], 1), 1e-14);
    const q = distributionFromLogits([-1e4, -1e4 + 2], params(0.5));
    assertClose(q, softmax([0, 2], 0.5), 1e-14);
  });

  test("returns a Float64Array of the vocabulary size", () => {
    const p = distributionFromLogits(new Float32Array([0, 1, 2, 3, 4]), params(1));
    assert.ok(p instanceof Float64Array);
    assert.equal(p.length, 5);
  });
});

describe("distributionFromLogits: top-k", () => {
  const logits = [0.3, 2.0, -1.0, 1.5, 0.9, 1.8];
  const full = softmax(logits, 1);

  test("keeps exactly the k most likely tokens and renormalises", () => {
    for (const k of [1, 2, 3, 5]) {
      const p = distributionFromLogits(logits, params(1, k));
      const order = full.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
      const keep = order.slice(0, k).sort((a, b) => a - b);
      assert.deepEqual(support(p), keep, `k=${k}`);
      const mass = keep.reduce((s, i) => s + full[i], 0);
      const expected = full.map((v, i) => (keep.includes(i) ? v / mass : 0));
      assertClose(p, expected, 1e-14);
    }
  });

  test("k = 1 is one-hot at the argmax", () => {
    assert.deepEqual(Array.from(distributionFromLogits(logits, params(0.8, 1))), [0, 1, 0, 0, 0, 0]);
  });

  test("k = 0 or k >= vocabulary keeps every token", () => {
    for (const k of [0, 6, 7, 100]) assertClose(distributionFromLogits(logits, params(1, k)), full, 1e-15);
  });

  test("ties at the cut are broken toward the lowest index", () => {
    const p = distributionFromLogits([1, 2, 2, 2, 0], params(1, 2));
    assert.deepEqual(support(p), [1, 2]);
    assertClose(p, [0, 0.5, 0.5, 0, 0], 1e-15);
  });

  test("top-k is applied after temperature", () => {
    // Temperature does not reorder tokens, so the kept set is the same, but the weights follow softmax(z/T).
    const t = 2.5;
    const p = distributionFromLogits(logits, params(t, 2));
    const e1 = Math.exp(2.0 / t);
    const e5 = Math.exp(1.8 / t);
    assertClose(p, [0, e1 / (e1 + e5), 0, 0, 0, e5 / (e1 + e5)], 1e-14);
  });
});

describe("distributionFromLogits: top-p", () => {
  // Probabilities sorted by index order 1, 3, 0, 2 (not index order, on purpose).
  const logits = [1.0, 0.2, 2.2, 1.6];
  const full = softmax(logits, 1);
  const order = [2, 3, 0, 1];
  const cum: number[] = [];
  order.reduce((acc, i) => {
    cum.push(acc + full[i]);
    return acc + full[i];
  }, 0);

  function expectedKeep(count: number): number[] {
    const keep = order.slice(0, count);
    const mass = keep.reduce((s, i) => s + full[i], 0);
    return full.map((v, i) => (keep.includes(i) ? v / mass : 0));
  }

  test("keeps the smallest prefix of most likely tokens whose mass reaches p", () => {
    // Thresholds well inside each cumulative interval.
    assertClose(distributionFromLogits(logits, params(1, 0, cum[0] / 2)), expectedKeep(1), 1e-14);
    assertClose(distributionFromLogits(logits, params(1, 0, (cum[0] + cum[1]) / 2)), expectedKeep(2), 1e-14);
    assertClose(distributionFromLogits(logits, params(1, 0, (cum[1] + cum[2]) / 2)), expectedKeep(3), 1e-14);
    assertClose(distributionFromLogits(logits, params(1, 0, (cum[2] + 1) / 2)), expectedKeep(4), 1e-14);
  });

  test("boundaries: just below a cumulative mass stops there, just above takes one more", () => {
    const eps = 1e-9;
    assert.deepEqual(support(distributionFromLogits(logits, params(1, 0, cum[1] - eps))), [2, 3]);
    assert.deepEqual(support(distributionFromLogits(logits, params(1, 0, cum[1] + eps))), [0, 2, 3]);
    assert.deepEqual(support(distributionFromLogits(logits, params(1, 0, cum[0] - eps))), [2]);
    assert.deepEqual(support(distributionFromLogits(logits, params(1, 0, cum[0] + eps))), [2, 3]);
  });

  test("a very small p keeps only the most likely token", () => {
    assert.deepEqual(Array.from(distributionFromLogits(logits, params(1, 0, 1e-6))), [0, 0, 1, 0]);
  });

  test("p = 1 keeps every token", () => {
    assertClose(distributionFromLogits(logits, params(1, 0, 1)), full, 1e-15);
  });

  test("ties in probability are ordered by index", () => {
    // Four equal tokens: p = 0.4 needs two of them, the two lowest indices.
    const p = distributionFromLogits([0, 0, 0, 0], params(1, 0, 0.4));
    assertClose(p, [0.5, 0.5, 0, 0], 1e-15);
  });
});

describe("distributionFromLogits: top-k then top-p", () => {
  // softmax(log([0.5, 0.3, 0.15, 0.05])) = [0.5, 0.3, 0.15, 0.05].
  const probs = [0.5, 0.3, 0.15, 0.05];
  const logits = probs.map(Math.log);

  test("top-p further truncates the top-k set", () => {
    // top-3 keeps {0,1,2}; p = 0.6 then needs {0,1} (0.5 < 0.6 <= 0.8, also after renormalising: 0.526 < 0.6 <= 0.842).
    const p = distributionFromLogits(logits, params(1, 3, 0.6));
    assertClose(p, [0.625, 0.375, 0, 0], 1e-12);
  });

  test("top-k binds when top-p would keep more", () => {
    const p = distributionFromLogits(logits, params(1, 2, 0.99));
    assertClose(p, [0.625, 0.375, 0, 0], 1e-12);
  });

  test("top-p binds when top-k would keep more", () => {
    const p = distributionFromLogits(logits, params(1, 3, 0.4));
    assertClose(p, [1, 0, 0, 0], 1e-15);
  });

  test("top-p is computed on the renormalised top-k distribution (as in HF transformers, vLLM and llama.cpp)", () => {
      // top-2 of [0.4, 0.3, 0.2, 0.1] renormalises to [4/7, 3/7]; 4/7 >= 0.5, so top-p 0.5 keeps token 0 only.
      const p = distributionFromLogits([0.4, 0.3, 0.2, 0.1].map(Math.log), params(1, 2, 0.5));
      assertClose(p, [1, 0, 0, 0], 1e-12);
  });

  test("top-p is not fooled by float round-off at the threshold", () => {
    // 0.7 + 0.2 sums to slightly less than 0.9 in floating point; two tokens reach the mass.
    const p = distributionFromLogits([0.7, 0.2, 0.1].map(Math.log), params(1, 0, 0.9));
    assert.equal(p[2], 0);
    assertClose(p, [0.7 / 0.9, 0.2 / 0.9, 0], 1e-12);
  });
});

describe("distributionFromLogits: normalisation", () => {
  test("every result is a distribution: non-negative, sums to 1, top-k/top-p bounds respected", () => {
    const rng = new Rng(31);
    for (let trial = 0; trial < 500; trial++) {
      const n = 1 + Math.floor(rng.next() * 40);
      const logits = Array.from({ length: n }, () => (rng.next() - 0.5) * 20);
      const temperature = rng.next() < 0.1 ? 0 : 0.05 + rng.next() * 3;
      const topK = rng.next() < 0.5 ? 0 : 1 + Math.floor(rng.next() * n);
      const topP = rng.next() < 0.5 ? 1 : 0.05 + 0.95 * rng.next();
      const p = distributionFromLogits(logits, { temperature, topK, topP });
      assert.equal(p.length, n);
      for (const v of p) assert.ok(v >= 0 && Number.isFinite(v));
      assert.ok(Math.abs(sum(p) - 1) < 1e-12, `sum ${sum(p)}`);
      const kept = support(p).length;
      assert.ok(kept >= 1);
      if (topK > 0) assert.ok(kept <= topK, `kept ${kept} > k ${topK}`);
      // The kept tokens are the most likely ones: every kept logit >= every dropped logit.
      let minKept = Infinity;
      let maxDropped = -Infinity;
      for (let i = 0; i < n; i++) {
        if (p[i] > 0) minKept = Math.min(minKept, logits[i]);
        else maxDropped = Math.max(maxDropped, logits[i]);
      }
      assert.ok(minKept >= maxDropped);
    }
  });
});

describe("sampleIndex", () => {
  test("inverse CDF: intervals are [cum_{i-1}, cum_i)", () => {
    const p = [0.25, 0.25, 0.5];
    assert.equal(sampleIndex(p, 0), 0);
    assert.equal(sampleIndex(p, 0.2499999), 0);
    assert.equal(sampleIndex(p, 0.25), 1);
    assert.equal(sampleIndex(p, 0.4999999), 1);
    assert.equal(sampleIndex(p, 0.5), 2);
    assert.equal(sampleIndex(p, 0.9999999), 2);
  });

  test("skips zero-probability tokens, even at u = 0 and at interval boundaries", () => {
    const p = new Float64Array([0, 0.5, 0, 0, 0.5, 0]);
    assert.equal(sampleIndex(p, 0), 1);
    assert.equal(sampleIndex(p, 0.49), 1);
    assert.equal(sampleIndex(p, 0.5), 4);
    assert.equal(sampleIndex(p, 0.75), 4);
  });

  test("u near 1 returns the last positive token when the mass falls short by rounding", () => {
    // Ten times 0.1 sums to 0.9999999999999999 < 1 - 2^-53.
    const tenths = new Array<number>(10).fill(0.1).concat([0, 0]);
    const u = 1 - 2 ** -53;
    assert.equal(sampleIndex(tenths, u), 9);
    // Mass that is clearly short (unnormalised input): still the last positive token, never a zero one.
    assert.equal(sampleIndex([0.3, 0.3, 0.3999, 0, 0], 0.99999), 2);
  });

  test("unnormalised weights are sampled by their cumulative sum", () => {
    const w = [1, 0, 3];
    assert.equal(sampleIndex(w, 0.5), 0);
    assert.equal(sampleIndex(w, 1), 2);
    assert.equal(sampleIndex(w, 3.9), 2);
  });

  test("stratified uniforms reproduce the distribution", () => {
    const p = [0.05, 0.0, 0.35, 0.1, 0.5];
    const n = 10_000;
    const counts = new Array<number>(p.length).fill(0);
    for (let k = 0; k < n; k++) counts[sampleIndex(p, (k + 0.5) / n)]++;
    for (let i = 0; i < p.length; i++) assert.ok(Math.abs(counts[i] / n - p[i]) <= 1 / n, `token ${i}: ${counts[i] / n}`);
  });
});
