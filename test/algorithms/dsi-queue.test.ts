/** DSI's queue policy (dsi/queue.ts): the drafter's lead, pool claims, windows in position order. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { claimOf, drafterLeadLimit, WindowQueue } from "../../src/algorithms/dsi/queue.js";

test("drafter lead: SP windows in flight, one ready and the draft past them; none while the lookahead is 0; one window and one draft for a probe", () => {
  assert.equal(drafterLeadLimit({ lookahead: 3, sp: 2, probing: false }), 3 * 3 + 1);
  assert.equal(drafterLeadLimit({ lookahead: 1, sp: 1, probing: false }), 3);
  assert.equal(drafterLeadLimit({ lookahead: 0, sp: 4, probing: false }), 0);
  assert.equal(drafterLeadLimit({ lookahead: 0, sp: 4, probing: true }), 0);
  assert.equal(drafterLeadLimit({ lookahead: 5, sp: 4, probing: true }), 6);
});

test("pool claims: frontier and guard tasks claim as frontier, windows as window", () => {
  assert.equal(claimOf({ start: 0, drafts: 3, rule: "frontier" }), "frontier");
  assert.equal(claimOf({ start: 0, drafts: 0, rule: "guard" }), "frontier");
  assert.equal(claimOf({ start: 4, drafts: 3, rule: "window" }), "window");
});

test("window rule: the next window starts past the last one, once L drafts are ready (fewer only when nothing more will be drafted)", () => {
  const q = new WindowQueue(5);
  assert.equal(q.next(5, 7, 3, 100), undefined, "two drafts ready, three wanted");
  assert.deepEqual(q.next(5, 8, 3, 100), { start: 5, drafts: 3, rule: "window" });
  assert.deepEqual(q.next(5, 7, 3, 7), { start: 5, drafts: 2, rule: "window" }, "everything worth drafting is drafted");
  assert.equal(q.next(5, 5, 3, 5), undefined, "nothing drafted past the start");
  assert.equal(q.next(5, 20, 0, 100), undefined, "lookahead 0: frontier tasks alone");
  q.dispatched({ start: 5, drafts: 3, rule: "window" });
  assert.deepEqual(q.next(5, 11, 3, 100), { start: 8, drafts: 3, rule: "window" });
  q.dispatched({ start: 5, drafts: 0, rule: "guard" });
  assert.deepEqual(q.next(5, 11, 3, 100)?.start, 8, "a guard task leaves the queue as it is");
  assert.deepEqual(q.next(9, 12, 3, 100)?.start, 9, "never behind the frontier");
});

test("a new epoch restarts windows at the new frontier; a lost window is sent again from its start", () => {
  const q = new WindowQueue(0);
  q.dispatched({ start: 0, drafts: 3, rule: "frontier" });
  q.dispatched({ start: 3, drafts: 3, rule: "window" });
  q.rewind(9);
  assert.equal(q.next(0, 20, 3, 100)?.start, 6, "rewinding past the next start changes nothing");
  q.rewind(3);
  assert.equal(q.next(0, 20, 3, 100)?.start, 3);
  q.reset(2);
  assert.equal(q.next(2, 20, 3, 100)?.start, 2);
});
