/** The synthetic pair: exact distributions, the agreement knob, the instance contract. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenView } from "../../src/core/instance.js";
import { argmax } from "../../src/core/sampling.js";
import { SyntheticPair } from "../../src/models/synthetic.js";

const SAMPLING = { temperature: 0.9, topK: 0, topP: 1 };

test("distributions are probability vectors over the vocabulary, for target and drafter", () => {
  const pair = new SyntheticPair({ vocab: 24, seed: 3 });
  for (const role of ["target", "drafter"] as const) {
    for (let p = 1; p < 40; p++) {
      const d = pair.distribution(role, [p % 24, (p * 7) % 24, 5], Math.min(p, 3), SAMPLING);
      assert.equal(d.length, 24);
      assert.ok(d.every((x) => x >= 0));
      assert.ok(Math.abs(d.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    }
  }
});

test("the agreement knob is the drafter's greedy agreement with the target, in expectation", () => {
  for (const agreement of [0, 0.3, 0.7, 1]) {
    const pair = new SyntheticPair({ vocab: 32, seed: 9, agreement });
    let agree = 0;
    const N = 3000;
    for (let i = 0; i < N; i++) {
      const tokens = [i % 32, Math.floor(i / 32) % 32];
      if (argmax(pair.targetLogits(tokens, 2)) === argmax(pair.drafterLogits(tokens, 2))) agree++;
    }
    assert.ok(Math.abs(agree / N - agreement) < 0.03, `agreement ${agreement}: measured ${agree / N}`);
  }
});

test("an instance returns one output per position from..length, the same for arrays and views", async () => {
  const pair = new SyntheticPair({ vocab: 16, seed: 1 });
  const target = pair.instance("target");
  const seq = [1, 2, 3, 4, 5];
  const req = { tokens: seq, from: 3, mode: "greedy" as const, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 };
  const a = await target.evaluate(req);
  const b = await target.evaluate({ ...req, tokens: new TokenView([1, 2, 3, 9, 9], 3, [4, 5]) });
  assert.equal(a.length, 3);
  assert.deepEqual(a, b);
  for (const [i, out] of a.entries()) assert.equal(out.token, argmax(pair.targetLogits(seq, 3 + i)));
  const dist = await target.evaluate({ ...req, mode: "dist", sampling: SAMPLING });
  assert.ok(dist.every((o) => o.probs !== undefined && o.probs.length === 16));
  await assert.rejects(target.evaluate({ ...req, from: 6 }), /from=6 outside 1\.\.5/);
  // An output needs a token of context: the contract's range starts at 1, as llama.cpp's does.
  await assert.rejects(target.evaluate({ ...req, from: 0 }), /from=0 outside 1\.\.5/);
  await assert.rejects(target.evaluate(req, AbortSignal.abort()), (err: Error) => err.name === "AbortError");
});

test("TokenView: the committed prefix plus a copy of the drafts, like the array it stands for", () => {
  const committed = [1, 2, 3];
  const drafts = [7, 8];
  const v = new TokenView(committed, 3, drafts);
  committed.push(99); // appended after the view was made: not part of it
  drafts[0] = 0; // the view copied the drafts
  assert.equal(v.length, 5);
  assert.deepEqual(v.slice(), [1, 2, 3, 7, 8]);
  assert.deepEqual(v.slice(1, -1), [2, 3, 7]);
  assert.equal(v.at(-1), 8);
  assert.equal(v.at(5), undefined);
});
