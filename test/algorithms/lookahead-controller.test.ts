/** The lookahead controller built directly: its pure plan, and what commit records. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AdaptiveLookahead, conditionOf, costsFor, planLookahead, probeFits, socialCosts, type ObservedCosts, type PlanSnapshot } from "../../src/algorithms/lookahead/controller.js";
import { TUNING } from "../../src/algorithms/lookahead/tuning.js";
import type { Condition } from "../../src/runtime/costs.js";

/** Costs as TaskCosts reports them, set by hand. */
class FakeCosts implements ObservedCosts {
  version = 0;
  readonly means = { alone: new Map<number, number>(), beside: new Map<number, number>() };
  solo: number | undefined;
  drafter: number | undefined;
  sinceSolo = 0;
  load = 0;
  /** A size's mean cost, in both conditions unless one is named (as on separate devices). */
  set(k: number, ms: number, where?: Condition): void {
    for (const w of where ? [where] : (["alone", "beside"] as const)) this.means[w].set(k, ms);
    if (k === 0 && where !== "beside") this.solo = ms;
    this.version++;
  }
  meanMs(k: number, where: Condition): number | undefined {
    return this.means[where].get(k);
  }
  soloMs(): number | undefined {
    return this.solo;
  }
  drafterMs(): number | undefined {
    return this.drafter;
  }
  sharers(): number {
    return this.load;
  }
  tasksSinceSolo(): number {
    return this.sinceSolo;
  }
}

const noPrior = { rate: (): number | undefined => undefined };

/** A snapshot for SI with acceptance 0.5, free drafts, plain steps of 10 ms, and t(1) as given. */
const snapshot = (t1: number, over: Partial<PlanSnapshot> = {}): PlanSnapshot => ({
  algo: "si",
  instances: 1,
  acceptance: 0.5,
  optimisticAcceptance: 0.5,
  drafterMs: 0,
  aloneMs: [10, t1],
  besideMs: [10, t1],
  sharedDevice: false,
  plainMs: 10,
  tasksSinceSolo: 0,
  speculating: false,
  probeMisses: new Map(),
  ...over,
});

test("cold start: a plain step first (nothing is known of the target), then one window of 1 draft, whatever the budget", () => {
  const costs = new FakeCosts();
  const c = new AdaptiveLookahead("si", costs, noPrior, () => 0, false);
  const first = c.plan(1);
  assert.deepEqual([first.lookahead, first.probing], [0, false]);
  c.commit(first, 0);
  costs.set(0, 10);
  costs.drafter = 1;
  const probe = c.plan(1);
  assert.deepEqual([probe.lookahead, probe.probing], [1, true], "the cold start's probe goes out with no time elapsed");
});

test("plan is side-effect free: asked again it answers the same, and nothing is recorded until commit", () => {
  const costs = new FakeCosts();
  costs.set(0, 10);
  costs.drafter = 1;
  const reported: number[] = [];
  const c = new AdaptiveLookahead("dsi", costs, noPrior, () => 0, false, (choice) => reported.push(choice.lookahead));
  const a = c.plan(2);
  assert.deepEqual(c.plan(2), a);
  assert.equal(c.probes, 0);
  assert.deepEqual(reported, []);
  c.commit(a, 1);
  assert.equal(c.probes, 1, "commit records the probe");
  assert.deepEqual(reported, [1], "and reports the choice");
});

test("a plan is worked out again only when an input moved past its tolerance since the last: costs 5%, acceptance 0.005", () => {
  const costs = new FakeCosts();
  for (const [k, ms] of [[0, 10], [1, 11], [2, 12], [3, 13]] as const) costs.set(k, ms);
  costs.drafter = 1;
  const c = new AdaptiveLookahead("si", costs, { rate: () => 0.8 }, () => 0, false);
  const first = c.plan(1).choice!;
  assert.ok(first.lookahead > 0, `speculates: ${JSON.stringify(first)}`);
  costs.set(2, 12.5); // 4.2%
  assert.equal(c.plan(1).choice, first, "a cost within 5% of the plan's: the same plan");
  costs.set(2, 12.7); // 5.8% from the plan's 12
  const second = c.plan(1).choice!;
  assert.notEqual(second, first);
  costs.set(2, 12.2);
  assert.equal(c.plan(1).choice, second, "within 5% of the last plan's 12.7: measured from the last plan, not across fixed cells");
  c.decided(false);
  const third = c.plan(1).choice;
  assert.notEqual(third, second, "a rejected draft moved the acceptance estimate by more than 0.005");
  c.plan(2);
  assert.notEqual(c.plan(1).choice, third, "planned for 2 instances in between: planned again");
});

