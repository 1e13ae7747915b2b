/** Synthetic targets that copy their context (`copy`): unchanged at 0, spans repeated as c grows, exact distributions. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenView } from "../../src/core/instance.js";
import { argmax, distributionFromLogits } from "../../src/core/sampling.js";
import { SyntheticPair, SyntheticTokenizer, type SyntheticSpec } from "../../src/models/synthetic.js";

const tokenizer = new SyntheticTokenizer(32);
const PHRASE = tokenizer.encode("the cat sat on the mat. the cat sat on the mat. the");
const GREEDY = { temperature: 0, topK: 0, topP: 1 };

/** The target's greedy continuation of `prompt`, `n` tokens, one position at a time. */
function greedy(pair: SyntheticPair, prompt: readonly number[], n: number): number[] {
  const t = [...prompt];
  for (let i = 0; i < n; i++) t.push(argmax(pair.targetLogits(t, t.length)));
  return t;
}

/**
 * Positions from `start` whose token continues the most recent earlier occurrence of the m
 * tokens before it: prompt lookup's view of copying, independent of the model's own rule.
 */
function lookupShare(t: readonly number[], start: number, m: number): number {
  let hits = 0;
  for (let p = start; p < t.length; p++) {
    for (let j = p - 1; j >= m; j--) {
      if (t.slice(j - m, j).every((x, k) => x === t[p - m + k])) {
        if (t[j] === t[p]) hits++;
        break;
      }
    }
  }
  return hits / (t.length - start);
}

/** Longest run of positions p with t[p] = t[p - k] for some k in 1..maxPeriod: a loop that short. */
function longestShortLoop(t: readonly number[], start: number, maxPeriod: number): number {
  let longest = 0;
  for (let k = 1; k <= maxPeriod; k++) {
    let run = 0;
    for (let p = start + k; p < t.length; p++) longest = Math.max(longest, (run = t[p] === t[p - k] ? run + 1 : 0));
  }
  return longest;
}

test("copy 0 is the tables alone: today's greedy sequences, token for token, target and drafter", async () => {
  // Recorded before `copy` existed: the default spec from "the", and instances of seed 4.
  const today = "wevxj gxDwpCymkDcah.CgzphspfbnDtaelmnsrx";
  for (const spec of [{}, { copy: 0 }]) assert.equal(tokenizer.decode(greedy(new SyntheticPair(spec), tokenizer.encode("the"), 40).slice(3)), today);
  const tokens = [19, 7, 4, 4, 1, 11, 10, 5, 13, 13, 0, 13, 7, 5, 5, 21, 5, 1, 21, 6, 16, 15, 30, 16, 13, 12, 8, 5, 10, 21, 21, 30, 12, 2, 3, 23, 5, 29, 23, 15, 7, 3, 18, 6, 5, 16, 30, 3, 1, 5, 3, 9, 22, 26, 4, 15, 14, 24, 11, 25, 14, 26, 4];
  const target = [4, 1, 11, 10, 5, 13, 13, 0, 13, 7, 5, 5, 21, 5, 1, 21, 6, 16, 15, 30, 16, 13, 12, 8, 5, 10, 21, 21, 30, 12, 2, 3, 23, 5, 29, 23, 15, 7, 3, 18, 6, 5, 16, 30, 3, 1, 5, 3, 9, 22, 26, 4, 15, 14, 24, 11, 25, 14, 26, 4, 2];
  const drafter = [4, 1, 11, 3, 5, 13, 13, 0, 13, 7, 5, 26, 26, 5, 1, 21, 4, 16, 15, 4, 16, 13, 12, 22, 29, 10, 21, 21, 30, 19, 2, 3, 23, 11, 29, 20, 15, 24, 3, 21, 7, 5, 16, 30, 3, 9, 5, 3, 9, 19, 26, 26, 15, 14, 14, 11, 9, 17, 26, 4, 2];
  const req = { tokens, from: 3, mode: "greedy" as const, sampling: GREEDY, seed: 0, stream: 1 };
  // A copying pair over the same tables and tokens first: the memo they share keeps its copies apart.
  const copying = new SyntheticPair({ vocab: 32, seed: 4, copy: 0.9 });
  const copied = await copying.instance("target").evaluate(req);
  await copying.instance("drafter").evaluate(req);
  assert.notDeepEqual(copied.map((o) => o.token), target, "the copying target differs somewhere");
  const pair = new SyntheticPair({ vocab: 32, seed: 4, copy: 0 });
  assert.deepEqual(greedy(pair, [19, 7, 4], 60), tokens);
  for (const [role, expected] of [["target", target], ["drafter", drafter]] as const) {
    const out = await pair.instance(role).evaluate(req);
    assert.deepEqual(
      out.map((o) => o.token),
      expected,
      role,
    );
  }
});

