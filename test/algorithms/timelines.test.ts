/**
 * Exact timelines, computed by hand, in virtual time. Target 10 ms, drafter 2 ms,
 * lookahead 2, prompt of 3 tokens (first generated position is 3), 7 tokens.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AlgorithmName } from "../../src/algorithms/options.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { profile, run } from "../helpers/run.js";

async function commitTimes(algo: AlgorithmName, agreement: number, sp: number) {
  const pair = new SyntheticPair({ vocab: 16, seed: 9, agreement });
  const r = await run(algo, pair, { maxTokens: 7, lookahead: 2, sp, profile: profile(10, 2) });
  const commits = r.events.filter((e) => e.type === "commit");
  assert.deepEqual(
    commits.map((e) => e.pos),
    [3, 4, 5, 6, 7, 8, 9],
  );
  return { times: commits.map((e) => e.t), result: r };
}

test("timeline: every draft accepted, SP=3 (= ceil(10/(2*2)))", async () => {
  // t=0: frontier task on positions [3] (no drafts yet); drafts d3@2 d4@4 -> window [3,5) @4,
  // d5@6 d6@8 -> window [5,7) @8, d7@10 d8@12 -> window [7,9) @12 (on the instance freed at 10).
  // t=10: frontier task accepts d3. t=14: window [3,5) decides 4, 5 (5 = early decision of d5).
  // t=18: window [5,7) decides 6, 7. t=22: window [7,9) decides 8, 9.
  const { times, result } = await commitTimes("dsi", 1, 3);
  assert.deepEqual(times, [10, 14, 14, 18, 18, 22, 22]);
  assert.equal(result.stats.timeMs, 22);
  assert.equal(result.stats.rejected, 0);
  // SI: each iteration drafts 2 (4 ms) and verifies (10 ms) for 3 tokens; the last token needs no draft.
  const si = await commitTimes("si", 1, 1);
  assert.deepEqual(si.times, [14, 14, 14, 28, 28, 28, 38]);
  const nonsi = await commitTimes("nonsi", 1, 1);
  assert.deepEqual(nonsi.times, [10, 20, 30, 40, 50, 60, 70]);
});

test("timeline: every first draft rejected, SP=3", async () => {
  // Each epoch: a frontier task starts at once (no drafts), windows follow at +4 and +8, the
  // frontier task rejects the first draft at +10: commit, preempt both windows and the drafter.
  const { times, result } = await commitTimes("dsi", 0, 3);
  assert.deepEqual(times, [10, 20, 30, 40, 50, 60, 70]);
  assert.equal(result.stats.accepted, 0);
  // Per epoch f: windows [f,f+2) @+4 and [f+2,f+4) @+8 preempted at +10, as far as there are
  // drafts: nothing is drafted at position 9, the last one (the target decides it alone). So
  // f=3..5: 2 each; f=6: [6,8) and [8] (one draft, all there is); f=7: [7,9); f=8: [8]; f=9: none.
  const preempted = result.events.filter((e) => e.type === "task-preempt");
  assert.equal(preempted.length, 10);
  const drafted = result.events.filter((e) => e.type === "draft-done" || e.type === "draft-start");
  assert.ok(drafted.every((e) => "pos" in e && e.pos <= 8), "a draft at the last position");
  assert.ok(preempted.every((e) => e.type === "task-preempt" && (e.reason === "rejected" || e.reason === "finished")));
  // SI pays 4 ms of drafting on top of every target pass (2 ms when only 2 tokens remain, none for the last).
  const si = await commitTimes("si", 0, 1);
  assert.deepEqual(si.times, [14, 28, 42, 56, 70, 82, 92]);
});

test("timeline: SP=1, every draft accepted", async () => {
  // t=0: frontier task [3]; the drafter runs ahead to 5 drafts (L*(SP+1)+1): d3..d7 by 10.
  // t=10: accept d3; the frontier is uncovered -> task [4,6) with d4 d5 at once.
  // t=20: decides 4, 5 and (early) 6; task [7,9) with d7 d8 at once.
  // t=30: decides 7, 8 and 9.
  const { times } = await commitTimes("dsi", 1, 1);
  assert.deepEqual(times, [10, 20, 20, 20, 30, 30, 30]);
});