test("a committed probe holds while plain tasks go out first, and is given up after probePatience of them", () => {
  const costs = new FakeCosts();
  costs.set(0, 10);
  costs.drafter = 1;
  const c = new AdaptiveLookahead("dsi", costs, noPrior, () => 0, false);
  const probe = c.plan(1);
  assert.equal(probe.probing, true);
  c.commit(probe, 0); // a plain frontier task went out before the probe's drafts were ready
  for (let i = 1; i < TUNING.probePatience; i++) {
    const held = c.plan(1);
    assert.deepEqual([held.lookahead, held.probing, held.patient], [probe.lookahead, true, true], `still held after ${i} plain tasks`);
    c.commit(held, 0);
  }
  assert.notEqual(c.plan(1).choice, undefined, "given up: the model plans again (a held probe carries no choice)");
  assert.equal(c.probes, 1, "one probe, however long it waited");
});

test("hysteresis: leaving plain steps takes a 5% expected gain, staying with speculation takes any gain", () => {
  // SI, a = 0.5, free drafts: k = 1 costs t(1) / 1.5 per token against 10.
  const gain3 = snapshot(14.55); // 9.7 ms per token: 3% better
  assert.equal(planLookahead(gain3).choice.lookahead, 0, "3% does not leave plain steps");
  assert.equal(planLookahead({ ...gain3, speculating: true }).choice.lookahead, 1, "3% keeps speculating");
  assert.equal(planLookahead(snapshot(14.1)).choice.lookahead, 1, "6% leaves plain steps");
  assert.equal(planLookahead({ ...snapshot(15.15), speculating: true }).choice.lookahead, 0, "a loss goes back to plain steps");
});

test("a probe goes out only when its expected regret fits the exploration budget (the cold start's first excepted)", () => {
  const share = TUNING.explorationShare;
  const state = { probes: 1, explorationMs: 0, elapsedMs: 1 / share - 1, coldStart: false };
  assert.equal(probeFits(1, state), false, "regret 1 ms before 1 / share ms elapsed");
  assert.equal(probeFits(1, { ...state, elapsedMs: 1 / share }), true);
  assert.equal(probeFits(1, { ...state, elapsedMs: 1 / share, explorationMs: 0.5 }), false, "past probes count");
  assert.equal(probeFits(1e6, { ...state, probes: 0, coldStart: true }), true, "the cold start's window");
  // Through the controller: sizes 0 and 1 seen (the choice extrapolates to 5), size 2 promising
  // under optimism (flat costs beyond what was seen) at an expected regret of ~1.5 ms.
  const costs = new FakeCosts();
  costs.set(0, 10);
  costs.set(1, 12);
  costs.drafter = 1;
  let elapsed = 0;
  const c = new AdaptiveLookahead("si", costs, { rate: () => 0.9 }, () => elapsed, false);
  assert.equal(c.plan(1).probing, false, "no budget yet");
  elapsed = 1e6;
  const d = c.plan(1);
  assert.deepEqual([d.probing, d.lookahead], [true, 2], "with budget: one size beyond the largest seen");
});

test("SI re-measures a stale plain step (a probe of 0) only while speculation's margin is under 30%; DSI never", () => {
  const stale = TUNING.plainStaleTasks;
  const narrow = snapshot(12, { speculating: true }); // 8 ms per token: 20% better than plain steps
  assert.equal(planLookahead({ ...narrow, tasksSinceSolo: stale }).probe?.size, 0);
  assert.notEqual(planLookahead({ ...narrow, tasksSinceSolo: stale - 1 }).probe?.size, 0, "not stale yet");
  const wide = snapshot(9, { speculating: true }); // 6 ms per token: 40% better
  assert.notEqual(planLookahead({ ...wide, tasksSinceSolo: stale }).probe?.size, 0, "a wide margin needs no re-measure");
  assert.notEqual(planLookahead({ ...narrow, algo: "dsi", tasksSinceSolo: stale }).probe?.size, 0, "DSI keeps its plain cost");
});