test("copy 0.9 on a prompt with a repeated phrase: the greedy output repeats spans of its context far more often than at 0", () => {
  const share = (copy: number): number => {
    let sum = 0;
    for (const seed of [1, 2, 3]) sum += lookupShare(greedy(new SyntheticPair({ seed, copy }), PHRASE, 200), PHRASE.length, 3);
    return sum / 3;
  };
  const [none, most] = [share(0), share(0.9)];
  // Measured: 0.00 and 0.60 (the model copies by its longest suffix, not by the last 3 tokens).
  assert.ok(none < 0.05, `copy 0: ${none} of positions continue an earlier 3-token match`);
  assert.ok(most > 0.45, `copy 0.9: ${most} of positions continue an earlier 3-token match`);
  const text = tokenizer.decode(greedy(new SyntheticPair({ copy: 0.9 }), PHRASE, 60).slice(PHRASE.length));
  assert.ok(text.includes("cat sat on"), `the phrase comes back: ${JSON.stringify(text)}`);
});

test("the share of copied positions tracks c, and copying never collapses into a short loop", () => {
  // Measured, 8 seeds x 400 tokens from "the": 0, 0.26, 0.54, 0.82 (a position copies only
  // where its context occurred at least 16 tokens back, so slightly under c).
  const expected = new Map([
    [0, 0],
    [0.3, 0.26],
    [0.6, 0.54],
    [0.9, 0.82],
  ]);
  for (const [copy, share] of expected) {
    let copied = 0;
    let positions = 0;
    let loop = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const pair = new SyntheticPair({ seed, copy });
      const t = greedy(pair, tokenizer.encode("the"), 400);
      for (let p = 3; p < t.length; p++, positions++) {
        const c = pair.copyAt(t, p);
        if (c < 0) continue;
        copied++;
        assert.equal(t[p], c, "a copied token is the target's argmax");
      }
      loop = Math.max(loop, longestShortLoop(t, 3, 8));
    }
    assert.ok(Math.abs(copied / positions - share) < 0.02, `copy ${copy}: ${copied / positions} of positions copied, measured ${share}`);
    // Chance repeats alone reach 3-4; a stutter would run for tens of tokens.
    assert.ok(loop <= 10, `copy ${copy}: a loop of period <= 8 ran ${loop} tokens`);
  }
});

test("with copying, distributions stay proper: they sum to 1, no token is impossible, the copied one has most of the mass", () => {
  const pair = new SyntheticPair({ seed: 2, copy: 0.9 });
  const t = greedy(pair, PHRASE, 80);
  let copies = 0;
  for (let p = PHRASE.length; p < t.length; p++) {
    const copied = pair.copyAt(t, p);
    for (const role of ["target", "drafter"] as const) {
      const d = pair.distribution(role, t, p, { temperature: 1, topK: 0, topP: 1 });
      assert.ok(Math.abs(d.reduce((a, b) => a + b, 0) - 1) < 1e-12);
      assert.ok(d.every((x) => x > 0), `${role} at ${p}: a token with probability 0`);
      if (role === "target" && copied >= 0) assert.ok(d[copied] > 0.6 && d[copied] < 1, `target at ${p}: ${d[copied]} on the copied token`);
    }
    if (copied >= 0) copies++;
  }
  assert.ok(copies > 50, `${copies} copying positions checked`);
});

test("the drafter follows a copy where it agrees with the target", () => {
  for (const agreement of [0.3, 0.8]) {
    let copies = 0;
    let followed = 0;
    for (const seed of [1, 2, 3, 4]) {
      const pair = new SyntheticPair({ seed, copy: 0.9, agreement });
      const t = greedy(pair, PHRASE, 300);
      for (let p = PHRASE.length; p < t.length; p++) {
        const c = pair.copyAt(t, p);
        if (c < 0) continue;
        copies++;
        if (argmax(pair.drafterLogits(t, p)) === c) followed++;
      }
    }
    assert.ok(Math.abs(followed / copies - agreement) < 0.05, `agreement ${agreement}: the drafter followed ${followed / copies} of ${copies} copies`);
  }
});

test("a copying instance is a pure function of its input: arrays and views, repeated calls and fresh pairs agree with the exact logits", async () => {
  const spec: Partial<SyntheticSpec> = { seed: 6, copy: 0.6, context: "all" };
  const t = greedy(new SyntheticPair(spec), PHRASE, 60);
  const from = PHRASE.length + 20;
  const sampling = { temperature: 0.8, topK: 0, topP: 1 };
  for (const role of ["target", "drafter"] as const) {
    const instance = new SyntheticPair(spec).instance(role);
    const req = { tokens: t, from, mode: "dist" as const, sampling, seed: 0, stream: 1 };
    const a = await instance.evaluate(req);
    const b = await instance.evaluate({ ...req, tokens: new TokenView([...t.slice(0, from), 9, 9, 9], from, t.slice(from)) });
    const c = await new SyntheticPair(spec).instance(role).evaluate(req);
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    const pair = new SyntheticPair(spec);
    for (const [i, out] of a.entries()) assert.deepEqual(out.probs, distributionFromLogits(pair.logits(role, t, from + i), sampling));
    const g = await instance.evaluate({ ...req, mode: "greedy", sampling: GREEDY });
    assert.deepEqual(
      g.map((o) => o.token),
      a.map((o) => argmax(o.probs!)),
    );
  }
});

test("copy outside [0, 1] is refused", () => {
  for (const copy of [-0.1, 1.5, Number.NaN]) assert.throws(() => new SyntheticPair({ copy }), /copy must be in \[0, 1\]/);
});
