/** The llama instance's distribution path: from llama.cpp's softmax, bit for bit what the logit path gives. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../src/core/random.js";
import { distributionFromLogits, distributionFromProbs, type SamplingParams } from "../../src/core/sampling.js";

test("distributionFromProbs(p) equals distributionFromLogits(log p) bit for bit: zeros, ties, every temperature and truncation", () => {
  const rng = new Rng(17);
  let checked = 0;
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rng.next() * 40);
    const raw = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = rng.next();
      // absent tokens (0), ties, and a spread of magnitudes down to underflow territory
      raw[i] = r < 0.25 ? 0 : r < 0.35 ? 0.125 : Math.exp(-60 * rng.next());
    }
    let sum = 0;
    for (const p of raw) sum += p;
    if (sum > 0) for (let i = 0; i < n; i++) raw[i] /= sum;
    for (const temperature of [0, 0.05, 0.7, 1, 2.5]) {
      for (const topK of [0, 1, 3, n]) {
        for (const topP of [1, 0.9, 0.5]) {
          const params: SamplingParams = { temperature, topK, topP };
          const want = distributionFromLogits(Array.from(raw, Math.log), params);
          const got = distributionFromProbs(raw.slice(), params);
          assert.deepEqual(Array.from(got), Array.from(want), JSON.stringify({ raw: Array.from(raw), params }));
          checked++;
        }
      }
    }
  }
  assert.equal(checked, 200 * 5 * 4 * 3);
});
