/** DSI's frontier, slack and guard rules (dsi/rules.ts), one situation at a time. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { frontierRule, guardRule, slackRule, type FrontierView, type TaskInView } from "../../src/algorithms/dsi/rules.js";
import { TaskCosts } from "../../src/runtime/costs.js";

/** The frontier at 10, lookahead 3, two free instances, nothing running, no costs known. */
function view(o: Partial<FrontierView> = {}): FrontierView {
  return {
    now: 0,
    frontier: 10,
    draftsReady: 0,
    lookahead: 3,
    patient: true,
    lastDraftable: 100,
    freeInstances: 2,
    sharedPasses: false,
    homeRoom: Infinity,
    running: [],
    done: [],
    costs: new TaskCosts(),
    nonSiCommitAt: () => undefined,
    ...o,
  };
}

const task = (start: number, drafts: number, startedAt = 0): TaskInView => ({ start, drafts, startedAt });

/** Costs seen: a one-token pass `step` ms, a window of `drafts` drafts `window` ms. */
function costs(step: number, drafts: number, window: number): TaskCosts {
  const c = new TaskCosts();
  c.observe(0, step);
  c.observe(drafts, window);
  return c;
}

test("frontier rule: a task on f with the drafts ready there (at most L) when nothing running or done covers f", () => {
  assert.deepEqual(frontierRule(view({ draftsReady: 5 })), { start: 10, drafts: 3, rule: "frontier" });
  assert.deepEqual(frontierRule(view({ draftsReady: 1 })), { start: 10, drafts: 1, rule: "frontier" });
  assert.deepEqual(frontierRule(view({ draftsReady: 5, homeRoom: 3 })), { start: 10, drafts: 2, rule: "frontier" }, "no more than the home's passes have room for");
  assert.deepEqual(frontierRule(view({ draftsReady: 5, homeRoom: 0 })), { start: 10, drafts: 0, rule: "frontier" }, "others fill them: a plain step");
  assert.deepEqual(frontierRule(view()), { start: 10, drafts: 0, rule: "frontier" }, "no draft: a plain step");
  // A task covers start..start+drafts (its last output decides the position past its drafts).
  assert.equal(frontierRule(view({ running: [task(7, 3)] })), undefined, "a running window's last output is at f");
  assert.equal(frontierRule(view({ done: [task(10, 0)] })), undefined, "a finished task not applied yet");
  assert.deepEqual(frontierRule(view({ running: [task(6, 3), task(11, 3)] }))?.start, 10, "windows before and after f leave it uncovered");
});

test("slack rule: a short frontier task on the last free instance waits for more drafts only while it still finishes by non-SI's commit of f", () => {
  const plan = { start: 10, drafts: 1, rule: "frontier" as const };
  // Window 30 ms, non-SI commits f at 100: the task may wait until 70.
  const waiting = view({ freeInstances: 1, draftsReady: 1, costs: costs(10, 3, 30), nonSiCommitAt: (p) => (p === 10 ? 100 : undefined) });
  assert.equal(slackRule(waiting, plan), 70);
  assert.equal(slackRule({ ...waiting, now: 69 }, plan), 70);
  assert.equal(slackRule({ ...waiting, now: 70 }, plan), undefined, "no slack left: go now");
  assert.equal(slackRule({ ...waiting, freeInstances: 2 }, plan), undefined, "another instance is free: go now");
  assert.equal(slackRule({ ...waiting, patient: false }, plan), undefined, "the lookahead policy says sending at once pays");
  assert.equal(slackRule(waiting, { ...plan, drafts: 3 }), undefined, "a full window does not wait");
  assert.equal(slackRule({ ...waiting, lastDraftable: 11 }, plan), undefined, "no more drafts will come");
  assert.equal(slackRule({ ...waiting, costs: new TaskCosts() }, plan), undefined, "unknown window cost: no waiting");
  assert.equal(slackRule({ ...waiting, nonSiCommitAt: () => undefined }, plan), undefined, "unknown non-SI pace: no waiting");
  // Other generations share the home's passes: a task that waits may miss the pass starting
  // now and wait for it first, so it keeps a second window's time.
  assert.equal(slackRule({ ...waiting, sharedPasses: true }, plan), 40);
  assert.equal(slackRule({ ...waiting, sharedPasses: true, now: 40 }, plan), undefined);
  // Room for one draft at home: a task with one does not wait for more.
  assert.equal(slackRule({ ...waiting, homeRoom: 2 }, plan), undefined);
  // No instance free at all: the task claims its instance now (the claim keeps its place).
  assert.equal(slackRule({ ...waiting, freeInstances: 0 }, plan), undefined);
});

test("guard rule: a one-token task on f when the windows covering it finish later than a fresh pass would; never with flat or unknown costs", () => {
  const growing = costs(10, 3, 30);
  const covered = view({ now: 5, running: [task(8, 3, 0)], costs: growing });
  // The window started at 0 ends at 30; a pass sent at 5 ends at 15.
  assert.deepEqual(guardRule(covered), { start: 10, drafts: 0, rule: "guard" });
  assert.equal(guardRule({ ...covered, now: 20 }), undefined, "the window ends before a pass sent now would");
  assert.equal(guardRule({ ...covered, costs: costs(10, 3, 10) }), undefined, "flat costs");
  assert.equal(guardRule({ ...covered, costs: new TaskCosts() }), undefined, "nothing observed");
  const stepOnly = new TaskCosts();
  stepOnly.observe(0, 10);
  assert.equal(guardRule({ ...covered, costs: stepOnly }), undefined, "a window size never seen counts as flat");
  assert.equal(guardRule({ ...covered, done: [task(10, 0)] }), undefined, "f is decided as soon as a finished task is applied");
  assert.equal(guardRule({ ...covered, running: [task(8, 3, 0), task(9, 3, -20)] }), undefined, "the earliest finishing window counts: one ends at 10");
  assert.equal(guardRule({ ...covered, running: [task(8, 3, 0), task(10, 0, 0)] }), undefined, "a pass on f already runs");
});
