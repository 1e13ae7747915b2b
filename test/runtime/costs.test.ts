/** Observed task costs: the estimates DSI's slack and guard rules read are recent and leave prefill out. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { RECENT_HORIZON, RECENT_TASKS, TaskCosts } from "../../src/runtime/costs.js";

test("a prefill task (a long prompt) stays out of the step and window estimates and the means", () => {
  const c = new TaskCosts();
  c.observe(0, 300, "prefill");
  c.observe(3, 310, "prefill");
  for (let i = 0; i < 4; i++) {
    c.observe(0, 10, "alone");
    c.observe(3, 12);
  }
  assert.equal(c.stepMs(), 10);
  assert.equal(c.slowestMs(0), 10);
  assert.equal(c.slowestMs(3), 12);
  assert.equal(c.estimateMs(3), 12);
  assert.equal(c.meanMs(0, "alone"), 10);
  assert.equal(c.soloMs(), 10);
});

test("recent extremes: a quicker step or a slower window counts at once, an outlier is forgotten after RECENT_TASKS of its size", () => {
  const c = new TaskCosts();
  c.observe(0, 10);
  c.observe(0, 50); // a slow spell
  assert.equal(c.slowestMs(0), 50);
  assert.equal(c.quickestMs(0), 10);
  for (let i = 0; i < RECENT_TASKS - 1; i++) c.observe(0, 10);
  assert.equal(c.slowestMs(0), 50, "still among the last RECENT_TASKS");
  c.observe(0, 10);
  assert.equal(c.slowestMs(0), 10);
  c.observe(0, 8); // the machine got quicker
  assert.equal(c.stepMs(), 8);
});

test("a size not seen within RECENT_HORIZON tasks is unknown again; unseen sizes extrapolate from the recent slopes", () => {
  const c = new TaskCosts();
  c.observe(0, 10);
  c.observe(2, 14);
  assert.equal(c.estimateMs(4), 18, "10 + 2 per draft");
  for (let i = 0; i < RECENT_HORIZON - 1; i++) c.observe(0, 10);
  assert.equal(c.slowestMs(2), 14);
  c.observe(0, 10);
  assert.equal(c.slowestMs(2), undefined);
  assert.equal(c.estimateMs(4), undefined);
  assert.equal(c.meanMs(2, "beside"), 14, "the lookahead's means are not the rules' estimates");
});

test("fresh pool: a one-token prefill stands in for the step only when no slower than every window seen, and for a pass as an upper estimate", () => {
  const c = new TaskCosts();
  c.observe(0, 10, "prefill"); // a short prompt: about a step
  assert.equal(c.stepMs(), undefined, "nothing to compare it with yet");
  assert.equal(c.slowestMs(0), 10);
  c.observe(4, 10);
  assert.equal(c.stepMs(), 10);
  const long = new TaskCosts();
  long.observe(0, 300, "prefill"); // a long prompt
  long.observe(4, 12);
  assert.equal(long.stepMs(), undefined, "a long prompt's prefill never stands in for the step");
  assert.equal(long.slowestMs(0), 300, "as an upper estimate of a pass it only makes the guard fire less");
  long.observe(4, 320, "prefill");
  assert.equal(long.slowestMs(4), 12, "seen windows win over a prefill");
  long.observe(0, 10);
  assert.equal(long.stepMs(), 10);
  assert.equal(long.slowestMs(0), 10);
});

test("the load: other sequences' tasks that shared a task's instance, recent mean, prefill kept out", () => {
  const c = new TaskCosts();
  assert.equal(c.sharers(), 0, "nothing observed: no load");
  for (let i = 0; i < 20; i++) c.observe(0, 10, "beside", 3);
  assert.ok(Math.abs(c.sharers() - 3) < 1e-9);
  c.observe(0, 100, "prefill", 0);
  assert.ok(Math.abs(c.sharers() - 3) < 1e-9, "a prefill leaves the load alone");
  c.observe(0, 10, "beside", 0);
  assert.ok(c.sharers() < 3 && c.sharers() > 2, "the load follows recent tasks");
});
