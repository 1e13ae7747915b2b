/**
 * What a runtime learns (runtime/costs.ts): running means and the plain step's cost
 * (TaskCosts), discounted draft counts, the long-run acceptance; owned by the runtime.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { syntheticBackend } from "../../src/models/backend.js";
import { flatLatency, NO_LATENCY } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { VirtualClock } from "../../src/runtime/clock.js";
import { AcceptanceMemory, DiscountedCounts, isLearnedSnapshot, learnedFromSnapshot, newLearned, RESTORED_DRAFTS, snapshotLearned, TaskCosts, type LearnedSnapshot } from "../../src/runtime/costs.js";

test("task costs: means per size and condition follow recent tasks (weight 1/4 for the newest), prefill kept out", () => {
  const c = new TaskCosts();
  assert.equal(c.meanMs(2, "beside"), undefined);
  c.observe(2, 10);
  assert.equal(c.meanMs(2, "beside"), 10);
  c.observe(2, 20);
  assert.equal(c.meanMs(2, "beside"), 12.5);
  c.observe(2, 500, "prefill");
  assert.equal(c.meanMs(2, "beside"), 12.5);
  assert.equal(c.meanMs(1, "beside"), undefined, "sizes are apart");
  assert.equal(c.meanMs(2, "alone"), undefined, "so are conditions");
  c.observe(2, 4, "alone");
  assert.deepEqual([c.meanMs(2, "alone"), c.meanMs(2, "beside")], [4, 12.5]);
});

test("task costs: the plain step is a one-token task that ran alone; how stale it is counts later tasks", () => {
  const c = new TaskCosts();
  c.observe(0, 15, "beside");
  c.observe(3, 8, "alone");
  assert.equal(c.soloMs(), undefined, "neither is a plain step alone");
  c.observe(0, 10, "alone");
  assert.equal(c.soloMs(), 10);
  assert.equal(c.tasksSinceSolo(), 0);
  c.observe(3, 30);
  c.observe(0, 40, "prefill");
  c.observe(0, 12);
  assert.equal(c.tasksSinceSolo(), 2, "prefill is not a task of the generation's pace");
  assert.equal(c.soloMs(), 10);
});

test("task costs: drafter steps have their own means, alone and beside a target task; every observation changes the version", () => {
  const c = new TaskCosts();
  assert.equal(c.drafterMs("alone"), undefined);
  const v0 = c.version;
  c.observeDraft(2);
  c.observeDraft(6);
  assert.equal(c.drafterMs("alone"), 3);
  c.observeDraft(9, "beside");
  assert.deepEqual([c.drafterMs("alone"), c.drafterMs("beside")], [3, 9]);
  c.observe(0, 1, "prefill");
  c.observe(0, 1);
  assert.equal(c.version, v0 + 5);
});

function near(actual: number[], expected: number[], message?: string): void {
  assert.ok(actual.every((x, i) => Math.abs(x - expected[i]) < 1e-12), `${message ?? ""} ${actual} vs ${expected}`);
}

test("discounted counts: each earlier draft counts `discount` times less per draft since; fading keeps the rate, restarting takes another's counts", () => {
  const d = new DiscountedCounts(0.5);
  d.observe(true);
  d.observe(false);
  assert.deepEqual([d.accepted, d.decided], [0.5, 1.5]);
  d.observe(true);
  assert.deepEqual([d.accepted, d.decided], [1.25, 1.75]);
  d.fade(0.4);
  near([d.accepted, d.decided], [0.5, 0.7]);
  const other = new DiscountedCounts(0.9);
  other.restartFrom(d);
  assert.deepEqual([other.accepted, other.decided], [d.accepted, d.decided]);
  other.observe(false);
  near([other.accepted, other.decided], [0.45, 1.63], "it keeps its own discount");
});

test("acceptance memory: undefined before any draft, one draft's worth of 0.5 as a prior, the last ~100 drafts decide", () => {
  const m = new AcceptanceMemory();
  assert.equal(m.rate(), undefined);
  m.observe(true);
  assert.equal(m.rate(), 0.75);
  for (let i = 0; i < 1000; i++) m.observe(true);
  assert.ok(m.rate()! > 0.99 && m.rate()! < 1);
  for (let i = 0; i < 1000; i++) m.observe(false);
  assert.ok(m.rate()! < 0.01, `rate ${m.rate()}`);
});

test("the runtime owns what its generations learned: the next generation starts from it, a new runtime from nothing unless given it", async () => {
  const pair = new SyntheticPair({ vocab: 16, seed: 1, agreement: 0.7 });
  const profile = { name: "10/1", target: flatLatency(10), drafter: flatLatency(1) };
  const rt = syntheticRuntime({ pair, profile, sp: 2 });
  assert.equal(rt.learned.costs.soloMs(), undefined);
  await generate("nonsi", rt, { prompt: [1, 2, 3], maxTokens: 8 }).result;
  assert.equal(rt.learned.costs.soloMs(), 10);
  assert.equal(rt.learned.acceptance.rate(), undefined, "non-SI decides no draft");
  await generate("dsi", rt, { prompt: [1, 2, 3], maxTokens: 8, lookahead: 2 }).result;
  assert.notEqual(rt.learned.acceptance.rate(), undefined);
  assert.equal(syntheticRuntime({ pair, profile }).learned.costs.soloMs(), undefined);
  assert.equal(syntheticRuntime({ pair, profile, learned: rt.learned }).learned, rt.learned);
});

test("a backend's runtime owns a fresh Learned, or starts from the one it is given", async () => {
  const backend = syntheticBackend({ vocab: 16 });
  const a = await backend.runtime(new VirtualClock(), 1, NO_LATENCY);
  assert.notEqual((await backend.runtime(new VirtualClock(), 1, NO_LATENCY)).learned, a.learned, "no registry: each runtime learns on its own");
  assert.equal((await backend.runtime(new VirtualClock(), 2, NO_LATENCY, { learned: a.learned })).learned, a.learned);
  await backend.close();
});

test("snapshot round trip: a Learned restored from the JSON of another's snapshot has its means; the acceptance keeps its rate at RESTORED_DRAFTS drafts' weight", () => {
  const a = newLearned();
  for (const [k, ms] of [[0, 10], [0, 14], [2, 30], [5, 61]] as const) a.costs.observe(k, ms);
  a.costs.observe(0, 9, "alone");
  a.costs.observe(1, 12, "alone");
  a.costs.observe(3, 999, "prefill");
  a.costs.observeDraft(2);
  a.costs.observeDraft(4);
  a.costs.observeDraft(7, "beside");
  for (let i = 0; i < 200; i++) a.acceptance.observe(i % 4 !== 0);
  for (let i = 0; i < 50; i++) a.lookupAcceptance.observe(i % 10 !== 0);
  const snapshot = JSON.parse(JSON.stringify(snapshotLearned(a))) as unknown;
  assert.ok(isLearnedSnapshot(snapshot));
  const b = learnedFromSnapshot(snapshot);
  for (const where of ["alone", "beside"] as const) {
    for (let k = 0; k <= 6; k++) assert.equal(b.costs.meanMs(k, where), a.costs.meanMs(k, where), `size ${k} ${where}`);
    assert.equal(b.costs.drafterMs(where), a.costs.drafterMs(where));
  }
  assert.equal(b.costs.meanMs(3, "beside"), undefined, "prefill stays out");
  assert.equal(b.costs.soloMs(), 9);
  assert.equal(b.costs.tasksSinceSolo(), 0);
  // The rate of the restored counts (with the memory's own half-draft prior at their weight).
  const { accepted, decided } = snapshotLearned(a).acceptance;
  assert.ok(decided > RESTORED_DRAFTS);
  const expected = ((accepted / decided) * RESTORED_DRAFTS + 0.5) / (RESTORED_DRAFTS + 1);
  assert.ok(Math.abs(b.acceptance.rate()! - expected) < 1e-12, `${b.acceptance.rate()} vs ${expected}`);
  assert.ok(Math.abs(b.acceptance.rate()! - a.acceptance.rate()!) < 0.05);
  assert.ok(Math.abs(b.lookupAcceptance.rate()! - a.lookupAcceptance.rate()!) < 0.05, "prompt lookup's acceptance is kept too");
  // A file written before lookup's acceptance was kept is still read.
  const older = { ...(snapshot as LearnedSnapshot), lookupAcceptance: undefined };
  assert.ok(isLearnedSnapshot(older));
  assert.equal(learnedFromSnapshot(older).lookupAcceptance.rate(), undefined);
  assert.deepEqual(snapshotLearned(learnedFromSnapshot(snapshotLearned(b))), snapshotLearned(b), "a restored Learned snapshots as it was restored");
});

test("restored figures are a prior: one fresh observation weighs as much as a restored mean, then the usual 1/4; the rules' recent extremes start empty", () => {
  const a = newLearned();
  a.costs.observe(0, 10);
  a.costs.observe(2, 40);
  a.costs.observeDraft(4);
  const b = learnedFromSnapshot(snapshotLearned(a));
  assert.equal(b.costs.quickestMs(0), undefined, "a mean is no bound");
  assert.equal(b.costs.slowestMs(2), undefined);
  assert.equal(b.costs.stepMs(), undefined);
  b.costs.observe(0, 20);
  assert.equal(b.costs.meanMs(0, "beside"), 15);
  b.costs.observe(0, 20);
  assert.equal(b.costs.meanMs(0, "beside"), 16.25);
  b.costs.observeDraft(8);
  assert.equal(b.costs.drafterMs("alone"), 6);
  assert.equal(b.costs.meanMs(2, "beside"), 40, "sizes not observed again keep the restored mean");
});

test("snapshots: malformed ones are refused", () => {
  const good = snapshotLearned(newLearned());
  assert.ok(isLearnedSnapshot(good));
  for (const bad of [
    null,
    {},
    { ...good, costs: { ...good.costs, aloneMsByDrafts: [1, "2"] } },
    { ...good, costs: { ...good.costs, besideMsByDrafts: [-1] } },
    { ...good, costs: { ...good.costs, drafterBesideMs: Infinity } },
    { ...good, costs: { meanMsByDrafts: [1], soloMs: 1, drafterMs: 1 } },
    { ...good, acceptance: { accepted: 3, decided: 2 } },
    { ...good, lookupAcceptance: { accepted: -1, decided: 2 } },
    { ...good, lookupAcceptance: 0.5 },
    { costs: good.costs },
  ]) {
    assert.equal(isLearnedSnapshot(bad), false, JSON.stringify(bad));
  }
});
