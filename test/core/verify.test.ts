/** Verification rules: decide(), the lossless rejection step, output modes, target tokens and drafts. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { keyedUniform, Rng, Stream } from "../../src/core/random.js";
import {
  decide,
  draftFromOutput,
  outputModes,
  rejectionStep,
  targetToken,
  VERIFY_RULES,
  type Draft,
  type PositionOutput,
} from "../../src/core/verify.js";

const f64 = (xs: number[]): Float64Array => new Float64Array(xs);

// Upper 0.001 quantile of the chi-square distribution with 3 degrees of freedom (4 categories).
const CHI2_DF3_ALPHA_0_001 = 16.266;

function chiSquare(counts: number[], probs: ArrayLike<number>, total: number): number {
  let chi = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = probs[i] * total;
    chi += ((counts[i] - e) * (counts[i] - e)) / e;
  }
  return chi;
}

describe("outputModes", () => {
  test("maps each rule to what target and drafter must return", () => {
    assert.deepEqual(outputModes("greedy"), { target: "greedy", drafter: "greedy" });
    assert.deepEqual(outputModes("rejection"), { target: "dist", drafter: "dist" });
    assert.deepEqual(outputModes("match"), { target: "sample", drafter: "sample" });
  });

  test("VERIFY_RULES lists the three rules", () => {
    assert.deepEqual([...VERIFY_RULES].sort(), ["greedy", "match", "rejection"]);
  });
});

describe("targetToken", () => {
  test("greedy and match return the model's own token, ignoring probs", () => {
    const out: PositionOutput = { token: 3, probs: f64([1, 0, 0, 0]) };
    for (let pos = 0; pos < 20; pos++) {
      assert.equal(targetToken("greedy", out, 1, pos), 3);
      assert.equal(targetToken("match", out, 1, pos), 3);
    }
  });

  test("rejection samples the target distribution with the target stream's uniform", () => {
    const out: PositionOutput = { token: -1, probs: f64([0.5, 0.5]) };
    for (let pos = 0; pos < 200; pos++) {
      const expected = keyedUniform(11, Stream.target, pos) < 0.5 ? 0 : 1;
      assert.equal(targetToken("rejection", out, 11, pos), expected, `position ${pos}`);
    }
  });

  test("rejection with a one-hot distribution always returns that token", () => {
    const out: PositionOutput = { token: -1, probs: f64([0, 0, 1, 0]) };
    for (let pos = 0; pos < 100; pos++) assert.equal(targetToken("rejection", out, pos * 7, pos), 2);
  });

  test("rejection samples are deterministic per (seed, position) and distributed as p", () => {
    const p = f64([0.1, 0.2, 0.3, 0.4]);
    const out: PositionOutput = { token: -1, probs: p };
    const n = 100_000;
    const counts = [0, 0, 0, 0];
    for (let pos = 0; pos < n; pos++) counts[targetToken("rejection", out, 5, pos)]++;
    for (let pos = 0; pos < 100; pos++) assert.equal(targetToken("rejection", out, 5, pos), targetToken("rejection", out, 5, pos));
    const chi = chiSquare(counts, p, n);
    assert.ok(chi < CHI2_DF3_ALPHA_0_001, `chi-square ${chi}`);
  });
});

describe("draftFromOutput", () => {
  test("greedy and match propose the model's token without probs", () => {
    const out: PositionOutput = { token: 4, probs: f64([0.2, 0.8]) };
    assert.deepEqual(draftFromOutput("greedy", out, 0, 0), { token: 4 });
    assert.deepEqual(draftFromOutput("match", out, 0, 0), { token: 4 });
  });

  test("rejection samples q with the draft stream's uniform and carries q along", () => {
    const q = f64([0.5, 0.5]);
    const out: PositionOutput = { token: -1, probs: q };
    let differsFromTargetStream = 0;
    for (let pos = 0; pos < 200; pos++) {
      const d = draftFromOutput("rejection", out, 3, pos);
      assert.equal(d.probs, q);
      assert.equal(d.token, keyedUniform(3, Stream.draft, pos) < 0.5 ? 0 : 1, `position ${pos}`);
      if (d.token !== targetToken("rejection", out, 3, pos)) differsFromTargetStream++;
    }
    // Target and drafter draw from different streams: about half of the positions disagree.
    assert.ok(differsFromTargetStream > 60 && differsFromTargetStream < 140, `${differsFromTargetStream}`);
  });

  test("rejection drafts are distributed as q", () => {
    const q = f64([0.4, 0.3, 0.2, 0.1]);
    const n = 100_000;
    const counts = [0, 0, 0, 0];
    for (let pos = 0; pos < n; pos++) counts[draftFromOutput("rejection", { token: -1, probs: q }, 8, pos).token]++;
    const chi = chiSquare(counts, q, n);
    assert.ok(chi < CHI2_DF3_ALPHA_0_001, `chi-square ${chi}`);
  });
});

describe("decide: greedy and match", () => {
  for (const rule of ["greedy", "match"] as const) {
    test(`${rule}: no draft commits the target's token, not accepted`, () => {
      assert.deepEqual(decide(rule, { token: 7 }, undefined, 0, 0), { token: 7, accepted: false });
    });

    test(`${rule}: a draft equal to the target's token is accepted`, () => {
      assert.deepEqual(decide(rule, { token: 7 }, { token: 7 }, 0, 3), { token: 7, accepted: true });
    });

    test(`${rule}: a different draft is rejected and the target's token is committed`, () => {
      assert.deepEqual(decide(rule, { token: 7 }, { token: 2 }, 0, 3), { token: 7, accepted: false });
      assert.deepEqual(decide(rule, { token: 0 }, { token: 1 }, 9, 0), { token: 0, accepted: false });
    });

    test(`${rule}: the decision ignores seed, position and any probs`, () => {
      const target: PositionOutput = { token: 1, probs: f64([1, 0]) };
      for (let pos = 0; pos < 50; pos++) {
        assert.deepEqual(decide(rule, target, { token: 1, probs: f64([0, 1]) }, pos, pos), { token: 1, accepted: true });
        assert.deepEqual(decide(rule, target, { token: 0, probs: f64([1, 0]) }, pos, pos), { token: 1, accepted: false });
      }
    });
  }
});

describe("decide: rejection", () => {
  test("no draft commits the target's own keyed sample", () => {
    const target: PositionOutput = { token: -1, probs: f64([0.3, 0.3, 0.4]) };
    for (let pos = 0; pos < 100; pos++) {
      const d = decide("rejection", target, undefined, 21, pos);
      assert.deepEqual(d, { token: targetToken("rejection", target, 21, pos), accepted: false });
    }
  });

  test("with a draft, uses the accept and residual streams of (seed, position)", () => {
    const p = f64([0.1, 0.2, 0.3, 0.4]);
    const q = f64([0.4, 0.3, 0.2, 0.1]);
    let accepted = 0;
    for (let pos = 0; pos < 500; pos++) {
      const draft = draftFromOutput("rejection", { token: -1, probs: q }, 4, pos);
      const got = decide("rejection", { token: -1, probs: p }, draft, 4, pos);
      const expected = rejectionStep(p, draft, keyedUniform(4, Stream.accept, pos), keyedUniform(4, Stream.residual, pos));
      assert.deepEqual(got, expected, `position ${pos}`);
      assert.deepEqual(decide("rejection", { token: -1, probs: p }, draft, 4, pos), got, "deterministic");
      if (got.accepted) accepted++;
    }
    assert.ok(accepted > 0 && accepted < 500);
  });

  test("a draft that the target would never produce is never committed", () => {
    const p = f64([0.5, 0.5, 0, 0]);
    const q = f64([0.1, 0.1, 0.4, 0.4]);
    for (let pos = 0; pos < 1000; pos++) {
      const d = decide("rejection", { token: -1, probs: p }, { token: 2, probs: q }, 1, pos);
      assert.equal(d.accepted, false);
      assert.ok(d.token === 0 || d.token === 1, `committed ${d.token}`);
    }
  });

  test("a draft with p(d) >= q(d) is always accepted", () => {
    const p = f64([0.6, 0.2, 0.2]);
    const q = f64([0.5, 0.25, 0.25]);
    for (let pos = 0; pos < 1000; pos++) {
      assert.deepEqual(decide("rejection", { token: -1, probs: p }, { token: 0, probs: q }, 2, pos), { token: 0, accepted: true });
    }
  });

  test("statistical: 200k committed tokens are distributed as p (chi-square, alpha 0.001)", () => {
    const p = f64([0.1, 0.2, 0.3, 0.4]);
    const q = f64([0.4, 0.3, 0.2, 0.1]);
    const n = 200_000;
    const counts = [0, 0, 0, 0];
    let accepted = 0;
    for (let pos = 0; pos < n; pos++) {
      const draft = draftFromOutput("rejection", { token: -1, probs: q }, 99, pos);
      const dec = decide("rejection", { token: -1, probs: p }, draft, 99, pos);
      counts[dec.token]++;
      if (dec.accepted) {
        accepted++;
        assert.equal(dec.token, draft.token);
      }
    }
    const chi = chiSquare(counts, p, n);
    assert.ok(chi < CHI2_DF3_ALPHA_0_001, `chi-square ${chi} >= ${CHI2_DF3_ALPHA_0_001}, counts ${counts}`);
    // Acceptance rate is sum_i min(p_i, q_i) = 0.6; sd = sqrt(0.24 / n) ~ 0.0011, allow 5 sd.
    assert.ok(Math.abs(accepted / n - 0.6) < 0.0055, `acceptance ${accepted / n}`);
  });
});

describe("rejectionStep", () => {
  test("accepts iff uAccept < p(d)/q(d)", () => {
    const p = f64([0.2, 0.8]);
    const q = f64([0.4, 0.6]);
    const d: Draft = { token: 0, probs: q };
    assert.deepEqual(rejectionStep(p, d, 0, 0.5), { token: 0, accepted: true });
    assert.deepEqual(rejectionStep(p, d, 0.49, 0.5), { token: 0, accepted: true });
    assert.deepEqual(rejectionStep(p, d, 0.51, 0.5), { token: 1, accepted: false });
    assert.deepEqual(rejectionStep(p, d, 0.999, 0), { token: 1, accepted: false });
    assert.deepEqual(rejectionStep(p, d, 0.999, 0.999), { token: 1, accepted: false });
  });

  test("p(d) >= q(d) accepts for every uAccept in [0, 1)", () => {
    const p = f64([0.5, 0.5]);
    const q = f64([0.5, 0.5]);
    for (const u of [0, 0.3, 0.999999, 1 - 2 ** -53]) {
      assert.deepEqual(rejectionStep(p, { token: 1, probs: q }, u, 0.7), { token: 1, accepted: true });
    }
  });

  test("p(d) = 0 rejects even at uAccept = 0", () => {
    const p = f64([1, 0]);
    const q = f64([0.5, 0.5]);
    assert.deepEqual(rejectionStep(p, { token: 1, probs: q }, 0, 0.99), { token: 0, accepted: false });
  });

  test("after a rejection, samples normalize(max(0, p - q)) by inverse CDF", () => {
    // residual = [0.4, 0.2, 0.1, 0], mass 0.7: token 0 for uR < 4/7, 1 for uR < 6/7, else 2.
    const p = f64([0.5, 0.3, 0.2, 0]);
    const q = f64([0.1, 0.1, 0.1, 0.7]);
    const d: Draft = { token: 3, probs: q };
    assert.equal(rejectionStep(p, d, 0.5, 0).token, 0);
    assert.equal(rejectionStep(p, d, 0.5, 0.56).token, 0);
    assert.equal(rejectionStep(p, d, 0.5, 0.58).token, 1);
    assert.equal(rejectionStep(p, d, 0.5, 0.85).token, 1);
    assert.equal(rejectionStep(p, d, 0.5, 0.86).token, 2);
    assert.equal(rejectionStep(p, d, 0.5, 1 - 2 ** -53).token, 2);
  });

  test("never commits the rejected draft and never a token with p = 0", () => {
    const p = f64([0.3, 0, 0.3, 0.4]);
    const q = f64([0.25, 0.25, 0.25, 0.25]);
    for (let k = 0; k < 1000; k++) {
      const u = (k + 0.5) / 1000;
      const r = rejectionStep(p, { token: 1, probs: q }, u, 1 - u);
      assert.equal(r.accepted, false);
      assert.notEqual(r.token, 1);
    }
  });

  test("does not modify p or q", () => {
    const p = f64([0.1, 0.6, 0.3]);
    const q = f64([0.5, 0.2, 0.3]);
    rejectionStep(p, { token: 0, probs: q }, 0.9, 0.5);
    rejectionStep(p, { token: 1, probs: q }, 0.9, 0.5);
    assert.deepEqual(Array.from(p), [0.1, 0.6, 0.3]);
    assert.deepEqual(Array.from(q), [0.5, 0.2, 0.3]);
  });

  test("p == q with an out-of-contract uAccept = 1 falls back to sampling p", () => {
    const p = f64([0.25, 0.75]);
    const r = rejectionStep(p, { token: 0, probs: f64([0.25, 0.75]) }, 1, 0.5);
    assert.deepEqual(r, { token: 1, accepted: false });
  });

  // Lossless property, by integration over (draft, uAccept, uResidual): the draft d is weighted by q_d and the
  // unit square of (uAccept, uResidual) is covered by a Fibonacci lattice (a rank-1 lattice with low
  // discrepancy), so every accept/residual region, a rectangle, is integrated to within ~1e-4.
  const N = 75025; // F(25)
  const G = 46368; // F(24)
  function commitDistribution(p: Float64Array, q: Float64Array): { commit: number[]; acceptRate: number } {
    const commit = new Array<number>(p.length).fill(0);
    let acceptRate = 0;
    for (let d = 0; d < q.length; d++) {
      if (q[d] === 0) continue;
      const draft: Draft = { token: d, probs: q };
      const counts = new Array<number>(p.length).fill(0);
      let acc = 0;
      for (let k = 0; k < N; k++) {
        const uA = (k + 0.5) / N;
        const uR = (((k * G) % N) + 0.5) / N;
        const r = rejectionStep(p, draft, uA, uR);
        if (r.accepted) {
          assert.equal(r.token, d, "an accepted decision commits the draft");
          acc++;
        } else assert.notEqual(r.token, d, "a rejected draft is not committed");
        counts[r.token]++;
      }
      for (let i = 0; i < p.length; i++) commit[i] += (q[d] * counts[i]) / N;
      acceptRate += (q[d] * acc) / N;
    }
    return { commit, acceptRate };
  }

  const pairs: [string, number[], number[]][] = [
    ["reversed", [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]],
    ["peaked target, flat drafter", [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]],
    ["target zeros where the drafter has mass", [0.5, 0.5, 0, 0], [0.1, 0.2, 0.3, 0.4]],
    ["drafter zeros where the target has mass", [0.3, 0.3, 0.2, 0.2], [0, 0.5, 0.5, 0]],
    ["identical", [0.15, 0.35, 0.2, 0.3], [0.15, 0.35, 0.2, 0.3]],
    ["one-hot target", [0, 0, 1, 0], [0.3, 0.3, 0.1, 0.3]],
    ["one-hot drafter", [0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]],
    ["non-dyadic", [1 / 3, 1 / 7, 1 / 5, 1 - 1 / 3 - 1 / 7 - 1 / 5], [1 / 11, 5 / 11, 3 / 11, 2 / 11]],
  ];
  const rng = new Rng(606);
  for (let r = 0; r < 3; r++) {
    const n = r === 2 ? 6 : 4;
    const norm = (xs: number[]): number[] => xs.map((x) => x / xs.reduce((a, b) => a + b, 0));
    pairs.push([`random ${r}`, norm(Array.from({ length: n }, () => rng.next())), norm(Array.from({ length: n }, () => rng.next()))]);
  }

  for (const [name, pArr, qArr] of pairs) {
    test(`lossless (${name}): P(commit i) = q_i min(1, p_i/q_i) + P(reject) residual_i = p_i`, () => {
      const p = f64(pArr);
      const q = f64(qArr);
      const { commit, acceptRate } = commitDistribution(p, q);
      for (let i = 0; i < p.length; i++) {
        assert.ok(Math.abs(commit[i] - p[i]) < 1e-3, `token ${i}: committed with ${commit[i]}, p = ${p[i]}`);
      }
      // Acceptance rate is sum_i min(p_i, q_i) (1 - total variation distance).
      const expected = pArr.reduce((s, pi, i) => s + Math.min(pi, qArr[i]), 0);
      assert.ok(Math.abs(acceptRate - expected) < 1e-3, `acceptance ${acceptRate} vs ${expected}`);
    });
  }
});
