/** The event log's presentations: intervals (spans), the Chrome trace, the SVG timeline. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { chromeTrace } from "../../src/present/trace.js";
import { spans } from "../../src/present/spans.js";
import { timelineSvg } from "../../src/present/timeline-svg.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import type { EngineEvent } from "../../src/runtime/events.js";
import { profile, run } from "../helpers/run.js";

async function log(): Promise<{ events: EngineEvent[]; tokens: number[] }> {
  const r = await run("dsi", new SyntheticPair({ vocab: 16, seed: 4, agreement: 0.6 }), { maxTokens: 30, lookahead: 3, sp: 3, profile: profile(10, 1) });
  return { events: r.events, tokens: r.tokens };
}

const count = (events: readonly EngineEvent[], type: EngineEvent["type"]): number => events.filter((e) => e.type === type).length;

test("spans: every task and draft once, with its end, reason and positions; commits in order", async () => {
  const { events, tokens } = await log();
  const sp = spans(events);
  assert.equal(sp.tasks.length, count(events, "dispatch"));
  assert.equal(sp.tasks.filter((t) => t.preempted).length, count(events, "task-preempt"));
  assert.ok(sp.tasks.some((t) => t.preempted === "rejected"), "the run has preemptions to show");
  for (const t of sp.tasks) {
    assert.ok(t.t1 >= t.t0 && !t.unfinished);
    assert.equal(t.label, t.dispatch.drafts.length === 0 ? `${t.dispatch.start}` : `${t.dispatch.start}..${t.dispatch.start + t.dispatch.drafts.length}`);
  }
  assert.equal(sp.drafts.length, count(events, "draft-start"));
  assert.deepEqual(
    sp.commits.map((c) => c.token),
    tokens,
  );
  assert.equal(sp.end, events.at(-1)!.t);
  assert.deepEqual(sp.targets, [0, 1, 2]);
});

test("trace: a complete event per task with its position range, epoch and outcome; one per commit", async () => {
  const { events } = await log();
  const trace = chromeTrace([{ name: "run", events }]);
  const tasks = trace.traceEvents.filter((e) => e.ph === "X" && e.tid >= 2);
  assert.equal(tasks.length, count(events, "dispatch"));
  for (const e of tasks) {
    const a = e.args as { first: number; last: number; drafts: number[]; epoch: number; outcome: string; reason?: string };
    assert.equal(a.last - a.first, a.drafts.length);
    assert.ok(Number.isInteger(a.epoch));
    assert.ok(a.outcome === "done" || (a.outcome === "preempted" && ["rejected", "useless", "finished"].includes(a.reason!)), JSON.stringify(a));
  }
  assert.equal(trace.traceEvents.filter((e) => e.ph === "i").length, count(events, "commit"));
});

test("a log cut short keeps the tasks and drafts that never ended (up to the log's end)", async () => {
  const { events } = await log();
  // Cut right after a dispatch: that task (and maybe others) never ends in the log.
  const cut = events.findIndex((e, i) => i > 10 && e.type === "dispatch");
  const partial = events.slice(0, cut + 1);
  const sp = spans(partial);
  const unfinished = sp.tasks.filter((t) => t.unfinished);
  assert.ok(unfinished.length >= 1);
  assert.equal(sp.tasks.length, count(partial, "dispatch"));
  for (const t of unfinished) assert.equal(t.t1, partial.at(-1)!.t);
  const trace = chromeTrace([{ name: "cut", events: partial }]);
  assert.ok(trace.traceEvents.some((e) => e.cat === "unfinished" && (e.args as { outcome: string }).outcome === "unfinished"));
  assert.match(timelineSvg([{ title: "cut", events: partial }]), /unfinished when the log ends/);
});

test("SVG timeline: a lane per instance, a box with a tooltip per task and per draft", async () => {
  const { events } = await log();
  const svg = timelineSvg([{ title: "dsi", events }], { title: "test" });
  assert.match(svg, /^<svg /);
  for (const lane of ["drafter", "target-0", "target-1", "target-2", "commits"]) assert.ok(svg.includes(`>${lane}</text>`), lane);
  for (const e of events) if (e.type === "dispatch") assert.ok(svg.includes(`task ${e.task}: positions `), `task ${e.task}`);
  assert.equal((svg.match(/draft of position /g) ?? []).length, count(events, "draft-start"));
});
