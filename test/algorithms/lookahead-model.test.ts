/** The lookahead's expected-time models (pure functions) on hand-computed cases. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { dsiMsPerToken, dsiOneInstanceMsPerToken, interpolate, siMsPerToken, windowTokens, type CostModel } from "../../src/algorithms/lookahead/model.js";

const close = (x: number, y: number, label: string): void => assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)), `${label}: ${x} vs ${y}`);
const flat = (a: number, d: number, t0 = 10): CostModel => ({ a, d, t: () => t0, t0 });

test("a window of k drafts commits (1 - a^(k+1)) / (1 - a) tokens; acceptance is capped at 0.99", () => {
  close(windowTokens(0, 0.5), 1, "k=0");
  close(windowTokens(2, 0.5), 1.75, "k=2, a=0.5: 1 + 0.5 + 0.25");
  close(windowTokens(3, 1), (1 - 0.99 ** 4) / 0.01, "a=1 counts as 0.99");
});

test("SI: (k·d + t(k)) / E(k), and k = 0 is the plain step t0", () => {
  const m: CostModel = { a: 0.5, d: 2, t: (k) => 10 + k, t0: 10 };
  close(siMsPerToken(0, m), 10, "plain");
  close(siMsPerToken(2, m), (2 * 2 + 12) / 1.75, "k=2"); // 16 / 1.75
});

test("DSI without acceptance runs at the plain pace on any instances; k = 0 is the plain step", () => {
  for (const n of [1, 2, 4]) close(dsiMsPerToken(3, flat(0, 1), n), 10, `${n} instances`);
  close(dsiMsPerToken(0, flat(0.9, 1), 4), 10, "k=0");
});

test("DSI on one instance, patient, free drafts, flat costs: SI's window with drafting hidden, t / E(k)", () => {
  // d = 0: the k drafts are there when the task goes out; every cycle is one window.
  close(dsiOneInstanceMsPerToken(2, flat(0.5, 0), true), 10 / 1.75, "k=2, a=0.5");
  // and the two-instance model never does worse than one instance's with the same costs.
  assert.ok(dsiMsPerToken(2, flat(0.8, 1), 2) <= dsiMsPerToken(2, flat(0.8, 1), 1) + 1e-9);
});

test("costs of unseen sizes: seen ones as measured, linear between, linear beyond the two largest (optimistic: flat)", () => {
  const means = new Map([[0, 10], [2, 14], [4, 16]]);
  const costs = { meanMs: (k: number) => means.get(k) };
  const sizes = [0, 2, 4];
  close(interpolate(costs, sizes, 2, false), 14, "seen");
  close(interpolate(costs, sizes, 1, false), 12, "between 0 and 2");
  close(interpolate(costs, sizes, 6, false), 18, "beyond: slope 1 per draft from 2..4");
  close(interpolate(costs, sizes, 6, true), 16, "optimistic: the largest seen");
  assert.ok(Number.isNaN(interpolate(costs, [0], 1, false)), "one size seen: nothing to extrapolate");
});
