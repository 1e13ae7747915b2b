/** The adaptive lookahead's acceptance estimate: prior, discounting, restart on drift, relaxation. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AcceptanceEstimator } from "../../src/algorithms/lookahead/acceptance.js";
import { TUNING } from "../../src/algorithms/lookahead/tuning.js";

const prior = (rate: number | undefined) => ({ rate: () => rate });

test("before any draft: the runtime's long-run rate, else the default prior", () => {
  assert.equal(new AcceptanceEstimator(prior(0.8)).rate(), 0.8);
  assert.equal(new AcceptanceEstimator(prior(undefined)).rate(), TUNING.defaultPrior);
});

test("the long-run prior weighs memoryWeight drafts, the default one defaultWeight", () => {
  const remembered = new AcceptanceEstimator(prior(0.5));
  const fresh = new AcceptanceEstimator(prior(undefined));
  remembered.decided(true);
  fresh.decided(true);
  assert.equal(remembered.rate(), (1 + 0.5 * TUNING.memoryWeight) / (1 + TUNING.memoryWeight));
  assert.equal(fresh.rate(), (1 + 0.5 * TUNING.defaultWeight) / (1 + TUNING.defaultWeight));
});

test("decided drafts are discounted: a recent rejection weighs more than an old acceptance", () => {
  const e = new AcceptanceEstimator(prior(undefined));
  e.decided(true);
  e.decided(false);
  const g = TUNING.decidedDiscount;
  assert.equal(e.rate(), (g + 0.5) / (g + 1 + 1));
  assert.ok(e.rate() < 0.5);
});

test("a change of context restarts the estimate from the short memory and drops the long-run prior's weight", () => {
  const e = new AcceptanceEstimator(prior(0.9));
  for (let i = 0; i < 60; i++) e.decided(true);
  assert.ok(!e.drifted);
  const before = e.rate();
  let n = 0;
  while (!e.drifted && n < 20) (e.decided(false), n++);
  assert.ok(e.drifted, "a run of rejections after a run of acceptances is a change");
  assert.ok(n <= 6, `noticed within a few drafts (${n})`);
  // Without the restart ~50 drafts of acceptance would keep the estimate near 0.9.
  assert.ok(e.rate() < 0.7 && e.rate() < before - 0.3, `restarted: ${before} -> ${e.rate()}`);
});

test("plain steps relax the estimate towards the prior", () => {
  const e = new AcceptanceEstimator(prior(undefined));
  for (let i = 0; i < 30; i++) e.decided(false);
  const low = e.rate();
  for (let i = 0; i < 50; i++) e.plainStep();
  assert.ok(e.rate() > low + 0.1 && e.rate() < TUNING.defaultPrior, `${low} -> ${e.rate()}`);
});