test("DSI on one instance with cheap drafts: the decision says whether to wait for a full window (patient)", () => {
  // Flat costs, drafts a tenth of a step, high acceptance: sending what is ready at once pays.
  const s = snapshot(10, { algo: "dsi", acceptance: 0.9, optimisticAcceptance: 0.9, drafterMs: 1, aloneMs: [10, 10, 10], besideMs: [10, 10, 10], speculating: true });
  const plan = planLookahead(s);
  assert.ok(plan.choice.lookahead > 0);
  assert.equal(typeof plan.patient, "boolean");
  assert.equal(planLookahead({ ...s, instances: 2 }).patient, true, "several instances: always patient");
});

test("a probe window that costs more than the plan assumed is charged to the budget: the next probe is dearer", () => {
  // Cold start (a plain step, then the first probe: one draft, assumed to cost a plain step's
  // 10 ms); the probe window measures 12 ms. The next probe (2 drafts) has an expected regret
  // of ~0.8 ms: it would fit 1.5% of 60 ms (0.9 ms) alone, but the first probe's 2 ms overrun is
  // charged too, so it waits until 1.5% of the elapsed time covers both (200 ms: 3 ms).
  const costs = new FakeCosts();
  let elapsed = 0;
  const c = new AdaptiveLookahead("si", costs, noPrior, () => elapsed, false);
  c.commit(c.plan(1), 0);
  costs.set(0, 10);
  costs.drafter = 1;
  const first = c.plan(1);
  assert.deepEqual([first.lookahead, first.probing, first.probeTaskMs], [1, true, 10], "the plan assumed a plain step's cost for the unseen window");
  c.commit(first, 1);
  costs.set(1, 12);
  elapsed = 60;
  const early = c.plan(1);
  assert.deepEqual([early.lookahead, early.probing], [1, false], "the overrun leaves no room at 60 ms");
  elapsed = 200;
  const later = c.plan(1);
  assert.deepEqual([later.lookahead, later.probing], [2, true]);
  assert.ok(later.regret! > 0.5 && later.regret! < 1, `regret ${later.regret}`);
  assert.ok(probeFits(later.regret!, { probes: 1, explorationMs: 0, elapsedMs: 60, coldStart: false }), "without the overrun it would have fitted at 60 ms");
});

test("costs by condition: DSI reads tasks that ran beside something, SI tasks alone; an unmeasured condition is the other's times the ratio between them", () => {
  // No size measured in both conditions: the prior ratio on a shared device, none on separate ones.
  const apart = { aloneMs: [10], besideMs: [undefined, 30], sharedDevice: true } as const;
  assert.deepEqual(costsFor({ ...apart, algo: "dsi" }), [10 * TUNING.contentionPrior, 30]);
  assert.deepEqual(costsFor({ ...apart, algo: "si" }), [10, 30 / TUNING.contentionPrior]);
  assert.deepEqual(costsFor({ ...apart, algo: "dsi", sharedDevice: false }), [10, 30], "separate devices: no contention assumed");
  // Size 1 measured in both (ratio 28 / 14): it scales the sizes measured in one.
  const both = { algo: "dsi", aloneMs: [10, 14, 18], besideMs: [undefined, 28], sharedDevice: true } as const;
  assert.deepEqual(costsFor(both), [20, 28, 36]);
  assert.deepEqual(costsFor({ ...both, algo: "si", aloneMs: [undefined, 14], besideMs: [20, 28] }), [10, 14]);
});

