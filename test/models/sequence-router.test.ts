/** The drafter's sequences: each generation keeps the sequence that served it; outputs are the model's. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenView, type EvalRequest } from "../../src/core/instance.js";
import { GREEDY } from "../../src/core/sampling.js";
import { SequenceRouter } from "../../src/models/sequence-router.js";
import { SyntheticPair } from "../../src/models/synthetic.js";

const pair = new SyntheticPair({ vocab: 16, seed: 2 });
const req = (base: number[], drafts: number[] = []): EvalRequest => ({ tokens: new TokenView(base, base.length, drafts), from: base.length + drafts.length, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });

test("a sequence router: a generation keeps its sequence; a new one takes the least recently used; outputs are the model's", async () => {
  const router = new SequenceRouter([0, 1, 2].map((i) => pair.instance("drafter", `drafter/${i}`)));
  assert.equal(router.label, "drafter");
  const [a, b, c, d] = [[1, 2], [3, 4], [5, 6], [7, 8]];
  assert.deepEqual([a, b, c].map((g) => router.route(req(g))), [0, 0, 0], "route alone does not use a sequence");
  for (const g of [a, b, c]) await router.evaluate(req(g));
  // a, b and c hold sequences 0, 1, 2 (each new generation took the least recently used).
  assert.deepEqual([a, b, c].map((g) => router.route(req(g, [9]))), [0, 1, 2]);
  a.push(3); // a's committed sequence grows: the same generation, the same sequence
  await router.evaluate(req(a));
  assert.equal(router.route(req(a)), 0);
  // d is new: the least recently used is b's (1); b then moves to the next least recently used.
  await router.evaluate(req(d));
  assert.equal(router.route(req(d)), 1);
  await router.evaluate(req(b));
  assert.equal(router.route(req(b)), 2, "b lost its sequence to d and takes c's, used least recently");
  // The outputs are the drafter's, whichever sequence answers.
  const solo = pair.instance("drafter", "solo");
  for (const g of [a, b, c, d]) assert.deepEqual(await router.evaluate(req(g)), await solo.evaluate(req(g)));
});

test("a sequence router: concurrent generations go to different sequences", async () => {
  const calls: number[] = [];
  const sequences = [0, 1].map((i) => {
    const inner = pair.instance("drafter", `drafter/${i}`);
    return { ...inner, label: inner.label, vocabSize: inner.vocabSize, eosToken: inner.eosToken, evaluate: async (r: EvalRequest) => (calls.push(i), inner.evaluate(r)) };
  });
  const router = new SequenceRouter(sequences);
  await Promise.all([router.evaluate(req([1])), router.evaluate(req([2]))]);
  assert.deepEqual(calls.sort(), [0, 1]);
});
