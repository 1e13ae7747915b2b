/** Preemption, checked from the event log: nothing stale is committed, every task ends exactly once. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SyntheticPair } from "../../src/models/synthetic.js";
import type { EngineEvent } from "../../src/runtime/events.js";
import { profile, run } from "../helpers/run.js";

type Dispatch = Extract<EngineEvent, { type: "dispatch" }>;

function checkLog(events: EngineEvent[], prompt: number[]): { preempted: number; commits: number } {
  const committed = [...prompt];
  const dispatched = new Map<number, Dispatch>();
  const ended = new Map<number, "done" | "preempted">();
  let preempted = 0;
  for (const e of events) {
    if (e.type === "dispatch") {
      assert.ok(!dispatched.has(e.task), `task ${e.task} dispatched twice`);
      // A task is dispatched on the current frontier or beyond it, never on decided positions.
      assert.equal(e.frontier, committed.length, `task ${e.task} dispatched with a stale frontier`);
      assert.ok(e.start >= e.frontier);
      dispatched.set(e.task, e);
    } else if (e.type === "task-done" || e.type === "task-preempt") {
      assert.ok(dispatched.has(e.task), `task ${e.task} ended before dispatch`);
      assert.ok(!ended.has(e.task), `task ${e.task} ended twice`);
      ended.set(e.task, e.type === "task-done" ? "done" : "preempted");
      if (e.type === "task-preempt") preempted++;
    } else if (e.type === "commit") {
      assert.equal(e.pos, committed.length, "commits are in position order");
      const task = dispatched.get(e.task);
      assert.ok(task, `commit at ${e.pos} from unknown task ${e.task}`);
      assert.equal(ended.get(e.task), "done", `commit at ${e.pos} from task ${e.task} that is not done (${ended.get(e.task)})`);
      assert.ok(task.start <= e.pos && e.pos <= task.start + task.drafts.length, `task ${e.task} has no output at ${e.pos}`);
      // The task's whole speculative prefix up to this position must be what was committed.
      const basis = [...task.prefixDrafts, ...task.drafts.slice(0, e.pos - task.start)];
      assert.deepEqual(committed.slice(task.frontier, e.pos), basis, `commit at ${e.pos} from stale task ${e.task}`);
      committed.push(e.token);
    }
  }
  for (const id of dispatched.keys()) assert.ok(ended.has(id), `task ${id} never ended`);
  return { preempted, commits: committed.length - prompt.length };
}

test("preemption: no stale commit, every task ends as done or preempted", async () => {
  let preempted = 0;
  let runs = 0;
  for (let seed = 0; seed < 60; seed++) {
    for (const [L, sp, c] of [
      [2, 3, 2],
      [3, 2, 1],
      [1, 8, 1.5],
      [5, 4, 0.5],
      [4, 1, 3],
    ] as const) {
      const pair = new SyntheticPair({ vocab: 12, seed, agreement: 0.2 + (seed % 7) / 10 });
      const r = await run("dsi", pair, { maxTokens: 30, lookahead: L, sp, profile: profile(10, c), seed });
      const log = checkLog(r.events, [1, 2, 3]);
      assert.equal(log.commits, r.stats.tokens);
      assert.equal(log.preempted, r.stats.preemptions - r.events.filter((e) => e.type === "draft-preempt").length);
      preempted += log.preempted;
      runs++;
    }
  }
  assert.ok(preempted > runs, `preemption exercised: ${preempted} in ${runs} runs`);
});

test("preemption under sampling (rejection rule) on the real clock", async () => {
  let preempted = 0;
  for (let seed = 0; seed < 20; seed++) {
    const pair = new SyntheticPair({ vocab: 8, seed, agreement: 0.5 });
    const r = await run("dsi", pair, {
      maxTokens: 25,
      lookahead: 3,
      sp: 3,
      clock: "real",
      profile: profile(2, 0.1), // real time, so windows are in flight while drafts are decided
      sampling: { temperature: 1, topK: 0, topP: 1 },
      verify: "rejection",
      seed,
    });
    const log = checkLog(r.events, [1, 2, 3]);
    assert.equal(log.commits, r.tokens.length);
    preempted += log.preempted;
  }
  assert.ok(preempted > 0, "preemption was exercised");
});