test("the condition of DSI's windows: beside the drafter model or each other; alone where lookup drafts alone on one instance", () => {
  assert.equal(conditionOf("si"), "alone");
  assert.equal(conditionOf("dsi"), "beside");
  assert.equal(conditionOf("dsi", "model", 1), "beside", "the drafter runs beside the one instance's windows");
  assert.equal(conditionOf("dsi", "ngram+model", 1), "beside");
  assert.equal(conditionOf("dsi", "ngram", 1), "alone", "no drafter model runs: nothing beside");
  assert.equal(conditionOf("dsi", "ngram", 2), "beside", "two instances' windows overlap");
  // Read from the tasks that ran alone, not scaled by the contention prior.
  const apart = { algo: "dsi", aloneMs: [10, 15], besideMs: [], sharedDevice: true } as const;
  assert.deepEqual(costsFor({ ...apart, besideShare: 0 }), [10, 15]);
  assert.deepEqual(costsFor(apart), [10 * TUNING.contentionPrior, 15 * TUNING.contentionPrior]);
  assert.deepEqual(costsFor({ ...apart, besideShare: 0.25 }), [10 * 0.75 + 10 * TUNING.contentionPrior * 0.25, 15 * 0.75 + 15 * TUNING.contentionPrior * 0.25], "part of the time beside: the mix");
  // The controller: DSI by lookup alone on one instance, on a shared CPU, with acceptance 0.95,
  // speculates from the windows it measured alone (read beside, they would cost 2x: no).
  const costs = new FakeCosts();
  for (const [k, ms] of [[0, 10], [1, 14], [2, 18], [3, 22], [4, 26]] as const) costs.set(k, ms, "alone");
  const lookup = new AdaptiveLookahead("dsi", costs, { rate: () => 0.95 }, () => 0, true, undefined, TUNING, "ngram");
  assert.ok(lookup.plan(1).lookahead >= 3, `lookahead ${lookup.plan(1).lookahead}`);
  const model = new AdaptiveLookahead("dsi", costs, { rate: () => 0.95 }, () => 0, true, undefined, TUNING, "model");
  assert.equal(model.plan(1).lookahead, 0, "beside the drafter model those windows would cost twice as much");
});

test("lookup before the drafter: the drafter's step is paid for the share of committed positions where it drafts", () => {
  const costs = new FakeCosts();
  costs.set(0, 10);
  costs.set(1, 12);
  costs.drafter = 4;
  const c = new AdaptiveLookahead("si", costs, noPrior, () => 0, false, undefined, TUNING, "ngram+model");
  assert.equal(c.plan(1).choice!.drafterMs, 2, "an even prior");
  for (let i = 0; i < 300; i++) c.drafts("model");
  assert.ok(Math.abs(c.plan(1).choice!.drafterMs! - 4) < 0.05, `${c.plan(1).choice!.drafterMs}`);
  for (let i = 0; i < 300; i++) c.drafts("ngram");
  assert.ok(c.plan(1).choice!.drafterMs! < 0.05, `${c.plan(1).choice!.drafterMs}`);
});

test("a shared device: no free probe at the cold start; the first waits until its pessimistic price fits the budget", () => {
  const costs = new FakeCosts();
  costs.set(0, 10, "alone");
  costs.drafter = 1;
  let elapsed = 0;
  const c = new AdaptiveLookahead("dsi", costs, noPrior, () => elapsed, true);
  assert.equal(c.plan(1).probing, false, "nothing elapsed, nothing to spend");
  elapsed = 1e6;
  const probe = c.plan(1);
  assert.deepEqual([probe.lookahead, probe.probing], [1, true]);
  // A window of one draft beside the drafter, never measured: a step with contention, plus half a step per draft.
  assert.equal(probe.probeTaskMs, 10 * TUNING.contentionPrior * (1 + TUNING.sharedDraftCost));
  assert.ok(probe.regret! > 5, `its regret is priced at that cost: ${probe.regret}`);
  // Separate devices: the cold start's window goes at once, priced at a step.
  const free = new AdaptiveLookahead("dsi", costs, noPrior, () => 0, false).plan(1);
  assert.deepEqual([free.lookahead, free.probing, free.probeTaskMs], [1, true, 10]);
});

test("under load a window pays what it adds to the pass once more per sharer: it shrinks where its tokens cost the others more than they save, not where they are free", () => {
  assert.deepEqual(socialCosts([10, 12, NaN], 3), [10, 18, NaN]);
  assert.deepEqual(socialCosts([10, 9, 14], 0), [10, 9, 14], "no sharers: the generation's own costs");
  assert.deepEqual(socialCosts([10, 9], 2), [10, 9], "a window cheaper than a step adds nothing");
  // SI, acceptance 0.5: a window of 1 at 12 ms commits 1.5 tokens (8 ms each) against a 10 ms step.
  assert.equal(planLookahead(snapshot(12)).choice.lookahead, 1, "alone it pays");
  assert.equal(planLookahead(snapshot(12, { sharers: 3 })).choice.lookahead, 0, "beside 3 others' tasks it costs them 6 ms for 0.5 tokens");
  assert.ok(planLookahead(snapshot(10, { sharers: 15 })).choice.lookahead >= 1, "a window that adds nothing to the pass (a GPU below its knee) still pays at any load");
});
