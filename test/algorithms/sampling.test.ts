/**
 * Lossless sampling: under DSI, the first 3 generated tokens follow the target's exact
 * joint distribution, for `rejection` and `match`. A verifier that accepts every draft
 * (lossy) must fail the same test.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DraftMode } from "../../src/algorithms/option-spec.js";
import type { AlgorithmName } from "../../src/algorithms/options.js";
import type { SamplingParams } from "../../src/core/sampling.js";
import type { VerifyRule } from "../../src/core/verify.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { chiSquareTest, targetJoint } from "../helpers/chi-square.js";
import { offThread } from "../helpers/off-thread.js";
import type { Tally } from "../helpers/sampling-workload.js";

const V = 6;
const PROMPT = [1, 2];
const SAMPLES = 20_000;
const SPEC = { vocab: V, seed: 77, agreement: 0.5, sharpness: 2.5 };
const pair = new SyntheticPair(SPEC);

/** Exact P(x1, x2, x3 | prompt) under the target, indexed x1*V*V + x2*V + x3. */
const exactJoint = (sampling: SamplingParams): Float64Array => targetJoint(pair, PROMPT, 3, sampling);

/**
 * Counts of each 3-token outcome over seeds 0..SAMPLES-1, and the drafts accepted and rejected;
 * in two halves on worker threads (see off-thread.ts).
 */
async function sampleCounts(algo: AlgorithmName, verify: VerifyRule, sampling: SamplingParams, o: { acceptEveryDraft?: boolean; draft?: DraftMode; ngramMin?: number; prompt?: number[]; spec?: typeof SPEC; concurrent?: number } = {}) {
  const halves = await Promise.all(
    [0, SAMPLES / 2].map((from) =>
      offThread<Tally>(WORKLOAD, "tally", { spec: o.spec ?? SPEC, prompt: o.prompt ?? PROMPT, algo, verify, sampling, from, to: from + SAMPLES / 2, acceptEveryDraft: o.acceptEveryDraft === true, draft: o.draft, ngramMin: o.ngramMin, concurrent: o.concurrent }),
    ),
  );
  const counts = new Float64Array(V ** 3);
  for (const h of halves) h.counts.forEach((n, i) => (counts[i] += n));
  const decided = (source: "model" | "ngram") => ({ accepted: halves[0].bySource[source].accepted + halves[1].bySource[source].accepted, rejected: halves[0].bySource[source].rejected + halves[1].bySource[source].rejected });
  return { counts, accepted: halves[0].accepted + halves[1].accepted, rejected: halves[0].rejected + halves[1].rejected, ngram: decided("ngram"), model: decided("model") };
}
const WORKLOAD = new URL("../helpers/sampling-workload.js", import.meta.url);

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

test("sampling: DSI and SI with rejection, 8 generations at a time on 2 instances x 4 sequences whose passes are shared, match the target's joint distribution of 3 tokens", async () => {
  for (const algo of ["dsi", "si"] as const) {
    const { counts, accepted, rejected } = await sampleCounts(algo, "rejection", T1, { concurrent: 8 });
    assert.ok(accepted > 5000 && rejected > 5000, `${algo}: accepted ${accepted}, rejected ${rejected}`);
    const chi = chiSquareTest(counts, exactJoint(T1));
    assert.ok(chi.df >= 50, `df ${chi.df}`);
    assert.ok(!chi.rejected, `${algo}: chi-square ${chi.statistic.toFixed(1)} > ${chi.critical.toFixed(1)} (df ${chi.df})`);
  }
});

test("sampling: DSI with rejection under temperature, top-k and top-p", async () => {
  const sampling: SamplingParams = { temperature: 0.8, topK: 4, topP: 0.9 };
  const { counts } = await sampleCounts("dsi", "rejection", sampling);
  const chi = chiSquareTest(counts, exactJoint(sampling));
  assert.ok(!chi.rejected, `chi-square ${chi.statistic.toFixed(1)} > ${chi.critical.toFixed(1)} (df ${chi.df})`);
});

// Prompt lookup: deterministic proposals (q all on the draft), accepted with the target's
// probability of the draft, else the residual (the target without the draft). The target
// copies (a copied token gets most of its mass, at a share of positions drawn per context) and
// the prompt repeats a 17-token unit (`tally` keeps what the runtime learned across
// generations, as a server does).
// - Lookup alone: copying at 60%, any match of one token or more drafts.
// - Lookup before the drafter: copying at 75%, where lookup (about 80% right) is ahead of the
//   drafter by the source choice's margin; matches of three tokens or more, so positions after a
//   fresh token have none and the drafter drafts there. A mix of both sources in every run.
const UNIT = [0, 3, 1, 4, 2, 5, 5, 0, 2, 1, 3, 3, 4, 0, 5, 1, 2];
const REPEATING = [...UNIT, ...UNIT.slice(0, 5)];
const LOOKUP_WORKLOADS = [
  { algo: "dsi", draft: "ngram", spec: { ...SPEC, copy: 0.6 }, ngramMin: 1, least: { ngram: 1000, model: 0 }, df: 50 },
  { algo: "dsi", draft: "ngram+model", spec: { ...SPEC, copy: 0.75 }, ngramMin: 3, least: { ngram: 1000, model: 100 }, df: 25 },
  { algo: "si", draft: "ngram+model", spec: { ...SPEC, copy: 0.75 }, ngramMin: 3, least: { ngram: 1000, model: 100 }, df: 25 },
] as const;
for (const { algo, draft, spec, ngramMin, least, df } of LOOKUP_WORKLOADS) {
  test(`sampling: ${algo} with --draft ${draft} (rejection) matches the target's joint distribution of 3 tokens`, async () => {
    const { counts, ngram, model } = await sampleCounts(algo, "rejection", T1, { draft, ngramMin, prompt: REPEATING, spec });
    assert.ok(ngram.accepted > least.ngram && ngram.rejected > least.ngram, `prompt lookup's drafts: ${JSON.stringify(ngram)}`);
    if (least.model > 0) assert.ok(model.accepted > least.model && model.rejected > least.model, `the drafter's drafts: ${JSON.stringify(model)}`);
    const chi = chiSquareTest(counts, targetJoint(new SyntheticPair(spec), REPEATING, 3, T1));
    // (Where the target copies more, its joint distribution sits in fewer cells.)
    assert.ok(chi.df >= df, `df ${chi.df}`);
    assert.ok(!chi.rejected, `chi-square ${chi.statistic.toFixed(1)} > ${chi.critical.toFixed(1)} (df ${chi.df})`);
  });
}

test("sampling: negative control, a verifier accepting every draft, fails the same test", async () => {
  const { counts } = await sampleCounts("dsi", "rejection", T1, { acceptEveryDraft: true });
  const chi = chiSquareTest(counts, exactJoint(T1));
  assert.ok(chi.rejected, `lossy control passed: chi-square ${chi.statistic.toFixed(1)} <= ${chi.critical.toFixed(1)}`);
});
