/**
 * Lossless sampling: under DSI, the first 3 generated tokens follow the target's exact
 * joint distribution, for `rejection` and `match`. A verifier that accepts every draft
 * (lossy) must fail the same test.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AlgorithmName, GenerateOptions } from "../../src/algorithms/options.js";
import type { SamplingParams } from "../../src/core/sampling.js";
import type { VerifyRule } from "../../src/core/verify.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { chiSquareTest, targetJoint } from "../helpers/chi-square.js";
import { profile, run } from "../helpers/run.js";

const V = 6;
const PROMPT = [1, 2];
const SAMPLES = 20_000;
const pair = new SyntheticPair({ vocab: V, seed: 77, agreement: 0.5, sharpness: 2.5 });

/** Exact P(x1, x2, x3 | prompt) under the target, indexed x1*V*V + x2*V + x3. */
const exactJoint = (sampling: SamplingParams): Float64Array => targetJoint(pair, PROMPT, 3, sampling);

async function sampleCounts(algo: AlgorithmName, verify: VerifyRule, sampling: SamplingParams, extra: Partial<GenerateOptions> = {}) {
  const counts = new Float64Array(V ** 3);
  let accepted = 0;
  let rejected = 0;
  for (let seed = 0; seed < SAMPLES; seed++) {
    const r = await run(algo, pair, {
      prompt: PROMPT,
      maxTokens: 3,
      lookahead: 2,
      sp: 2,
      profile: profile(10, 3),
      sampling,
      verify,
      seed,
      ...extra,
    });
    const [a, b, c] = r.tokens;
    counts[a * V * V + b * V + c]++;
    accepted += r.stats.accepted;
    rejected += r.stats.rejected;
  }
  return { counts, accepted, rejected };
}

const T1: SamplingParams = { temperature: 1, topK: 0, topP: 1 };

for (const verify of ["rejection", "match"] as const) {
  test(`sampling: DSI with ${verify} matches the target's joint distribution of 3 tokens`, async () => {
    const { counts, accepted, rejected } = await sampleCounts("dsi", verify, T1);
    // Both branches of the rule were exercised many times.
    assert.ok(accepted > 5000 && rejected > 5000, `accepted ${accepted}, rejected ${rejected}`);
    const chi = chiSquareTest(counts, exactJoint(T1));
    assert.ok(chi.df >= 50, `df ${chi.df}`);
    assert.ok(!chi.rejected, `chi-square ${chi.statistic.toFixed(1)} > ${chi.critical.toFixed(1)} (df ${chi.df})`);
  });
}

test("sampling: DSI with rejection under temperature, top-k and top-p", async () => {
  const sampling: SamplingParams = { temperature: 0.8, topK: 4, topP: 0.9 };
  const { counts } = await sampleCounts("dsi", "rejection", sampling);
  const chi = chiSquareTest(counts, exactJoint(sampling));
  assert.ok(!chi.rejected, `chi-square ${chi.statistic.toFixed(1)} > ${chi.critical.toFixed(1)} (df ${chi.df})`);
});

test("sampling: negative control, a verifier accepting every draft, fails the same test", async () => {
  const { counts } = await sampleCounts("dsi", "rejection", T1, { verifier: (_t, draft) => ({ token: draft.token, accepted: true }) });
  const chi = chiSquareTest(counts, exactJoint(T1));
  assert.ok(chi.rejected, `lossy control passed: chi-square ${chi.statistic.toFixed(1)} <= ${chi.critical.toFixed(1)}`);
});
